DROP TRIGGER organizations_signal_sessions ON organizations;
DROP TRIGGER memberships_signal_sessions ON memberships;
DROP TRIGGER users_signal_sessions ON users;
DROP TRIGGER sessions_signal_delete ON sessions;
DROP TRIGGER sessions_signal_update ON sessions;
DROP FUNCTION auditdb_signal_sessions();
