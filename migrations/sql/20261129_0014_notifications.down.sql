UPDATE organization_role
SET permissions = permissions - (
    SELECT (i - 1)::int FROM jsonb_array_elements(permissions) WITH ORDINALITY AS p(e, i)
    WHERE e = '{"resource": "audit.alerts", "action": "update"}'::jsonb LIMIT 1)
WHERE organization_id = '*' AND name IN ('org:admin', 'org:owner')
  AND permissions @> '[{"resource": "audit.alerts", "action": "update"}]'::jsonb;
DROP TABLE alert_deliveries;
DROP TABLE notification_channels;
DROP INDEX alerts_unnotified_idx;
ALTER TABLE alerts DROP COLUMN notified_at;
