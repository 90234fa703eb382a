-- The Merkle leaf queue holds one row per committed write and organization instead of one
-- row per event. A write of 20 single events, or of a 1,000-event batch, adds one row,
-- and the sequencer deletes one: the queue costs the ingest path and the sequencer a
-- small fraction of what a row per event did, and leaves far fewer dead rows to vacuum.
-- The arrays run in parallel: event i of the row is (audit_log_ids[i],
-- event_timestamps[i], hashes[i]).
ALTER TABLE audit_leaf_queue RENAME TO audit_leaf_queue_events;

CREATE TABLE audit_leaf_queue (
    organization_id  varchar(255)  NOT NULL,
    audit_log_ids    bigint[]      NOT NULL,
    event_timestamps timestamptz[] NOT NULL,
    hashes           text[]        NOT NULL,
    CONSTRAINT audit_leaf_queue_parallel CHECK (
        cardinality(audit_log_ids) > 0
        AND cardinality(event_timestamps) = cardinality(audit_log_ids)
        AND cardinality(hashes) = cardinality(audit_log_ids))
);
ALTER TABLE audit_leaf_queue SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500);
-- Ids and hex hashes do not compress, and the row lives for a second: PostgreSQL is not
-- asked to try, and rows of up to 8 kB (about 90 single events) stay in the table.
ALTER TABLE audit_leaf_queue
    ALTER COLUMN audit_log_ids SET STORAGE EXTERNAL,
    ALTER COLUMN event_timestamps SET STORAGE EXTERNAL,
    ALTER COLUMN hashes SET STORAGE EXTERNAL;
ALTER TABLE audit_leaf_queue SET (toast_tuple_target = 8160);

-- Events still waiting keep their place: one row per organization, in id order.
INSERT INTO audit_leaf_queue (organization_id, audit_log_ids, event_timestamps, hashes)
SELECT organization_id, array_agg(audit_log_id ORDER BY audit_log_id),
       array_agg(event_timestamp ORDER BY audit_log_id), array_agg(hash ORDER BY audit_log_id)
FROM audit_leaf_queue_events GROUP BY organization_id;

DROP TABLE audit_leaf_queue_events;

GRANT INSERT ON audit_leaf_queue TO auditdb_tenant;
