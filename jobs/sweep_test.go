package jobs_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"auditdb/jobs"
	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/merkle"
	"auditdb/models/pgtest"
)

// fixture is a database with organizations whose events are sealed, logged and
// checkpointed.
type fixture struct {
	db      *gorm.DB
	sealer  *models.Sealer
	log     *merkle.Log
	checker *merkle.Verifier
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := pgtest.DB(t)
	sealer, err := models.NewSealer([]byte("jobs-test-signing-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := merkle.NewCheckpointKey([]byte("jobs-test-checkpoint-seed-012345"))
	if err != nil {
		t.Fatal(err)
	}
	l := merkle.NewLog(db, ck)
	l.CheckpointEvery = 0
	return &fixture{db: db, sealer: sealer, log: l, checker: merkle.NewVerifier(db, sealer, l)}
}

// org creates an organization with n events and returns its id and the events.
func (f *fixture) org(t *testing.T, prefix string, n int) (string, []models.Event) {
	t.Helper()
	ctx := context.Background()
	id := prefix + "-" + strings.NewReplacer("_", "x", "-", "x").Replace(strings.ToLower(models.RandomToken(6)))
	if _, err := models.NewOrgStore(f.db).Create(ctx, id, prefix); err != nil {
		t.Fatal(err)
	}
	evs := make([]models.Event, n)
	for i := range evs {
		evs[i] = models.Event{OrganizationID: id, Timestamp: time.Now().UTC().Add(-time.Duration(i) * time.Minute),
			Action: "job.test", Status: "success", DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0"}
		if err := f.sealer.Seal(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ingest.CopyEvents(ctx, f.db, models.NewPartitionManager(f.db), evs); err != nil {
		t.Fatal(err)
	}
	return id, evs
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestSequencerJobLogsEveryEvent(t *testing.T) {
	f := newFixture(t)
	org, evs := f.org(t, "seq", 30)
	if err := jobs.SequenceLog(f.log, time.Second, quiet())(context.Background()); err != nil {
		t.Fatal(err)
	}
	cp, err := f.log.Latest(context.Background(), org)
	if err != nil || cp.TreeSize != int64(len(evs)) {
		t.Fatalf("checkpoint %+v, %v; want one over %d events", cp, err, len(evs))
	}
	// The job vacuumed the queue it emptied, which gives its pages back.
	var size int64
	f.db.Raw(`SELECT pg_relation_size('audit_leaf_queue')`).Scan(&size)
	if size != 0 {
		t.Fatalf("the emptied queue still takes %d bytes: not vacuumed", size)
	}
}

func TestIntegritySweepRaisesAnAlert(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	clean, _ := f.org(t, "clean", 5)
	dirty, evs := f.org(t, "dirty", 5)
	deleted, gone := f.org(t, "deleted", 5)
	if err := jobs.SequenceLog(f.log, time.Second, quiet())(ctx); err != nil {
		t.Fatal(err)
	}
	err := f.db.Transaction(func(tx *gorm.DB) error {
		tx.Exec(`SET LOCAL session_replication_role = replica`)
		if err := tx.Exec(`UPDATE audit_log SET outcome_description = 'nothing to see' WHERE id = ?`, evs[2].ID).Error; err != nil {
			return err
		}
		return tx.Exec(`DELETE FROM audit_log WHERE id = ?`, gone[4].ID).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := jobs.SweepIntegrity(models.NewOrgStore(f.db), f.checker, models.NewAlertStore(f.db), models.NewSweepRunStore(f.db), quiet())(ctx); err != nil {
		t.Fatal(err)
	}
	type alert struct {
		OrganizationID, Severity, Type, Title, Description, Source string
	}
	var alerts []alert
	f.db.Raw(`SELECT organization_id, severity, type, title, description, source FROM alerts WHERE organization_id IN ?`,
		[]string{clean, dirty, deleted}).Scan(&alerts)
	got := map[string]alert{}
	for _, a := range alerts {
		got[a.OrganizationID] = a
	}
	type run struct {
		OrganizationID string
		OK             bool
		Problems       int64
	}
	var runs []run
	f.db.Raw(`SELECT organization_id, ok, problems FROM integrity_sweep_runs WHERE organization_id IN ?`,
		[]string{clean, dirty, deleted}).Scan(&runs)
	recorded := map[string]run{}
	for _, r := range runs {
		recorded[r.OrganizationID] = r
	}
	cases := []struct {
		name, org, mention string
		alert              bool
	}{
		{"untouched organization", clean, "", false},
		{"tampered event", dirty, "tampered: event " + itoa(evs[2].ID), true},
		{"deleted event", deleted, "missing: event " + itoa(gone[4].ID), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, swept := recorded[tc.org]
			if !swept || r.OK == tc.alert || (r.Problems > 0) != tc.alert {
				t.Fatalf("recorded sweep run %+v (present %v), want ok = %v", r, swept, !tc.alert)
			}
			a, ok := got[tc.org]
			if ok != tc.alert {
				t.Fatalf("alert raised = %v, want %v", ok, tc.alert)
			}
			if !ok {
				return
			}
			if a.Severity != "CRITICAL" || a.Type != "COMPLIANCE" || a.Source != "integrity-sweep" || !strings.Contains(a.Description, tc.mention) {
				t.Fatalf("alert %+v, want CRITICAL COMPLIANCE naming %q", a, tc.mention)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
