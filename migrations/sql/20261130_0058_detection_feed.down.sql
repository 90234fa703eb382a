DROP TRIGGER audit_log_detection_feed_clear ON audit_log;
DROP FUNCTION auditdb_detection_feed_clear();
DROP TABLE detection_feed;
