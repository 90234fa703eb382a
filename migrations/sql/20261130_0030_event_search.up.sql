-- The events explorer's search: action: and actor: qualifiers compare case-insensitively,
-- exactly or by prefix, through these two indexes, so that "nothing matches" over a year
-- is as cheap as a first page. (A trigram index for free text was measured and left out:
-- it made batch ingest about 60 % slower; see docs/benchmarks.md.)
CREATE INDEX audit_log_org_action_ts_idx ON audit_log (organization_id, lower(action) text_pattern_ops, "timestamp" DESC);
CREATE INDEX audit_log_org_actor_ts_idx ON audit_log (organization_id, lower(principal_id) text_pattern_ops, "timestamp" DESC);
