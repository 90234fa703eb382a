package models_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"auditdb/models"
	"auditdb/models/pgtest"
)

func TestNormalizeErrorMessageFoldsWhatVaries(t *testing.T) {
	for _, tc := range []struct {
		name, a, b string
	}{
		{"numbers", "user 123 failed", "user 456 failed"},
		{"uuids", "event 0b7f6a52-3c1e-4d8a-9f0e-2a6b1c9d4e11 missing", "event 7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f missing"},
		{"quoted values", `unknown action "user.login"`, `unknown action 'report.export'`},
		{"hex ids", "hash 9f86d081884c7d65 mismatch", "hash 2c26b46b68ffc68f mismatch"},
		{"whitespace", "timeout  after 5s", "timeout after 30s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			na, nb := models.NormalizeErrorMessage(tc.a), models.NormalizeErrorMessage(tc.b)
			if na != nb {
				t.Fatalf("%q → %q and %q → %q differ", tc.a, na, tc.b, nb)
			}
			if models.ErrorFingerprint("http", "GET /x", tc.a) != models.ErrorFingerprint("http", "GET /x", tc.b) {
				t.Fatalf("fingerprints of %q and %q differ", tc.a, tc.b)
			}
		})
	}
	t.Run("different words stay apart", func(t *testing.T) {
		if models.ErrorFingerprint("http", "GET /x", "user 1 failed") == models.ErrorFingerprint("http", "GET /x", "user 1 vanished") {
			t.Fatal("different messages share a fingerprint")
		}
	})
	t.Run("kind and operation are part of it", func(t *testing.T) {
		base := models.ErrorFingerprint("http", "GET /x", "boom")
		if base == models.ErrorFingerprint("job", "GET /x", "boom") || base == models.ErrorFingerprint("http", "GET /y", "boom") {
			t.Fatal("kind or operation ignored by the fingerprint")
		}
	})
}

