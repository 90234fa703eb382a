DROP TABLE archive_rewrites;
DROP TABLE gdpr_erasure_runs;
ALTER TABLE pseudonym_mapping DROP CONSTRAINT pseudonym_mapping_no_plaintext;
DELETE FROM pseudonym_mapping WHERE original_id IS NULL;
ALTER TABLE pseudonym_mapping
    DROP COLUMN request_id,
    DROP COLUMN strategy,
    DROP COLUMN original_ciphertext,
    ALTER COLUMN original_id SET NOT NULL;
