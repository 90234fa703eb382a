package jobs

import (
	"context"
	"log/slog"

	"github.com/go-co-op/gocron/v2"

	"auditdb/models"
)

// SketchBuilder builds the search sketches of free text (models.SearchSketches).
type SketchBuilder interface {
	Build(ctx context.Context, org string) (models.SketchBuildResult, error)
}

// BuildSearchSketches returns the body of the search sketch job: every organization's closed
// days get their sketch, and existing sketches take in the events sequenced since.
func BuildSearchSketches(b SketchBuilder, log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		res, err := b.Build(ctx, "")
		if err != nil {
			return err
		}
		log.Info("search sketches built", "organizations", res.Orgs, "built", res.Built, "refreshed", res.Refreshed,
			"events", res.Events, "max_fill", res.MaxFill, "took", res.Took)
		return nil
	}
}

// SearchSketchJob runs BuildSearchSketches daily at 00:20 UTC, when the day before has
// closed, and once at start so that a server down at that time catches up.
func SearchSketchJob(b SketchBuilder, log *slog.Logger) Job {
	return Job{
		Name:       "search-sketches",
		Definition: gocron.DailyJob(1, gocron.NewAtTimes(gocron.NewAtTime(0, 20, 0))),
		Run:        BuildSearchSketches(b, log),
		StartNow:   true,
	}
}
