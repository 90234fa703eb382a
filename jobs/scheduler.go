// Package jobs runs auditdb's background work on a gocron scheduler. Each job body is a
// plain func(ctx) error, testable alone; with several instances a PostgreSQL advisory lock
// makes each run happen on one instance only.
package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-co-op/gocron/v2"
	"gorm.io/gorm"

	"auditdb/models"
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
	return &Scheduler{s: s, log: log}, nil
}

// Add registers job; its errors are logged, never fatal.
func (sc *Scheduler) Add(job Job) error {
	errs := sc.errs
	opts := []gocron.JobOption{gocron.WithName(job.Name), gocron.WithSingletonMode(gocron.LimitModeReschedule)}
	if job.StartNow {
		opts = append(opts, gocron.WithStartAt(gocron.WithStartImmediately()))
	}
	_, err := sc.s.NewJob(job.Definition, gocron.NewTask(func(ctx context.Context) {
		RunJob(ctx, job, sc.log, errs)
	}), opts...)
	if err != nil {
		return fmt.Errorf("jobs: add %s: %w", job.Name, err)
	}
	return nil
}

// RunJob runs job once as the scheduler does: a failure is logged and, when errs is
// not nil, recorded in the error log under the job's name; a panic in the body counts
// as a failure.
func RunJob(ctx context.Context, job Job, log *slog.Logger, errs ErrorRecorder) {
	start := time.Now()
	err := runGuarded(ctx, job)
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
func (sc *Scheduler) Start() { sc.s.Start() }

// Shutdown stops the scheduler, waiting for running jobs up to the stop timeout.
func (sc *Scheduler) Shutdown() error { return sc.s.Shutdown() }
