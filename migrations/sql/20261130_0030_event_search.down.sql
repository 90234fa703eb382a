DROP INDEX IF EXISTS audit_log_org_actor_ts_idx;
DROP INDEX IF EXISTS audit_log_org_action_ts_idx;
