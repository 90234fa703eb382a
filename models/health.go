package models

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// HealthState is a component's state: ok, warning or critical, in that order of severity.
type HealthState string

// The health states.
const (
	HealthOK       HealthState = "ok"
	HealthWarning  HealthState = "warning"
	HealthCritical HealthState = "critical"
)

func (s HealthState) rank() int {
	switch s {
	case HealthOK:
		return 0
	case HealthWarning:
		return 1
	}
	return 2 // critical, and anything unknown counts as critical
}

// WorstState returns the most severe of states (ok for none).
func WorstState(states ...HealthState) HealthState {
	worst := HealthOK
	for _, s := range states {
		if s.rank() > worst.rank() {
			worst = s
		}
	}
	if worst.rank() == 2 {
		return HealthCritical
	}
	return worst
}

// HealthComponent is one line of the health report.
type HealthComponent struct {
	Name    string      `json:"name"`
	State   HealthState `json:"state"`
	Message string      `json:"message"`
}

// HealthReport is every component's state and the overall state: the worst of them.
type HealthReport struct {
	State      HealthState       `json:"state"`
	Components []HealthComponent `json:"components"`
	CheckedAt  time.Time         `json:"checked_at"`
}

// Component returns the component called name, and whether there is one.
func (r HealthReport) Component(name string) (HealthComponent, bool) {
	for _, c := range r.Components {
		if c.Name == name {
			return c, true
		}
	}
	return HealthComponent{}, false
}

// CacheStatser reports a cache's lookups since it started.
type CacheStatser interface {
	CacheStats() (hits, misses uint64)
}

// HealthThresholds are where a component turns warning or critical. The zero value of a
// field takes its default (see DefaultHealthThresholds).
type HealthThresholds struct {
	// CacheHitRatio: at or below it (with at least CacheMinLookups lookups), the cache is a
	// warning. The seed's rule: 50 %.
	CacheHitRatio   float64
	CacheMinLookups uint64
	// SequencerWarning and SequencerCritical bound the age of the oldest write waiting for
	// the Merkle log.
	SequencerWarning, SequencerCritical time.Duration
	// DetectionWarning and DetectionCritical bound detection's largest lag.
	DetectionWarning, DetectionCritical time.Duration
}

// DefaultHealthThresholds are the thresholds of the health report.
var DefaultHealthThresholds = HealthThresholds{
	CacheHitRatio:     0.5,
	CacheMinLookups:   100,
	SequencerWarning:  30 * time.Second,
	SequencerCritical: 5 * time.Minute,
	DetectionWarning:  time.Minute,
	DetectionCritical: 10 * time.Minute,
}

func (t HealthThresholds) withDefaults() HealthThresholds {
	d := DefaultHealthThresholds
	if t.CacheHitRatio == 0 {
		t.CacheHitRatio = d.CacheHitRatio
	}
	if t.CacheMinLookups == 0 {
		t.CacheMinLookups = d.CacheMinLookups
	}
	if t.SequencerWarning == 0 {
		t.SequencerWarning = d.SequencerWarning
	}
	if t.SequencerCritical == 0 {
		t.SequencerCritical = d.SequencerCritical
	}
	if t.DetectionWarning == 0 {
		t.DetectionWarning = d.DetectionWarning
	}
	if t.DetectionCritical == 0 {
		t.DetectionCritical = d.DetectionCritical
	}
	return t
}

// HealthChecker builds the health report from its sources. A nil source leaves its
// component out, except the database, which is always reported.
type HealthChecker struct {
	// Ping is the database's SELECT 1: down is critical.
	Ping func(ctx context.Context) error
	// Redis pings Redis: down is a warning (the application degrades to in-process state).
	Redis func(ctx context.Context) error
	// Partitions returns the partition recommendations (partitions to create, expired ones
	// to drop): any is a warning.
	Partitions func(ctx context.Context, now time.Time) ([]string, error)
	// MissedJobs names the jobs that missed their schedule: any is a warning.
	MissedJobs func(now time.Time) []string
	// SequencerLag and DetectionLag read how far behind those pipelines are.
	SequencerLag func(ctx context.Context) (time.Duration, error)
	DetectionLag func(ctx context.Context) (time.Duration, error)
	Thresholds   HealthThresholds
	Now          func() time.Time

	mu    sync.RWMutex
	cache CacheStatser
}

// SetCache reports the query cache's hit ratio from now on (nil: no cache component).
func (h *HealthChecker) SetCache(c CacheStatser) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cache = c
}

// healthTimeout bounds each component's check.
const healthTimeout = 2 * time.Second

