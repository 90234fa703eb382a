CREATE INDEX archived_events_archive_idx ON archived_events (archive_id);
