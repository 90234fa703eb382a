-- The alerts area's shared schema: what detection records on each alert, the per-hour and
-- per-day event counts it maintains for the dashboard, and the organization's time zone.
--
-- alerts: the rule that raised it, the principal (or other group key) it is about, and the
-- ids of the events that triggered it (the alert page links them).
ALTER TABLE alerts
    ADD COLUMN rule      varchar(50),
    ADD COLUMN principal varchar(255),
    ADD COLUMN event_ids bigint[] NOT NULL DEFAULT '{}';

-- Event counts kept by the detection pass as it reads committed events (each event counted
-- once), so the dashboard's cost does not grow with history.
CREATE TABLE event_counts_hourly (
    organization_id varchar(255) NOT NULL,
    hour            timestamptz  NOT NULL,
    events          bigint       NOT NULL DEFAULT 0,
    failures        bigint       NOT NULL DEFAULT 0,
    PRIMARY KEY (organization_id, hour)
);
-- Per day and value: kind 'action' or 'principal'.
CREATE TABLE event_counts_daily (
    organization_id varchar(255) NOT NULL,
    day             date         NOT NULL,
    kind            varchar(16)  NOT NULL CHECK (kind IN ('action', 'principal')),
    value           varchar(255) NOT NULL,
    events          bigint       NOT NULL DEFAULT 0,
    failures        bigint       NOT NULL DEFAULT 0,
    PRIMARY KEY (organization_id, day, kind, value)
);

-- Off-hours detection and the console's dates use the organization's time zone (IANA).
ALTER TABLE organizations ADD COLUMN time_zone varchar(64) NOT NULL DEFAULT 'UTC';
