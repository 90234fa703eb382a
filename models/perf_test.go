package models_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// TestAutoRulesFireAtTheirThresholds: the seed's rules, at their thresholds and just
// below them.
func TestAutoRulesFireAtTheirThresholds(t *testing.T) {
	tables := []models.TableStats{{Table: "b", NeedsVacuum: true}, {Table: "a", NeedsAna: true}, {Table: "fine"}}
	for _, tc := range []struct {
		name     string
		reads    uint64
		ratio    float64
		slow     int
		clear    bool
		maintain []string
	}{
		{"ratio just under 10 %", 100, 0.099, 0, true, nil},
		{"ratio at 10 %", 100, 0.10, 0, false, nil},
		{"too few reads to judge", models.ClearMinReads - 1, 0, 0, false, nil},
		{"enough reads, none hit", models.ClearMinReads, 0, 0, true, nil},
		{"11 slow statements", 0, 0, 11, false, []string{"a", "b"}},
		{"10 slow statements", 0, 0, 10, false, nil},
		{"pg_stat_statements missing", 0, 0, -1, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f models.PerfFigures
			f.Cache.Reads, f.Cache.Ratio, f.SlowQueries = tc.reads, tc.ratio, tc.slow
			r := models.AutoRules(f, tables)
			if r.ClearCache != tc.clear || strings.Join(r.Maintain, ",") != strings.Join(tc.maintain, ",") {
				t.Fatalf("rules = %+v, want clear %v maintain %v", r, tc.clear, tc.maintain)
			}
		})
	}
}

func TestNeedsMaintenance(t *testing.T) {
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	recent, old := now.Add(-time.Hour), now.Add(-8*24*time.Hour)
	for _, tc := range []struct {
		name            string
		t               models.TableStats
		vacuum, analyze bool
	}{
		{"dead over 10 %", models.TableStats{LiveRows: 100, DeadRows: 11, LastAnalyze: &recent}, true, false},
		{"dead at 10 %", models.TableStats{LiveRows: 100, DeadRows: 10, LastAnalyze: &recent}, false, false},
		{"not analyzed for 8 days", models.TableStats{LiveRows: 100, LastAnalyze: &old}, false, true},
		{"never analyzed", models.TableStats{LiveRows: 1}, false, true},
		{"empty", models.TableStats{}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, a := models.NeedsMaintenance(tc.t, now)
			if v != tc.vacuum || a != tc.analyze {
				t.Fatalf("vacuum %v analyze %v, want %v %v", v, a, tc.vacuum, tc.analyze)
			}
		})
	}
}

func TestPerfStoreReadsTheDatabasesStatistics(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	org := testOrg(t, "a")
	pgtest.WriteEvents(t, db, org, 3) // the month's partition exists
	s := models.NewPerfStore(db, models.DefaultPerfOptions())
	now := time.Now().UTC()
	tables, err := s.Tables(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]models.TableStats{}
	for _, tb := range tables {
		found[tb.Table] = tb
	}
	if _, ok := found["alerts"]; !ok {
		t.Fatalf("alerts missing from %d tables", len(tables))
	}
	partitions := 0
	for _, tb := range tables {
		if tb.Parent == "audit_log" {
			partitions++
		}
	}
	if partitions == 0 {
		t.Fatal("no partition of audit_log listed")
	}
	idx, err := s.Indexes(ctx)
	if err != nil || len(idx) == 0 {
		t.Fatalf("indexes: %d, %v", len(idx), err)
	}
	if p := s.Pool(); p.Open < 1 {
		t.Fatalf("pool %+v: want an open connection", p)
	}

	// Maintenance: ours is vacuumed, anything else refused before the database sees it.
	if err := s.Vacuum(ctx, org, "alerts", models.SystemActor("test")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"pg_class", "alerts; DROP TABLE alerts", "", "nope"} {
		if err := s.Vacuum(ctx, org, bad, models.SystemActor("test")); models.KindOf(err) != models.KindInvalid {
			t.Fatalf("vacuum %q: %v, want a refusal", bad, err)
		}
	}

	// EXPLAIN of a named console statement, never of anything else.
	plan, err := s.Explain(ctx, org, "hours", now)
	if err != nil || len(plan) == 0 || !strings.Contains(strings.Join(plan, "\n"), "Execution Time") {
		t.Fatalf("explain hours: %v, %v", plan, err)
	}
	if _, err := s.Explain(ctx, org, "SELECT 1", now); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("explain of an unknown name: %v, want not found", err)
	}
}

