package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/pgtest"
)

func TestSearchSketchBuild(t *testing.T) {
	vars := map[string]string{"AUDITDB_DATABASE_URL": pgtest.DSN(t), "AUDITDB_DATA_DIR": t.TempDir()}
	ctx := context.Background()
	var out bytes.Buffer
	if err := Run(ctx, []string{"org", "create", "--id", "sketch-org", "--name", "Sketch"}, env(vars), &out); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	sealer, _, err := integrityKeys(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.DB(t)
	ev := models.Event{OrganizationID: "sketch-org", Timestamp: time.Now().UTC().AddDate(0, 0, -3), Action: "cli.sketch",
		Status: "success", DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0"}
	if err := sealer.Seal(&ev); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.CopyEvents(ctx, db, models.NewPartitionManager(db), []models.Event{ev}); err != nil {
		t.Fatal(err)
	}

	if err := Run(ctx, []string{"search-sketch", "build", "--org", "no-such-org"}, env(vars), &out); models.FieldOf(err) != "--org" {
		t.Fatalf("an unknown organization: %v", err)
	}
	out.Reset()
	if err := Run(ctx, []string{"search-sketch", "build", "--org", "sketch-org"}, env(vars), &out); err != nil {
		t.Fatal(err)
	}
	// The event's day and the two after it; today is not closed.
	if !strings.Contains(out.String(), "1 organizations, 3 days built") {
		t.Fatalf("output: %s", out.String())
	}
	var n int64
	db.Raw(`SELECT count(*) FROM search_sketches WHERE organization_id = 'sketch-org'`).Scan(&n)
	if n != 3 {
		t.Fatalf("%d sketches, want 3", n)
	}
	if err := Run(ctx, []string{"search-sketch", "build", "extra"}, env(vars), &out); err == nil || !strings.Contains(err.Error(), `unexpected argument "extra"`) {
		t.Fatalf("a stray argument: %v", err)
	}
	if err := Run(ctx, []string{"search-sketch"}, env(vars), &out); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("without build: %v", err)
	}
}
