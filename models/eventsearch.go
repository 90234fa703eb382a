package models

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The events explorer's summaries of a query: how many events match, how they spread over
// the range, and what they are made of. Each reads at most a bounded number of rows, so a
// summary of a year costs about what a summary of an hour does.

// MaxExactCount is the most matches Count counts one by one; above it the count is the
// planner's estimate.
const MaxExactCount = 10_000

// EventCount is the number of events a filter matches.
type EventCount struct {
	N     int64
	Exact bool // false: N is an estimate (more than MaxExactCount match)
}

// Count counts org's events matching f: exactly up to MaxExactCount, else PostgreSQL's
// estimate of the matching rows (never below MaxExactCount+1).
func (s *EventStore) Count(ctx context.Context, org string, f EventFilter) (EventCount, error) {
	if err := f.Validate(); err != nil {
		return EventCount{}, err
	}
	f, err := s.ResolveFilter(ctx, org, f)
	if err != nil || f.MatchesNothing() {
		return EventCount{Exact: true}, err
	}
	query, args := CountSQL(org, f)
	var c EventCount
	err = queryInTenant(ctx, s.db, org, query, args, func(r pgx.Rows) error {
		_, err := pgx.ForEachRow(r, []any{&c.N}, func() error { return nil })
		return err
	})
	if err != nil {
		return c, fmt.Errorf("models: count events: %w", err)
	}
	if c.N <= MaxExactCount {
		c.Exact = true
		return c, nil
	}
	var plan []byte
	query, args = EstimateSQL(org, f)
	err = queryInTenant(ctx, s.db, org, query, args, func(r pgx.Rows) error {
		_, err := pgx.ForEachRow(r, []any{&plan}, func() error { return nil })
		return err
	})
	if err != nil {
		return c, fmt.Errorf("models: estimate events: %w", err)
	}
	var explained []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		} `json:"Plan"`
	}
	if json.Unmarshal(plan, &explained) == nil && len(explained) == 1 && int64(explained[0].Plan.Rows) > c.N {
		c.N = int64(explained[0].Plan.Rows)
	}
	return c, nil
}

// CountSQL is Count's query: the matches of f, counted up to MaxExactCount+1. It is
// exported, as ListSQL is, so the benchmark can run the very same SQL bare.
func CountSQL(org string, f EventFilter) (string, []any) {
	where, args := FilterSQL(org, f)
	return fmt.Sprintf(`SELECT count(*) FROM (SELECT 1 FROM audit_log WHERE %s LIMIT %d) m`, where, MaxExactCount+1), args
}

// EstimateSQL is the plan Count reads its estimate from when more than MaxExactCount match.
func EstimateSQL(org string, f EventFilter) (string, []any) {
	where, args := FilterSQL(org, f)
	return `EXPLAIN (FORMAT JSON) SELECT 1 FROM audit_log WHERE ` + where, args
}

// FacetSample is how many of the newest matches Facets reads.
const FacetSample = 10_000

// FacetValue is one value of a facet and how many events carry it.
type FacetValue struct {
	Value string
	Count int64
}

// EventFacets are the counts by status, action, classification and principal of the newest
// matches (at most FacetSample of them; Sampled tells whether there were more).
type EventFacets struct {
	Status, Action, Classification, Principal []FacetValue
	Read                                      int64
	Sampled                                   bool
}

// FacetLimit is how many values of each facet Facets returns, most frequent first.
const FacetLimit = 8

// Facets counts the newest matches of f (at most FacetSample) by status, action,
// classification and principal, in one pass.
func (s *EventStore) Facets(ctx context.Context, org string, f EventFilter) (EventFacets, error) {
	var out EventFacets
	if err := f.Validate(); err != nil {
		return out, err
	}
	f, err := s.ResolveFilter(ctx, org, f)
	if err != nil || f.MatchesNothing() {
		return out, err
	}
	query, args := FacetsSQL(org, f)
	err = queryInTenant(ctx, s.db, org, query, args, func(r pgx.Rows) error {
		var k, v string
		var n int64
		_, err := pgx.ForEachRow(r, []any{&k, &v, &n}, func() error {
			add := func(list *[]FacetValue) {
				if len(*list) < FacetLimit && v != "" {
					*list = append(*list, FacetValue{Value: v, Count: n})
				}
			}
			switch k {
			case "status":
				add(&out.Status)
			case "action":
				add(&out.Action)
			case "class":
				add(&out.Classification)
			case "actor":
				add(&out.Principal)
			case "total":
				out.Read = n
			}
			return nil
		})
		return err
	})
	if err != nil {
		return out, fmt.Errorf("models: event facets: %w", err)
	}
	out.Sampled = out.Read >= FacetSample
	return out, nil
}

