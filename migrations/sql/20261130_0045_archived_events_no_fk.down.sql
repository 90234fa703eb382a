DROP TRIGGER archive_storage_keep_id ON archive_storage;
DROP TRIGGER archive_storage_keep ON archive_storage;
DROP FUNCTION auditdb_archive_storage_keep();
ALTER TABLE archived_events ADD CONSTRAINT archived_events_archive_id_fkey
    FOREIGN KEY (archive_id) REFERENCES archive_storage (id);
