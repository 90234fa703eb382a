package erasure

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode"

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
	subjects := r.subjects()
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
			return models.BumpCacheVersion(ctx, tx, r.org)
		})
	})
	if err != nil {
		return fmt.Errorf("erasure: scrub identifiers: %w", err)
	}
	return nil
}

func scrubOne(ctx context.Context, tx pgx.Tx, org, id, pseudonym string) error {
	// The identifier is matched as mention matching does in events (mentions.go): in any
	// case, and only as a whole identifier, so erasing pat-123 leaves pat-1234 and
	// pat-123-2 alone. re matches it in text, and in every string of a jsonb value, decoded
	// (auditdb_jsonb_regexp_replace, migration 0052; idJSON, the id as it appears in the
	// jsonb's text, only narrows the rows first); reString matches a whole JSON string. The
	// pseudonym (ers_ or pse_ and base64url) holds nothing a replacement string would read
	// as a back reference.
	args := pgx.NamedArgs{"org": org, "id": id, "pseudonym": pseudonym, "pjson": jsonEscaped(pseudonym),
		"re": mentionRegex(id), "idJSON": jsonEscaped(id), "reString": `"` + regexQuote(jsonEscaped(id)) + `"`}
	// jsonbNames is the condition that column c (jsonb) names the identifier; jsonbScrub its
	// new value.
	jsonbNames := func(c string) string {
		return fmt.Sprintf(`(strpos(lower(coalesce(%[1]s::text, '')), lower(@idJSON)) > 0
			AND auditdb_jsonb_regexp_replace(%[1]s, @re, '') IS DISTINCT FROM %[1]s)`, c)
	}
	jsonbScrub := func(c string) string { return fmt.Sprintf(`auditdb_jsonb_regexp_replace(%s, @re, @pseudonym)`, c) }
	stmts := []string{
		`UPDATE alerts SET title = left(regexp_replace(title, @re, @pseudonym, 'g'), 500),
			description = regexp_replace(description, @re, @pseudonym, 'g'),
			resolution_notes = regexp_replace(resolution_notes, @re, @pseudonym, 'g'),
			principal = CASE WHEN lower(principal) = lower(@id) THEN left(@pseudonym, 255) ELSE principal END,
			metadata = ` + jsonbScrub("metadata") + `, updated_at = now()
		WHERE organization_id = @org AND (title ~ @re OR coalesce(description, '') ~ @re
			OR coalesce(resolution_notes, '') ~ @re OR lower(principal) = lower(@id) OR ` + jsonbNames("metadata") + `)`,
		`UPDATE alert_deliveries SET payload = ` + jsonbScrub("payload") + `,
			last_error = regexp_replace(last_error, @re, @pseudonym, 'g')
		WHERE organization_id = @org AND (` + jsonbNames("payload") + ` OR coalesce(last_error, '') ~ @re)`,
		`UPDATE detection_hit_run SET group_key = @pseudonym WHERE organization_id = @org AND lower(group_key) = lower(@id)`,
		`UPDATE error_log SET message = regexp_replace(message, @re, @pseudonym, 'g'),
			user_id = CASE WHEN lower(user_id) = lower(@id) THEN left(@pseudonym, 255) ELSE user_id END,
			context = ` + jsonbScrub("context") + `, troubleshooting = ` + jsonbScrub("troubleshooting") + `
		WHERE organization_id = @org AND (message ~ @re OR lower(user_id) = lower(@id) OR ` + jsonbNames("context") + `
			OR ` + jsonbNames("troubleshooting") + `)`,
		// Released legal holds (active ones block an erasure) keep their record, naming the
		// pseudonym instead; legal_holds is not hashed.
		`UPDATE legal_holds SET name = left(regexp_replace(name, @re, @pseudonym, 'g'), 200),
			reason = regexp_replace(reason, @re, @pseudonym, 'g'),
			principal_id = CASE WHEN lower(principal_id) = lower(@id) THEN left(@pseudonym, 255) ELSE principal_id END,
			resource_id = CASE WHEN lower(resource_id) = lower(@id) THEN left(@pseudonym, 255) ELSE resource_id END,
			correlation_id = CASE WHEN lower(correlation_id) = lower(@id) THEN left(@pseudonym, 255) ELSE correlation_id END
		WHERE organization_id = @org AND released_at IS NOT NULL AND (name ~ @re OR reason ~ @re
			OR lower(principal_id) = lower(@id) OR lower(resource_id) = lower(@id) OR lower(correlation_id) = lower(@id))`,
		// What a report was asked for (a principal or patient filter) names the subject as a
		// whole JSON string: executions, templates and schedules take the pseudonym.
		`UPDATE report_executions SET criteria = regexp_replace(criteria::text, @reString, '"' || @pjson || '"', 'g')::jsonb
		WHERE organization_id = @org AND criteria::text ~ @reString`,
		`UPDATE report_templates SET default_criteria = regexp_replace(default_criteria::text, @reString, '"' || @pjson || '"', 'g')::jsonb
		WHERE organization_id = @org AND coalesce(default_criteria::text, '') ~ @reString`,
		`UPDATE scheduled_reports SET criteria = regexp_replace(criteria::text, @reString, '"' || @pjson || '"', 'g')::jsonb
		WHERE organization_id = @org AND coalesce(criteria::text, '') ~ @reString`,
		`UPDATE error_aggregation SET title = regexp_replace(title, @re, @pseudonym, 'g'),
			affected_users = ` + jsonbScrub("affected_users") + `, samples = ` + jsonbScrub("samples") + `
		WHERE organization_id = @org AND (title ~ @re OR ` + jsonbNames("affected_users") + `
			OR ` + jsonbNames("samples") + `)`,
	}
	if strings.ContainsAny(pseudonym, `\&`) {
		return fmt.Errorf("erasure: pseudonym %q would be read as a back reference", pseudonym)
	}
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q, args); err != nil {
			return err
		}
	}
	return nil
}

// regexQuote returns s as a PostgreSQL regular expression matching s literally in any case:
// each letter as the class of every letter whose lower case is its lower case (as
// unicode.ToLower and PostgreSQL's lower() map them: the 'i' flag of PostgreSQL's regular
// expressions does not fold İ or the Kelvin sign), every other character escaped but digits
// (an escaped letter or digit would be a class or a back reference).
func regexQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if v := caseVariants(r); len(v) > 1 {
			b.WriteByte('[')
			b.WriteString(string(v))
			b.WriteByte(']')
			continue
		}
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

var (
	foldOnce sync.Once
	upperOf  map[rune][]rune // a lower-case letter → the other letters lower-casing to it
)

// caseVariants returns the letters whose lower case is r's: r's lower case first.
func caseVariants(r rune) []rune {
	foldOnce.Do(func() {
		upperOf = map[rune][]rune{}
		for c := rune(0); c <= unicode.MaxRune; c++ {
			if l := unicode.ToLower(c); l != c {
				upperOf[l] = append(upperOf[l], c)
			}
		}
	})
	l := unicode.ToLower(r)
	return append([]rune{l}, upperOf[l]...)
}

// mentionRegex matches s as a whole identifier, as matchAt does in Go: no letter or number
// adjoins it, nor a joiner (. _ -) with one beyond.
func mentionRegex(s string) string {
	return `(?<![[:alnum:]])(?<![[:alnum:]][-._])` + regexQuote(s) + `(?![[:alnum:]])(?![-._][[:alnum:]])`
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
