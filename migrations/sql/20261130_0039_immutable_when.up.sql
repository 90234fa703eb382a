-- audit_log's immutability trigger calls its function only when the transaction declared no
-- authorized purpose: the function then refuses, as before. With a purpose declared
-- ('gdpr' or 'retention') the function returned the row untouched, so the WHEN clause
-- gives the same answer without a PL/pgSQL call per row: deleting 50,000 rows under a
-- purpose took 0.33 s with the call and 0.15 s without on the 2-core machine (2026-11-30).
-- The function still refuses whatever reaches it without a purpose.
DROP TRIGGER audit_log_immutable ON audit_log;
CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW
    WHEN (coalesce(current_setting('auditdb.purpose', true), '') NOT IN ('gdpr', 'retention'))
    EXECUTE FUNCTION auditdb_refuse_mutation();
