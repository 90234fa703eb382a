-- The explorer's action: qualifier now resolves its value (any case, or a prefix) into the
-- organization's exact actions first and searches action = ANY(...). Equality of text is
-- leakproof, so under row-level security (the console's tenant role) this index is an index
-- condition; the lower(action) index of 0030 served only the database owner, since lower()
-- and LIKE are not leakproof and are evaluated after the tenant policy. One action index
-- replaces the other, so ingest maintains as many indexes as before.
CREATE INDEX audit_log_org_action_exact_ts_idx ON audit_log (organization_id, action, "timestamp" DESC);
DROP INDEX IF EXISTS audit_log_org_action_ts_idx;
