ALTER TABLE audit_log DROP COLUMN field_commitments;
