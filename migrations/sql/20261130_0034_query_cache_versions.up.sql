-- The query cache's invalidation: one version per organization, bumped in the same
-- transaction as any write that changes a cached answer (the event-count rollups, alerts,
-- integrity sweep runs, the Merkle log's leaves). A cached answer is keyed by the version
-- it was read at, so a write made anywhere (any instance, the CLI, plain SQL) retires it on
-- commit; auditdb_cache announces "<organization>:<version>" so listening instances need
-- not read the version back. Statement triggers over transition tables: one bump per
-- organization per statement, however many rows it wrote.

CREATE TABLE query_cache_versions (
    organization_id varchar(255) PRIMARY KEY,
    version         bigint       NOT NULL
);

-- SECURITY DEFINER: writes made under the tenant role (alerts) bump too.
CREATE FUNCTION auditdb_bump_cache_version() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        INSERT INTO query_cache_versions AS v (organization_id, version)
        SELECT DISTINCT organization_id, 1 FROM changed_rows
        ORDER BY organization_id -- a fixed order: two writers never wait on each other in a cycle
        ON CONFLICT (organization_id) DO UPDATE SET version = v.version + 1
        RETURNING v.organization_id, v.version
    LOOP
        PERFORM pg_notify('auditdb_cache', r.organization_id || ':' || r.version);
    END LOOP;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['event_counts_hourly', 'event_counts_daily', 'alerts', 'integrity_sweep_runs', 'audit_leaf'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS changed_rows
            FOR EACH STATEMENT EXECUTE FUNCTION auditdb_bump_cache_version()', t || '_cache_ins', t);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING NEW TABLE AS changed_rows
            FOR EACH STATEMENT EXECUTE FUNCTION auditdb_bump_cache_version()', t || '_cache_upd', t);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS changed_rows
            FOR EACH STATEMENT EXECUTE FUNCTION auditdb_bump_cache_version()', t || '_cache_del', t);
    END LOOP;
END
$$;
