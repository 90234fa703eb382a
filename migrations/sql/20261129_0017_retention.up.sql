-- The retention area's shared schema.
--
-- Policies of an organization's own beside the global ones ('*'): an organization's policy
-- of a classification wins over the global one, as presets do. Names are unique per owner.
ALTER TABLE audit_retention_policy
    ADD COLUMN organization_id varchar(255) NOT NULL DEFAULT '*',
    ADD COLUMN floor_override_reason text,
    ADD COLUMN updated_by varchar(255);
ALTER TABLE audit_retention_policy DROP CONSTRAINT audit_retention_policy_policy_name_key;
ALTER TABLE audit_retention_policy ADD CONSTRAINT audit_retention_policy_org_name_key UNIQUE (organization_id, policy_name);
ALTER TABLE audit_retention_policy ADD CONSTRAINT audit_retention_policy_days_check CHECK (
    retention_days <= 36500
    AND (delete_after_days IS NULL OR delete_after_days >= retention_days)
    AND (archive_after_days IS NULL OR archive_after_days < coalesce(delete_after_days, retention_days)));

-- Statutory floors per classification, set by superadmins: a policy below its floor needs an
-- owner's explicit, self-audited override reason.
CREATE TABLE retention_floors (
    data_classification varchar(20) PRIMARY KEY
                        CHECK (data_classification IN ('PUBLIC', 'INTERNAL', 'CONFIDENTIAL', 'PHI')),
    min_days            integer      NOT NULL CHECK (min_days BETWEEN 0 AND 36500),
    updated_by          varchar(255) NOT NULL DEFAULT 'system',
    updated_at          timestamptz  NOT NULL DEFAULT now()
);
INSERT INTO retention_floors (data_classification, min_days) VALUES ('PHI', 2190); -- HIPAA: six years

-- Legal holds: events under an active hold are never deleted (archiving alone is allowed).
-- Exactly one scope per hold; a time range may narrow any scope.
CREATE TABLE legal_holds (
    id              bigint       GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id varchar(255) NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            varchar(200) NOT NULL,
    reason          text         NOT NULL,
    scope           varchar(20)  NOT NULL CHECK (scope IN ('organization', 'principal', 'resource', 'correlation', 'time_range')),
    principal_id    varchar(255),
    resource_type   varchar(255),
    resource_id     varchar(255),
    correlation_id  varchar(255),
    from_time       timestamptz,
    to_time         timestamptz,
    placed_by       varchar(255) NOT NULL,
    placed_at       timestamptz  NOT NULL DEFAULT now(),
    released_by     varchar(255),
    released_at     timestamptz,
    CHECK (from_time IS NULL OR to_time IS NULL OR to_time >= from_time),
    CHECK (scope <> 'principal' OR principal_id IS NOT NULL),
    CHECK (scope <> 'resource' OR (resource_type IS NOT NULL AND resource_id IS NOT NULL)),
    CHECK (scope <> 'correlation' OR correlation_id IS NOT NULL),
    CHECK (scope <> 'time_range' OR (from_time IS NOT NULL AND to_time IS NOT NULL))
);
CREATE INDEX legal_holds_active_idx ON legal_holds (organization_id) WHERE released_at IS NULL;

-- One row per retention run (also the GDPR erasures' runs, by kind).
CREATE TABLE retention_runs (
    id              bigint       GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id varchar(255),
    kind            varchar(20)  NOT NULL DEFAULT 'retention' CHECK (kind IN ('retention', 'gdpr')),
    dry_run         boolean      NOT NULL DEFAULT false,
    status          varchar(20)  NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed', 'failed')),
    started_at      timestamptz  NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    archived        bigint       NOT NULL DEFAULT 0,
    deleted         bigint       NOT NULL DEFAULT 0,
    kept_by_holds   bigint       NOT NULL DEFAULT 0,
    summary         jsonb,
    error           text
);

-- Every event removed by policy (retention, or a GDPR request): where verification finds an
-- event that left audit_log and every archive, this row says why, so it is never reported as
-- missing. An event gone without such a row still is.
CREATE TABLE removed_events (
    organization_id varchar(255) NOT NULL,
    audit_log_id    bigint       NOT NULL,
    event_timestamp timestamptz  NOT NULL,
    leaf_index      bigint,
    event_hash      varchar(64)  NOT NULL,
    reason          varchar(20)  NOT NULL CHECK (reason IN ('retention', 'gdpr')),
    policy          varchar(50),
    run_id          bigint       REFERENCES retention_runs (id),
    request_id      varchar(255),
    removed_at      timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, audit_log_id)
);

-- Archives: compressed JSON Lines of one organization, month and policy (split when large),
-- with what is needed to check them and to find an archived event without opening each.
ALTER TABLE archive_storage
    ALTER COLUMN data DROP NOT NULL,
    ADD COLUMN content           bytea,
    ADD COLUMN encoding          varchar(20),
    ADD COLUMN policy            varchar(50),
    ADD COLUMN month             date,
    ADD COLUMN part              integer,
    ADD COLUMN event_count       bigint,
    ADD COLUMN first_event_at    timestamptz,
    ADD COLUMN last_event_at     timestamptz,
    ADD COLUMN min_event_id      bigint,
    ADD COLUMN max_event_id      bigint,
    ADD COLUMN min_leaf_index    bigint,
    ADD COLUMN max_leaf_index    bigint,
    ADD COLUMN original_size     bigint,
    ADD COLUMN compressed_size   bigint,
    ADD COLUMN sha256_original   varchar(64),
    ADD COLUMN sha256_compressed varchar(64),
    ADD COLUMN run_id            bigint REFERENCES retention_runs (id),
    ADD COLUMN deleted_at        timestamptz;
CREATE INDEX archive_storage_org_month_idx ON archive_storage (organization_id, month);
-- Which archive holds an archived event (verify, proofs and GDPR erasure look it up).
CREATE TABLE archived_events (
    organization_id varchar(255) NOT NULL,
    audit_log_id    bigint       NOT NULL,
    event_timestamp timestamptz  NOT NULL,
    archive_id      varchar(255) NOT NULL REFERENCES archive_storage (id),
    leaf_index      bigint,
    event_hash      varchar(64)  NOT NULL,
    PRIMARY KEY (organization_id, audit_log_id)
);
CREATE INDEX archived_events_archive_idx ON archived_events (archive_id);
