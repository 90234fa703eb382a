package erasure

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Copies derived from the subject's events outside audit_log and the archives: the
// dashboard's rollups (event_counts_hourly, event_counts_daily) and the stored report files
// (report_files, report_file_chunks). Both are changed in the transaction of the batch that
// changes the events they were made from, so a run stopped between batches leaves neither
// counting an event twice nor serving one that is gone.

// span is the time span of a batch's events of the subject.
type span struct{ from, to time.Time }

func (s *span) add(t time.Time) {
	if s.from.IsZero() || t.Before(s.from) {
		s.from = t
	}
	if s.to.IsZero() || t.After(s.to) {
		s.to = t
	}
}

func (s span) empty() bool { return s.from.IsZero() }

// WithdrawnNote is what a report file withdrawn by an erasure says instead of its content.
func WithdrawnNote(requestID string) string { return "withdrawn after GDPR erasure " + requestID }

// withdrawReports withdraws org's stored report files whose period overlaps sp: their
// content (the compressed chunks) is deleted, their metadata (name, size, SHA-256) stays,
// and the execution's file list marks each "withdrawn after GDPR erasure <request>", which
// the download and the execution's page answer with 410. The period decides, not a search
// of the content: a PDF's text is compressed inside the file and a CSV or JSON file holds
// the identifier escaped, so a substring search of the decompressed bytes would miss
// copies; a report over the period of an erased event may hold it whatever its filters,
// since a filter on a resource also matches the subject as principal. Executions without a
// recorded period count as overlapping.
func (r *run) withdrawReports(ctx context.Context, tx pgx.Tx, sp span) error {
	if r.op != opErase || sp.empty() {
		return nil
	}
	rows, _ := tx.Query(ctx, `SELECT e.id FROM report_executions e
		WHERE e.organization_id = $1
			AND coalesce((e.criteria->>'from')::timestamptz, '-infinity') <= $3
			AND coalesce(nullif((e.criteria->>'to')::timestamptz, '0001-01-01T00:00:00Z'), 'infinity') >= $2
			AND EXISTS (SELECT 1 FROM report_file_chunks c JOIN report_files f USING (execution_id, format)
				WHERE f.execution_id = e.id AND f.organization_id = $1)
		ORDER BY e.id FOR UPDATE OF e`, r.org, sp.from, sp.to)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(ids) == 0 {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM report_file_chunks c USING report_files f
		WHERE f.execution_id = c.execution_id AND f.format = c.format AND f.organization_id = $1 AND f.execution_id = ANY($2)`,
		r.org, ids); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE report_files SET stored_size = 0 WHERE organization_id = $1 AND execution_id = ANY($2)`,
		r.org, ids); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE report_executions e SET export_result = (
			SELECT coalesce(jsonb_agg(CASE WHEN x ? 'withdrawn' THEN x ELSE x || jsonb_build_object('withdrawn', $3::text) END
				ORDER BY n), '[]'::jsonb)
			FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e.export_result) = 'array' THEN e.export_result ELSE '[]' END)
				WITH ORDINALITY AS a(x, n))
		WHERE e.organization_id = $1 AND e.id = ANY($2)`, r.org, ids, WithdrawnNote(r.requestID))
	return err
}

// rollupChange is one event's share of the rollups a batch takes back: a deleted event
// leaves every rollup (its hour, its action's day, its principal's day); a kept event whose
// principal was replaced moves its principal's day count to the pseudonym.
type rollupChange struct {
	ts        time.Time
	action    string
	principal *string // the original principal
	failed    bool
	deleted   bool
}

// adjustRollups takes the batch's changes back out of org's rollups, for the events the
// detection pass already counted (leaf before its cursor; it counts the others later, as
// they are then). The cursor row is locked first, as the detection pass locks it, so the
// two never count the same event differently.
func (r *run) adjustRollups(ctx context.Context, tx pgx.Tx, evs []*eventRow) error {
	if len(evs) == 0 {
		return nil
	}
	var cursor int64
	err := tx.QueryRow(ctx, `SELECT leaf_index FROM detection_cursor WHERE organization_id = $1 FOR UPDATE`, r.org).Scan(&cursor)
	if err == pgx.ErrNoRows {
		return nil // detection has never counted an event of org
	}
	if err != nil {
		return err
	}
	var chs []rollupChange
	for _, ev := range evs {
		if ev.Leaf == nil || *ev.Leaf >= cursor || ev.rollup == nil {
			continue
		}
		chs = append(chs, *ev.rollup)
	}
	return r.applyRollups(ctx, tx, chs)
}

func (r *run) applyRollups(ctx context.Context, tx pgx.Tx, chs []rollupChange) error {
	if len(chs) == 0 {
		return nil
	}
	n := len(chs)
	ts, actions, principals := make([]time.Time, n), make([]*string, n), make([]*string, n)
	failed, deleted := make([]bool, n), make([]bool, n)
	for i, c := range chs {
		ts[i], principals[i], failed[i], deleted[i] = c.ts, c.principal, c.failed, c.deleted
		if c.deleted {
			a := c.action
			actions[i] = &a
		}
	}
	const changes = `WITH u AS (SELECT * FROM unnest($2::timestamptz[], $3::text[], $4::text[], $5::bool[], $6::bool[])
		AS u(ts, action, principal, failed, deleted))`
	args := []any{r.org, ts, actions, principals, failed, deleted}
	if _, err := tx.Exec(ctx, changes+`
		UPDATE event_counts_hourly h SET events = greatest(h.events - g.n, 0), failures = greatest(h.failures - g.f, 0)
		FROM (SELECT date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, count(*) AS n,
				count(*) FILTER (WHERE failed) AS f
			FROM u WHERE deleted GROUP BY 1) g
		WHERE h.organization_id = $1 AND h.hour = g.hour`, args...); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, changes+`
		UPDATE event_counts_daily d SET events = greatest(d.events - g.n, 0), failures = greatest(d.failures - g.f, 0)
		FROM (SELECT (u.ts AT TIME ZONE 'UTC')::date AS day, k.kind, k.value, count(*) AS n, count(*) FILTER (WHERE u.failed) AS f
			FROM u CROSS JOIN LATERAL (VALUES ('action', u.action), ('principal', u.principal)) AS k(kind, value)
			WHERE k.value IS NOT NULL AND k.value <> '' GROUP BY 1, 2, 3) g
		WHERE d.organization_id = $1 AND d.day = g.day AND d.kind = g.kind AND d.value = g.value`, args...); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, changes+`
		INSERT INTO event_counts_daily AS d (organization_id, day, kind, value, events, failures)
		SELECT $1, (ts AT TIME ZONE 'UTC')::date, 'principal', left($7, 255), count(*), count(*) FILTER (WHERE failed)
		FROM u WHERE NOT deleted AND principal IS NOT NULL GROUP BY 2
		ORDER BY 2
		ON CONFLICT (organization_id, day, kind, value) DO UPDATE SET events = d.events + EXCLUDED.events,
			failures = d.failures + EXCLUDED.failures`, append(args, r.pseudonym)...); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `DELETE FROM event_counts_daily WHERE organization_id = $1 AND kind = 'principal'
		AND value = ANY($2) AND events <= 0`, r.org, principals)
	return err
}

// dropSubjectRollups removes whatever rollup rows are still keyed by the subject's
// principal once the events are done (counts of archived events, which detection counted
// when they were in the log): an erasure deletes them, a pseudonymization moves them to
// the pseudonym. It runs in the scrub's transaction.
func (r *run) dropSubjectRollups(ctx context.Context, tx pgx.Tx, principal string) error {
	if principal == "" {
		return nil
	}
	if r.op == opPseudonymize {
		if _, err := tx.Exec(ctx, `INSERT INTO event_counts_daily AS d (organization_id, day, kind, value, events, failures)
			SELECT organization_id, day, kind, left($3, 255), events, failures FROM event_counts_daily
			WHERE organization_id = $1 AND kind = 'principal' AND value = $2 ORDER BY day
			ON CONFLICT (organization_id, day, kind, value) DO UPDATE SET events = d.events + EXCLUDED.events,
				failures = d.failures + EXCLUDED.failures`, r.org, principal, r.pseudonym); err != nil {
			return err
		}
	}
	// The principal in another case names the subject too: its events were pseudonymized
	// (free text and principal alike, mentions.go), so its counts move to the pseudonym.
	if _, err := tx.Exec(ctx, `INSERT INTO event_counts_daily AS d (organization_id, day, kind, value, events, failures)
		SELECT organization_id, day, kind, left($3, 255), sum(events), sum(failures) FROM event_counts_daily
		WHERE organization_id = $1 AND kind = 'principal' AND lower(value) = lower($2) AND value <> $2
		GROUP BY organization_id, day, kind ORDER BY day
		ON CONFLICT (organization_id, day, kind, value) DO UPDATE SET events = d.events + EXCLUDED.events,
			failures = d.failures + EXCLUDED.failures`, r.org, principal, r.pseudonym); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `DELETE FROM event_counts_daily WHERE organization_id = $1 AND kind = 'principal'
		AND lower(value) = lower($2)`, r.org, principal)
	return err
}
