package jobs_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"auditdb/jobs"
	"auditdb/models"
	"auditdb/models/pgtest"
	"auditdb/models/querycache"
)

// clock is an injected clock two instances share.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestSnapshotsOncePerFiveMinutesAcrossInstances: two instances run the job every minute
// for half an hour of an injected clock; the table holds one report per five-minute slot.
func TestSnapshotsOncePerFiveMinutesAcrossInstances(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	clk := &clock{t: time.Date(2031, 3, 1, 0, 0, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var runs []func(context.Context) error
	for range 2 {
		store := models.NewPerfStore(db, models.DefaultPerfOptions())
		runs = append(runs, jobs.PerfSnapshot(jobs.PerfSources{Store: store, Now: clk.now, AutoOptimize: true}, log))
	}
	for minute := 0; minute <= 30; minute++ {
		var wg sync.WaitGroup
		for _, run := range runs { // both instances at once, as two schedulers would
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := run(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		clk.add(time.Minute)
	}
	var slots []time.Time
	if err := db.Raw(`SELECT taken_at FROM perf_snapshots WHERE taken_at >= '2031-03-01' ORDER BY taken_at`).Scan(&slots).Error; err != nil {
		t.Fatal(err)
	}
	if len(slots) != 7 {
		t.Fatalf("%d reports over 30 minutes, want 7 (one per slot): %v", len(slots), slots)
	}
	for i, s := range slots {
		if want := time.Date(2031, 3, 1, 0, 5*i, 0, 0, time.UTC); !s.Equal(want) {
			t.Fatalf("report %d at %v, want %v", i, s, want)
		}
	}
	// Thirty-one days later the old reports are gone.
	clk.add(31 * 24 * time.Hour)
	if err := runs[0](ctx); err != nil {
		t.Fatal(err)
	}
	var left int64
	db.Raw(`SELECT count(*) FROM perf_snapshots WHERE taken_at < '2031-03-02'`).Scan(&left)
	if left != 0 {
		t.Fatalf("%d reports older than 30 days kept", left)
	}
}

// slowStore reports a chosen number of slow statements and one table needing maintenance,
// over the real store (so the maintenance really runs).
type slowStore struct {
	*models.PerfStore
	slow int
}

func (s slowStore) Gather(ctx context.Context, now time.Time) (models.PerfFigures, error) {
	f, err := s.PerfStore.Gather(ctx, now)
	f.SlowQueries = s.slow
	return f, err
}

func (s slowStore) Tables(ctx context.Context, now time.Time) ([]models.TableStats, error) {
	return []models.TableStats{{Table: "alerts", NeedsVacuum: true}, {Table: "organizations"}}, nil
}

// TestAutoOptimizationFiresAtItsThresholds: 10 slow statements and a 10 % hit ratio leave
// everything alone; 11 slow statements and a ratio under 10 % clear the cache and vacuum
// the table that needs it, each recorded in the operators' organization; and nothing runs
// with the setting off.
func TestAutoOptimizationFiresAtItsThresholds(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	op := pgtest.NewOrg(t, "ops")
	if _, err := models.NewUserStore(db).Create(ctx, models.NewUser{Email: op + "@example.com", Password: "long-enough-password",
		Superadmin: true, OrgID: op, Role: models.OwnerRole}); err != nil {
		t.Fatal(err)
	}
	data := pgtest.NewOrg(t, "data")
	trail := models.NewAuditTrail(db, pgtest.Sealer(t), models.NewPartitionManager(db))
	clk := &clock{t: time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC)}

	// reads makes the cache see the given hits and misses: each miss reads a name never
	// read before; each hit reads "hit", loaded once beforehand.
	unique := 0
	load := func(context.Context) (int, error) { return 1, nil }
	reads := func(c *querycache.Cache, hits, misses int) {
		querycache.Get(ctx, c, data, "hit", load)
		c.ResetStats()
		for range misses {
			unique++
			querycache.Get(ctx, c, data, "miss-"+strconv.Itoa(unique), load)
		}
		for range hits {
			querycache.Get(ctx, c, data, "hit", load)
		}
	}
	actions := func() []string {
		var out []string
		db.Raw(`SELECT action || ' ' || coalesce(target_resource_id, '') FROM audit_log WHERE organization_id = ? AND action LIKE 'performance.%' ORDER BY id`, op).Scan(&out)
		return out
	}
	run := func(c *querycache.Cache, slow int, auto bool) {
		t.Helper()
		job := jobs.PerfSnapshot(jobs.PerfSources{Store: slowStore{models.NewPerfStore(db, models.DefaultPerfOptions()), slow},
			Cache: c, Audit: trail, AutoOptimize: auto, Now: clk.now}, log)
		if err := job(ctx); err != nil {
			t.Fatal(err)
		}
		clk.add(5 * time.Minute)
	}

	// At the thresholds: a ratio of exactly 10 %, 10 slow statements.
	c := querycache.New(db, nil, querycache.Config{}, nil)
	reads(c, 10, 90)
	if st := c.Stats(); st.Hits != 10 || st.Misses != 90 {
		t.Fatalf("stats %+v: the test wants 10 hits of 100", st)
	}
	run(c, 10, true)
	if got := actions(); len(got) != 0 {
		t.Fatalf("at the thresholds the rules acted: %v", got)
	}
	if c.Stats().Entries == 0 {
		t.Fatal("the cache was cleared at a 10 % ratio")
	}

	// Over them, with the setting off: nothing.
	reads(c, 9, 91) // 9 %
	run(c, 11, false)
	if got := actions(); len(got) != 0 {
		t.Fatalf("with auto-optimization off the rules acted: %v", got)
	}

	// Over them: cache cleared, the table needing it vacuumed, both recorded.
	reads(c, 9, 91)
	run(c, 11, true)
	got := actions()
	if len(got) != 2 || !strings.HasPrefix(got[0], models.ActionPerfCacheClear) || got[1] != models.ActionPerfVacuum+" alerts" {
		t.Fatalf("recorded %v, want the cache clear and the vacuum of alerts", got)
	}
	if st := c.Stats(); st.Entries != 0 || st.Hits+st.Misses != 0 {
		t.Fatalf("cache after the clear: %+v", st)
	}
	var notes []string
	db.Raw(`SELECT jsonb_array_elements_text(figures->'auto_actions') FROM perf_snapshots WHERE taken_at = ?`,
		clk.now().Add(-5*time.Minute)).Scan(&notes)
	if len(notes) != 2 {
		t.Fatalf("the report notes %v, want both actions", notes)
	}
}

// TestLatencyReaderPerRouteGroup: p50/p95 per route group from the request histogram,
// over the requests since the previous read; nothing when the histogram is absent.
func TestLatencyReaderPerRouteGroup(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := jobs.NewLatencyReader(reg)
	if got := l.Read(); len(got) != 0 {
		t.Fatalf("without the histogram: %v", got)
	}
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: jobs.RequestDurationMetric,
		Buckets: []float64{0.01, 0.1, 1}}, []string{"route", "method", "code"})
	reg.MustRegister(h)
	for range 90 {
		h.WithLabelValues("/events/:id", "GET", "200").Observe(0.005)
	}
	for range 10 {
		h.WithLabelValues("/events", "GET", "200").Observe(0.5)
	}
	h.WithLabelValues("/api/v1/events/batch", "POST", "201").Observe(0.05)
	got := l.Read()
	ev := got["/events"]
	if ev.P50 <= 0 || ev.P50 > 10 || ev.P95 <= 100 || ev.P95 > 1000 {
		t.Fatalf("/events p50 %.2f ms p95 %.2f ms: want p50 in the first bucket, p95 in the last", ev.P50, ev.P95)
	}
	if _, ok := got["/api/v1/events"]; !ok {
		t.Fatalf("groups %v: want /api/v1/events", got)
	}
	for range 10 {
		h.WithLabelValues("/events", "GET", "200").Observe(0.5)
	}
	got = l.Read()
	if ev := got["/events"]; ev.P50 < 100 {
		t.Fatalf("second read p50 %.2f ms: want only the new (slow) requests", ev.P50)
	}
	if _, ok := got["/api/v1/events"]; ok {
		t.Fatal("a group without new requests reported")
	}
}

// TestSnapshotRecordsSequencerLagAsTime: the report's sequencer figure is the age of the
// oldest waiting write in seconds, read from the same source as /healthz and /metrics.
func TestSnapshotRecordsSequencerLagAsTime(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	clk := &clock{t: time.Date(2032, 5, 1, 0, 0, 0, 0, time.UTC)}
	lag := func(context.Context) (time.Duration, error) { return 90 * time.Second, nil }
	run := jobs.PerfSnapshot(jobs.PerfSources{Store: models.NewPerfStore(db, models.DefaultPerfOptions()), Now: clk.now,
		SequencerLag: lag}, slog.New(slog.DiscardHandler))
	if err := run(ctx); err != nil {
		t.Fatal(err)
	}
	snaps, err := models.NewPerfStore(db, models.DefaultPerfOptions()).Snapshots(ctx, clk.now())
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots %v (%v), want one", snaps, err)
	}
	if got := snaps[0].Figures.SequencerLagSec; got != 90 {
		t.Fatalf("sequencer lag %v s in the report, want 90", got)
	}
}
