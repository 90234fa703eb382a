package bench

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/querycache"
	"auditdb/models/reports"
)

// CacheOptions configure the query cache benchmark.
type CacheOptions struct {
	Events     int // events the dashboard's organization holds (filled once per database)
	Rounds     int // rounds, each running every mode in turn
	Iterations int // reads per mode and round
	Redis      *redis.Client
	Prefix     string // Redis key prefix of the bench's cache
	Out        io.Writer
}

// Cache times the dashboard's figures at o.Events events through the query cache and
// without it, the modes alternating round by round so that they meet the same machine:
//
//   - off: the dashboard store as the console runs it without the cache (its 30-day
//     aggregates kept a minute in process, everything else read per request);
//   - off, cold: the same store re-reading the 30-day aggregates on every call;
//   - on, hit: through the cache, answered from L1;
//   - on, miss: through the cache right after a write bumped the organization's version
//     (the cost of a miss: version read, the store's read, encoding, L1 and Redis writes);
//   - report preview off / on, hit: the figures of a 30-day general compliance report
//     (reports.Generator against reports.Cached, which also checks the leaf queue).
//
// It then times the performance report's own work (gathering and storing) and prints a
// table with p50/p95 per mode and the ratios of the medians against "off".
func Cache(ctx context.Context, db *gorm.DB, o CacheOptions) error {
	if err := fillDashboard(ctx, db, o.Events, o.Out); err != nil {
		return err
	}
	warm := models.NewDashboardStore(db)
	cold := models.NewDashboardStore(db)
	cold.MonthlyTTL = 0
	qc := querycache.New(db, o.Redis, querycache.Config{Prefix: o.Prefix}, nil)
	if err := qc.Clear(ctx); err != nil {
		return err
	}
	cached := querycache.Dashboard{Source: models.NewDashboardStore(db), Cache: qc}
	bump := func() error {
		return db.WithContext(ctx).Exec(`INSERT INTO query_cache_versions VALUES (?, 1)
			ON CONFLICT (organization_id) DO UPDATE SET version = query_cache_versions.version + 1`, dashOrg).Error
	}
	type mode struct {
		name   string
		before func() error
		read   func(time.Time) error
	}
	overview := func(r querycache.DashboardSource) func(time.Time) error {
		return func(now time.Time) error {
			_, err := r.Overview(ctx, dashOrg, now)
			return err
		}
	}
	preview := func(b reports.Builder) func(time.Time) error {
		return func(now time.Time) error {
			// A fixed period, so that every call asks for the same preview.
			to := now.UTC().Truncate(time.Hour)
			_, err := b.Build(ctx, dashOrg, reports.Criteria{Type: reports.TypeGeneral, From: to.AddDate(0, 0, -30), To: to}, now)
			return err
		}
	}
	modes := []mode{
		{"off", nil, overview(warm)},
		{"off, cold", nil, overview(cold)},
		{"on, hit", nil, overview(cached)},
		{"on, miss", bump, overview(cached)},
		{"report preview off", nil, preview(reports.NewGenerator(db))},
		{"report preview on, hit", nil, preview(reports.Cached{Gen: reports.NewGenerator(db), DB: db, Cache: qc})},
	}
	// Warm every path once (connections, the store's kept aggregates, the cache).
	for _, m := range modes {
		if err := m.read(time.Now()); err != nil {
			return fmt.Errorf("bench: %s: %w", m.name, err)
		}
	}
	times := make([][]time.Duration, len(modes))
	for round := range o.Rounds {
		for k := range modes {
			m := modes[(k+round)%len(modes)] // rotate which mode goes first
			i := (k + round) % len(modes)
			for range o.Iterations {
				if m.before != nil {
					if err := m.before(); err != nil {
						return err
					}
				}
				start := time.Now()
				if err := m.read(time.Now()); err != nil {
					return fmt.Errorf("bench: %s: %w", m.name, err)
				}
				times[i] = append(times[i], time.Since(start))
			}
		}
	}
	st := qc.Stats()
	tw := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "dashboard figures at %d events, %d rounds × %d reads per mode\n", o.Events, o.Rounds, o.Iterations)
	fmt.Fprintln(tw, "mode\tp50\tp95\toff p50 / mode p50")
	for i, m := range modes {
		base := percentiles(times[0]).P50
		if i >= 4 {
			base = percentiles(times[4]).P50 // the report previews against their own "off"
		}
		p := percentiles(times[i])
		fmt.Fprintf(tw, "%s\t%v\t%v\t%.1f×\n", m.name, p.P50.Round(time.Microsecond), p.P95.Round(time.Microsecond),
			float64(base)/float64(p.P50))
	}
	fmt.Fprintf(tw, "cache: %d hits, %d misses, %d entries, %s, %d values compressed\n", st.Hits, st.Misses, st.Entries,
		models.HumanBytes(int64(st.Bytes)), st.Compressed)
	tw.Flush()

	perf := models.NewPerfStore(db, models.DefaultPerfOptions())
	var took []time.Duration
	for i := range 10 {
		start := time.Now()
		f, err := perf.Gather(ctx, time.Now())
		if err != nil {
			return err
		}
		slot := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * models.SnapshotEvery)
		if _, err := perf.SaveSnapshot(ctx, slot, time.Since(start), f); err != nil {
			return err
		}
		took = append(took, time.Since(start))
	}
	if _, err := perf.PruneSnapshots(ctx, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		return err
	}
	p := percentiles(took)
	fmt.Fprintf(o.Out, "performance report (gather and store), 10 runs: p50 %v, p95 %v\n", p.P50.Round(time.Microsecond), p.P95.Round(time.Microsecond))
	return nil
}
