-- The alerts area: the console's list, its navigation badge and the retention job.
--
-- alert_severity_rank orders severities for the list (CRITICAL first). It is IMMUTABLE so
-- an index can be built on it.
CREATE FUNCTION alert_severity_rank(severity text) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE severity WHEN 'CRITICAL' THEN 4 WHEN 'HIGH' THEN 3 WHEN 'MEDIUM' THEN 2 WHEN 'LOW' THEN 1 ELSE 0 END::smallint $$;

-- The list (console and API): WHERE organization_id = $1 ORDER BY rank DESC, created_at
-- DESC, id DESC with the keyset (rank, created_at, id) < (...). The index walks it in order,
-- so deep pages cost the same as the first.
CREATE INDEX alerts_org_rank_idx ON alerts (organization_id, alert_severity_rank(severity) DESC, created_at DESC, id DESC);

-- The navigation badge counts the organization's active alerts on every page: a partial
-- index holds only those, so the count reads a handful of index entries.
CREATE INDEX alerts_org_active_idx ON alerts (organization_id) WHERE NOT acknowledged AND NOT resolved;

-- The daily retention job deletes resolved alerts older than the organization's retention.
CREATE INDEX alerts_org_resolved_idx ON alerts (organization_id, resolved_at) WHERE resolved;
