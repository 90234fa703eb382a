UPDATE organization_role SET permissions = (
    SELECT coalesce(jsonb_agg(p), '[]'::jsonb) FROM jsonb_array_elements(permissions) p
    WHERE NOT (p->>'resource' = 'audit.gdpr' AND p->>'action' IN ('create', 'update', 'reidentify')))
WHERE organization_id = '*' AND name = 'org:owner';
DELETE FROM api_keys WHERE scope = 'gdpr';
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scope_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scope_check CHECK (scope IN ('ingest', 'read'));
DROP TABLE gdpr_restrictions;
DROP TABLE gdpr_export_chunks;
DROP TABLE gdpr_exports;
DROP TABLE gdpr_request_history;
DROP TABLE gdpr_requests;
