package models

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Under row-level security PostgreSQL turns only leakproof conditions into index
// conditions ahead of the tenant policy. lower() and LIKE are not leakproof, so a
// case-insensitive action: term was a filter over every row of the range: an action that
// matches nothing read a year. The explorer therefore resolves a positive action: term
// first, against the actions the organization's events really carry, into an exact list,
// and searches action = ANY(list): equality of text is leakproof, so the exact index
// (organization_id, action, "timestamp") serves it in the tenant transaction.
//
// The actions come from what detection has counted (event_counts_daily, one row per day and
// action) and, for the events detection has not counted yet (Merkle leaves at or after its
// cursor, and the leaf queue), from those events themselves, found by id. The list may hold
// an action whose events are gone (deleted by retention after they were counted): it then
// matches nothing, as it should. It never misses an action of a counted or pending event.

// MaxResolvedValues is the most exact values one term resolves into; a term matching more
// is searched as before (case-insensitive filter), which is right, only not index-backed.
const MaxResolvedValues = 500

// ResolveFilter returns f with each positive action: term resolved (QueryTerm.Resolved) into
// the exact actions of org's events in f's range that it matches case-insensitively, exactly
// or as a prefix, and its free text looked up in org's search sketches (TextResolved; see
// searchsketch.go). f itself is not changed. It returns a KindInvalid error for a bad filter
// and an error when the database cannot be read.
func (s *EventStore) ResolveFilter(ctx context.Context, org string, f EventFilter) (EventFilter, error) {
	if err := f.Validate(); err != nil {
		return f, err
	}
	if org == "" {
		return f, NotFound("organization")
	}
	var terms []QueryTerm
	for i, t := range f.Query.Terms {
		if t.Field != QualAction || t.Negate || t.Resolved {
			continue
		}
		if terms == nil {
			terms = slices.Clone(f.Query.Terms)
		}
		values, err := s.resolveActions(ctx, org, f.From, f.To, t.Value, t.Prefix)
		if err != nil {
			return f, err
		}
		if len(values) > MaxResolvedValues {
			continue
		}
		terms[i].Resolved, terms[i].Values = true, values
	}
	if terms != nil {
		f.Query.Terms = terms
	}
	if f.MatchesNothing() {
		return f, nil
	}
	return s.resolveText(ctx, org, f)
}

// MatchesNothing reports whether a resolved term of f has no value, or the search sketches
// rule out every day of the range for its free text: no event can match f.
func (f EventFilter) MatchesNothing() bool {
	if f.TextNowhere {
		return true
	}
	for _, t := range f.Query.Terms {
		if t.Resolved && !t.Negate && len(t.Values) == 0 {
			return true
		}
	}
	return false
}

// resolveCountedSQL reads, as the database owner (the counts and the Merkle leaves are not
// the tenant role's to read; every part names the organization), the first audit_log id
// detection has not counted yet (NULL when it has counted every event) and the distinct
// actions of the days of the range that it has counted and that match $4 (lower-cased;
// LIKE when $5). The pending leaves are materialized first so that PostgreSQL reads them by
// leaf index, not by walking every leaf in id order for the min().
const resolveCountedSQL = `WITH pending AS MATERIALIZED (
		SELECT l.audit_log_id AS id FROM audit_leaf l
		WHERE l.organization_id = $1
			AND l.leaf_index >= coalesce((SELECT leaf_index FROM detection_cursor WHERE organization_id = $1), 0)
		UNION ALL
		SELECT q.id FROM audit_leaf_queue, unnest(audit_log_ids) AS q(id) WHERE organization_id = $1)
	SELECT (SELECT min(id) FROM pending), array(SELECT DISTINCT value FROM event_counts_daily
		WHERE organization_id = $1 AND kind = 'action' AND day >= $2::date AND day <= $3::date
			AND CASE WHEN $5 THEN lower(value) LIKE $4 ESCAPE '\' ELSE lower(value) = $4 END)`

// resolvePendingSQL reads the distinct matching actions of the range's events from the
// first id detection has not counted ($6) on: few rows, found through the primary key.
const resolvePendingSQL = `SELECT DISTINCT action FROM audit_log
	WHERE organization_id = $1 AND "timestamp" >= $2 AND "timestamp" < $3 AND id >= $6
		AND CASE WHEN $5 THEN lower(action) LIKE $4 ESCAPE '\' ELSE lower(action) = $4 END`

func (s *EventStore) resolveActions(ctx context.Context, org string, from, to time.Time, value string, prefix bool) ([]string, error) {
	v := strings.ToLower(value)
	if prefix {
		v = escapeLike(v) + "%"
	}
	from, to = from.UTC(), to.UTC()
	var values []string
	err := WithPgx(ctx, s.db, func(conn *pgx.Conn) error {
		var since *int64
		err := conn.QueryRow(ctx, resolveCountedSQL, org, from.Format(time.DateOnly),
			to.Add(-time.Microsecond).Format(time.DateOnly), v, prefix).Scan(&since, &values)
		if err != nil || since == nil {
			return err
		}
		rows, err := conn.Query(ctx, resolvePendingSQL, org, from, to, v, prefix, *since)
		if err != nil {
			return err
		}
		pending, err := pgx.CollectRows(rows, pgx.RowTo[string])
		values = append(values, pending...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("models: resolve action %q: %w", value, err)
	}
	slices.Sort(values)
	return slices.Compact(values), nil
}
