DROP FUNCTION IF EXISTS auditdb_jsonb_regexp_replace(jsonb, text, text);
