DO $$
DECLARE
    p regclass;
BEGIN
    FOR p IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_log'::regclass LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS audit_log_partition_no_truncate ON %s', p);
    END LOOP;
END
$$;
DROP FUNCTION auditdb_refuse_partition_truncate();
