DELETE FROM api_idempotency WHERE scope = 'internal';
ALTER TABLE api_idempotency DROP CONSTRAINT api_idempotency_pkey;
ALTER TABLE api_idempotency ADD PRIMARY KEY (organization_id, idempotency_key);
ALTER TABLE api_idempotency DROP COLUMN scope;
