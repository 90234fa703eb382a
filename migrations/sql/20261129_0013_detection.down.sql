UPDATE organization_role
SET permissions = permissions - (
    SELECT (ordinality - 1)::int FROM jsonb_array_elements(permissions) WITH ORDINALITY
    WHERE value = '{"resource": "audit.alerts", "action": "update"}'::jsonb LIMIT 1)
WHERE organization_id = '*' AND name = 'org:admin'
  AND permissions @> '[{"resource": "audit.alerts", "action": "update"}]'::jsonb;
DROP INDEX IF EXISTS alerts_rule_dedup_idx;
DROP TABLE IF EXISTS alert_rule;
DROP TABLE IF EXISTS detection_hit;
DROP TABLE IF EXISTS detection_cursor;
