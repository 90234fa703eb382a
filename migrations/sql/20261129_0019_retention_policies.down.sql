UPDATE organization_role
SET permissions = permissions - (
    SELECT (i - 1)::int FROM jsonb_array_elements(permissions) WITH ORDINALITY AS p(e, i)
    WHERE e = '{"resource": "audit.retention", "action": "create"}'::jsonb LIMIT 1)
WHERE organization_id = '*' AND name = 'org:owner'
  AND permissions @> '[{"resource": "audit.retention", "action": "create"}]'::jsonb;
UPDATE organization_role
SET permissions = permissions - (
    SELECT (i - 1)::int FROM jsonb_array_elements(permissions) WITH ORDINALITY AS p(e, i)
    WHERE e = '{"resource": "audit.retention", "action": "delete"}'::jsonb LIMIT 1)
WHERE organization_id = '*' AND name = 'org:owner'
  AND permissions @> '[{"resource": "audit.retention", "action": "delete"}]'::jsonb;
