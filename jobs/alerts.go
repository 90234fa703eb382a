package jobs

import (
	"context"
	"log/slog"

	"github.com/go-co-op/gocron/v2"
)

// AlertPurger deletes resolved alerts past their organization's retention.
type AlertPurger interface {
	PurgeResolved(ctx context.Context) (int64, error)
}

// PurgeResolvedAlerts deletes the resolved alerts older than each organization's retention
// and logs how many. It returns the store's error.
func PurgeResolvedAlerts(alerts AlertPurger, log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		n, err := alerts.PurgeResolved(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			log.Info("resolved alerts past retention deleted", "alerts", n)
		}
		return nil
	}
}

// AlertRetentionJob runs PurgeResolvedAlerts daily at 04:15 UTC.
func AlertRetentionJob(alerts AlertPurger, log *slog.Logger) Job {
	return Job{
		Name:       "alert-retention",
		Definition: gocron.DailyJob(1, gocron.NewAtTimes(gocron.NewAtTime(4, 15, 0))),
		Run:        PurgeResolvedAlerts(alerts, log),
	}
}