// Health checks every component (each within two seconds) and returns the report; the
// overall state is the worst component's.
func (h *HealthChecker) Health(ctx context.Context) HealthReport {
	t := h.Thresholds.withDefaults()
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	within := func(check func(ctx context.Context) error) error {
		cctx, cancel := context.WithTimeout(ctx, healthTimeout)
		defer cancel()
		return check(cctx)
	}
	var cs []HealthComponent
	add := func(name string, state HealthState, format string, args ...any) {
		cs = append(cs, HealthComponent{Name: name, State: state, Message: fmt.Sprintf(format, args...)})
	}

	dbUp := h.Ping != nil && within(h.Ping) == nil
	if dbUp {
		add("database", HealthOK, "answers")
	} else {
		add("database", HealthCritical, "does not answer")
	}
	if h.Redis != nil {
		if err := within(h.Redis); err != nil {
			add("redis", HealthWarning, "does not answer; running on in-process state")
		} else {
			add("redis", HealthOK, "answers")
		}
	}
	h.mu.RLock()
	cache := h.cache
	h.mu.RUnlock()
	if cache != nil {
		state, msg := CacheHealth(cache, t)
		add("cache", state, "%s", msg)
	}
	if h.Partitions != nil && dbUp {
		var recs []string
		err := within(func(ctx context.Context) (err error) { recs, err = h.Partitions(ctx, now); return err })
		switch {
		case err != nil:
			add("partitions", HealthWarning, "could not be read: %v", err)
		case len(recs) > 0:
			add("partitions", HealthWarning, "%d recommendation(s): %s", len(recs), strings.Join(recs, "; "))
		default:
			add("partitions", HealthOK, "no recommendation")
		}
	}
	if h.MissedJobs != nil {
		if missed := h.MissedJobs(now); len(missed) > 0 {
			add("jobs", HealthWarning, "missed their schedule: %s", strings.Join(missed, ", "))
		} else {
			add("jobs", HealthOK, "on schedule")
		}
	}
	lag := func(name, what string, read func(context.Context) (time.Duration, error), warn, crit time.Duration) {
		if read == nil || !dbUp {
			return
		}
		var d time.Duration
		err := within(func(ctx context.Context) (err error) { d, err = read(ctx); return err })
		state, msg := LagHealth(d, err, warn, crit)
		add(name, state, "%s %s", what, msg)
	}
	lag("sequencer", "the oldest write waiting for the Merkle log:", h.SequencerLag, t.SequencerWarning, t.SequencerCritical)
	lag("detection", "the largest detection lag:", h.DetectionLag, t.DetectionWarning, t.DetectionCritical)

	states := make([]HealthState, len(cs))
	for i, c := range cs {
		states[i] = c.State
	}
	return HealthReport{State: WorstState(states...), Components: cs, CheckedAt: now.UTC()}
}

// CacheHealth is the cache component by the seed's rule: a hit ratio at or below
// t.CacheHitRatio is a warning, once there have been t.CacheMinLookups lookups (before,
// the ratio says nothing yet).
func CacheHealth(c CacheStatser, t HealthThresholds) (HealthState, string) {
	t = t.withDefaults()
	hits, misses := c.CacheStats()
	total := hits + misses
	if total < t.CacheMinLookups {
		return HealthOK, fmt.Sprintf("%d lookups so far; too few to judge the hit ratio", total)
	}
	ratio := float64(hits) / float64(total)
	if ratio <= t.CacheHitRatio {
		return HealthWarning, fmt.Sprintf("hit ratio %.1f %% (at or below %.0f %%) over %d lookups", 100*ratio, 100*t.CacheHitRatio, total)
	}
	return HealthOK, fmt.Sprintf("hit ratio %.1f %% over %d lookups", 100*ratio, total)
}

// LagHealth is a lag's state: warning above warn, critical above crit, a warning when it
// could not be read.
func LagHealth(d time.Duration, err error, warn, crit time.Duration) (HealthState, string) {
	switch {
	case err != nil:
		return HealthWarning, "could not be read"
	case d > crit:
		return HealthCritical, fmt.Sprintf("%s (over %s)", d.Round(time.Second), crit)
	case d > warn:
		return HealthWarning, fmt.Sprintf("%s (over %s)", d.Round(time.Second), warn)
	}
	return HealthOK, d.Round(time.Millisecond).String()
}

// PartitionRecommendations lists what the partitions page would do now: months to create
// and expired partitions to drop. An empty list is no recommendation.
func (c *PartitionConsole) PartitionRecommendations(ctx context.Context, now time.Time) ([]string, error) {
	ensure, err := c.EnsurePreview(ctx, now)
	if err != nil {
		return nil, err
	}
	drop, err := c.DropPreview(ctx, now)
	if err != nil {
		return nil, err
	}
	var out []string
	if len(ensure) > 0 {
		out = append(out, fmt.Sprintf("create %d partition(s): %s", len(ensure), strings.Join(ensure, ", ")))
	}
	if len(drop) > 0 {
		names := make([]string, len(drop))
		for i, p := range drop {
			names[i] = p.Name
		}
		out = append(out, fmt.Sprintf("drop %d expired partition(s): %s", len(drop), strings.Join(names, ", ")))
	}
	return out, nil
}
