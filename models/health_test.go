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

func TestWorstStateWins(t *testing.T) {
	ok, warn, crit := models.HealthOK, models.HealthWarning, models.HealthCritical
	for _, c := range []struct {
		in   []models.HealthState
		want models.HealthState
	}{
		{nil, ok},
		{[]models.HealthState{ok, ok}, ok},
		{[]models.HealthState{ok, warn, ok}, warn},
		{[]models.HealthState{warn, crit, ok}, crit},
		{[]models.HealthState{crit, warn}, crit},
		{[]models.HealthState{ok, "nonsense"}, crit}, // an unknown state is never taken for ok
	} {
		if got := models.WorstState(c.in...); got != c.want {
			t.Errorf("WorstState(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}

type cacheCounts struct{ hits, misses uint64 }

func (c cacheCounts) CacheStats() (uint64, uint64) { return c.hits, c.misses }

func TestCacheHealthThreshold(t *testing.T) {
	th := models.DefaultHealthThresholds
	for _, c := range []struct {
		hits, misses uint64
		want         models.HealthState
	}{
		{0, 0, models.HealthOK},        // no lookups: nothing to judge
		{10, 89, models.HealthOK},      // 99 lookups: below the minimum
		{50, 50, models.HealthWarning}, // exactly 50 %: the seed says ≤ 50 % is a warning
		{51, 49, models.HealthOK},
		{0, 100, models.HealthWarning},
		{1000, 0, models.HealthOK},
	} {
		got, msg := models.CacheHealth(cacheCounts{c.hits, c.misses}, th)
		if got != c.want || msg == "" {
			t.Errorf("hits %d misses %d: %s (%q), want %s", c.hits, c.misses, got, msg, c.want)
		}
	}
}

func TestLagHealthThresholds(t *testing.T) {
	warn, crit := 30*time.Second, 5*time.Minute
	for _, c := range []struct {
		d    time.Duration
		err  error
		want models.HealthState
	}{
		{0, nil, models.HealthOK},
		{30 * time.Second, nil, models.HealthOK}, // at the threshold: not over it
		{30*time.Second + time.Millisecond, nil, models.HealthWarning},
		{5 * time.Minute, nil, models.HealthWarning},
		{5*time.Minute + time.Second, nil, models.HealthCritical},
		{0, errors.New("boom"), models.HealthWarning},
	} {
		if got, _ := models.LagHealth(c.d, c.err, warn, crit); got != c.want {
			t.Errorf("lag %s err %v: %s, want %s", c.d, c.err, got, c.want)
		}
	}
}

// checker is a HealthChecker whose every source is healthy; each case spoils one.
func checker() *models.HealthChecker {
	return &models.HealthChecker{
		Ping:         func(context.Context) error { return nil },
		Redis:        func(context.Context) error { return nil },
		Partitions:   func(context.Context, time.Time) ([]string, error) { return nil, nil },
		MissedJobs:   func(time.Time) []string { return nil },
		SequencerLag: func(context.Context) (time.Duration, error) { return time.Second, nil },
		DetectionLag: func(context.Context) (time.Duration, error) { return time.Second, nil },
	}
}

func TestHealthReport(t *testing.T) {
	down := func(context.Context) error { return errors.New("down") }
	lag := func(d time.Duration) func(context.Context) (time.Duration, error) {
		return func(context.Context) (time.Duration, error) { return d, nil }
	}
	for _, c := range []struct {
		name      string
		spoil     func(h *models.HealthChecker)
		component string
		want      models.HealthState
	}{
		{"all well", func(*models.HealthChecker) {}, "database", models.HealthOK},
		{"database down", func(h *models.HealthChecker) { h.Ping = down }, "database", models.HealthCritical},
		{"redis down", func(h *models.HealthChecker) { h.Redis = down }, "redis", models.HealthWarning},
		{"cache hit ratio low", func(h *models.HealthChecker) { h.SetCache(cacheCounts{40, 60}) }, "cache", models.HealthWarning},
		{"partition recommendations", func(h *models.HealthChecker) {
			h.Partitions = func(context.Context, time.Time) ([]string, error) { return []string{"create 1 partition(s): x"}, nil }
		}, "partitions", models.HealthWarning},
		{"jobs missed", func(h *models.HealthChecker) {
			h.MissedJobs = func(time.Time) []string { return []string{"merkle-sequencer"} }
		},
			"jobs", models.HealthWarning},
		{"sequencer behind", func(h *models.HealthChecker) { h.SequencerLag = lag(time.Minute) }, "sequencer", models.HealthWarning},
		{"sequencer far behind", func(h *models.HealthChecker) { h.SequencerLag = lag(time.Hour) }, "sequencer", models.HealthCritical},
		{"detection behind", func(h *models.HealthChecker) { h.DetectionLag = lag(2 * time.Minute) }, "detection", models.HealthWarning},
		{"detection far behind", func(h *models.HealthChecker) { h.DetectionLag = lag(time.Hour) }, "detection", models.HealthCritical},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := checker()
			c.spoil(h)
			r := h.Health(context.Background())
			got, ok := r.Component(c.component)
			if !ok || got.State != c.want || got.Message == "" {
				t.Fatalf("%s: %+v (present %v), want %s with a message; report %+v", c.component, got, ok, c.want, r)
			}
			if r.State != c.want {
				t.Errorf("overall %s, want the worst component's %s", r.State, c.want)
			}
			for _, comp := range r.Components {
				if comp.Name != c.component && comp.State != models.HealthOK {
					t.Errorf("%s is %s; only %s was spoiled", comp.Name, comp.State, c.component)
				}
			}
		})
	}
	t.Run("worst of several", func(t *testing.T) {
		h := checker()
		h.Redis = down
		h.DetectionLag = lag(time.Hour)
		if r := h.Health(context.Background()); r.State != models.HealthCritical {
			t.Errorf("redis warning and detection critical: overall %s", r.State)
		}
	})
	t.Run("no cache set", func(t *testing.T) {
		if _, ok := checker().Health(context.Background()).Component("cache"); ok {
			t.Error("a cache component without a cache")
		}
	})
}

// TestHealthOverTheDatabase runs the checker over a database of its own: the database
// answers, and the partitions component follows the partition console's previews: months
// ahead without a partition are a warning naming them, and once created they are not.
func TestHealthOverTheDatabase(t *testing.T) {
	db, _ := pgtest.ExtraDB(t)
	ctx := context.Background()
	parts := models.NewPartitionManager(db)
	console := models.NewPartitionConsole(db, parts, nil)
	later := time.Now().AddDate(0, models.MonthsAhead+2, 0) // beyond what the template holds
	h := &models.HealthChecker{Ping: models.Pinger(db), Partitions: console.PartitionRecommendations,
		Now: func() time.Time { return later }}
	ensure, err := console.EnsurePreview(ctx, later)
	if err != nil {
		t.Fatal(err)
	}
	if len(ensure) == 0 {
		t.Fatalf("no partition missing %d months ahead", models.MonthsAhead+2)
	}
	r := h.Health(ctx)
	if c, _ := r.Component("database"); c.State != models.HealthOK {
		t.Fatalf("database: %+v", c)
	}
	p, _ := r.Component("partitions")
	if p.State != models.HealthWarning || !strings.Contains(p.Message, ensure[0]) || r.State != models.HealthWarning {
		t.Errorf("partitions %v missing: %+v, overall %s", ensure, p, r.State)
	}
	if _, err := parts.Ensure(ctx, later); err != nil {
		t.Fatal(err)
	}
	p, _ = h.Health(ctx).Component("partitions")
	if strings.Contains(p.Message, "create") {
		t.Errorf("after Ensure the report still asks to create partitions: %+v", p)
	}
	drop, err := console.DropPreview(ctx, later)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(drop) > 0; (p.State == models.HealthWarning) != want {
		t.Errorf("expired partitions %v: %+v", drop, p)
	}
}
