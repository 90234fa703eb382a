package jobs

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/go-co-op/gocron/v2"

	"auditdb/models"
)

// PartitionMaintainer is what the partition job needs.
type PartitionMaintainer interface {
	Ensure(ctx context.Context, now time.Time) ([]string, error)
	DropExpired(ctx context.Context, now time.Time, dryRun bool) ([]models.Partition, error)
}

// MaintainPartitions ensures the current and next six monthly partitions and drops those
// wholly past the longest active retention policy.
func MaintainPartitions(p PartitionMaintainer, now func() time.Time, log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		t := now()
		created, err := p.Ensure(ctx, t)
		if err != nil {
			return err
		}
		dropped, err := p.DropExpired(ctx, t, false)
		if err != nil && models.KindOf(err) != models.KindConflict {
			return err
		}
		for _, d := range dropped {
			log.Info("dropped expired partition", "partition", d.Name)
		}
		if len(created) > 0 {
			log.Info("created partitions", "partitions", created)
		}
		return nil
	}
}

// PartitionJob runs MaintainPartitions daily at 01:15 UTC.
func PartitionJob(p PartitionMaintainer, log *slog.Logger) Job {
	return Job{
		Name:       "partitions",
		Definition: gocron.DailyJob(1, gocron.NewAtTimes(gocron.NewAtTime(1, 15, 0))),
		Run:        MaintainPartitions(p, time.Now, log),
	}
}

// Purger deletes what has expired and returns how many rows went.
type Purger interface {
	PurgeExpired(ctx context.Context) (int64, error)
}

// SessionPurgeJob deletes long-ended console sessions and sign-in attempt counts whose
// window has ended, hourly.
func SessionPurgeJob(purgers ...Purger) Job {
	return Job{
		Name:       "session-purge",
		Definition: gocron.DurationJob(time.Hour),
		Run: func(ctx context.Context) error {
			var errs []error
			for _, p := range purgers {
				if _, err := p.PurgeExpired(ctx); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
}

// ErrorLogPurger deletes the error log's rows older than a retention.
type ErrorLogPurger interface {
	Purge(ctx context.Context, now time.Time, keep time.Duration) (int64, error)
}

// ErrorLogRetentionJob drops the error log's rows older than keep (models.
// DefaultErrorRetention when zero), daily at 01:45 UTC.
func ErrorLogRetentionJob(p ErrorLogPurger, keep time.Duration, now func() time.Time, log *slog.Logger) Job {
	if keep <= 0 {
		keep = models.DefaultErrorRetention
	}
	return Job{
		Name:       "error-log-retention",
		Definition: gocron.DailyJob(1, gocron.NewAtTimes(gocron.NewAtTime(1, 45, 0))),
		Run: func(ctx context.Context) error {
			n, err := p.Purge(ctx, now(), keep)
			if err != nil {
				return err
			}
			if n > 0 {
				log.Info("purged the error log", "rows", n, "kept_days", int(keep.Hours()/24))
			}
			return nil
		},
	}
}
