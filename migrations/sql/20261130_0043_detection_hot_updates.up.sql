-- Detection adds every batch to the same rows: the day's count of each action and principal
-- (event_counts_daily, about one row per principal), the hour's count (event_counts_hourly)
-- and its cursor (detection_cursor). Packed full, a page has no room for the new versions
-- of the rows one upsert changes together, so most updates were not HOT: each left a dead
-- tuple and a new entry in the key's index, which the next upsert walked through until
-- autovacuum came (on a busy machine, not for minutes): the upsert's cost grew with the
-- run (35,536 dead tuples behind 510 live rows after 1,200,000 events, three times the
-- buffer reads). With free room on every page the updates are HOT and the next one prunes
-- the last one's versions; a fixed vacuum threshold keeps the small tables from waiting on
-- a fraction of themselves.
ALTER TABLE event_counts_daily SET (fillfactor = 40, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000);
ALTER TABLE event_counts_hourly SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000);
ALTER TABLE detection_cursor SET (fillfactor = 50);
