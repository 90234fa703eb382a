-- The integrity sweep's outcome per organization and run, so the dashboard can say when the
-- last sweep ran and what it found (before, only failures left a trace, as alerts).
CREATE TABLE integrity_sweep_runs (
    organization_id varchar(255) NOT NULL,
    swept_at        timestamptz  NOT NULL,
    ok              boolean      NOT NULL,
    problems        bigint       NOT NULL DEFAULT 0,
    events          bigint       NOT NULL DEFAULT 0,
    error           text,
    PRIMARY KEY (organization_id, swept_at)
);
