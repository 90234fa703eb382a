-- Retention policies in forms: owners create and delete their organization's own policies
-- (audit.retention:create and :delete), beside read and update which they already hold.
UPDATE organization_role
SET permissions = permissions || '[{"resource": "audit.retention", "action": "create"}]'::jsonb
WHERE organization_id = '*' AND name = 'org:owner'
  AND NOT permissions @> '[{"resource": "audit.retention", "action": "create"}]'::jsonb;
UPDATE organization_role
SET permissions = permissions || '[{"resource": "audit.retention", "action": "delete"}]'::jsonb
WHERE organization_id = '*' AND name = 'org:owner'
  AND NOT permissions @> '[{"resource": "audit.retention", "action": "delete"}]'::jsonb;
