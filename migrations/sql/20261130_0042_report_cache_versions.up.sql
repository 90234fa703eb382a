-- Report previews (the figures of a report, models/reports) are kept in the query cache,
-- so every table a report reads must bump the organization's cache version when it
-- changes. 0034 covers the rollups, alerts, sweep runs and the Merkle log's leaves; this
-- adds the rest a report reads: audit_log's rare UPDATE and DELETE (pseudonymization,
-- erasure, retention; never ingest's INSERT, which reaches the leaf queue and is fenced
-- there, see reports.Cached), the verification outcomes, the signed checkpoints and the
-- events removed by policy. Same statement triggers over transition tables as 0034.
DO $$
DECLARE
    t text;
BEGIN
    EXECUTE 'CREATE TRIGGER audit_log_cache_upd AFTER UPDATE ON audit_log REFERENCING NEW TABLE AS changed_rows
        FOR EACH STATEMENT EXECUTE FUNCTION auditdb_bump_cache_version()';
    EXECUTE 'CREATE TRIGGER audit_log_cache_del AFTER DELETE ON audit_log REFERENCING OLD TABLE AS changed_rows
        FOR EACH STATEMENT EXECUTE FUNCTION auditdb_bump_cache_version()';
    FOREACH t IN ARRAY ARRAY['audit_integrity_log', 'audit_checkpoint', 'removed_events'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS changed_rows
            FOR EACH STATEMENT EXECUTE FUNCTION auditdb_bump_cache_version()', t || '_cache_ins', t);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING NEW TABLE AS changed_rows
            FOR EACH STATEMENT EXECUTE FUNCTION auditdb_bump_cache_version()', t || '_cache_upd', t);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS changed_rows
            FOR EACH STATEMENT EXECUTE FUNCTION auditdb_bump_cache_version()', t || '_cache_del', t);
    END LOOP;
END
$$;
