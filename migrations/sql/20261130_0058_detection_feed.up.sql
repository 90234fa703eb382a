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

-- A change of events under the purpose 'gdpr' (erasure's pseudonymization, deletion and
-- redaction) deletes every feed row, in the changing statement's transaction, so no row
-- outlives the values it copied whatever code made the change (an instance of an earlier
-- version included); so does any UPDATE of events, whatever purpose it declared (only GDPR
-- changes update events). Every row, not the organization's: knowing the organization would
-- take the changed rows as a transition table; an erasure is rare, and detection reads the
-- events whose rows it loses from audit_log. Retention's deletions (purpose 'retention') leave
-- the feed: detection counts every event committed to the log, including one retention
-- deleted since, and a DELETE of feed rows inside retention's REPEATABLE READ transactions
-- would fail them whenever detection deleted the same rows.
CREATE FUNCTION auditdb_detection_feed_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM detection_feed;
    RETURN NULL;
END $$;

-- A statement naming a partition fires the partition's statement triggers, not audit_log's:
-- audit_log and every partition get both (partitions made later get them when they are
-- created, models.PartitionManager).
CREATE FUNCTION auditdb_detection_feed_guard(t regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE OR REPLACE TRIGGER audit_log_detection_feed_clear_upd AFTER UPDATE ON %s
        FOR EACH STATEMENT EXECUTE FUNCTION auditdb_detection_feed_clear()', t);
    EXECUTE format('CREATE OR REPLACE TRIGGER audit_log_detection_feed_clear_del AFTER DELETE ON %s
        FOR EACH STATEMENT WHEN (coalesce(current_setting(''auditdb.purpose'', true), '''') = ''gdpr'')
        EXECUTE FUNCTION auditdb_detection_feed_clear()', t);
END $$;

SELECT auditdb_detection_feed_guard('audit_log');
SELECT auditdb_detection_feed_guard(inhrelid::regclass) FROM pg_inherits WHERE inhparent = 'audit_log'::regclass;
