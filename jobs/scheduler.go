// Package jobs runs auditdb's background work on a gocron scheduler. Each job body is a
// plain func(ctx) error, testable alone; with several instances a PostgreSQL advisory lock
// makes each run happen on one instance only.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/metrics"
)

// Job is one named unit of background work.
type Job struct {
	Name       string
	Definition gocron.JobDefinition
	Run        func(ctx context.Context) error
	// Quiet jobs run every few seconds: their successful runs are not logged.
	Quiet bool
	// StartNow runs the job once as soon as the scheduler starts, then on its definition
	// (work missed while the server was down is caught up at once).
	StartNow bool
}

// Scheduler wraps gocron with auditdb's logging and cross-instance locking.
type Scheduler struct {
	s    gocron.Scheduler
	log  *slog.Logger
	errs ErrorRecorder

	// MissedGrace is how late, on top of two of its intervals, a job may come due before
	// Missed names it (a minute by default).
	MissedGrace time.Duration

	mu      sync.Mutex
	started time.Time
	fired   map[string]*firing // by job name
}

// firing is when a job last came due: it ran here, or another instance held its lock (and
// so ran it there).
type firing struct {
	job  gocron.Job
	last time.Time
}

// ErrorRecorder takes failed runs for the error log; Record never blocks (see
// models.ErrorWriter).
type ErrorRecorder interface {
	Record(ctx context.Context, rec models.ErrorRecord)
}

// RecordErrorsTo sends every failed run to r from now on; call it before Add.
func (sc *Scheduler) RecordErrorsTo(r ErrorRecorder) { sc.errs = r }

// New returns a scheduler whose runs take a PostgreSQL advisory lock per job, so with
// several instances each run happens once.
func New(db *gorm.DB, log *slog.Logger) (*Scheduler, error) {
	s, err := gocron.NewScheduler(
		gocron.WithLocation(time.UTC),
		gocron.WithDistributedLocker(NewPGLocker(db)),
		gocron.WithStopTimeout(30*time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("jobs: new scheduler: %w", err)
	}
	return &Scheduler{s: s, log: log, fired: map[string]*firing{}, MissedGrace: time.Minute}, nil
}

// fire notes that job came due at t.
func (sc *Scheduler) fire(name string, t time.Time) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if f := sc.fired[name]; f != nil {
		f.last = t
	}
}

// Missed returns the jobs that have not come due (here, or elsewhere when another instance
// held the lock) for more than two of their intervals plus a minute, sorted: a job still
// running long past its next run, or a scheduler that stopped. Before Start it returns none.
func (sc *Scheduler) Missed(now time.Time) []string {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.started.IsZero() {
		return nil
	}
	var out []string
	for name, f := range sc.fired {
		runs, err := f.job.NextRuns(2)
		if err != nil || len(runs) < 2 {
			continue
		}
		every := runs[1].Sub(runs[0])
		last := f.last
		if last.IsZero() {
			last = sc.started
		}
		if now.Sub(last) > 2*every+sc.MissedGrace {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Add registers job; its errors are logged, never fatal.
func (sc *Scheduler) Add(job Job) error {
	errs := sc.errs
	opts := []gocron.JobOption{gocron.WithName(job.Name), gocron.WithSingletonMode(gocron.LimitModeReschedule),
		gocron.WithEventListeners(gocron.AfterLockError(func(_ uuid.UUID, name string, err error) {
			if errors.Is(err, ErrLocked) { // another instance runs it; a database error is no run
				sc.fire(name, time.Now())
			}
		}))}
	if job.StartNow {
		opts = append(opts, gocron.WithStartAt(gocron.WithStartImmediately()))
	}
	j, err := sc.s.NewJob(job.Definition, gocron.NewTask(func(ctx context.Context) {
		sc.fire(job.Name, time.Now())
		RunJob(ctx, job, sc.log, errs)
	}), opts...)
	if err != nil {
		return fmt.Errorf("jobs: add %s: %w", job.Name, err)
	}
	sc.mu.Lock()
	sc.fired[job.Name] = &firing{job: j}
	sc.mu.Unlock()
	return nil
}

// RunJob runs job once as the scheduler does: a failure is logged and, when errs is
// not nil, recorded in the error log under the job's name; a panic in the body counts
// as a failure.
func RunJob(ctx context.Context, job Job, log *slog.Logger, errs ErrorRecorder) {
	start := time.Now()
	err := runGuarded(ctx, job)
	metrics.JobRun(job.Name, time.Since(start), err != nil)
	if err != nil {
		log.Error("job failed", "job", job.Name, "err", err, "took", time.Since(start))
		if errs != nil {
			errs.Record(ctx, models.ErrorRecord{Kind: models.ErrorKindJob, Component: "jobs", Operation: job.Name,
				Message: err.Error(), Context: map[string]any{"took_ms": time.Since(start).Milliseconds()}})
		}
		return
	}
	if !job.Quiet {
		log.Info("job done", "job", job.Name, "took", time.Since(start))
	}
}

// runGuarded runs job's body, turning a panic into an error.
func runGuarded(ctx context.Context, job Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("jobs: %s panicked: %v", job.Name, r)
		}
	}()
	return job.Run(ctx)
}

// Start begins running jobs.
func (sc *Scheduler) Start() {
	sc.mu.Lock()
	sc.started = time.Now()
	sc.mu.Unlock()
	sc.s.Start()
}

// Shutdown stops the scheduler, waiting for running jobs up to the stop timeout.
func (sc *Scheduler) Shutdown() error { return sc.s.Shutdown() }
