package reports_test

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"auditdb/models/merkle"
	"auditdb/models/pgtest"
	"auditdb/models/querycache"
	"auditdb/models/reports"
)

// countingBuilder counts the builds that reached the database.
type countingBuilder struct {
	gen   *reports.Generator
	loads int
}

func (b *countingBuilder) Build(ctx context.Context, org string, c reports.Criteria, now time.Time) (*reports.Report, error) {
	b.loads++
	return b.gen.Build(ctx, org, c, now)
}

// TestCachedPreviews: a report preview is answered from the query cache after a first
// build; a write the report reads (a verification outcome, an erasure-style update of
// audit_log) changes the answer at once; an event of the period still waiting for the
// sequencer is never hidden by a kept answer; two organizations with the same criteria
// never see each other's figures (this fails if the key lacked the organization).
func TestCachedPreviews(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	org, other := pgtest.NewOrg(t, "a"), pgtest.NewOrg(t, "b")
	now := time.Now().UTC()
	fixture(t, org, now)
	writeEvents(t, other, []ev{{now.Add(-time.Hour), "solo", "data.read", "success", "PHI", "Observation", "obs-9", "one read"}})
	key, err := merkle.NewCheckpointKey([]byte("checkpoint-test-seed-0123456789!"))
	if err != nil {
		t.Fatal(err)
	}
	log := merkle.NewLog(db, key)
	sequence := func() {
		t.Helper()
		if _, err := log.Sequence(ctx, 10000); err != nil {
			t.Fatal(err)
		}
	}
	sequence()
	src := &countingBuilder{gen: reports.NewGenerator(db)}
	qc := querycache.New(db, pgtest.Redis(t), querycache.Config{Prefix: "test:" + pgtest.OrgID(t, "p") + ":"}, nil)
	cached := reports.Cached{Gen: src, DB: db, Cache: qc}
	from, to := reports.LastDays(now.Add(time.Minute), 7)
	crit := reports.Criteria{Type: reports.TypeIntegrity, From: from, To: to}
	build := func(o string) *reports.Report {
		t.Helper()
		r, err := cached.Build(ctx, o, crit, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	first := build(org)
	again := build(org)
	if src.loads != 1 {
		t.Fatalf("two previews built %d times from the database, want once (a hit after the miss)", src.loads)
	}
	if again.Events != 126 || again.Events != first.Events || again.CriteriaUsed() != crit {
		t.Fatalf("kept preview: %d events, criteria %+v; want 126 and the criteria asked for", again.Events, again.CriteriaUsed())
	}

	// Another organization, same criteria: its own figures, never the kept ones.
	if r := build(other); r.Events != 1 {
		t.Fatalf("the other organization's preview has %d events, want its own 1", r.Events)
	}
	if r := build(org); r.Events != 126 {
		t.Fatalf("after the other's preview: %d events, want 126", r.Events)
	}

	// A verification outcome (a write the report reads) changes the answer.
	if err := db.Exec(`INSERT INTO audit_integrity_log (organization_id, audit_log_id, verification_timestamp, verification_status)
		SELECT organization_id, id, ?, 'tampered' FROM audit_log WHERE organization_id = ? LIMIT 1`,
		now, org).Error; err != nil {
		t.Fatal(err)
	}
	if r := build(org); r.Integrity.Tampered != 1 {
		t.Fatalf("after a verification found tampering the preview says %d tampered, want 1", r.Integrity.Tampered)
	}
	if r := build(other); r.Integrity.Tampered != 0 {
		t.Fatalf("the other organization's preview counts %d tampered, want 0", r.Integrity.Tampered)
	}

	// An event of the period waiting for the sequencer: the preview shows it, kept or not.
	loads := src.loads
	writeEvents(t, org, []ev{{now.Add(-2 * time.Hour), "late", "data.read", "success", "PHI", "Observation", "obs-7", "late read"}})
	if r := build(org); r.Events != 127 || r.Integrity.Pending != 1 {
		t.Fatalf("with an event waiting: %d events, %d pending; want 127 and 1", r.Events, r.Integrity.Pending)
	}
	sequence()
	if r := build(org); r.Events != 127 || r.Integrity.Pending != 0 && r.Integrity.Covered == 0 {
		t.Fatalf("after sequencing: %d events, want 127", r.Events)
	}
	if src.loads < loads+2 {
		t.Fatalf("the waiting event's previews came from the cache (%d builds, want at least %d)", src.loads, loads+2)
	}

	// An update of audit_log (as pseudonymization or erasure do, under their declared
	// purpose) retires the kept preview.
	build(org)
	if err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SELECT set_config('auditdb.purpose', 'gdpr', true)`).Error; err != nil {
			return err
		}
		return tx.Exec(`UPDATE audit_log SET principal_id = 'pseudonym-1' WHERE organization_id = ? AND principal_id = 'bulk'`, org).Error
	}); err != nil {
		t.Fatal(err)
	}
	before := src.loads
	build(org)
	if src.loads != before+1 {
		t.Fatalf("after an update of audit_log the kept preview was served (builds %d, want %d)", src.loads, before+1)
	}
}
