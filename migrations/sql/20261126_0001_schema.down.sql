DROP TABLE IF EXISTS pseudonym_mapping, config_change_event, archive_dlq_event, report_executions,
    scheduled_reports, report_templates, alerts, archive_storage, error_aggregation, error_log,
    audit_retention_policy, audit_integrity_log, audit_preset, audit_log, sessions, memberships,
    organization_role, users, organizations CASCADE;
