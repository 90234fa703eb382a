package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/go-co-op/gocron/v2"

	"auditdb/models"
	"auditdb/models/querycache"
)

// PerfReportStore is what the performance report needs from the database.
type PerfReportStore interface {
	Gather(ctx context.Context, now time.Time) (models.PerfFigures, error)
	Tables(ctx context.Context, now time.Time) ([]models.TableStats, error)
	SaveSnapshot(ctx context.Context, slot time.Time, took time.Duration, f models.PerfFigures) (bool, error)
	NoteActions(ctx context.Context, slot time.Time, actions []string) error
	PruneSnapshots(ctx context.Context, before time.Time) (int64, error)
	MaintainTable(ctx context.Context, table string) error
	OperatorOrgs(ctx context.Context) ([]string, error)
}

// QueryCache is the cache the report reads and the rules may clear.
type QueryCache interface {
	Stats() querycache.Stats
	Clear(ctx context.Context) error
	ResetStats()
}

// Auditor records the automatic actions.
type Auditor interface {
	Record(ctx context.Context, entries ...models.AuditEntry) error
}

// PerfSources are the performance report's sources; only Store is required.
type PerfSources struct {
	Store PerfReportStore
	Cache QueryCache // nil: no cache figures and no cache rule
	// WriterQueue returns the events the ingest writer holds unanswered.
	WriterQueue func() int64
	// SequencerLag returns the age of the oldest write waiting for the Merkle log
	// (merkle.Log.QueueLag, which /healthz and the metrics report too).
	SequencerLag func(ctx context.Context) (time.Duration, error)
	// DetectionLag returns the largest detection lag.
	DetectionLag func(ctx context.Context) (time.Duration, error)
	// Latency returns p50/p95 per route group since its previous call.
	Latency func() map[string]models.Quantiles
	Audit   Auditor
	// AutoOptimize runs the seed's rules after each report.
	AutoOptimize bool
	Now          func() time.Time
}

// PerfSnapshot takes the report of the current five-minute slot, stores it unless another
// instance did, deletes reports older than 30 days and, when AutoOptimize is on, applies
// the seed's rules, each automatic action self-audited in the operators' organizations.
func PerfSnapshot(src PerfSources, log *slog.Logger) func(context.Context) error {
	now := src.Now
	if now == nil {
		now = time.Now
	}
	var lastHits, lastMisses uint64
	return func(ctx context.Context) error {
		start := time.Now()
		at := now().UTC()
		slot := models.SnapshotSlot(at)
		f, err := src.Store.Gather(ctx, at)
		if err != nil {
			return err
		}
		if src.Cache != nil {
			st := src.Cache.Stats()
			if st.Hits < lastHits || st.Misses < lastMisses { // reset since
				lastHits, lastMisses = 0, 0
			}
			dh, dm := st.Hits-lastHits, st.Misses-lastMisses
			lastHits, lastMisses = st.Hits, st.Misses
			f.Cache = models.CacheFigures{Hits: st.Hits, Misses: st.Misses, Reads: dh + dm, Entries: st.Entries,
				Bytes: st.Bytes, Evictions: st.Evictions}
			if dh+dm > 0 {
				f.Cache.Ratio = float64(dh) / float64(dh+dm)
			}
		}
		if src.WriterQueue != nil {
			f.WriterQueue = src.WriterQueue()
		}
		if src.SequencerLag != nil {
			if lag, err := src.SequencerLag(ctx); err == nil {
				f.SequencerLagSec = lag.Seconds()
			}
		}
		if src.DetectionLag != nil {
			if lag, err := src.DetectionLag(ctx); err == nil {
				f.DetectionLagSec = lag.Seconds()
			}
		}
		if src.Latency != nil {
			f.Latency = src.Latency()
		}
		var mem runtime.MemStats
		runtime.ReadMemStats(&mem)
		f.HeapBytes, f.SysBytes, f.Goroutines = mem.HeapAlloc, mem.Sys, runtime.NumGoroutine()
		stored, err := src.Store.SaveSnapshot(ctx, slot, time.Since(start), f)
		if err != nil {
			return err
		}
		if _, err := src.Store.PruneSnapshots(ctx, at.Add(-models.SnapshotKeep)); err != nil {
			return err
		}
		if !stored || !src.AutoOptimize {
			return nil
		}
		return autoOptimize(ctx, src, slot, at, f, log)
	}
}

// autoOptimize applies the seed's rules to report f and records what it did.
func autoOptimize(ctx context.Context, src PerfSources, slot, at time.Time, f models.PerfFigures, log *slog.Logger) error {
	var tables []models.TableStats
	if f.SlowQueries > models.MaintainAboveSlow {
		var err error
		if tables, err = src.Store.Tables(ctx, at); err != nil {
			return err
		}
	}
	rule := models.AutoRules(f, tables)
	if src.Cache == nil {
		rule.ClearCache = false
	}
	var done []string
	var entries []models.AuditEntry
	var errs []error
	actor := models.SystemActor("auto-optimization")
	if rule.ClearCache {
		if err := src.Cache.Clear(ctx); err != nil {
			errs = append(errs, err)
		}
		src.Cache.ResetStats()
		what := fmt.Sprintf("cleared the query cache: hit ratio %.1f %% over %d reads (under %.0f %%)",
			f.Cache.Ratio*100, f.Cache.Reads, models.ClearBelowRatio*100)
		done = append(done, what)
		entries = append(entries, models.AuditEntry{Action: models.ActionPerfCacheClear, Actor: actor, TargetType: "cache",
			TargetID: "query-cache", Outcome: what})
	}
	for _, t := range rule.Maintain {
		if err := src.Store.MaintainTable(ctx, t); err != nil {
			errs = append(errs, err)
			continue
		}
		what := fmt.Sprintf("VACUUM ANALYZE %s: %d slow statements (over %d)", t, f.SlowQueries, models.MaintainAboveSlow)
		done = append(done, what)
		entries = append(entries, models.AuditEntry{Action: models.ActionPerfVacuum, Actor: actor, TargetType: "table",
			TargetID: t, Outcome: what})
	}
	if len(done) == 0 {
		return errors.Join(errs...)
	}
	for _, d := range done {
		log.Info("auto-optimization", "action", d)
	}
	errs = append(errs, src.Store.NoteActions(ctx, slot, done))
	if src.Audit != nil {
		orgs, err := src.Store.OperatorOrgs(ctx)
		errs = append(errs, err)
		var all []models.AuditEntry
		for _, org := range orgs {
			for _, e := range entries {
				e.Org = org
				all = append(all, e)
			}
		}
		if len(all) > 0 {
			errs = append(errs, src.Audit.Record(ctx, all...))
		}
	}
	return errors.Join(errs...)
}

// PerfSnapshotJob takes the performance report every five minutes, on the clock's
// five-minute marks; the advisory lock and the slot's primary key make it once across
// instances.
func PerfSnapshotJob(src PerfSources, log *slog.Logger) Job {
	return Job{
		Name:       "performance-snapshot",
		Definition: gocron.CronJob("*/5 * * * *", false),
		Run:        PerfSnapshot(src, log),
	}
}
