DROP TRIGGER IF EXISTS audit_log_search_sketch_invalidate ON audit_log;
DROP FUNCTION IF EXISTS auditdb_search_sketch_invalidate();
DROP TABLE IF EXISTS search_sketch_changes;
DROP FUNCTION IF EXISTS auditdb_search_sketch_has(bytea, int[]);
DROP TABLE IF EXISTS search_sketches;
