package jobs

import (
	"context"
	"time"

	"github.com/go-co-op/gocron/v2"
	"gorm.io/gorm"

	"auditdb/models"
)

// DetectionPasser is what the detection job needs: one pass over every organization's
// newly logged events.
type DetectionPasser interface {
	Pass(ctx context.Context) (models.DetectResult, error)
}

// Detect runs detection passes until every log is read or budget is spent (the next run
// carries on). Each organization's batch commits on its own, so stopping between passes
// loses nothing.
func Detect(d DetectionPasser, budget time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		deadline := time.Now().Add(budget)
		for {
			res, err := d.Pass(ctx)
			if err != nil {
				return err
			}
			if res.Events == 0 || time.Now().After(deadline) || ctx.Err() != nil {
				return nil
			}
		}
	}
}

// DetectionJob runs Detect every interval. The scheduler's advisory-lock locker makes one
// instance run it at a time; the cursor rows' locks keep it exact even when two run.
func DetectionJob(d DetectionPasser, interval time.Duration) Job {
	return Job{
		Name:       "detection",
		Definition: gocron.DurationJob(interval),
		Run:        Detect(d, 10*interval),
		Quiet:      true,
	}
}

// DetectionFeedTrimJob deletes, every minute, detection feed rows and runs older than
// models.FeedTTL: rows detection did not finish, such as all of them while no instance runs
// detection. It runs where the ingest writer feeds detection.
func DetectionFeedTrimJob(db *gorm.DB) Job {
	return Job{
		Name:       "detection-feed-trim",
		Definition: gocron.DurationJob(time.Minute),
		Run: func(ctx context.Context) error {
			_, err := models.TrimDetectionFeed(ctx, db)
			return err
		},
		Quiet: true,
	}
}
