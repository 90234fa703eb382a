-- The error log: the server's own errors (5xx answers, panics, failed jobs, dead-lettered
-- events, failed deliveries) per occurrence in error_log, folded by fingerprint into
-- error_aggregation. Both carry the organization the error happened for (NULL when none:
-- a job over every organization, a request before sign-in), so an administrator sees
-- only the organization's rows.

ALTER TABLE error_log ADD COLUMN organization_id varchar(50);

ALTER TABLE error_aggregation
    ADD COLUMN organization_id varchar(50),
    ADD COLUMN fingerprint     varchar(64)  NOT NULL DEFAULT '',
    ADD COLUMN component       varchar(100) NOT NULL DEFAULT '',
    ADD COLUMN operation       varchar(255) NOT NULL DEFAULT '',
    ADD COLUMN title           text         NOT NULL DEFAULT '';

-- /errors lists an organization's groups (or every group, for a superadmin) newest first.
CREATE INDEX error_aggregation_org_last_idx ON error_aggregation (organization_id, last_occurrence DESC);
CREATE INDEX error_aggregation_last_idx ON error_aggregation (last_occurrence DESC);

-- The 7-day trend and a group's recent occurrences read error_log by aggregation key
-- over a time range (partition pruning on timestamp).
CREATE INDEX error_log_key_ts_idx ON error_log (aggregation_key, "timestamp" DESC);
