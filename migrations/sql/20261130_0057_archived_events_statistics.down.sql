ALTER TABLE archived_events
    ALTER COLUMN organization_id SET STATISTICS -1,
    ALTER COLUMN audit_log_id SET STATISTICS -1,
    ALTER COLUMN event_timestamp SET STATISTICS -1,
    ALTER COLUMN archive_id SET STATISTICS -1,
    ALTER COLUMN leaf_index SET STATISTICS -1,
    ALTER COLUMN event_hash SET STATISTICS -1;
