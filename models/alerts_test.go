package models_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// alertStore returns an alert store recording through the test trail.
func alertStore(t *testing.T) *models.AlertStore {
	t.Helper()
	return models.NewAlertStore(pgtest.DB(t)).WithAudit(testTrail(t))
}

// raiseAt raises an alert in org and backdates it to at.
func raiseAt(t *testing.T, s *models.AlertStore, a models.NewAlert, at time.Time) string {
	t.Helper()
	id, err := s.Raise(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if err := pgtest.DB(t).Exec(`UPDATE alerts SET created_at = ? WHERE id = ?`, at, id).Error; err != nil {
		t.Fatal(err)
	}
	return id
}

func alertIDs(as []models.Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

// alertFixture is an organization with six alerts of known severity, type, source and
// age, and another organization with one alert.
type alertFixture struct {
	org, other string
	ids        map[string]string // by name
	foreign    string
}

func newAlertFixture(t *testing.T, s *models.AlertStore) alertFixture {
	t.Helper()
	org, other := pgtest.NewOrg(t, "al"), pgtest.NewOrg(t, "alo")
	now := time.Now().UTC().Truncate(time.Second)
	f := alertFixture{org: org, other: other, ids: map[string]string{}}
	for _, a := range []struct {
		name, sev, typ, src, title, desc string
		age                              time.Duration
	}{
		{"crit-old", "CRITICAL", "COMPLIANCE", "integrity-sweep", "Integrity sweep: 3 problems found", "hash mismatch", 3 * time.Hour},
		{"crit-new", "CRITICAL", "SECURITY", "detection", "Unauthorized access attempts", "principal mallory", 1 * time.Hour},
		{"high", "HIGH", "SECURITY", "detection", "Failed logins", "5 failed logins for 100%_sure", 30 * time.Minute},
		{"medium", "MEDIUM", "SECURITY", "detection", "Data access velocity", "50 reads in a minute", 10 * time.Minute},
		{"low-old", "LOW", "COMPLIANCE", "detection", "Data access off hours", "read at 23:10", 48 * time.Hour},
		{"low-new", "LOW", "SYSTEM", "ops", "Queue backlog", "ingest lag", 5 * time.Minute},
	} {
		f.ids[a.name] = raiseAt(t, s, models.NewAlert{Org: org, Severity: a.sev, Type: a.typ, Source: a.src, Title: a.title,
			Description: a.desc, Rule: "r", Principal: "p", EventIDs: []int64{1, 2}}, now.Add(-a.age))
	}
	f.foreign = raiseAt(t, s, models.NewAlert{Org: other, Severity: "CRITICAL", Type: "SECURITY", Source: "detection",
		Title: "Foreign failed logins", Description: "elsewhere"}, now)
	return f
}

func TestAlertListFiltersAndOrder(t *testing.T) {
	ctx := context.Background()
	s := alertStore(t)
	f := newAlertFixture(t, s)
	admin := actor("admin")
	if _, err := s.Acknowledge(ctx, f.org, f.ids["high"], admin); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve(ctx, f.org, f.ids["medium"], admin, "false positive: batch job"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	cases := []struct {
		name   string
		filter models.AlertFilter
		want   []string
	}{
		{"all, critical first then newest", models.AlertFilter{}, []string{"crit-new", "crit-old", "high", "medium", "low-new", "low-old"}},
		{"severity", models.AlertFilter{Severity: "LOW"}, []string{"low-new", "low-old"}},
		{"type", models.AlertFilter{Type: "COMPLIANCE"}, []string{"crit-old", "low-old"}},
		{"source", models.AlertFilter{Source: "ops"}, []string{"low-new"}},
		{"state active", models.AlertFilter{State: "active"}, []string{"crit-new", "crit-old", "low-new", "low-old"}},
		{"state acknowledged", models.AlertFilter{State: "acknowledged"}, []string{"high"}},
		{"state resolved", models.AlertFilter{State: "resolved"}, []string{"medium"}},
		{"time range", models.AlertFilter{From: now.Add(-2 * time.Hour), To: now.Add(-20 * time.Minute)}, []string{"crit-new", "high"}},
		{"text over title, any case", models.AlertFilter{Text: "INTEGRITY"}, []string{"crit-old"}},
		{"text over description", models.AlertFilter{Text: "mallory"}, []string{"crit-new"}},
		{"percent and underscore are literal", models.AlertFilter{Text: "100%_sure"}, []string{"high"}},
		{"percent alone matches only a percent", models.AlertFilter{Text: "0%"}, []string{"high"}},
		{"underscore is not a wildcard", models.AlertFilter{Text: "ingest_lag"}, nil},
		{"another organization's alert is invisible", models.AlertFilter{Text: "Foreign"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			page, err := s.List(ctx, f.org, c.filter, nil, 50)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, n := range c.want {
				want = append(want, f.ids[n])
			}
			if got := alertIDs(page.Alerts); !slices.Equal(got, want) {
				t.Errorf("got %v, want %v (%v)", got, want, c.want)
			}
			if page.Next != nil {
				t.Error("one page expected")
			}
		})
	}
}

func TestAlertListKeysetPages(t *testing.T) {
	ctx := context.Background()
	s := alertStore(t)
	f := newAlertFixture(t, s)
	full, err := s.List(ctx, f.org, models.AlertFilter{}, nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1, 2, 4} {
		t.Run("page size "+itoa(size), func(t *testing.T) {
			var got []string
			var after *models.AlertCursor
			for pages := 0; pages < 20; pages++ {
				page, err := s.List(ctx, f.org, models.AlertFilter{}, after, size)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, alertIDs(page.Alerts)...)
				if page.Next == nil {
					break
				}
				// The cursor travels as a string, as in a URL.
				if after, err = models.ParseAlertCursor(page.Next.String(), models.AlertFilter{}); err != nil {
					t.Fatal(err)
				}
			}
			if want := alertIDs(full.Alerts); !slices.Equal(got, want) {
				t.Errorf("paged %v, want %v", got, want)
			}
		})
	}
	t.Run("a cursor of another filter is refused", func(t *testing.T) {
		page, err := s.List(ctx, f.org, models.AlertFilter{}, nil, 1)
		if err != nil || page.Next == nil {
			t.Fatalf("first page: %v", err)
		}
		_, err = models.ParseAlertCursor(page.Next.String(), models.AlertFilter{Severity: "LOW"})
		if models.KindOf(err) != models.KindInvalid || models.FieldOf(err) != "after" {
			t.Errorf("got %v, want invalid after", err)
		}
		if _, err := s.List(ctx, f.org, models.AlertFilter{Severity: "LOW"}, page.Next, 1); models.FieldOf(err) != "after" {
			t.Errorf("List with a foreign cursor: %v", err)
		}
	})
	t.Run("garbage cursors are refused", func(t *testing.T) {
		for _, c := range []string{"", "!!", "bm90IGEgY3Vyc29y", "OS4xLmFiYy5pZA"} {
			if _, err := models.ParseAlertCursor(c, models.AlertFilter{}); models.FieldOf(err) != "after" {
				t.Errorf("%q: got %v", c, err)
			}
		}
	})
}

func TestAlertFilterValidation(t *testing.T) {
	cases := []struct {
		name   string
		filter models.AlertFilter
		field  string
	}{
		{"unknown severity", models.AlertFilter{Severity: "URGENT"}, "severity"},
		{"lower-case severity", models.AlertFilter{Severity: "high"}, "severity"},
		{"unknown type", models.AlertFilter{Type: "FUN"}, "type"},
		{"unknown state", models.AlertFilter{State: "open"}, "state"},
		{"reversed range", models.AlertFilter{From: time.Now(), To: time.Now().Add(-time.Hour)}, "to"},
		{"long text", models.AlertFilter{Text: string(make([]byte, 201))}, "q"},
		{"invalid utf-8 source", models.AlertFilter{Source: "\xff"}, "source"},
	}
	s := alertStore(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.List(context.Background(), pgtest.NewOrg(t, "alv"), c.filter, nil, 10)
			if models.KindOf(err) != models.KindInvalid || models.FieldOf(err) != c.field {
				t.Errorf("got %v, want invalid %s", err, c.field)
			}
		})
	}
}

