DROP INDEX IF EXISTS removed_events_org_retention_ts_idx;
