DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_log'::regclass LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS audit_log_search_sketch_invalidate ON %s', t);
    END LOOP;
END
$$;
DROP FUNCTION auditdb_search_sketch_guard(regclass);
