ALTER TABLE audit_leaf_queue DROP COLUMN queued_at;