// TestSlowQueriesWithAndWithoutTheExtension: without pg_stat_statements the store says so
// (the page explains how to enable it); with it, statements over the threshold are listed.
func TestSlowQueriesWithAndWithoutTheExtension(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	s := models.NewPerfStore(db, models.PerfOptions{SlowQuery: 5 * time.Millisecond})
	if err := db.Exec(`DROP EXTENSION IF EXISTS pg_stat_statements`).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := s.SlowQueries(ctx); !errors.Is(err, models.ErrNoStatements) {
		t.Fatalf("without the extension: %v, want ErrNoStatements", err)
	}
	var preload string
	if err := db.Raw(`SHOW shared_preload_libraries`).Scan(&preload).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`).Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec(`DROP EXTENSION IF EXISTS pg_stat_statements`) })
	if !strings.Contains(preload, "pg_stat_statements") {
		// Created but not loaded: still explained, not failed.
		if _, err := s.SlowQueries(ctx); !errors.Is(err, models.ErrNoStatements) {
			t.Fatalf("created but not preloaded: %v, want ErrNoStatements", err)
		}
		return
	}
	// Several calls: pg_stat_statements keeps a bounded number of statements for the whole
	// server and, when full, drops those used least; a statement called once, while other
	// test databases add statements of their own, could be dropped before it is read.
	for range 5 {
		if err := db.Exec(`SELECT pg_sleep(0.02)`).Error; err != nil {
			t.Fatal(err)
		}
	}
	slow, err := s.SlowQueries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var seen bool
	for _, q := range slow {
		seen = seen || strings.Contains(q.Query, "pg_sleep")
		if q.MeanMS <= 5 {
			t.Fatalf("listed %q at %.2f ms, under the threshold", q.Query, q.MeanMS)
		}
	}
	if !seen {
		t.Fatalf("pg_sleep(0.02) not among %d slow statements", len(slow))
	}
}

func TestSnapshotsStoreOncePerSlotAndPrune(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	s := models.NewPerfStore(db, models.DefaultPerfOptions())
	slot := models.SnapshotSlot(time.Date(2020, 1, 1, 0, 7, 30, 0, time.UTC))
	if !slot.Equal(time.Date(2020, 1, 1, 0, 5, 0, 0, time.UTC)) {
		t.Fatalf("slot %v", slot)
	}
	f := models.PerfFigures{SlowQueries: 3, Latency: map[string]models.Quantiles{"/events": {P50: 1, P95: 2}}}
	if ok, err := s.SaveSnapshot(ctx, slot, time.Millisecond, f); err != nil || !ok {
		t.Fatalf("first save: %v %v", ok, err)
	}
	if ok, err := s.SaveSnapshot(ctx, slot, time.Millisecond, f); err != nil || ok {
		t.Fatalf("second save of the slot: %v %v, want not stored", ok, err)
	}
	if err := s.NoteActions(ctx, slot, []string{"cleared"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Snapshots(ctx, slot)
	if err != nil || len(got) != 1 || got[0].Figures.SlowQueries != 3 || got[0].Figures.Latency["/events"].P95 != 2 ||
		len(got[0].Figures.AutoActions) != 1 {
		t.Fatalf("snapshots %+v, %v", got, err)
	}
	n, err := s.PruneSnapshots(ctx, slot.Add(time.Second))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v", n, err)
	}
}

// TestAcquireSuccessPct: pgx counts successful and canceled acquisitions apart, so the
// rate is successes over both; with none it is 100 %.
func TestAcquireSuccessPct(t *testing.T) {
	for _, tc := range []struct {
		name               string
		acquires, canceled int64
		want               float64
	}{
		{"no acquisitions", 0, 0, 100},
		{"all succeeded", 7, 0, 100},
		{"one of four canceled", 3, 1, 75},
		{"all canceled", 0, 5, 0},
		{"more canceled than succeeded", 1, 3, 25},
		{"negative counters are not trusted", -1, 0, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := models.AcquireSuccessPct(tc.acquires, tc.canceled); got != tc.want {
				t.Fatalf("AcquireSuccessPct(%d, %d) = %v, want %v", tc.acquires, tc.canceled, got, tc.want)
			}
		})
	}
	if got := models.AvgAcquireMS(0, 0); got != 0 {
		t.Fatalf("average of no acquisitions = %v, want 0", got)
	}
	if got := models.AvgAcquireMS(3*time.Millisecond, 2); got != 1.5 {
		t.Fatalf("average of 3 ms over 2 = %v, want 1.5", got)
	}
}

// TestSnapshotRecordsTheWriterPool: a report taken after real acquisitions on the writer's
// pgx pool, one of them canceled, stores its counts and success rate.
func TestSnapshotRecordsTheWriterPool(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	pool, err := models.OpenPool(ctx, pgtest.DSN(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	for range 5 {
		if _, err := pool.Exec(ctx, `SELECT 1`); err != nil {
			t.Fatal(err)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := pool.Acquire(canceled); err == nil {
		t.Fatal("an acquisition with a canceled context succeeded")
	}
	st := pool.Stat()
	s := models.NewPerfStore(db, models.DefaultPerfOptions()).WithWriterPool(pool)
	now := time.Now().UTC()
	f, err := s.Gather(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	slot := models.SnapshotSlot(now)
	if ok, err := s.SaveSnapshot(ctx, slot, time.Millisecond, f); err != nil || !ok {
		t.Fatalf("save: %v %v", ok, err)
	}
	snaps, err := s.Snapshots(ctx, slot)
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots: %d, %v", len(snaps), err)
	}
	w := snaps[0].Figures.Pool.Writer
	if w == nil {
		t.Fatal("the stored report lacks the writer pool")
	}
	if w.Acquires < 6 || w.Acquires != st.AcquireCount() {
		t.Fatalf("acquires %d, want the pool's %d (at least 6)", w.Acquires, st.AcquireCount())
	}
	if w.Canceled != 1 {
		t.Fatalf("canceled %d, want 1", w.Canceled)
	}
	if w.SuccessPct < 0 || w.SuccessPct >= 100 {
		t.Fatalf("success rate %v, want in [0, 100) with one canceled", w.SuccessPct)
	}
	if want := models.AcquireSuccessPct(w.Acquires, 1); w.SuccessPct != want {
		t.Fatalf("success rate %v, want %v", w.SuccessPct, want)
	}
	if w.Max != 2 || w.AvgAcquireMS < 0 {
		t.Fatalf("writer pool %+v", w)
	}

	// Without a writer pool the report has none, and says nothing about it.
	if p := models.NewPerfStore(db, models.DefaultPerfOptions()).Pool(); p.Writer != nil {
		t.Fatalf("writer figures without a writer pool: %+v", p.Writer)
	}
}
