-- audit_log refuses TRUNCATE (audit_log_no_truncate), but a statement trigger on the
-- partitioned table does not reach its partitions: TRUNCATE audit_log_2026_06 went through.
-- Retention now empties a partition whose every row it has just archived by TRUNCATE, in the
-- transaction that wrote the archives, under the purpose 'retention'; nothing else may.
-- Every partition gets a guard that refuses TRUNCATE without that purpose (partitions made
-- later get it when they are created, models.PartitionManager).
CREATE FUNCTION auditdb_refuse_partition_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'auditdb: TRUNCATE on % refused: audit records are immutable', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'only retention empties a partition it has archived, under SET LOCAL auditdb.purpose = ''retention''';
END
$$;

DO $$
DECLARE
    p regclass;
BEGIN
    FOR p IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_log'::regclass LOOP
        EXECUTE format('CREATE TRIGGER audit_log_partition_no_truncate BEFORE TRUNCATE ON %s FOR EACH STATEMENT
            WHEN (coalesce(current_setting(''auditdb.purpose'', true), '''') <> ''retention'')
            EXECUTE FUNCTION auditdb_refuse_partition_truncate()', p);
    END LOOP;
END
$$;
