package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"auditdb/jobs"
	"auditdb/models"
	"auditdb/models/pgtest"
)

// recorder keeps what the error log would have received.
type recorder struct{ got []models.ErrorRecord }

func (r *recorder) Record(_ context.Context, rec models.ErrorRecord) { r.got = append(r.got, rec) }

func TestFailedJobsAreRecorded(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name    string
		run     func(context.Context) error
		want    int
		message string
	}{
		{"an error", func(context.Context) error { return errors.New("sweep of org 12 failed") }, 1, "sweep of org 12 failed"},
		{"a panic", func(context.Context) error { panic("boom") }, 1, "jobs: nightly panicked: boom"},
		{"a success", func(context.Context) error { return nil }, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{}
			jobs.RunJob(context.Background(), jobs.Job{Name: "nightly", Run: tc.run}, log, r)
			if len(r.got) != tc.want {
				t.Fatalf("recorded %+v, want %d", r.got, tc.want)
			}
			if tc.want == 1 {
				g := r.got[0]
				if g.Kind != models.ErrorKindJob || g.Component != "jobs" || g.Operation != "nightly" || g.Message != tc.message {
					t.Fatalf("record = %+v", g)
				}
			}
		})
	}
	t.Run("without a recorder it only logs", func(t *testing.T) {
		jobs.RunJob(context.Background(), jobs.Job{Name: "nightly", Run: func(context.Context) error { return errors.New("x") }}, log, nil)
	})
}

func TestErrorLogRetentionJobDeletesOldRows(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	store := models.NewErrorLogStore(db, models.NewPartitionManager(db))
	org := pgtest.OrgID(t, "")
	now := time.Now().UTC()
	if err := store.Insert(ctx, []models.ErrorRecord{
		{Kind: "job", Component: "jobs", Operation: "old", Org: org, Message: "gone", At: now.AddDate(0, 0, -31)},
		{Kind: "job", Component: "jobs", Operation: "new", Org: org, Message: "kept", At: now.AddDate(0, 0, -29)},
	}); err != nil {
		t.Fatal(err)
	}
	job := jobs.ErrorLogRetentionJob(store, 0, func() time.Time { return now }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := job.Run(ctx); err != nil {
		t.Fatal(err)
	}
	groups, err := store.List(ctx, models.ErrorScope{Org: org}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].Operation != "new" {
		t.Fatalf("after retention: %+v, want only the 29-day-old error", groups)
	}
	var old int64
	if err := db.Raw(`SELECT count(*) FROM error_log WHERE organization_id = ? AND operation = 'old'`, org).Scan(&old).Error; err != nil {
		t.Fatal(err)
	}
	if old != 0 {
		t.Fatalf("%d rows past 30 days remain", old)
	}
}
