DO $$
DECLARE
    t text;
BEGIN
    DROP TRIGGER audit_log_cache_upd ON audit_log;
    DROP TRIGGER audit_log_cache_del ON audit_log;
    FOREACH t IN ARRAY ARRAY['audit_integrity_log', 'audit_checkpoint', 'removed_events'] LOOP
        EXECUTE format('DROP TRIGGER %I ON %I', t || '_cache_ins', t);
        EXECUTE format('DROP TRIGGER %I ON %I', t || '_cache_upd', t);
        EXECUTE format('DROP TRIGGER %I ON %I', t || '_cache_del', t);
    END LOOP;
END
$$;
