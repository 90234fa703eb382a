package models_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// resolvedActions returns the values the filter's first term resolved into, failing when
// it was not resolved.
func resolvedActions(t *testing.T, org string, f models.EventFilter, q string) []string {
	t.Helper()
	parsed, err := models.ParseEventQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	f.Query = parsed
	got, err := models.NewEventStore(pgtest.DB(t)).ResolveFilter(context.Background(), org, f)
	if err != nil {
		t.Fatalf("ResolveFilter(%q): %v", q, err)
	}
	if !got.Query.Terms[0].Resolved {
		t.Fatalf("%q was not resolved", q)
	}
	return got.Query.Terms[0].Values
}

// TestResolveActions checks that an action: term resolves into exactly the organization's
// actions it matches in any case, whether detection has counted their events or not (queued
// for the Merkle log, sequenced but not counted, counted), and never into another
// organization's actions.
func TestResolveActions(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "resolve")
	other := pgtest.NewOrg(t, "resolve-other")
	may := time.Date(2026, 5, 5, 10, 0, 0, 0, time.UTC)
	ev := func(o, action string, at time.Time) models.Event {
		return models.Event{OrganizationID: o, Action: action, Timestamp: at}
	}
	// Counted by detection.
	// 150 two-byte characters: 300 bytes, within the column's 255 characters.
	long := strings.Repeat("é", 150)
	f.write(ev(org, "Patient.Record.Read", may), ev(org, "patient.record.update", may.Add(time.Hour)),
		ev(org, "auth.login", may.AddDate(0, -2, 0)), ev(other, "patient.secret.read", may), ev(org, long, may))
	f.drain(f.detector(1000))
	if n := countWhere(t, `SELECT count(*) FROM event_counts_daily WHERE organization_id = $1 AND kind = 'action'`, org); n != 4 {
		t.Fatalf("detection counted %d actions of the organization, want 4", n)
	}
	// Sequenced, not counted.
	f.write(ev(org, "patient.chart.print", may.Add(2*time.Hour)))
	// Queued only.
	seedEvents(t, []models.Event{ev(org, "PATIENT.record.delete", may.Add(3*time.Hour)),
		ev(other, "patient.other.only", may.Add(3*time.Hour))})

	mayRange := models.EventFilter{From: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	cases := []struct {
		name string
		f    models.EventFilter
		q    string
		want []string
	}{
		{"exact, any case, counted", mayRange, "action:patient.record.read", []string{"Patient.Record.Read"}},
		{"prefix over counted, sequenced and queued", mayRange, "action:PATIENT.*",
			[]string{"PATIENT.record.delete", "Patient.Record.Read", "patient.chart.print", "patient.record.update"}},
		{"sequenced, not counted", mayRange, "action:patient.chart.print", []string{"patient.chart.print"}},
		{"queued only", mayRange, "action:patient.record.delete", []string{"PATIENT.record.delete"}},
		{"outside the range", mayRange, "action:auth.*", []string{}},
		{"a long action counted whole", mayRange, "action:" + strings.Repeat("é", 20) + "*", []string{long}},
		{"no such action", year2026, "action:no.such.action", []string{}},
		{"another organization's actions never", year2026, "action:patient.secret.*", []string{}},
		{"another organization's queued actions never", year2026, "action:patient.other.only", []string{}},
		{"wildcards in the value are literal", year2026, "action:patient_record*", []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := resolvedActions(t, org, c.f, c.q)
			if !slices.Equal(got, c.want) {
				t.Fatalf("%q resolved into %q, want %q", c.q, got, c.want)
			}
		})
	}

	t.Run("the list finds what the resolved terms name", func(t *testing.T) {
		for q, want := range map[string]int{"action:patient.*": 4, "action:patient.record.read": 1, "action:no.such.action": 0,
			"-action:patient.*": 1, "action:patient.* -action:patient.record.*": 1, "action:" + long: 1} {
			fl := mayRange
			parsed, err := models.ParseEventQuery(q)
			if err != nil {
				t.Fatal(err)
			}
			fl.Query = parsed
			if got := listAll(t, org, fl, 500); len(got) != want {
				t.Errorf("%q listed %d events, want %d", q, len(got), want)
			}
			count, err := models.NewEventStore(pgtest.DB(t)).Count(context.Background(), org, fl)
			if err != nil || count.N != int64(want) || !count.Exact {
				t.Errorf("%q counted %+v (%v), want %d exactly", q, count, err, want)
			}
		}
	})

	t.Run("nothing matches without a query", func(t *testing.T) {
		fl := year2026
		fl.Query, _ = models.ParseEventQuery("action:no.such.action")
		resolved, err := models.NewEventStore(pgtest.DB(t)).ResolveFilter(context.Background(), org, fl)
		if err != nil || !resolved.MatchesNothing() {
			t.Fatalf("MatchesNothing = %v (%v), want true", resolved.MatchesNothing(), err)
		}
		if fl.Query.Terms[0].Resolved {
			t.Fatal("ResolveFilter changed the caller's terms")
		}
	})
}

