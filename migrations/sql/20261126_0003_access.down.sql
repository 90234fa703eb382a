UPDATE organization_role
SET description = 'Everything an admin may do, plus organization settings, members and billing',
    permissions = '[
        {"resource": "organization.settings", "action": "read"},
        {"resource": "organization.settings", "action": "update"},
        {"resource": "organization.members", "action": "read"},
        {"resource": "organization.members", "action": "invite"},
        {"resource": "organization.members", "action": "remove"},
        {"resource": "organization.members", "action": "update"},
        {"resource": "organization.billing", "action": "read"},
        {"resource": "organization.billing", "action": "update"}
    ]'::jsonb
WHERE organization_id = '*' AND name = 'org:owner';

ALTER TABLE users DROP COLUMN must_change_password;

DROP TRIGGER organizations_policy_version ON organizations;
DROP TRIGGER memberships_policy_version ON memberships;
DROP TRIGGER organization_role_policy_version ON organization_role;
DROP FUNCTION auditdb_bump_policy_version();
DROP TABLE policy_version;

DROP POLICY alerts_tenant ON alerts;
DROP POLICY audit_log_tenant ON audit_log;
ALTER TABLE alerts DISABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log DISABLE ROW LEVEL SECURITY;

REVOKE ALL ON audit_log, alerts, config_change_event FROM auditdb_tenant;
REVOKE USAGE ON SCHEMA public FROM auditdb_tenant;
-- The auditdb_tenant role belongs to the cluster, not to this database, and other
-- databases may still use it: it stays.
