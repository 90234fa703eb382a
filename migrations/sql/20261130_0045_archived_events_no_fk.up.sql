-- archived_events.archive_id loses its foreign key: checking it cost a lookup in
-- archive_storage per archived event (about 30 % of recording an archive part of 50,000
-- events, 2026-11-30). What it guarded stays guarded another way:
--   * archived_events rows are written only by archival, in the transaction that inserts
--     their archive_storage row, under the id that row gets;
--   * archive_storage rows are never deleted (an emptied archive keeps its row with
--     deleted_at set and no content), and its id never changes: the trigger below refuses both,
--     so no archived_events row can be left pointing at nothing.
-- archive_rewrites keeps its foreign key (one row per rewrite, not per event).
ALTER TABLE archived_events DROP CONSTRAINT archived_events_archive_id_fkey;

CREATE FUNCTION auditdb_archive_storage_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'archive_storage rows are not deleted (archive %): mark them deleted_at', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RAISE EXCEPTION 'archive_storage ids do not change (archive %)', OLD.id
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER archive_storage_keep BEFORE DELETE ON archive_storage
    FOR EACH ROW EXECUTE FUNCTION auditdb_archive_storage_keep();
CREATE TRIGGER archive_storage_keep_id BEFORE UPDATE OF id ON archive_storage
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION auditdb_archive_storage_keep();
