DROP INDEX IF EXISTS error_log_key_ts_idx;
DROP INDEX IF EXISTS error_aggregation_last_idx;
DROP INDEX IF EXISTS error_aggregation_org_last_idx;
ALTER TABLE error_aggregation
    DROP COLUMN title,
    DROP COLUMN operation,
    DROP COLUMN component,
    DROP COLUMN fingerprint,
    DROP COLUMN organization_id;
ALTER TABLE error_log DROP COLUMN organization_id;
