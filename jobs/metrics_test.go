package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/prometheus/client_golang/prometheus"

	"auditdb/jobs"
	"auditdb/models/pgtest"
)

// jobSeries reads the job series of name from the default registry: runs, failures and
// the duration histogram's sample count.
func jobSeries(t *testing.T, name string) (runs, failures float64, timed uint64) {
	t.Helper()
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "job" || m.GetLabel()[0].GetValue() != name {
				continue
			}
			switch f.GetName() {
			case "auditdb_job_runs_total":
				runs = m.GetCounter().GetValue()
			case "auditdb_job_failures_total":
				failures = m.GetCounter().GetValue()
			case "auditdb_job_duration_seconds":
				timed = m.GetHistogram().GetSampleCount()
			}
		}
	}
	return runs, failures, timed
}

// TestRunJobRecordsMetrics: every run counts and is timed under its job's label; failures
// and panics count as failures.
func TestRunJobRecordsMetrics(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	fail := false
	job := jobs.Job{Name: "metrics-test-job", Run: func(context.Context) error {
		if fail {
			return errors.New("failed on purpose")
		}
		return nil
	}}
	jobs.RunJob(ctx, job, log, nil)
	jobs.RunJob(ctx, job, log, nil)
	fail = true
	jobs.RunJob(ctx, job, log, nil)
	jobs.RunJob(ctx, jobs.Job{Name: "metrics-test-job", Run: func(context.Context) error { panic("boom") }}, log, nil)
	runs, failures, timed := jobSeries(t, "metrics-test-job")
	if runs != 4 || failures != 2 || timed != 4 {
		t.Errorf("runs %v, failures %v, timed %d; want 4, 2, 4", runs, failures, timed)
	}
}

// TestMissedSchedule: a job that overruns its interval (so its next runs are skipped)
// shows as missed; a job that runs on time does not; neither before the scheduler starts.
func TestMissedSchedule(t *testing.T) {
	sched, err := jobs.New(pgtest.DB(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	sched.MissedGrace = 0
	release := make(chan struct{})
	var stuckRuns atomic.Int32
	for _, j := range []jobs.Job{
		{Name: "missed-test-stuck", Definition: gocron.DurationJob(100 * time.Millisecond), Quiet: true,
			Run: func(ctx context.Context) error {
				stuckRuns.Add(1)
				select {
				case <-release:
				case <-ctx.Done():
				}
				return nil
			}},
		{Name: "missed-test-prompt", Definition: gocron.DurationJob(100 * time.Millisecond), Quiet: true,
			Run: func(context.Context) error { return nil }},
	} {
		if err := sched.Add(j); err != nil {
			t.Fatal(err)
		}
	}
	if got := sched.Missed(time.Now().Add(time.Hour)); got != nil {
		t.Fatalf("before Start: %v", got)
	}
	sched.Start()
	defer sched.Shutdown()
	defer close(release)
	deadline := time.Now().Add(10 * time.Second)
	var missed []string
	for time.Now().Before(deadline) {
		if missed = sched.Missed(time.Now()); slices.Contains(missed, "missed-test-stuck") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !slices.Equal(missed, []string{"missed-test-stuck"}) {
		t.Fatalf("missed %v, want only the stuck job", missed)
	}
	if stuckRuns.Load() != 1 {
		t.Errorf("the stuck job started %d times, want once", stuckRuns.Load())
	}
}
