-- GDPR erasure and pseudonymization (issue 15).
--
-- pseudonym_mapping never holds an original identifier in clear: original_ciphertext is the
-- AES-256-GCM encryption of it under the pseudonym key, which lives outside the database
-- (AUDITDB_PSEUDONYM_KEY or <data dir>/pseudonym.key). A plaintext original_id is refused
-- from now on; rows written before (the seed never wrote any) keep theirs until the engine
-- seals them (erasure.Engine.SealLegacyMappings, run at start).
ALTER TABLE pseudonym_mapping
    ALTER COLUMN original_id DROP NOT NULL,
    ADD COLUMN original_ciphertext bytea,
    ADD COLUMN strategy            varchar(20) CHECK (strategy IN ('hash', 'token', 'encryption')),
    ADD COLUMN request_id          varchar(255);
ALTER TABLE pseudonym_mapping ADD CONSTRAINT pseudonym_mapping_no_plaintext
    CHECK (original_id IS NULL AND original_ciphertext IS NOT NULL) NOT VALID;

-- One row per erasure or pseudonymization of a request: the pseudonym it uses (chosen once,
-- so a resumed run uses the same) and its running totals, updated in the transaction of each
-- batch, so a run that stopped between batches resumes without losing or counting anything
-- twice. subject_mac is HMAC-SHA256 under the pseudonym key of the subject (never the subject
-- itself): a resumed run must name the same subject.
CREATE TABLE gdpr_erasure_runs (
    organization_id        varchar(255) NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    request_id             varchar(255) NOT NULL,
    operation              varchar(20)  NOT NULL CHECK (operation IN ('erase', 'pseudonymize')),
    strategy               varchar(20)  NOT NULL CHECK (strategy IN ('hash', 'token', 'encryption')),
    subject_mac            varchar(64)  NOT NULL,
    pseudonym              varchar(255) NOT NULL,
    status                 varchar(20)  NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed')),
    deleted                bigint       NOT NULL DEFAULT 0,
    pseudonymized          bigint       NOT NULL DEFAULT 0,
    archived_deleted       bigint       NOT NULL DEFAULT 0,
    archived_pseudonymized bigint       NOT NULL DEFAULT 0,
    archives_rewritten     bigint       NOT NULL DEFAULT 0,
    started_by             varchar(255) NOT NULL,
    started_at             timestamptz  NOT NULL DEFAULT now(),
    finished_at            timestamptz,
    PRIMARY KEY (organization_id, request_id, operation)
);

-- Every archive an erasure or pseudonymization rewrote: the checksums before and after, so
-- the change of a checked archive is on record.
CREATE TABLE archive_rewrites (
    id                    bigint       GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id       varchar(255) NOT NULL,
    archive_id            varchar(255) NOT NULL REFERENCES archive_storage (id),
    request_id            varchar(255) NOT NULL,
    operation             varchar(20)  NOT NULL,
    removed               bigint       NOT NULL,
    pseudonymized         bigint       NOT NULL,
    old_sha256_compressed varchar(64)  NOT NULL,
    new_sha256_compressed varchar(64),
    rewritten_at          timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX archive_rewrites_archive_idx ON archive_rewrites (archive_id);
