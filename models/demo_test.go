package models_test

import (
	"context"
	"os"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// TestSeedDemoMillion times the full-size demo seed. It writes a million events, so it runs
// only with AUDITDB_DEMO_MILLION=1.
func TestSeedDemoMillion(t *testing.T) {
	if os.Getenv("AUDITDB_DEMO_MILLION") != "1" {
		t.Skip("set AUDITDB_DEMO_MILLION=1 to time seeding 1,000,000 demo events")
	}
	ctx := context.Background()
	db := pgtest.DB(t)
	start := time.Now()
	res, err := models.SeedDemo(ctx, db, testSealer(t), models.NewPartitionManager(db), models.DemoOptions{Events: 1_000_000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if res.EventsWritten != 1_000_000 {
		t.Fatalf("wrote %d events, want 1000000", res.EventsWritten)
	}
	t.Logf("seeded %d events in %v (%.0f rows/s)", res.EventsWritten, elapsed.Round(time.Millisecond),
		float64(res.EventsWritten)/elapsed.Seconds())
}
