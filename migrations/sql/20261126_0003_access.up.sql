-- Access control.
--
-- 1. auditdb_tenant: a NOLOGIN role that tenant-scoped transactions switch to with
--    SET LOCAL ROLE. Row-level security on audit_log and alerts restricts that role to
--    the organization named by the transaction setting auditdb.org. The connecting role
--    (the table owner, or a superuser) is not restricted: system paths such as
--    migrations, partition jobs, the demo seeder and the ingest writer, whose batches
--    may mix organizations, keep working unchanged. A transaction without the setting
--    sees no rows at all.
-- 2. policy_version: a counter bumped by every statement that changes roles,
--    memberships or organizations, so every instance can tell its authorization policy
--    is stale and reload it (Redis pub/sub carries the signal; the counter is the truth).
-- 3. users.must_change_password for one-time passwords handed out when a member is added.
-- 4. The default owner role in the permission vocabulary of the role editor.

-- Roles are shared by every database of the cluster, so another database may have
-- created it already (possibly at this very moment).
DO $$
BEGIN
    CREATE ROLE auditdb_tenant NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
GRANT auditdb_tenant TO CURRENT_USER;

GRANT USAGE ON SCHEMA public TO auditdb_tenant;
-- audit_log is append-only for tenants: no UPDATE or DELETE.
GRANT SELECT, INSERT ON audit_log TO auditdb_tenant;
GRANT SELECT, INSERT, UPDATE, DELETE ON alerts TO auditdb_tenant;
-- Self-audit writes settings changes in the same tenant transaction.
GRANT INSERT ON config_change_event TO auditdb_tenant;

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE alerts ENABLE ROW LEVEL SECURITY;

-- The setting is read in a sub-select so PostgreSQL evaluates it once per statement (an
-- InitPlan) instead of once per row; with the query's own organization_id filter the
-- planner then reduces the policy to a one-time check.
CREATE POLICY audit_log_tenant ON audit_log TO auditdb_tenant
    USING (organization_id = (SELECT current_setting('auditdb.org', true)))
    WITH CHECK (organization_id = (SELECT current_setting('auditdb.org', true)));

CREATE POLICY alerts_tenant ON alerts TO auditdb_tenant
    USING (organization_id = (SELECT current_setting('auditdb.org', true)))
    WITH CHECK (organization_id = (SELECT current_setting('auditdb.org', true)));

CREATE TABLE policy_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint  NOT NULL DEFAULT 1,
    -- Distinguishes this database's policy in a Redis shared with other databases.
    token     text    NOT NULL DEFAULT md5(random()::text || clock_timestamp()::text)
);
INSERT INTO policy_version DEFAULT VALUES;

CREATE FUNCTION auditdb_bump_policy_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE policy_version SET version = version + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER organization_role_policy_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON organization_role
    FOR EACH STATEMENT EXECUTE FUNCTION auditdb_bump_policy_version();
CREATE TRIGGER memberships_policy_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON memberships
    FOR EACH STATEMENT EXECUTE FUNCTION auditdb_bump_policy_version();
CREATE TRIGGER organizations_policy_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON organizations
    FOR EACH STATEMENT EXECUTE FUNCTION auditdb_bump_policy_version();

ALTER TABLE users ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;

-- The seed's owner role used actions (invite, remove) and a resource (billing) outside
-- the vocabulary; members are now read/create/update/delete, and the owner also holds
-- the areas only an owner should run.
UPDATE organization_role
SET description = 'Everything an admin may do, plus organization settings, members, roles, API keys, retention and GDPR',
    permissions = '[
        {"resource": "organization.settings", "action": "read"},
        {"resource": "organization.settings", "action": "update"},
        {"resource": "organization.members", "action": "read"},
        {"resource": "organization.members", "action": "create"},
        {"resource": "organization.members", "action": "update"},
        {"resource": "organization.members", "action": "delete"},
        {"resource": "audit.roles", "action": "read"},
        {"resource": "audit.roles", "action": "create"},
        {"resource": "audit.roles", "action": "update"},
        {"resource": "audit.roles", "action": "delete"},
        {"resource": "audit.apikeys", "action": "read"},
        {"resource": "audit.apikeys", "action": "create"},
        {"resource": "audit.apikeys", "action": "delete"},
        {"resource": "audit.retention", "action": "read"},
        {"resource": "audit.retention", "action": "update"},
        {"resource": "audit.gdpr", "action": "read"},
        {"resource": "audit.gdpr", "action": "export"},
        {"resource": "audit.gdpr", "action": "pseudonymize"},
        {"resource": "audit.gdpr", "action": "delete"}
    ]'::jsonb
WHERE organization_id = '*' AND name = 'org:owner';
