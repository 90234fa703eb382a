ALTER TABLE organizations DROP COLUMN time_zone;
DROP TABLE event_counts_daily;
DROP TABLE event_counts_hourly;
ALTER TABLE alerts DROP COLUMN event_ids, DROP COLUMN principal, DROP COLUMN rule;
