-- archived_events (where each archived event is) and archive_storage (the archives) were
-- writable like any table: a DELETE or TRUNCATE of archived_events, or a TRUNCATE of
-- archive_storage (its row trigger does not see TRUNCATE), went through without the purpose
-- that every other change to the log's records declares. Verification would report what went
-- missing, but the change itself is now refused, as it is on audit_log.
CREATE TRIGGER archived_events_immutable BEFORE UPDATE OR DELETE ON archived_events
    FOR EACH ROW
    WHEN (coalesce(current_setting('auditdb.purpose', true), '') NOT IN ('gdpr', 'retention'))
    EXECUTE FUNCTION auditdb_refuse_mutation();
CREATE TRIGGER archived_events_no_truncate BEFORE TRUNCATE ON archived_events
    FOR EACH STATEMENT EXECUTE FUNCTION auditdb_refuse_mutation();

CREATE FUNCTION auditdb_refuse_archive_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'archive_storage is not truncated: archives are marked deleted_at, never removed'
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER archive_storage_no_truncate BEFORE TRUNCATE ON archive_storage
    FOR EACH STATEMENT EXECUTE FUNCTION auditdb_refuse_archive_truncate();
