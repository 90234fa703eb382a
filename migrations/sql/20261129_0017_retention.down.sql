DROP TABLE archived_events;
DROP INDEX archive_storage_org_month_idx;
ALTER TABLE archive_storage
    DROP COLUMN content, DROP COLUMN encoding, DROP COLUMN policy, DROP COLUMN month, DROP COLUMN part,
    DROP COLUMN event_count, DROP COLUMN first_event_at, DROP COLUMN last_event_at, DROP COLUMN min_event_id,
    DROP COLUMN max_event_id, DROP COLUMN min_leaf_index, DROP COLUMN max_leaf_index, DROP COLUMN original_size,
    DROP COLUMN compressed_size, DROP COLUMN sha256_original, DROP COLUMN sha256_compressed, DROP COLUMN run_id,
    DROP COLUMN deleted_at;
UPDATE archive_storage SET data = '' WHERE data IS NULL;
ALTER TABLE archive_storage ALTER COLUMN data SET NOT NULL;
DROP TABLE removed_events;
DROP TABLE retention_runs;
DROP TABLE legal_holds;
DROP TABLE retention_floors;
ALTER TABLE audit_retention_policy DROP CONSTRAINT audit_retention_policy_days_check;
ALTER TABLE audit_retention_policy DROP CONSTRAINT audit_retention_policy_org_name_key;
DELETE FROM audit_retention_policy WHERE organization_id <> '*';
ALTER TABLE audit_retention_policy ADD CONSTRAINT audit_retention_policy_policy_name_key UNIQUE (policy_name);
ALTER TABLE audit_retention_policy DROP COLUMN updated_by, DROP COLUMN floor_override_reason, DROP COLUMN organization_id;
