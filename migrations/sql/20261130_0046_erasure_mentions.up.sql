-- Erasure also redacts the free text of events that mention the subject (outcome description,
-- details values of sha256-jcs-v3 events): the request's running total of such events, kept
-- in the batch's transaction like the other counts so a resumed run counts each once.
ALTER TABLE gdpr_erasure_runs ADD COLUMN mentions_redacted bigint NOT NULL DEFAULT 0;