// TestResolvedActionUsesIndexUnderRLS checks in the console's tenant transaction that the
// resolved action: term is an index condition of the exact action index in every partition
// of a year, never a sequential scan: lower() and LIKE would be evaluated after the tenant
// policy, over every row.
func TestResolvedActionUsesIndexUnderRLS(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	org := testOrg(t, "resolve-plan")
	jan := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var events []models.Event
	for i := range 6000 {
		events = append(events, models.Event{OrganizationID: org, Timestamp: jan.Add(time.Duration(i) * (360 * 24 * time.Hour / 6000)),
			Action: []string{"auth.login", "data.export"}[i%2]})
		if i%1000 == 0 { // a rare action: through its index, a probe per partition
			events[i].Action = "patient.record.read"
		}
	}
	seedEvents(t, events)
	if err := db.Exec("ANALYZE audit_log").Error; err != nil {
		t.Fatal(err)
	}
	f := models.EventFilter{From: jan, To: jan.AddDate(1, 0, 0)}
	f.Query, _ = models.ParseEventQuery("action:PATIENT.record.*")
	f, err := models.NewEventStore(db).ResolveFilter(ctx, org, f)
	if err != nil || !f.Query.Terms[0].Resolved || len(f.Query.Terms[0].Values) != 1 {
		t.Fatalf("resolved %+v (%v), want one action", f.Query.Terms, err)
	}
	query, args := models.ListSQL(org, f, nil, 51)
	var plan []byte
	err = models.WithPgx(ctx, db, func(conn *pgx.Conn) error {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "SELECT set_config('role', $1, true), set_config($2, $3, true)",
			models.TenantRole, models.TenantSetting, org); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+query, args...).Scan(&plan)
	})
	if err != nil {
		t.Fatal(err)
	}
	var doc []map[string]any
	if err := json.Unmarshal(plan, &doc); err != nil {
		t.Fatal(err)
	}
	scans := 0
	walkPlan(doc[0]["Plan"].(map[string]any), func(n map[string]any) {
		typ, _ := n["Node Type"].(string)
		rel, _ := n["Relation Name"].(string)
		if rel == "" {
			return
		}
		idx, _ := n["Index Name"].(string)
		cond, _ := n["Index Cond"].(string)
		if !strings.Contains(typ, "Index") || !strings.Contains(idx, "action") || !strings.Contains(cond, "(action)::text = ANY") {
			t.Errorf("%s read by %s %s (index condition %q), want the exact action index with the action as its condition", rel, typ, idx, cond)
		}
		scans++
	})
	if scans == 0 {
		t.Fatalf("plan reads no partition: %s", plan)
	}
}

func TestPreferGenericPlan(t *testing.T) {
	for q, want := range map[string]bool{"": false, "metformin": true, "action:x.y metformin": true, "-metformin": false,
		"action:x.y": false, `"two words"`: true} {
		var f models.EventFilter
		f.Query, _ = models.ParseEventQuery(q)
		if got := models.PreferGenericPlan(f); got != want {
			t.Errorf("PreferGenericPlan(%q) = %v, want %v", q, got, want)
		}
	}
}
