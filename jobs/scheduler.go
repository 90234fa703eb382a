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
)

// Job is one named unit of background work.
type Job struct {
	Name       string
	Definition gocron.JobDefinition
	Run        func(ctx context.Context) error
	// Quiet jobs run every few seconds: their successful runs are not logged.
	Quiet bool
}

// Scheduler wraps gocron with auditdb's logging and cross-instance locking.
type Scheduler struct {
	s   gocron.Scheduler
	log *slog.Logger
}

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
	_, err := sc.s.NewJob(job.Definition, gocron.NewTask(func(ctx context.Context) {
		start := time.Now()
		if err := job.Run(ctx); err != nil {
			sc.log.Error("job failed", "job", job.Name, "err", err, "took", time.Since(start))
			return
		}
		if !job.Quiet {
			sc.log.Info("job done", "job", job.Name, "took", time.Since(start))
		}
	}), gocron.WithName(job.Name), gocron.WithSingletonMode(gocron.LimitModeReschedule))
	if err != nil {
		return fmt.Errorf("jobs: add %s: %w", job.Name, err)
	}
	return nil
}

// Start begins running jobs.
func (sc *Scheduler) Start() { sc.s.Start() }

// Shutdown stops the scheduler, waiting for running jobs up to the stop timeout.
func (sc *Scheduler) Shutdown() error { return sc.s.Shutdown() }
