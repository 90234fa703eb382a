DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['event_counts_hourly', 'event_counts_daily', 'alerts', 'integrity_sweep_runs', 'audit_leaf'] LOOP
        EXECUTE format('DROP TRIGGER %I ON %I', t || '_cache_ins', t);
        EXECUTE format('DROP TRIGGER %I ON %I', t || '_cache_upd', t);
        EXECUTE format('DROP TRIGGER %I ON %I', t || '_cache_del', t);
    END LOOP;
END
$$;
DROP FUNCTION auditdb_bump_cache_version();
DROP TABLE query_cache_versions;
