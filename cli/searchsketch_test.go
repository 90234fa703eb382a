package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"auditdb/models"
)

func TestSearchSketchBuild(t *testing.T) {
	w := newCLIWorld(t, "sketch-org", "Sketch")
	vars, db, ctx := w.vars, w.db, context.Background()
	var out bytes.Buffer
	w.write([]models.Event{{OrganizationID: "sketch-org", Timestamp: time.Now().UTC().AddDate(0, 0, -3), Action: "cli.sketch",
		Status: "success", DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0"}})

	if err := Run(ctx, []string{"search-sketch", "build", "--org", "no-such-org"}, env(vars), &out); models.FieldOf(err) != "--org" {
		t.Fatalf("an unknown organization: %v", err)
	}
	if err := Run(ctx, []string{"search-sketch", "build", "--org="}, env(vars), &out); models.FieldOf(err) != "--org" {
		t.Fatalf("an empty --org: %v", err)
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