// FacetsSQL is Facets' query: the counts by status, action, classification and principal
// of the newest FacetSample matches of f, as rows (facet, value, count).
func FacetsSQL(org string, f EventFilter) (string, []any) {
	where, args := FilterSQL(org, f)
	return fmt.Sprintf(`WITH m AS (
		SELECT status, action, data_classification, principal_id FROM audit_log WHERE %s
		ORDER BY "timestamp" DESC, id DESC LIMIT %d)
	SELECT k, v, n FROM (
		SELECT CASE WHEN grouping(status) = 0 THEN 'status' WHEN grouping(action) = 0 THEN 'action'
		            WHEN grouping(data_classification) = 0 THEN 'class' WHEN grouping(principal_id) = 0 THEN 'actor'
		            ELSE 'total' END AS k,
		       coalesce(status, action, data_classification, principal_id, '') AS v, count(*) AS n
		FROM m GROUP BY GROUPING SETS ((status), (action), (data_classification), (principal_id), ())) g
	ORDER BY k, n DESC, v`, where, FacetSample), args
}

// HistogramBucket is the number of matches in [Start, Start+width).
type HistogramBucket struct {
	Start time.Time
	Count int64
}

// Histogram counts the matches of f in buckets of width over f's range (the first bucket
// starts at f.From). Buckets without events are included with a zero count. Without
// conditions it reads the hours detection has counted from its counts (see
// histogramFromRollups).
func (s *EventStore) Histogram(ctx context.Context, org string, f EventFilter, width time.Duration) ([]HistogramBucket, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if width < time.Second {
		return nil, Invalid("width", "must be at least a second")
	}
	n := int(f.To.Sub(f.From)/width) + 1
	if n > 500 {
		return nil, Invalid("width", "makes more than 500 buckets")
	}
	out := make([]HistogramBucket, n)
	for i := range out {
		out[i].Start = f.From.Add(time.Duration(i) * width)
	}
	f, err := s.ResolveFilter(ctx, org, f)
	if err != nil || f.MatchesNothing() {
		return out, err
	}
	if f.unconditioned() {
		if ok, err := s.histogramFromRollups(ctx, org, f, width, time.Now(), out); ok || err != nil {
			return out, err
		}
	}
	query, args := HistogramSQL(org, f, width)
	err = queryInTenant(ctx, s.db, org, query, args, func(r pgx.Rows) error {
		var b int
		var c int64
		_, err := pgx.ForEachRow(r, []any{&b, &c}, func() error {
			if b >= 0 && b < n {
				out[b].Count += c
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("models: event histogram: %w", err)
	}
	return out, nil
}

// HistogramSQL is Histogram's query: the matches of f counted per bucket of width, as rows
// (bucket index from f.From, count).
func HistogramSQL(org string, f EventFilter, width time.Duration) (string, []any) {
	where, args := FilterSQL(org, f)
	args = append(args, width.Microseconds())
	return fmt.Sprintf(`SELECT ((extract(epoch FROM "timestamp" - $2) * 1000000)::bigint / $%d)::int AS b, count(*)
		FROM audit_log WHERE %s GROUP BY b`, len(args), where), args
}

// HistogramWidth picks the histogram bucket for a range: about 30–60 buckets of a round size.
func HistogramWidth(span time.Duration) time.Duration {
	for _, w := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 3 * time.Hour,
		6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour} {
		if span/w <= 60 {
			return w
		}
	}
	return 365 * 24 * time.Hour
}

// SuggestSample is how many matching rows Suggest reads to find distinct values.
const SuggestSample = 2_000

// Suggest returns up to limit distinct values of org's events for a search qualifier
// (action, actor or resource, the resource's type), starting with prefix in any case, most
// frequent first among the newest matches of the last year. Every read stops after
// SuggestSample rows.
func (s *EventStore) Suggest(ctx context.Context, org, qualifier, prefix string, now time.Time, limit int) ([]string, error) {
	col := map[string]string{QualAction: "action", QualActor: "principal_id", QualResource: "target_resource_type"}[qualifier]
	if col == "" {
		return nil, Invalid("qualifier", "must be action, actor or resource")
	}
	if len(prefix) > 255 {
		return nil, nil
	}
	query := fmt.Sprintf(`SELECT v, count(*) AS n FROM (
		SELECT %[1]s AS v FROM audit_log
		WHERE organization_id = $1 AND "timestamp" >= $2 AND "timestamp" < $3 AND lower(%[1]s) LIKE $4 ESCAPE '\'
		LIMIT %[2]d) m
	GROUP BY v ORDER BY n DESC, v LIMIT $5`, col, SuggestSample)
	var out []string
	err := queryInTenant(ctx, s.db, org, query,
		[]any{org, now.AddDate(-1, 0, 0), now.Add(5 * time.Minute), escapeLike(strings.ToLower(prefix)) + "%", limit},
		func(r pgx.Rows) error {
			var v string
			var n int64
			_, err := pgx.ForEachRow(r, []any{&v, &n}, func() error { out = append(out, v); return nil })
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("models: suggest %s: %w", qualifier, err)
	}
	return out, nil
}

// Matches reports whether ev passes f as FilterSQL would select it: timestamp in
// [From, To), every set field equal, and every query term as queryTermSQL tests it (lower-
// cased comparisons, a NULL column matching no term and no negation of one). Archived
// events, which are no longer rows, are filtered with it.
func (f EventFilter) Matches(ev *Event) bool {
	if ev.Timestamp.Before(f.From) || !ev.Timestamp.Before(f.To) {
		return false
	}
	eqp := func(want string, got *string) bool { return want == "" || got != nil && *got == want }
	if f.Action != "" && ev.Action != f.Action || f.Status != "" && ev.Status != f.Status ||
		f.Classification != "" && ev.DataClassification != f.Classification {
		return false
	}
	if !eqp(f.PrincipalID, ev.PrincipalID) || !eqp(f.ResourceType, ev.TargetResourceType) ||
		!eqp(f.ResourceID, ev.TargetResourceID) || !eqp(f.CorrelationID, ev.CorrelationID) {
		return false
	}
	for _, t := range f.Query.Terms {
		if !termMatches(t, ev) {
			return false
		}
	}
	return true
}

// termMatches is queryTermSQL's condition evaluated in Go.
func termMatches(t QueryTerm, ev *Event) bool {
	str := func(p *string) (string, bool) {
		if p == nil {
			return "", false
		}
		return *p, true
	}
	// match is one lower-cased comparison; a NULL column is "unknown", false either way.
	match := func(col string, present bool, v string, prefix bool) (bool, bool) {
		if !present {
			return false, false
		}
		col, v = strings.ToLower(col), strings.ToLower(v)
		if prefix {
			return strings.HasPrefix(col, v), true
		}
		return col == v, true
	}
	result := func(ok, known bool) bool {
		if t.Negate {
			return known && !ok
		}
		return ok
	}
	switch t.Field {
	case QualAction:
		return result(match(ev.Action, true, t.Value, t.Prefix))
	case QualActor:
		p, ok := str(ev.PrincipalID)
		return result(match(p, ok, t.Value, t.Prefix))
	case QualResource:
		typ, id, hasID := t.ResourceParts()
		rt, rtOK := str(ev.TargetResourceType)
		if !hasID {
			return result(match(rt, rtOK, typ, t.Prefix))
		}
		rid, ridOK := str(ev.TargetResourceID)
		typeOK, typeKnown := match(rt, rtOK, typ, false)
		idOK, idKnown := true, true
		if id != "" || t.Negate {
			idOK, idKnown = match(rid, ridOK, id, t.Prefix)
		}
		if t.Negate {
			return !(typeOK && typeKnown && idOK && idKnown)
		}
		return typeOK && idOK
	case QualStatus:
		return result(ev.Status == t.Value, true)
	case QualClass:
		return result(ev.DataClassification == t.Value, true)
	case QualCorrelation:
		c, ok := str(ev.CorrelationID)
		if !ok {
			return result(false, false)
		}
		if t.Prefix {
			return result(strings.HasPrefix(c, t.Value), true)
		}
		return result(c == t.Value, true)
	case QualCreated:
		return (t.From.IsZero() || !ev.Timestamp.Before(t.From)) && (t.To.IsZero() || ev.Timestamp.Before(t.To))
	case "":
		deref := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		text := strings.ToLower(ev.Action + " " + deref(ev.PrincipalID) + " " + deref(ev.TargetResourceType) + "/" +
			deref(ev.TargetResourceID) + " " + deref(ev.OutcomeDescription) + " " + deref(ev.CorrelationID))
		return result(strings.Contains(text, strings.ToLower(t.Value)), true)
	}
	return false
}
