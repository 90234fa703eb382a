package jobs

import (
	"context"
	"time"

	"github.com/go-co-op/gocron/v2"
)

// StaleGDPROperations records the GDPR operations left running by a stopped instance as
// failed, so their requests can be started again.
type StaleGDPROperations interface {
	FailStale(ctx context.Context) (int64, error)
}

// GDPRJob runs FailStale every five minutes and at start.
func GDPRJob(s StaleGDPROperations) Job {
	return Job{
		Name:       "gdpr-stale-operations",
		Definition: gocron.DurationJob(5 * time.Minute),
		Run: func(ctx context.Context) error {
			_, err := s.FailStale(ctx)
			return err
		},
		Quiet:    true,
		StartNow: true,
	}
}
