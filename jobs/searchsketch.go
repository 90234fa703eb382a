package jobs

import (
	"context"
	"log/slog"
	"time"

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

// SearchSketchJob runs BuildSearchSketches hourly and once at start: a day that has closed
// gets its sketch within the hour, and the events a sketch does not cover yet (which every
// search reads by id) stay about an hour's worth. Hourly rather than daily: a sketch built at
// a start while the Merkle sequencer was still behind covers almost nothing, and a daily job
// left searches reading the whole range until the next night. A run with nothing to do takes
// milliseconds.
func SearchSketchJob(b SketchBuilder, log *slog.Logger) Job {
	return Job{
		Name:       "search-sketches",
		Definition: gocron.DurationJob(time.Hour),
		Run:        BuildSearchSketches(b, log),
		StartNow:   true,
	}
}
