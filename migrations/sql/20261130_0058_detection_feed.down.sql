DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT 'audit_log'::regclass UNION ALL SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_log'::regclass LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS audit_log_detection_feed_clear_upd ON %s', t);
        EXECUTE format('DROP TRIGGER IF EXISTS audit_log_detection_feed_clear_del ON %s', t);
    END LOOP;
END
$$;
DROP FUNCTION auditdb_detection_feed_guard(regclass);
DROP FUNCTION auditdb_detection_feed_clear();
DROP TABLE detection_feed;
