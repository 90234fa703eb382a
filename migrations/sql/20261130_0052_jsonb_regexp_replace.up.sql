-- An erasure rewrites an identifier inside jsonb columns outside the events (alert metadata,
-- delivery payloads, the error log's context). A regular expression over the jsonb's text
-- form reads JSON escapes (the n of \n before the identifier, an escaped backslash before a
-- letter) as text and so disagrees with the match over the events, which reads each string
-- decoded. This applies a regular expression to every string of a jsonb value, keys
-- included, at any depth, decoded, and leaves everything else as it is.
CREATE FUNCTION auditdb_jsonb_regexp_replace(j jsonb, re text, repl text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    r jsonb;
BEGIN
    CASE jsonb_typeof(j)
    WHEN 'string' THEN
        RETURN to_jsonb(regexp_replace(j #>> '{}', re, repl, 'g'));
    WHEN 'array' THEN
        SELECT coalesce(jsonb_agg(auditdb_jsonb_regexp_replace(e, re, repl) ORDER BY i), '[]'::jsonb)
            INTO r FROM jsonb_array_elements(j) WITH ORDINALITY AS a(e, i);
        RETURN r;
    WHEN 'object' THEN
        SELECT coalesce(jsonb_object_agg(regexp_replace(key, re, repl, 'g'), auditdb_jsonb_regexp_replace(value, re, repl)),
                '{}'::jsonb)
            INTO r FROM jsonb_each(j);
        RETURN r;
    ELSE
        RETURN j;
    END CASE;
END
$$;