func TestErrorLogStoreFoldsScopesAndTrends(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	store := models.NewErrorLogStore(db, models.NewPartitionManager(db))
	orgA, orgB := testOrg(t, "a"), testOrg(t, "b")
	now := time.Now().UTC().Truncate(time.Millisecond)
	recs := []models.ErrorRecord{
		{Kind: "http", Component: "web", Operation: "GET /things/:id", Org: orgA, Message: "user 123 failed", Status: 500, At: now.Add(-2 * time.Minute)},
		{Kind: "http", Component: "web", Operation: "GET /things/:id", Org: orgA, Message: "user 456 failed", Status: 500, At: now.Add(-time.Minute)},
		{Kind: "http", Component: "web", Operation: "GET /things/:id", Org: orgA, Message: "user 789 failed", Status: 500, At: now.AddDate(0, 0, -2)},
		{Kind: "http", Component: "web", Operation: "GET /things/:id", Org: orgA, Message: "user 1 failed", Status: 500, At: now.AddDate(0, 0, -9)},
		{Kind: "http", Component: "web", Operation: "GET /things/:id", Org: orgB, Message: "user 5 failed", Status: 500, At: now},
	}
	if err := store.Insert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// A second batch folds into the same fingerprint.
	if err := store.Insert(ctx, []models.ErrorRecord{{Kind: "http", Component: "web", Operation: "GET /things/:id", Org: orgA, Message: "user 42 failed", At: now}}); err != nil {
		t.Fatal(err)
	}

	groupsOf := func(t *testing.T, scope models.ErrorScope, orgs ...string) []models.ErrorGroup {
		t.Helper()
		all, err := store.List(ctx, scope, now)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for _, o := range orgs {
			want[o] = true
		}
		var out []models.ErrorGroup
		for _, g := range all {
			if want[g.Org] {
				out = append(out, g)
			}
		}
		return out
	}

	t.Run("one fingerprint for user 123 and user 456", func(t *testing.T) {
		gs := groupsOf(t, models.ErrorScope{Org: orgA}, orgA)
		if len(gs) != 1 {
			t.Fatalf("groups = %d, want 1: %+v", len(gs), gs)
		}
		g := gs[0]
		if g.Count != 5 || g.Title != "user <n> failed" || g.Operation != "GET /things/:id" || g.Kind != "http" || g.Component != "web" {
			t.Fatalf("group = %+v", g)
		}
		if g.Samples[0] != "user 42 failed" || len(g.Samples) != models.ErrorSamples {
			t.Fatalf("samples = %q, want newest first and %d of them", g.Samples, models.ErrorSamples)
		}
		if !g.FirstSeen.Equal(recs[3].At) {
			t.Fatalf("first seen %v, want %v", g.FirstSeen, recs[3].At)
		}
	})
	t.Run("the trend has seven days, today last", func(t *testing.T) {
		g := groupsOf(t, models.ErrorScope{Org: orgA}, orgA)[0]
		if len(g.Trend) != 7 {
			t.Fatalf("trend has %d days", len(g.Trend))
		}
		today := now.Truncate(24 * time.Hour)
		if !g.TrendDays[6].Equal(today) || !g.TrendDays[0].Equal(today.AddDate(0, 0, -6)) {
			t.Fatalf("trend days %v", g.TrendDays)
		}
		want := [7]int{}
		for _, r := range recs[:4] {
			if i := 6 - int(today.Sub(r.At.Truncate(24*time.Hour))/(24*time.Hour)); i >= 0 {
				want[i]++
			}
		}
		want[6]++ // user 42
		if g.Trend != want {
			t.Fatalf("trend = %v, want %v", g.Trend, want)
		}
	})
	t.Run("an organization sees only its own rows", func(t *testing.T) {
		if gs := groupsOf(t, models.ErrorScope{Org: orgA}, orgB); len(gs) != 0 {
			t.Fatalf("org A sees org B's groups: %+v", gs)
		}
		b := groupsOf(t, models.ErrorScope{Org: orgB}, orgB)
		if len(b) != 1 || b[0].Count != 1 {
			t.Fatalf("org B groups = %+v", b)
		}
		if _, _, err := store.Get(ctx, models.ErrorScope{Org: orgA}, b[0].Key, now); models.KindOf(err) != models.KindNotFound {
			t.Fatalf("org A reading org B's group: err = %v, want not found", err)
		}
	})
	t.Run("all scope sees every organization", func(t *testing.T) {
		if gs := groupsOf(t, models.ErrorScope{All: true}, orgA, orgB); len(gs) != 2 {
			t.Fatalf("groups = %d, want 2", len(gs))
		}
	})
	t.Run("detail lists occurrences newest first", func(t *testing.T) {
		g := groupsOf(t, models.ErrorScope{Org: orgA}, orgA)[0]
		got, occ, err := store.Get(ctx, models.ErrorScope{Org: orgA}, g.Key, now)
		if err != nil {
			t.Fatal(err)
		}
		if got.Count != 5 || len(occ) != 5 || occ[0].Message != "user 42 failed" || occ[1].Code != "500" {
			t.Fatalf("group %+v occurrences %+v", got, occ)
		}
	})
	t.Run("purge drops what is past retention", func(t *testing.T) {
		if _, err := store.Purge(ctx, now, 0); models.KindOf(err) != models.KindInvalid {
			t.Fatalf("zero retention: err = %v, want invalid", err)
		}
		if _, err := store.Purge(ctx, now, 7*24*time.Hour); err != nil {
			t.Fatal(err)
		}
		_, occ, err := store.Get(ctx, models.ErrorScope{Org: orgA}, groupsOf(t, models.ErrorScope{Org: orgA}, orgA)[0].Key, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(occ) != 4 {
			t.Fatalf("occurrences after purge = %d, want 4 (the 9-day-old one gone)", len(occ))
		}
	})
}

// blockingInserter holds every Insert until released; failing inserters return err.
type blockingInserter struct {
	release chan struct{}
	err     error
	mu      sync.Mutex
	got     []models.ErrorRecord
}

func (b *blockingInserter) Insert(ctx context.Context, recs []models.ErrorRecord) error {
	if b.release != nil {
		<-b.release
	}
	if b.err != nil {
		return b.err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, recs...)
	return nil
}

func TestErrorWriterNeverBlocksAndDrains(t *testing.T) {
	ctx := context.Background()
	t.Run("a full queue drops and counts instead of blocking", func(t *testing.T) {
		ins := &blockingInserter{release: make(chan struct{})}
		w := models.NewErrorWriter(ins, models.ErrorWriterConfig{Queue: 4, Batch: 1, MaxDelay: time.Millisecond}, nil)
		w.Start()
		start := time.Now()
		for i := range 50 {
			w.Record(ctx, models.ErrorRecord{Kind: "http", Message: fmt.Sprint("boom ", i)})
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("recording 50 errors took %v with a stuck database", took)
		}
		st := w.Stats()
		if st.Dropped < 40 || st.Recorded+st.Dropped != 50 {
			t.Fatalf("stats = %+v, want most dropped and every record counted", st)
		}
		close(ins.release)
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if got := w.Stats(); got.Written != got.Recorded {
			t.Fatalf("after close: %+v, want everything queued written", got)
		}
	})
	t.Run("a failing database loses the batch, not the caller", func(t *testing.T) {
		ins := &blockingInserter{err: errors.New("database down")}
		w := models.NewErrorWriter(ins, models.ErrorWriterConfig{MaxDelay: time.Millisecond}, nil)
		w.Start()
		w.Record(ctx, models.ErrorRecord{Kind: "http", Message: "boom"})
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if st := w.Stats(); st.Failed != 1 || st.Written != 0 {
			t.Fatalf("stats = %+v, want one failed", st)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("close drains the queue in batches", func(t *testing.T) {
		ins := &blockingInserter{}
		w := models.NewErrorWriter(ins, models.ErrorWriterConfig{Batch: 10, MaxDelay: time.Hour}, nil)
		w.Start()
		for i := range 25 {
			w.Record(ctx, models.ErrorRecord{Kind: "job", Message: fmt.Sprint("boom ", i)})
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if len(ins.got) != 25 {
			t.Fatalf("written %d, want 25", len(ins.got))
		}
		w.Record(ctx, models.ErrorRecord{Kind: "job", Message: "late"})
		if st := w.Stats(); st.Dropped != 1 {
			t.Fatalf("a record after close: %+v, want dropped", st)
		}
	})
	t.Run("a nil writer records nothing and does not panic", func(t *testing.T) {
		var w *models.ErrorWriter
		w.Record(ctx, models.ErrorRecord{Kind: "http"})
	})
}

// TestErrorRecordsFitTheirColumns: over-long and multi-byte fields are cut to what the
// columns hold, so recording the error never fails on its own text.
func TestErrorRecordsFitTheirColumns(t *testing.T) {
	long := strings.Repeat("a", 300) // one byte a character: the tightest fit
	r := models.ErrorRecord{Kind: long, Severity: long, Component: long, Operation: long, Org: long,
		RequestID: long, UserID: long, Message: long}
	got := models.NormalizeErrorRecord(r)
	for name, v := range map[string]struct {
		s string
		n int
	}{"kind": {got.Kind, 50}, "severity": {got.Severity, 20}, "component": {got.Component, 100},
		"operation": {got.Operation, 100}, "org": {got.Org, 50}} {
		if n := utf8.RuneCountInString(v.s); n > v.n || !utf8.ValidString(v.s) {
			t.Errorf("%s: %d characters (valid UTF-8 %v), column holds %d", name, n, utf8.ValidString(v.s), v.n)
		}
	}
	// Truncate counts characters, as varchar does: a value the column holds whole is never
	// cut (150 two-byte characters fit varchar(255)), and a cut ends on a character.
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"aé", 2, "aé"},
		{"aéb", 2, "aé"},
		{strings.Repeat("é", 150), 255, strings.Repeat("é", 150)},
		{strings.Repeat("é", 300), 255, strings.Repeat("é", 255)},
		{"日本語", 0, ""},
	} {
		if got := models.Truncate(c.s, c.n); got != c.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}
