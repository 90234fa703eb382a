-- Self-audit events are written through the tenant role (row-level security checks they
-- land in their organization) and, like every event, are queued in the same transaction
-- for the Merkle sequencer; the tenant role may therefore add queue rows (and nothing
-- else there).
GRANT INSERT ON audit_leaf_queue TO auditdb_tenant;
