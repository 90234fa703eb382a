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
