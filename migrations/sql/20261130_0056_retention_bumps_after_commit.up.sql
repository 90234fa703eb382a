-- Retention's transactions run at REPEATABLE READ (a part's rows are read and then deleted
-- under one snapshot). Their deletes fired the cache-version bump inside that snapshot, and
-- the bump is an upsert of the organization's one version row: whenever anything else of the
-- organization bumped it meanwhile (an event sequenced, an alert, the run's own audit event),
-- the upsert failed with a serialization error and the whole month's work rolled back, the
-- run stopping there. In such a transaction the trigger now leaves the bump to the engine,
-- which bumps the organization's version right after each commit (models/retention.go,
-- bumpCacheVersion): a cached answer outlives the change by at most that moment.
CREATE OR REPLACE FUNCTION auditdb_bump_cache_version() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public AS $$
DECLARE
    r record;
BEGIN
    IF coalesce(current_setting('auditdb.purpose', true), '') = 'retention'
        AND current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN NULL;
    END IF;
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
