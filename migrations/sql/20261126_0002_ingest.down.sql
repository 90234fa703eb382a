DROP TRIGGER IF EXISTS audit_log_immutable ON audit_log;
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
DROP TABLE IF EXISTS audit_checkpoint, audit_merkle_node, audit_leaf, audit_leaf_queue, api_idempotency, api_keys;
DROP FUNCTION IF EXISTS auditdb_refuse_mutation();
DROP INDEX IF EXISTS archive_dlq_event_org_idx;
ALTER TABLE archive_dlq_event
    DROP COLUMN IF EXISTS replayed_at,
    DROP COLUMN IF EXISTS replayed_by,
    DROP COLUMN IF EXISTS replay_result;
