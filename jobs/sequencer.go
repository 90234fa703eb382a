package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/go-co-op/gocron/v2"

	"auditdb/models/merkle"
)

// Sequencer is what the sequencer job needs from the Merkle log.
type Sequencer interface {
	Sequence(ctx context.Context, limit int) (merkle.SequenceResult, error)
	VacuumQueue(ctx context.Context) error
}

// vacuumEvery is how often, at most, the job vacuums the queue it empties.
const vacuumEvery = 30 * time.Second

// sequenceChunk is how many queued events one transaction of the sequencer takes.
const sequenceChunk = 20_000

// SequenceLog appends newly committed events to their organizations' Merkle logs and
// publishes checkpoints, a chunk per transaction, until the queue is empty or budget is
// spent (the next run carries on).
// After emptying part of the queue it vacuums it, at most every vacuumEvery.
func SequenceLog(s Sequencer, budget time.Duration, log *slog.Logger) func(context.Context) error {
	var lastVacuum time.Time
	sequenced := 0 // since the last vacuum
	return func(ctx context.Context) error {
		deadline := time.Now().Add(budget)
		for {
			res, err := s.Sequence(ctx, sequenceChunk)
			if err != nil {
				return err
			}
			sequenced += res.Leaves
			if res.Checkpoints > 0 {
				log.Debug("published checkpoints", "orgs", res.Orgs, "leaves", res.Leaves)
			}
			if res.Leaves < sequenceChunk || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
		}
		if sequenced > 0 && time.Since(lastVacuum) >= vacuumEvery {
			if err := s.VacuumQueue(ctx); err != nil {
				return err
			}
			lastVacuum, sequenced = time.Now(), 0
		}
		return nil
	}
}

// SequencerJob runs SequenceLog every interval on one instance at a time (the scheduler's
// advisory-lock locker makes it a single leader).
func SequencerJob(s Sequencer, interval time.Duration, log *slog.Logger) Job {
	return Job{
		Name:       "merkle-sequencer",
		Definition: gocron.DurationJob(interval),
		Run:        SequenceLog(s, 10*interval, log),
		Quiet:      true,
	}
}
