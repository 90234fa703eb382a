package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/go-co-op/gocron/v2"
)

// ReportScheduler starts the scheduled reports that are due and retries failed deliveries.
type ReportScheduler interface {
	RunDue(ctx context.Context) (int, error)
	RetryDeliveries(ctx context.Context) (int, error)
}

// RunReports starts every due scheduled report (once across instances: the schedule is
// claimed in the database) and retries the deliveries that failed.
func RunReports(r ReportScheduler) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := r.RunDue(ctx)
		_, rerr := r.RetryDeliveries(ctx)
		return errors.Join(err, rerr)
	}
}

// ReportsJob runs RunReports every minute and at start, so a run missed while the server
// was down happens once as soon as it is back.
func ReportsJob(r ReportScheduler) Job {
	return Job{
		Name:       "scheduled-reports",
		Definition: gocron.DurationJob(time.Minute),
		Run:        RunReports(r),
		Quiet:      true,
		StartNow:   true,
	}
}
