ALTER TABLE audit_leaf_queue RENAME TO audit_leaf_queue_writes;

CREATE TABLE audit_leaf_queue (
    audit_log_id    bigint       NOT NULL,
    organization_id varchar(255) NOT NULL,
    event_timestamp timestamptz  NOT NULL,
    hash            varchar(64)  NOT NULL
);
ALTER TABLE audit_leaf_queue SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);

INSERT INTO audit_leaf_queue (audit_log_id, organization_id, event_timestamp, hash)
SELECT e.id, w.organization_id, e.ts, e.hash
FROM audit_leaf_queue_writes w, unnest(w.audit_log_ids, w.event_timestamps, w.hashes) AS e(id, ts, hash);

DROP TABLE audit_leaf_queue_writes;

GRANT INSERT ON audit_leaf_queue TO auditdb_tenant;
