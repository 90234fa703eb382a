-- Change signals for every cache, through PostgreSQL: the policy version and API-key
-- revocations are announced by the data layer itself, as sessions already are (0005), so a
-- change made by any writer (an instance, the CLI, plain SQL) reaches every listening
-- instance on commit, whether or not Redis is up. Redis keeps only shared caches and
-- counters; it no longer carries correctness.
--
-- auditdb_policy: the new version, from the statement trigger that bumps it; NOTIFY is
-- delivered at commit and folded per transaction, so one change is one signal.
-- auditdb_apikeys: the hex SHA-256 of a key that was revoked or deleted (empty after a
-- TRUNCATE: every key).

CREATE OR REPLACE FUNCTION auditdb_bump_policy_version() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    UPDATE policy_version SET version = version + 1 RETURNING version INTO v;
    PERFORM pg_notify('auditdb_policy', v::text);
    RETURN NULL;
END
$$;

CREATE FUNCTION auditdb_signal_apikeys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A TRUNCATE has no row: an empty payload tells listeners to drop every cached key.
    IF TG_LEVEL = 'ROW' THEN
        PERFORM pg_notify('auditdb_apikeys', encode(OLD.key_hash, 'hex'));
    ELSE
        PERFORM pg_notify('auditdb_apikeys', '');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_signal_revoke
    AFTER UPDATE OF revoked_at, key_hash ON api_keys
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND (NEW.revoked_at IS NOT NULL OR NEW.key_hash <> OLD.key_hash))
    EXECUTE FUNCTION auditdb_signal_apikeys();
CREATE TRIGGER api_keys_signal_delete
    AFTER DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION auditdb_signal_apikeys();
CREATE TRIGGER api_keys_signal_truncate
    AFTER TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION auditdb_signal_apikeys();
