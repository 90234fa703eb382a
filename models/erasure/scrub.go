package erasure

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"auditdb/models"
)

// jsonEscaped returns s as it appears inside a JSON string in PostgreSQL's text form of
// jsonb (quotes, backslashes and control characters escaped; nothing else).
func jsonEscaped(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	b := bytes.TrimSpace(buf.Bytes())
	return string(b[1 : len(b)-1])
}

// scrub replaces the subject's identifiers with the pseudonym outside audit_log, in one
// transaction: alert titles, descriptions, resolution notes, principals and metadata; alert
// deliveries' payloads; detection state keyed by the principal; error log entries and their
// aggregations; dead letters (events ingest refused, never in the log) holding the identifier
// are deleted by an erasure and rewritten by a pseudonymization. Free text is searched for
// the identifier as a substring.
func (r *run) scrub(ctx context.Context) error {
	var ids []string
	subjects := []Subject{r.s}
	for _, a := range r.aliases {
		subjects = append(subjects, a.subject)
	}
	for _, sub := range subjects {
		if sub.PrincipalID != "" {
			ids = append(ids, sub.PrincipalID)
		}
		if sub.ResourceID != "" {
			ids = append(ids, sub.ResourceID)
		}
	}
	err := models.WithPgx(ctx, r.e.db, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for _, id := range ids {
				if err := scrubOne(ctx, tx, r.org, id, r.pseudonym); err != nil {
					return err
				}
				if err := r.scrubDeadLetters(ctx, tx, id); err != nil {
					return err
				}
			}
			for _, sub := range subjects {
				if err := r.dropSubjectRollups(ctx, tx, sub.PrincipalID); err != nil {
					return err
				}
			}
			if err := r.forgetAliases(ctx, tx); err != nil {
				return err
			}
			return bumpCache(ctx, tx, r.org)
		})
	})
	if err != nil {
		return fmt.Errorf("erasure: scrub identifiers: %w", err)
	}
	return nil
}

func scrubOne(ctx context.Context, tx pgx.Tx, org, id, pseudonym string) error {
	esc, pesc := jsonEscaped(id), jsonEscaped(pseudonym)
	stmts := []string{
		`UPDATE alerts SET title = left(replace(title, $2, $3), 500), description = replace(description, $2, $3),
			resolution_notes = replace(resolution_notes, $2, $3),
			principal = CASE WHEN principal = $2 THEN left($3, 255) ELSE principal END,
			metadata = replace(metadata::text, $4, $5)::jsonb, updated_at = now()
		WHERE organization_id = $1 AND (strpos(title, $2) > 0 OR strpos(coalesce(description, ''), $2) > 0
			OR strpos(coalesce(resolution_notes, ''), $2) > 0 OR principal = $2 OR strpos(coalesce(metadata::text, ''), $4) > 0)`,
		`UPDATE alert_deliveries SET payload = replace(payload::text, $4, $5)::jsonb,
			last_error = replace(last_error, $2, $3)
		WHERE organization_id = $1 AND (strpos(payload::text, $4) > 0 OR strpos(coalesce(last_error, ''), $2) > 0)`,
		`UPDATE detection_hit_run SET group_key = $3 WHERE organization_id = $1 AND group_key = $2 AND $4 = $4 AND $5 = $5`,
		`UPDATE error_log SET message = replace(message, $2, $3),
			user_id = CASE WHEN user_id = $2 THEN left($3, 255) ELSE user_id END,
			context = replace(context::text, $4, $5)::jsonb, troubleshooting = replace(troubleshooting::text, $4, $5)::jsonb
		WHERE organization_id = $1 AND (strpos(message, $2) > 0 OR user_id = $2 OR strpos(coalesce(context::text, ''), $4) > 0
			OR strpos(coalesce(troubleshooting::text, ''), $4) > 0)`,
		// Released legal holds (active ones block an erasure) keep their record, naming the
		// pseudonym instead; legal_holds is not hashed.
		`UPDATE legal_holds SET name = left(replace(name, $2, $3), 200), reason = replace(reason, $2, $3),
			principal_id = CASE WHEN principal_id = $2 THEN left($3, 255) ELSE principal_id END,
			resource_id = CASE WHEN resource_id = $2 THEN left($3, 255) ELSE resource_id END,
			correlation_id = CASE WHEN correlation_id = $2 THEN left($3, 255) ELSE correlation_id END
		WHERE organization_id = $1 AND released_at IS NOT NULL AND (strpos(name, $2) > 0 OR strpos(reason, $2) > 0
			OR principal_id = $2 OR resource_id = $2 OR correlation_id = $2) AND $4 = $4 AND $5 = $5`,
		// What a report was asked for (a principal or patient filter) names the subject as a
		// whole JSON string: executions, templates and schedules take the pseudonym.
		`UPDATE report_executions SET criteria = replace(criteria::text, '"' || $4 || '"', '"' || $5 || '"')::jsonb
		WHERE organization_id = $1 AND strpos(criteria::text, '"' || $4 || '"') > 0 AND $2 = $2 AND $3 = $3`,
		`UPDATE report_templates SET default_criteria = replace(default_criteria::text, '"' || $4 || '"', '"' || $5 || '"')::jsonb
		WHERE organization_id = $1 AND strpos(coalesce(default_criteria::text, ''), '"' || $4 || '"') > 0 AND $2 = $2 AND $3 = $3`,
		`UPDATE scheduled_reports SET criteria = replace(criteria::text, '"' || $4 || '"', '"' || $5 || '"')::jsonb
		WHERE organization_id = $1 AND strpos(coalesce(criteria::text, ''), '"' || $4 || '"') > 0 AND $2 = $2 AND $3 = $3`,
		`UPDATE error_aggregation SET title = replace(title, $2, $3),
			affected_users = replace(affected_users::text, $4, $5)::jsonb, samples = replace(samples::text, $4, $5)::jsonb
		WHERE organization_id = $1 AND (strpos(title, $2) > 0 OR strpos(coalesce(affected_users::text, ''), $4) > 0
			OR strpos(coalesce(samples::text, ''), $4) > 0)`,
	}
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q, org, id, pseudonym, esc, pesc); err != nil {
			return err
		}
	}
	return nil
}

// scrubDeadLetters deletes (erasure) or rewrites (pseudonymization) the organization's dead
// letters whose refused event holds the identifier as a JSON string.
func (r *run) scrubDeadLetters(ctx context.Context, tx pgx.Tx, id string) error {
	quoted := `"` + jsonEscaped(id) + `"`
	if r.op == opErase {
		_, err := tx.Exec(ctx, `DELETE FROM archive_dlq_event WHERE organization_id = $1 AND strpos(original_event::text, $2) > 0`,
			r.org, quoted)
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE archive_dlq_event SET original_event = replace(original_event::text, $2, $3)::jsonb,
		failure_reason = left(replace(failure_reason, $4, $5), 2000)
		WHERE organization_id = $1 AND strpos(original_event::text, $2) > 0`,
		r.org, quoted, `"`+jsonEscaped(r.pseudonym)+`"`, id, r.pseudonym)
	return err
}
