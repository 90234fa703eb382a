-- Idempotency-Keys live in scopes: "client" for the keys API clients send, "internal" for
-- the keys the server uses itself (a dead letter's replay). A client cannot name the
-- internal scope, so no client key can stand in for a replay's.
ALTER TABLE api_idempotency
    ADD COLUMN scope varchar(16) NOT NULL DEFAULT 'client' CHECK (scope IN ('client', 'internal'));

-- Replays already recorded: their request hash is the digest of the dead letter's events,
-- which no client request hashes to (a client's hash covers its method and route too).
UPDATE api_idempotency i SET scope = 'internal'
FROM archive_dlq_event d
WHERE i.idempotency_key = 'dead-letter:' || d.id
  AND d.organization_id = i.organization_id
  AND i.request_hash = sha256(convert_to(d.original_event::text, 'UTF8'));

ALTER TABLE api_idempotency DROP CONSTRAINT api_idempotency_pkey;
ALTER TABLE api_idempotency ADD PRIMARY KEY (organization_id, scope, idempotency_key);
