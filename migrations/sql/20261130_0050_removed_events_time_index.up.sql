-- The events explorer's histogram reads whole hours from detection's hourly counts only after
-- the newest event retention moved out of the log; this index answers "the newest event
-- retention deleted" for an organization without reading its removal records.
CREATE INDEX removed_events_org_retention_ts_idx ON removed_events (organization_id, event_timestamp)
    WHERE reason = 'retention';
