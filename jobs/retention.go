package jobs

import (
	"context"
	"log/slog"

	"github.com/go-co-op/gocron/v2"

	"auditdb/models"
)

// RetentionRunner runs retention (models.RetentionEngine).
type RetentionRunner interface {
	Run(ctx context.Context, opts models.RetentionOptions) (*models.RetentionResult, error)
}

// ApplyRetention returns the body of the daily retention job: archive what is due, delete
// what reached the end of its retention. The engine's own advisory lock lets one instance
// run it; the others skip quietly.
func ApplyRetention(engine RetentionRunner, log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		res, err := engine.Run(ctx, models.RetentionOptions{})
		if models.IsRetentionRunning(err) {
			log.Info("retention: another instance is running it")
			return nil
		}
		if err != nil {
			return err
		}
		log.Info("retention applied", "run", res.RunID, "archived", res.Archived, "archives", res.Archives,
			"deleted", res.Deleted, "kept_by_holds", res.KeptByHolds, "dropped_partitions", res.DroppedPartitions)
		return nil
	}
}

// RetentionJob runs retention daily at 02:45 UTC, before the integrity sweep checks the result.
func RetentionJob(engine RetentionRunner, log *slog.Logger) Job {
	return Job{
		Name:       "retention",
		Definition: gocron.DailyJob(1, gocron.NewAtTimes(gocron.NewAtTime(2, 45, 0))),
		Run:        ApplyRetention(engine, log),
	}
}
