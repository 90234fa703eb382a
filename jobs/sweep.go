package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-co-op/gocron/v2"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/merkle"
)

// OrgLister lists the organizations to sweep.
type OrgLister interface {
	All(ctx context.Context) ([]models.Organization, error)
}

// OrgChecker checks one organization end to end.
type OrgChecker interface {
	CheckOrg(ctx context.Context, org string) (*merkle.OrgReport, error)
}

// AlertRaiser raises alerts.
type AlertRaiser interface {
	Raise(ctx context.Context, a models.NewAlert) (string, error)
}

// SweepRecorder keeps each organization's outcome of a sweep (the dashboard shows the last).
type SweepRecorder interface {
	Record(ctx context.Context, org string, run models.SweepRun) error
}

// SweepIntegrity checks every organization (every event's hash and signature, the Merkle
// log, every checkpoint), records each outcome with runs (when not nil) and raises a
// CRITICAL COMPLIANCE alert for each organization with a problem. It returns an error when
// a check could not run at all.
func SweepIntegrity(orgs OrgLister, checker OrgChecker, alerts AlertRaiser, runs SweepRecorder, log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		list, err := orgs.All(ctx)
		if err != nil {
			return err
		}
		record := func(org string, run models.SweepRun) {
			if runs == nil {
				return
			}
			if err := runs.Record(ctx, org, run); err != nil {
				log.Error("integrity sweep could not record its outcome", "org", org, "err", err)
			}
		}
		var failed []string
		for _, o := range list {
			started := time.Now().UTC()
			rep, err := checker.CheckOrg(ctx, o.ID)
			if err != nil {
				failed = append(failed, o.ID)
				log.Error("integrity sweep could not check an organization", "org", o.ID, "err", err)
				record(o.ID, models.SweepRun{SweptAt: started, Error: err.Error()})
				continue
			}
			record(o.ID, models.SweepRun{SweptAt: started, OK: rep.OK(), Problems: rep.Problems, Events: rep.Events})
			if rep.OK() {
				continue
			}
			log.Error("integrity sweep found problems", "org", o.ID, "problems", rep.Problems)
			if _, err := alerts.Raise(ctx, sweepAlert(rep)); err != nil {
				return err
			}
		}
		if len(failed) > 0 {
			return fmt.Errorf("jobs: integrity sweep could not check %s", strings.Join(failed, ", "))
		}
		return nil
	}
}

// sweepAlert describes a failed check: the counts, and the first findings by kind.
func sweepAlert(rep *merkle.OrgReport) models.NewAlert {
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems in %d events, %d log entries and %d checkpoints:\n", rep.Problems, rep.Events, rep.Leaves, rep.Checkpoints)
	for i, f := range rep.Findings {
		if i == 20 {
			fmt.Fprintf(&b, "… and %d more\n", rep.Problems-20)
			break
		}
		b.WriteString(describe(f) + "\n")
	}
	return models.NewAlert{Org: rep.Org, Severity: models.SeverityCritical, Type: models.AlertCompliance,
		Title: fmt.Sprintf("Integrity sweep: %d problems found", rep.Problems), Description: b.String(),
		Source: "integrity-sweep", Metadata: map[string]any{"problems": rep.Problems, "findings": rep.Findings}}
}

// describe is one line about a finding.
func describe(f merkle.Finding) string {
	if f.EventID != 0 {
		return fmt.Sprintf("%s: event %d: %s", f.Kind, f.EventID, f.Detail)
	}
	return fmt.Sprintf("%s: %s", f.Kind, f.Detail)
}

// IntegritySweepJob runs SweepIntegrity daily at 03:30 UTC.
func IntegritySweepJob(orgs OrgLister, checker OrgChecker, alerts AlertRaiser, runs SweepRecorder, log *slog.Logger) Job {
	return Job{
		Name:       "integrity-sweep",
		Definition: gocron.DailyJob(1, gocron.NewAtTimes(gocron.NewAtTime(3, 30, 0))),
		Run:        SweepIntegrity(orgs, checker, alerts, runs, log),
	}
}

// IdempotencyPurgeJob deletes Idempotency-Key answers past their 24 hours, hourly.
func IdempotencyPurgeJob(s *ingest.IdempotencyStore) Job {
	return Job{
		Name:       "idempotency-purge",
		Definition: gocron.DurationJob(time.Hour),
		Run: func(ctx context.Context) error {
			_, err := s.PurgeExpired(ctx)
			return err
		},
	}
}
