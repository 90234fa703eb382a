CREATE OR REPLACE FUNCTION auditdb_bump_cache_version() RETURNS trigger LANGUAGE plpgsql
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
