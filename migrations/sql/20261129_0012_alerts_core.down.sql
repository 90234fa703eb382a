DROP INDEX alerts_org_resolved_idx;
DROP INDEX alerts_org_active_idx;
DROP INDEX alerts_org_rank_idx;
DROP FUNCTION alert_severity_rank(text);
