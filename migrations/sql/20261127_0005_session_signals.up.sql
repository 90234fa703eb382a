-- Session signals: every instance caches console sessions (with their user and
-- organizations) in process and empties that cache when PostgreSQL announces, on the
-- channel auditdb_sessions, a change to anything a cached session carries. NOTIFY is
-- delivered on commit, so a change made by any writer (an instance, the CLI, plain SQL)
-- reaches every listening instance. The payload is empty: such changes are rare
-- administrative acts, and each empties the whole cache.
--
-- sessions: every column but last_seen_at, which a live session writes about once a
-- minute and which no cached entry outlives. A new session (INSERT) is in no cache.
-- Add a new sessions column to this list if Lookup returns it.
-- users: a disabled, renamed or demoted user; a new user has no sessions yet.
-- memberships and organizations: the organizations and roles a session may work in (a
-- superadmin's are all organizations, so a new organization counts too).

CREATE FUNCTION auditdb_signal_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('auditdb_sessions', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_signal_update
    AFTER UPDATE OF token_hash, user_id, organization_id, csrf_secret, ip, user_agent, created_at,
        expires_at, revoked_at ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION auditdb_signal_sessions();
CREATE TRIGGER sessions_signal_delete
    AFTER DELETE OR TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION auditdb_signal_sessions();
CREATE TRIGGER users_signal_sessions
    AFTER UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION auditdb_signal_sessions();
CREATE TRIGGER memberships_signal_sessions
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON memberships
    FOR EACH STATEMENT EXECUTE FUNCTION auditdb_signal_sessions();
CREATE TRIGGER organizations_signal_sessions
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON organizations
    FOR EACH STATEMENT EXECUTE FUNCTION auditdb_signal_sessions();
