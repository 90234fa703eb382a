-- Detection's feed (models/detectfeed.go): the ingest writer hands detection what its rules
-- and counts read of each event, one row per write and organization, in the transaction that
-- writes the events; detection reads a batch's events from these rows instead of reading
-- them back from audit_log, and deletes the rows it finished. The feed is only a shortcut:
-- an event it lacks is read from audit_log, so the table is unlogged (no WAL; a crash
-- empties it) and nothing depends on a row being there.
--
-- The events column is stored uncompressed: a row is written once and read once, seconds
-- later, and compressing it would cost the writer more than the bytes it saves.
--
-- The database owner's only, like the rollups: nothing is granted to the tenant role.
CREATE UNLOGGED TABLE detection_feed (
    organization_id varchar(255) NOT NULL,
    first_id        bigint       NOT NULL,
    last_id         bigint       NOT NULL,
    events          bytea        NOT NULL,
    written_at      timestamptz  NOT NULL DEFAULT now()
);
ALTER TABLE detection_feed ALTER COLUMN events SET STORAGE EXTERNAL;
CREATE INDEX detection_feed_org_last_idx ON detection_feed (organization_id, last_id);

-- A GDPR change of events (erasure's pseudonymization, deletion and redaction: the only
-- changes of audit_log under the purpose 'gdpr') deletes every feed row, in the changing
-- statement's transaction, so no row outlives the values it copied whatever code made the
-- change (an instance of an earlier version included). Every row, not the organization's:
-- knowing the organization would take the changed rows as a transition table; an erasure is
-- rare, and detection reads the events whose rows it loses from audit_log. Retention
-- (purpose 'retention') leaves the feed: detection counts every event committed to the log,
-- including one retention deleted since, and a DELETE of feed rows inside retention's
-- REPEATABLE READ transactions would fail them whenever detection deleted the same rows.
CREATE FUNCTION auditdb_detection_feed_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM detection_feed;
    RETURN NULL;
END $$;

CREATE TRIGGER audit_log_detection_feed_clear AFTER UPDATE OR DELETE ON audit_log
    FOR EACH STATEMENT WHEN (coalesce(current_setting('auditdb.purpose', true), '') = 'gdpr')
    EXECUTE FUNCTION auditdb_detection_feed_clear();
