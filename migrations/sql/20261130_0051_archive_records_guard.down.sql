DROP TRIGGER IF EXISTS archive_storage_no_truncate ON archive_storage;
DROP FUNCTION IF EXISTS auditdb_refuse_archive_truncate();
DROP TRIGGER IF EXISTS archived_events_no_truncate ON archived_events;
DROP TRIGGER IF EXISTS archived_events_immutable ON archived_events;
