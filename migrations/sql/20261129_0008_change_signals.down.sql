DROP TRIGGER api_keys_signal_truncate ON api_keys;
DROP TRIGGER api_keys_signal_delete ON api_keys;
DROP TRIGGER api_keys_signal_revoke ON api_keys;
DROP FUNCTION auditdb_signal_apikeys();

CREATE OR REPLACE FUNCTION auditdb_bump_policy_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE policy_version SET version = version + 1;
    RETURN NULL;
END
$$;
