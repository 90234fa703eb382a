ALTER TABLE gdpr_erasure_runs DROP COLUMN mentions_redacted;
