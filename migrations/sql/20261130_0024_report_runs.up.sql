-- Reports: templates, schedules and executions on the product's tables.
--
-- An execution runs a template or an ad-hoc report as well as a schedule, so its schedule
-- is optional and it records what it ran (type, criteria, formats), how far it has got
-- (progress, heartbeat) and who asked. A schedule's run at one scheduled instant exists
-- once: the unique index is what makes two instances run a due schedule once.
ALTER TABLE report_executions ALTER COLUMN report_config_id DROP NOT NULL;
ALTER TABLE report_executions
    ADD COLUMN template_id  varchar(255) REFERENCES report_templates (id) ON DELETE SET NULL,
    ADD COLUMN report_type  varchar(50)  NOT NULL DEFAULT 'GENERAL_COMPLIANCE',
    ADD COLUMN criteria     jsonb        NOT NULL DEFAULT '{}',
    ADD COLUMN formats      jsonb        NOT NULL DEFAULT '[]',
    ADD COLUMN progress     bigint       NOT NULL DEFAULT 0,
    ADD COLUMN requested_by varchar(255),
    ADD COLUMN heartbeat_at timestamptz;
CREATE UNIQUE INDEX report_executions_once ON report_executions (report_config_id, scheduled_time)
    WHERE report_config_id IS NOT NULL;
-- The reports page lists an organization's executions newest first.
CREATE INDEX report_executions_org_idx ON report_executions (organization_id, created_at DESC);
-- The scheduler's "what is due" and the retry of failed deliveries.
CREATE INDEX scheduled_reports_due_idx ON scheduled_reports (next_run) WHERE enabled;
CREATE INDEX scheduled_reports_org_idx ON scheduled_reports (organization_id);
CREATE INDEX report_templates_org_idx ON report_templates (organization_id);

-- The files an execution produced, stored in PostgreSQL so any instance serves them: the
-- file's size and SHA-256 are of its bytes as downloaded; the bytes are stored zstd
-- compressed in chunks of at most 1 MiB, so neither writing nor serving a file holds it
-- whole in memory.
CREATE TABLE report_files (
    execution_id    varchar(255) NOT NULL REFERENCES report_executions (id) ON DELETE CASCADE,
    format          varchar(20)  NOT NULL,
    organization_id varchar(255) NOT NULL,
    name            varchar(255) NOT NULL,
    content_type    varchar(100) NOT NULL,
    size            bigint       NOT NULL DEFAULT 0,
    stored_size     bigint       NOT NULL DEFAULT 0,
    sha256          varchar(64)  NOT NULL DEFAULT '',
    complete        boolean      NOT NULL DEFAULT false,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, format)
);
CREATE TABLE report_file_chunks (
    execution_id varchar(255) NOT NULL,
    format       varchar(20)  NOT NULL,
    seq          integer      NOT NULL,
    data         bytea        NOT NULL,
    PRIMARY KEY (execution_id, format, seq),
    FOREIGN KEY (execution_id, format) REFERENCES report_files (execution_id, format) ON DELETE CASCADE
);
-- Already compressed: PostgreSQL is not asked to compress again.
ALTER TABLE report_file_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
