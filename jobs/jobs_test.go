package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"auditdb/jobs"
	"auditdb/models"
	"auditdb/models/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestLockerRunsAJobOnOneInstanceAtATime(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	a, b := jobs.NewPGLocker(db), jobs.NewPGLocker(db)
	lock, err := a.Lock(ctx, "partitions")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock(ctx, "partitions"); !errors.Is(err, jobs.ErrLocked) {
		t.Fatalf("second instance: err = %v, want ErrLocked", err)
	}
	other, err := b.Lock(ctx, "session-purge")
	if err != nil {
		t.Fatalf("a different job must not be blocked: %v", err)
	}
	other.Unlock(ctx)
	if err := lock.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := b.Lock(ctx, "partitions")
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	again.Unlock(ctx)
}

func TestMaintainPartitions(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	parts := models.NewPartitionManager(db)
	// An old partition, wholly past the longest retention (2555 days), must go; the
	// current month and six ahead must exist afterwards.
	old := time.Now().UTC().AddDate(-9, 0, 0)
	if err := parts.EnsureFor(ctx, "audit_log", old); err != nil {
		t.Fatal(err)
	}
	future := time.Now().UTC().AddDate(0, models.MonthsAhead, 0)
	run := jobs.MaintainPartitions(parts, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := run(ctx); err != nil {
		t.Fatal(err)
	}
	exists := func(name string) bool {
		var ok bool
		db.Raw("SELECT to_regclass(?) IS NOT NULL", name).Scan(&ok)
		return ok
	}
	if exists(models.PartitionName("audit_log", old)) {
		t.Error("expired partition still there")
	}
	for _, name := range []string{models.PartitionName("audit_log", time.Now()), models.PartitionName("audit_log", future),
		models.PartitionName("error_log", future)} {
		if !exists(name) {
			t.Errorf("partition %s missing", name)
		}
	}
}

func TestBuildSearchSketchesBuildsClosedDays(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	org := pgtest.NewOrg(t, "sketch-job")
	pgtest.WriteEvents(t, db, org, 3)
	var first time.Time
	if err := db.Raw(`SELECT min("timestamp") FROM audit_log WHERE organization_id = ?`, org).Scan(&first).Error; err != nil {
		t.Fatal(err)
	}
	// Two days after the first event, its day and the next are closed.
	now := func() time.Time { return first.UTC().AddDate(0, 0, 2) }
	run := jobs.BuildSearchSketches(models.NewSearchSketches(db, now), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := run(ctx); err != nil {
		t.Fatal(err)
	}
	var n int64
	db.Raw(`SELECT count(*) FROM search_sketches WHERE organization_id = ?`, org).Scan(&n)
	if n != 2 {
		t.Fatalf("%d sketches, want 2", n)
	}
}
