-- An UPDATE naming an audit_log partition fires the partition's statement triggers, not
-- audit_log's: the search sketches' invalidation (migration 0054) missed a rewrite of an
-- event's text made that way, and a search kept trusting the day's stale sketch. Every
-- partition gets the same trigger (partitions made later get it when they are created,
-- models.PartitionManager); a statement naming audit_log still fires only audit_log's.
CREATE FUNCTION auditdb_search_sketch_guard(t regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE OR REPLACE TRIGGER audit_log_search_sketch_invalidate AFTER UPDATE ON %s
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION auditdb_search_sketch_invalidate()', t);
END $$;

SELECT auditdb_search_sketch_guard(inhrelid::regclass) FROM pg_inherits WHERE inhparent = 'audit_log'::regclass;
