CREATE INDEX audit_log_org_actor_ts_idx ON audit_log (organization_id, lower(principal_id) text_pattern_ops, "timestamp" DESC);
DROP TABLE saved_views;
