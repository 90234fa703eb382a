package jobs

import (
	"context"
	"time"

	"github.com/go-co-op/gocron/v2"
)

// Notification job sizes: alerts handled and deliveries claimed per round, and the rounds
// per run (so one run is bounded and the next picks up the rest).
const (
	enqueueBatch = 100
	sendBatch    = 20
	maxRounds    = 10
)

// AlertEnqueuer enqueues the deliveries of newly raised alerts.
type AlertEnqueuer interface {
	EnqueueNew(ctx context.Context, limit int) (int, error)
}

// DeliverySender sends due deliveries.
type DeliverySender interface {
	SendDue(ctx context.Context, limit int) (int, error)
}

// EnqueueNotifications enqueues the deliveries of every alert raised since the last run,
// whoever raised it.
func EnqueueNotifications(s AlertEnqueuer) func(context.Context) error {
	return func(ctx context.Context) error {
		for range maxRounds {
			n, err := s.EnqueueNew(ctx, enqueueBatch)
			if err != nil || n < enqueueBatch {
				return err
			}
		}
		return nil
	}
}

// SendNotifications sends the deliveries that are due, a batch at a time.
func SendNotifications(s DeliverySender) func(context.Context) error {
	return func(ctx context.Context) error {
		for range maxRounds {
			n, err := s.SendDue(ctx, sendBatch)
			if err != nil || n < sendBatch {
				return err
			}
		}
		return nil
	}
}

// NotifyEnqueueJob runs EnqueueNotifications every 2 seconds. It runs apart from ingest
// and detection, which only write alerts.
func NotifyEnqueueJob(s AlertEnqueuer) Job {
	return Job{Name: "notify-enqueue", Definition: gocron.DurationJob(2 * time.Second),
		Run: EnqueueNotifications(s), Quiet: true}
}

// NotifySendJob runs SendNotifications every 2 seconds.
func NotifySendJob(s DeliverySender) Job {
	return Job{Name: "notify-send", Definition: gocron.DurationJob(2 * time.Second),
		Run: SendNotifications(s), Quiet: true}
}
