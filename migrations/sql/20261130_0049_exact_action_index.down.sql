CREATE INDEX audit_log_org_action_ts_idx ON audit_log (organization_id, lower(action) text_pattern_ops, "timestamp" DESC);
DROP INDEX IF EXISTS audit_log_org_action_exact_ts_idx;
