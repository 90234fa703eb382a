package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/pgtest"
)

func TestRetentionRunThenVerify(t *testing.T) {
	w := newCLIWorld(t, "retention-org", "Retention")
	vars, ctx := w.vars, context.Background()
	var out bytes.Buffer
	// "standard": archive after 365 days, delete after 2555. Two events past deletion, three
	// past the archive day, one recent.
	now := time.Now().UTC()
	ages := []int{3000, 3000, 400, 401, 402, 1}
	evs := make([]models.Event, len(ages))
	for i, days := range ages {
		evs[i] = models.Event{OrganizationID: "retention-org", Timestamp: now.AddDate(0, 0, -days), Action: "cli.retention",
			Status: "success", DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0"}
	}
	w.write(evs)
	w.sequence()

	// While another run holds the lock, the command says so and changes nothing.
	conn, err := pgtest.DB(t).DB()
	if err != nil {
		t.Fatal(err)
	}
	lock, err := conn.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.ExecContext(ctx, `SELECT pg_advisory_lock(72000013)`); err != nil {
		t.Fatal(err)
	}
	err = Run(ctx, []string{"retention", "run", "--org", "retention-org"}, env(vars), &out)
	lock.ExecContext(ctx, `SELECT pg_advisory_unlock(72000013)`)
	lock.Close()
	if err == nil || !strings.Contains(err.Error(), "another retention run holds the lock") {
		t.Fatalf("run under the lock: %v", err)
	}
	if err := Run(ctx, []string{"retention", "run", "--org", "no-such-org"}, env(vars), &out); models.FieldOf(err) != "--org" {
		t.Fatalf("unknown org: %v", err)
	}
	for _, empty := range []string{"--org=", "--org= "} {
		if err := Run(ctx, []string{"retention", "run", empty, "--dry-run"}, env(vars), &out); models.FieldOf(err) != "--org" {
			t.Fatalf("retention run %s: %v, want an --org error (not a run over every organization)", empty, err)
		}
	}
	if err := Run(ctx, []string{"retention", "run", "extra"}, env(vars), &out); err == nil || !strings.Contains(err.Error(), `unexpected argument "extra"`) {
		t.Fatalf("a stray argument: %v", err)
	}

	out.Reset()
	if err := Run(ctx, []string{"retention", "run", "--org", "retention-org", "--dry-run"}, env(vars), &out); err != nil ||
		!strings.Contains(out.String(), "dry run (nothing changed)") || !strings.Contains(out.String(), "deleted 2") {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := Run(ctx, []string{"retention", "run", "--org", "retention-org"}, env(vars), &out); err != nil ||
		!strings.Contains(out.String(), "archived 3 events into 1 archives, deleted 2") {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	w.sequence() // the run's own gdpr.retention.apply event
	out.Reset()
	if err := Run(ctx, []string{"verify", "--org", "retention-org"}, env(vars), &out); err != nil ||
		!strings.Contains(out.String(), "retention-org: OK — 2 events") ||
		!strings.Contains(out.String(), "3 events verified from 1 archives") ||
		!strings.Contains(out.String(), "2 events removed by retention policy standard in run") {
		t.Fatalf("verify after retention: %v\n%s", err, out.String())
	}
}
