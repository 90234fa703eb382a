DROP TABLE IF EXISTS report_file_chunks, report_files;
DROP INDEX IF EXISTS report_templates_org_idx, scheduled_reports_org_idx, scheduled_reports_due_idx,
    report_executions_org_idx, report_executions_once;
DELETE FROM report_executions WHERE report_config_id IS NULL;
ALTER TABLE report_executions
    DROP COLUMN heartbeat_at, DROP COLUMN requested_by, DROP COLUMN progress, DROP COLUMN formats,
    DROP COLUMN criteria, DROP COLUMN report_type, DROP COLUMN template_id;
ALTER TABLE report_executions ALTER COLUMN report_config_id SET NOT NULL;