func TestAlertAcknowledgeAndResolve(t *testing.T) {
	ctx := context.Background()
	s := alertStore(t)
	f := newAlertFixture(t, s)
	admin := actor("admin")
	auditCount := func(action, id string) int64 {
		return countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = ? AND target_resource_id = ?`, f.org, action, id)
	}

	t.Run("acknowledge records who and when, once", func(t *testing.T) {
		id := f.ids["crit-new"]
		changed, err := s.Acknowledge(ctx, f.org, id, admin)
		if err != nil || !changed {
			t.Fatalf("first acknowledge: changed=%v err=%v", changed, err)
		}
		a, err := s.Get(ctx, f.org, id)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Acknowledged || a.AcknowledgedBy != "admin@example.test" || a.AcknowledgedAt == nil || a.State() != "acknowledged" {
			t.Errorf("after acknowledge: %+v", a)
		}
		changed, err = s.Acknowledge(ctx, f.org, id, actor("other"))
		if err != nil || changed {
			t.Fatalf("second acknowledge: changed=%v err=%v, want unchanged", changed, err)
		}
		b, _ := s.Get(ctx, f.org, id)
		if b.AcknowledgedBy != a.AcknowledgedBy || !b.AcknowledgedAt.Equal(*a.AcknowledgedAt) {
			t.Errorf("second acknowledge changed the alert: %+v", b)
		}
		if n := auditCount(models.ActionAlertAcknowledge, id); n != 1 {
			t.Errorf("%d alert.acknowledge events, want 1", n)
		}
	})

	t.Run("another organization's alert is not found and unchanged", func(t *testing.T) {
		_, err := s.Acknowledge(ctx, f.org, f.foreign, admin)
		if models.KindOf(err) != models.KindNotFound {
			t.Errorf("acknowledge: %v, want not found", err)
		}
		_, err = s.Resolve(ctx, f.org, f.foreign, admin, "mine now")
		if models.KindOf(err) != models.KindNotFound {
			t.Errorf("resolve: %v, want not found", err)
		}
		if _, err := s.Get(ctx, f.org, f.foreign); models.KindOf(err) != models.KindNotFound {
			t.Errorf("get: %v, want not found", err)
		}
		a, err := s.Get(ctx, f.other, f.foreign)
		if err != nil || a.Acknowledged || a.Resolved {
			t.Errorf("foreign alert changed: %+v %v", a, err)
		}
	})

	t.Run("resolve needs notes", func(t *testing.T) {
		for _, notes := range []string{"", "   ", string(make([]rune, 2001))} {
			_, err := s.Resolve(ctx, f.org, f.ids["low-new"], admin, notes)
			if models.KindOf(err) != models.KindInvalid || models.FieldOf(err) != "notes" {
				t.Errorf("notes %q: %v, want invalid notes", notes[:min(len(notes), 5)], err)
			}
		}
		a, _ := s.Get(ctx, f.org, f.ids["low-new"])
		if a.Resolved || a.Acknowledged {
			t.Errorf("refused resolve changed the alert: %+v", a)
		}
	})

	t.Run("resolve implies acknowledged and is idempotent", func(t *testing.T) {
		id := f.ids["low-old"]
		changed, err := s.Resolve(ctx, f.org, id, admin, "  expected night shift  ")
		if err != nil || !changed {
			t.Fatalf("resolve: changed=%v err=%v", changed, err)
		}
		a, _ := s.Get(ctx, f.org, id)
		if !a.Resolved || !a.Acknowledged || a.ResolvedBy != "admin@example.test" || a.AcknowledgedBy != "admin@example.test" ||
			a.ResolutionNotes != "expected night shift" || a.ResolvedAt == nil || a.State() != "resolved" {
			t.Errorf("after resolve: %+v", a)
		}
		changed, err = s.Resolve(ctx, f.org, id, actor("other"), "again")
		if err != nil || changed {
			t.Errorf("second resolve: changed=%v err=%v", changed, err)
		}
		if b, _ := s.Get(ctx, f.org, id); b.ResolutionNotes != "expected night shift" {
			t.Errorf("second resolve overwrote notes: %q", b.ResolutionNotes)
		}
		if n := auditCount(models.ActionAlertResolve, id); n != 1 {
			t.Errorf("%d alert.resolve events, want 1", n)
		}
		if _, err := s.Acknowledge(ctx, f.org, id, admin); err != nil {
			t.Errorf("acknowledging a resolved alert: %v", err)
		}
	})

	t.Run("acknowledge many is all or nothing", func(t *testing.T) {
		ids := []string{f.ids["crit-old"], f.ids["high"], f.foreign}
		if _, err := s.AcknowledgeMany(ctx, f.org, ids, admin); models.KindOf(err) != models.KindNotFound {
			t.Fatalf("with a foreign id: %v, want not found", err)
		}
		if a, _ := s.Get(ctx, f.org, f.ids["crit-old"]); a.Acknowledged {
			t.Error("a refused batch acknowledged an alert")
		}
		n, err := s.AcknowledgeMany(ctx, f.org, []string{f.ids["crit-old"], f.ids["high"], f.ids["crit-old"]}, admin)
		if err != nil || n != 2 {
			t.Fatalf("acknowledged %d (%v), want 2", n, err)
		}
		n, err = s.AcknowledgeMany(ctx, f.org, []string{f.ids["crit-old"], f.ids["high"]}, admin)
		if err != nil || n != 0 {
			t.Errorf("again: acknowledged %d (%v), want 0", n, err)
		}
		if _, err := s.AcknowledgeMany(ctx, f.org, nil, admin); models.FieldOf(err) != "ids" {
			t.Errorf("empty list: %v", err)
		}
	})
}

func TestAlertStatsAndActiveCount(t *testing.T) {
	ctx := context.Background()
	s := alertStore(t)
	f := newAlertFixture(t, s)
	admin := actor("admin")
	if _, err := s.Acknowledge(ctx, f.org, f.ids["high"], admin); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve(ctx, f.org, f.ids["medium"], admin, "done"); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx, f.org)
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 6 || st.Active != 4 || st.Acknowledged != 1 || st.Resolved != 1 {
		t.Errorf("stats %+v", st)
	}
	wantSev := map[string]int64{"CRITICAL": 2, "HIGH": 1, "MEDIUM": 1, "LOW": 2}
	wantType := map[string]int64{"SECURITY": 3, "COMPLIANCE": 2, "SYSTEM": 1}
	for k, v := range wantSev {
		if st.BySeverity[k] != v {
			t.Errorf("by severity %s = %d, want %d", k, st.BySeverity[k], v)
		}
	}
	for k, v := range wantType {
		if st.ByType[k] != v {
			t.Errorf("by type %s = %d, want %d", k, st.ByType[k], v)
		}
	}
	if n, err := s.ActiveCount(ctx, f.org); err != nil || n != 4 {
		t.Errorf("active count %d (%v), want 4", n, err)
	}
	if n, err := s.ActiveCount(ctx, f.other); err != nil || n != 1 {
		t.Errorf("other org's active count %d (%v), want 1", n, err)
	}
}

func TestAlertPurgeResolvedHonoursRetention(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	s := alertStore(t)
	short, long := pgtest.NewOrg(t, "aps"), pgtest.NewOrg(t, "apl")
	db.Exec(`UPDATE organizations SET retention_days = 10 WHERE id = ?`, short)
	db.Exec(`UPDATE organizations SET retention_days = 90 WHERE id = ?`, long)
	now := time.Now().UTC()
	raise := func(org string, resolvedAgo time.Duration, resolved bool) string {
		id, err := s.Raise(ctx, models.NewAlert{Org: org, Severity: "LOW", Type: "SYSTEM", Title: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if resolved {
			db.Exec(`UPDATE alerts SET resolved = true, acknowledged = true, resolved_at = ? WHERE id = ?`, now.Add(-resolvedAgo), id)
		} else {
			db.Exec(`UPDATE alerts SET created_at = ? WHERE id = ?`, now.Add(-resolvedAgo), id)
		}
		return id
	}
	day := 24 * time.Hour
	gone := raise(short, 11*day, true)
	keptRecent := raise(short, 9*day, true)
	keptActive := raise(short, 400*day, false)
	keptLong := raise(long, 30*day, true)
	goneLong := raise(long, 91*day, true)
	if _, err := s.PurgeResolved(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]int64{gone: 0, goneLong: 0, keptRecent: 1, keptActive: 1, keptLong: 1} {
		if n := countWhere(t, `SELECT count(*) FROM alerts WHERE id = ?`, id); n != want {
			t.Errorf("alert %s: %d rows, want %d", id, n, want)
		}
	}
}

func TestAlertListUsesTheRankIndex(t *testing.T) {
	db := pgtest.DB(t)
	org := pgtest.NewOrg(t, "alx")
	var plan []string
	err := db.Transaction(func(tx *gorm.DB) error {
		tx.Exec(`SET LOCAL enable_seqscan = off`)
		return tx.Raw(`EXPLAIN SELECT id FROM alerts WHERE organization_id = ? ORDER BY alert_severity_rank(severity) DESC, created_at DESC, id DESC LIMIT 51`, org).Scan(&plan).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(plan, "\n")
	if !strings.Contains(joined, "alerts_org_rank_idx") || strings.Contains(joined, "Sort") {
		t.Errorf("the list does not walk alerts_org_rank_idx in order:\n%s", joined)
	}
}
