-- Scheme sha256-jcs-v2 commits to each personal field on its own: a JSON object keyed by the field
-- name ("principalId", "targetResourceId", "details.<key>"), each {"digest", "salt"} (or, once erased or
-- pseudonymized, {"digest", "state"}). NULL for events sealed with sha256-jcs-v1. See docs/integrity.md.
ALTER TABLE audit_log ADD COLUMN field_commitments jsonb;
