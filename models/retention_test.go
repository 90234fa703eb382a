package models_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/merkle"
	"auditdb/models/pgtest"
)

// retentionFixture is an organization with a policy "short" of its own (archive after 10
// days, delete after 30), a Merkle log and an engine on an injected clock.
type retentionFixture struct {
	t      *testing.T
	db     *gorm.DB
	org    string
	log    *merkle.Log
	engine *models.RetentionEngine
	now    time.Time
}

func newRetentionFixture(t *testing.T) *retentionFixture {
	db := pgtest.DB(t)
	org := pgtest.NewOrg(t, "")
	if err := db.Exec(`INSERT INTO audit_retention_policy (organization_id, policy_name, retention_days, archive_after_days,
		data_classification, description) VALUES (?, 'short', 30, 10, 'INTERNAL', 'test')`, org).Error; err != nil {
		t.Fatal(err)
	}
	key, err := merkle.NewCheckpointKey([]byte("checkpoint-test-seed-0123456789!"))
	if err != nil {
		t.Fatal(err)
	}
	l := merkle.NewLog(db, key)
	l.CheckpointEvery = 0
	parts := models.NewPartitionManager(db)
	f := &retentionFixture{t: t, db: db, org: org, log: l}
	f.engine = models.NewRetentionEngine(db, models.NewAuditTrail(db, pgtest.Sealer(t), parts), parts)
	f.engine.Now = func() time.Time { return f.now }
	return f
}

// write seals and writes one event of policy "short" per time (principal "p-<i>"), sequences
// them into the log and returns them with their ids.
func (f *retentionFixture) write(times ...time.Time) []models.Event {
	f.t.Helper()
	return f.writeWith(pgtest.Sealer(f.t).Seal, times...)
}

// writeWith is write sealing with seal (a Sealer's Seal or SealV1).
func (f *retentionFixture) writeWith(seal func(*models.Event) error, times ...time.Time) []models.Event {
	t := f.t
	t.Helper()
	evs := make([]models.Event, len(times))
	for i, ts := range times {
		p := "p-" + string(rune('a'+i))
		evs[i] = models.Event{OrganizationID: f.org, Timestamp: ts, Action: "test.retention", Status: "success",
			DataClassification: "INTERNAL", RetentionPolicy: "short", EventVersion: "1.0", PrincipalID: &p,
			Details: []byte(`{"ip":"10.0.0.1","n":1}`)}
		if err := seal(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ingest.CopyEvents(context.Background(), f.db, models.NewPartitionManager(f.db), evs); err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		if err := f.db.Raw(`SELECT id FROM audit_log WHERE organization_id = ? AND hash = ?`, f.org, evs[i].Hash).Scan(&evs[i].ID).Error; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.log.Sequence(context.Background(), 100_000); err != nil {
		t.Fatal(err)
	}
	return evs
}

// writeOne seals and copies one event of the organization at ts under policy and class,
// without sequencing it; with unsequenced, it is also taken out of the leaf queue, so it
// never reaches the Merkle log.
func (f *retentionFixture) writeOne(ts time.Time, policy, class string, unsequenced bool) {
	f.t.Helper()
	ev := models.Event{OrganizationID: f.org, Timestamp: ts, Action: "test.retention", Status: "success",
		DataClassification: class, RetentionPolicy: policy, EventVersion: "1.0"}
	if err := pgtest.Sealer(f.t).Seal(&ev); err != nil {
		f.t.Fatal(err)
	}
	if _, err := ingest.CopyEvents(context.Background(), f.db, models.NewPartitionManager(f.db), []models.Event{ev}); err != nil {
		f.t.Fatal(err)
	}
	if unsequenced {
		if err := f.db.Exec(`DELETE FROM audit_leaf_queue WHERE organization_id = ?`, f.org).Error; err != nil {
			f.t.Fatal(err)
		}
	}
}

// writeHours writes n events an hour apart from start (see write).
func (f *retentionFixture) writeHours(start time.Time, n int) []models.Event {
	f.t.Helper()
	times := make([]time.Time, n)
	for i := range times {
		times[i] = start.Add(time.Duration(i) * time.Hour)
	}
	return f.write(times...)
}

// afterFirstBatch makes the engine run statement q (with args) once, after its first
// committed batch: a change made while a run goes on.
func (f *retentionFixture) afterFirstBatch(q string, args ...any) {
	done := false
	f.engine.AfterBatch = func() {
		if done {
			return
		}
		done = true
		if err := f.db.Exec(q, args...).Error; err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *retentionFixture) run(at time.Time) *models.RetentionResult {
	f.t.Helper()
	f.now = at
	res, err := f.engine.Run(context.Background(), models.RetentionOptions{Org: f.org})
	if err != nil {
		f.t.Fatalf("run at %s: %v", at, err)
	}
	return res
}

func (f *retentionFixture) count(sql string) int64 {
	f.t.Helper()
	var n int64
	if err := f.db.Raw(sql, f.org).Scan(&n).Error; err != nil {
		f.t.Fatal(err)
	}
	return n
}

// placement counts where each logged event of the organization is: in audit_log, in a live
// archive, removed by record; every one must be in exactly one place.
func (f *retentionFixture) checkExactlyOnce() (live, archived, removed int64) {
	f.t.Helper()
	var bad int64
	err := f.db.Raw(`SELECT count(*) FILTER (WHERE n <> 1) FROM (
		SELECT (SELECT count(*) FROM audit_log e WHERE e.organization_id = l.organization_id AND e.id = l.audit_log_id)
		     + (SELECT count(*) FROM archived_events a WHERE a.organization_id = l.organization_id AND a.audit_log_id = l.audit_log_id)
		     + (SELECT count(*) FROM removed_events d WHERE d.organization_id = l.organization_id AND d.audit_log_id = l.audit_log_id) AS n
		FROM audit_leaf l WHERE l.organization_id = ?) x`, f.org).Scan(&bad).Error
	if err != nil {
		f.t.Fatal(err)
	}
	if bad != 0 {
		f.t.Fatalf("%d logged events are not in exactly one place", bad)
	}
	return f.count(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = 'test.retention'`),
		f.count(`SELECT count(*) FROM archived_events WHERE organization_id = ?`),
		f.count(`SELECT count(*) FROM removed_events WHERE organization_id = ?`)
}

func (f *retentionFixture) verify() *merkle.OrgReport {
	f.t.Helper()
	if _, err := f.log.Sequence(context.Background(), 100_000); err != nil {
		f.t.Fatal(err)
	}
	rep, err := merkle.NewVerifier(f.db, pgtest.Sealer(f.t), f.log).CheckOrg(context.Background(), f.org)
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

func day(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }

func TestRetentionArchivesOnItsDayDeletesUnlessHeld(t *testing.T) {
	f := newRetentionFixture(t)
	base := day(2021, time.January, 10, 15)
	evs := f.write(base, base.Add(time.Minute), base.Add(2*time.Minute), day(2021, time.January, 15, 9))

	// Archive after 10 days: due on January 20.
	if res := f.run(day(2021, time.January, 19, 23)); res.Archived != 0 || res.Deleted != 0 {
		t.Fatalf("the day before: archived %d, deleted %d", res.Archived, res.Deleted)
	}
	res := f.run(day(2021, time.January, 20, 0))
	if res.Archived != 3 || res.Archives != 1 || res.Deleted != 0 {
		t.Fatalf("on the day: %+v", res)
	}
	live, archived, removed := f.checkExactlyOnce()
	if live != 1 || archived != 3 || removed != 0 {
		t.Fatalf("after archival: %d live, %d archived, %d removed", live, archived, removed)
	}
	var a models.Archive
	if err := f.db.Raw(`SELECT * FROM archive_storage WHERE organization_id = ?`, f.org).Scan(&a).Error; err != nil {
		t.Fatal(err)
	}
	if a.EventCount != 3 || a.Policy != "short" || a.Part != 1 || a.MinEventID != evs[0].ID || a.MaxEventID != evs[2].ID ||
		!a.FirstEventAt.Equal(base) || a.CompressedSize == 0 || a.OriginalSize <= a.CompressedSize/2 || len(a.SHA256Original) != 64 ||
		a.Month.Format("2006-01") != "2021-01" {
		t.Fatalf("archive metadata: %+v", a)
	}
	r, err := models.OpenArchive(context.Background(), f.db, f.org, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	first, err := r.Next()
	if err != nil || first.ID != evs[0].ID || first.Hash != evs[0].Hash || *first.PrincipalID != "p-a" {
		t.Fatalf("first archived line: %+v %v", first, err)
	}
	r.Close()
	if rep := f.verify(); !rep.OK() || rep.Archived != 3 || rep.Archives != 1 {
		t.Fatalf("verify after archival: %+v", rep)
	}

	// A hold on principal p-b keeps that event past its deletion day (February 9).
	if err := f.db.Exec(`INSERT INTO legal_holds (organization_id, name, reason, scope, principal_id, placed_by)
		VALUES (?, 'case 1', 'litigation', 'principal', 'p-b', 'counsel')`, f.org).Error; err != nil {
		t.Fatal(err)
	}
	if res := f.run(day(2021, time.February, 8, 23)); res.Deleted != 0 || res.Archived != 1 {
		t.Fatalf("the day before deletion: deleted %d, archived %d (the January 15 event)", res.Deleted, res.Archived)
	}
	res = f.run(day(2021, time.February, 9, 1))
	if res.Deleted != 2 || res.KeptByHolds != 1 || res.Archived != 0 {
		t.Fatalf("deletion day: %+v", res)
	}
	live, archived, removed = f.checkExactlyOnce()
	if live != 0 || archived != 2 || removed != 2 {
		t.Fatalf("after deletion: %d live, %d archived, %d removed", live, archived, removed)
	}
	if n := f.count(`SELECT count(*) FROM archived_events WHERE organization_id = ? AND audit_log_id = ` +
		strconv.FormatInt(evs[1].ID, 10)); n != 1 {
		t.Fatal("the held event left its archive")
	}

	// Released, the next run deletes it; its archive is emptied.
	if err := f.db.Exec(`UPDATE legal_holds SET released_at = now(), released_by = 'counsel' WHERE organization_id = ?`, f.org).Error; err != nil {
		t.Fatal(err)
	}
	res = f.run(day(2021, time.February, 15, 1))
	if res.Deleted != 2 || res.KeptByHolds != 0 {
		t.Fatalf("after the release: %+v", res)
	}
	live, archived, removed = f.checkExactlyOnce()
	if live != 0 || archived != 0 || removed != 4 {
		t.Fatalf("after the release: %d live, %d archived, %d removed", live, archived, removed)
	}
	if n := f.count(`SELECT count(*) FROM archive_storage WHERE organization_id = ? AND deleted_at IS NOT NULL AND content IS NULL`); n != 2 {
		t.Fatalf("%d emptied archives, want 2", n)
	}
	rep := f.verify()
	if !rep.OK() || rep.Removed != 4 || len(rep.RemovedBy) != 2 || !strings.Contains(rep.RemovedBy[0], "removed by retention policy short in run") {
		t.Fatalf("verify after deletion: %+v", rep)
	}
	var apply []models.Event
	if err := f.db.Where("organization_id = ? AND action = ?", f.org, models.ActionRetentionApply).Find(&apply).Error; err != nil {
		t.Fatal(err)
	}
	if len(apply) != 4 || !strings.Contains(string(apply[len(apply)-1].Details), `"removedIdsSha256"`) {
		t.Fatalf("%d gdpr.retention.apply events: %+v", len(apply), apply)
	}
}

func TestRetentionCancelledRunResumesExactlyOnce(t *testing.T) {
	f := newRetentionFixture(t)
	var times []time.Time
	for i := range 7 {
		times = append(times, day(2022, time.March, 1, 0).Add(time.Duration(i)*time.Hour)) // due for deletion
	}
	for i := range 9 {
		times = append(times, day(2022, time.April, 1, 0).Add(time.Duration(i)*time.Hour)) // due for the archive only
	}
	f.write(times...)
	f.engine.PartSize, f.engine.DeleteBatch = 2, 3
	ctx, cancel := context.WithCancel(context.Background())
	batches := 0
	f.engine.AfterBatch = func() {
		batches++
		if batches == 2 {
			cancel()
		}
	}
	f.now = day(2022, time.April, 20, 0)
	if _, err := f.engine.Run(ctx, models.RetentionOptions{Org: f.org}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	live, archived, removed := f.checkExactlyOnce()
	if removed != 6 || archived != 0 || live != 10 {
		t.Fatalf("after the cancelled run: %d live, %d archived, %d removed", live, archived, removed)
	}
	f.engine.AfterBatch = nil
	res := f.run(day(2022, time.April, 20, 0))
	if res.Deleted != 1 || res.Archived != 9 || res.Archives != 5 {
		t.Fatalf("resumed run: %+v", res)
	}
	live, archived, removed = f.checkExactlyOnce()
	if live != 0 || archived != 9 || removed != 7 {
		t.Fatalf("after the resumed run: %d live, %d archived, %d removed", live, archived, removed)
	}
	if rep := f.verify(); !rep.OK() || rep.Archived != 9 || rep.Removed != 7 {
		t.Fatalf("verify: %+v", rep)
	}
	var dropped []string
	for _, m := range []string{"2022_03", "2022_04"} {
		var exists bool
		f.db.Raw(`SELECT to_regclass(?) IS NOT NULL`, "audit_log_"+m).Scan(&exists)
		if !exists {
			dropped = append(dropped, m)
		}
	}
	// March is emptied and dropped; April, the run's current month, is never dropped.
	if strings.Join(dropped, ",") != "2022_03" || strings.Join(res.DroppedPartitions, ",") != "audit_log_2022_03" {
		t.Fatalf("emptied partitions dropped: %v (run says %v)", dropped, res.DroppedPartitions)
	}
	var statuses []string
	f.db.Raw(`SELECT status FROM retention_runs WHERE organization_id = ? ORDER BY id`, f.org).Scan(&statuses)
	if strings.Join(statuses, ",") != "failed,completed" {
		t.Fatalf("runs recorded: %v", statuses)
	}
}

func TestRetentionArchiveTamperingIsDetected(t *testing.T) {
	f := newRetentionFixture(t)
	f.write(day(2023, time.May, 1, 0), day(2023, time.May, 2, 0))
	if res := f.run(day(2023, time.May, 20, 0)); res.Archived != 2 {
		t.Fatalf("archived %d", res.Archived)
	}
	if rep := f.verify(); !rep.OK() {
		t.Fatalf("before tampering: %+v", rep)
	}
	var id string
	f.db.Raw(`SELECT id FROM archive_storage WHERE organization_id = ?`, f.org).Scan(&id)
	if err := f.db.Exec(`UPDATE archive_storage SET content = overlay(content PLACING '\xff'::bytea FROM 20 FOR 1) WHERE id = ?`, id).Error; err != nil {
		t.Fatal(err)
	}
	rep := f.verify()
	if rep.OK() || rep.Findings[0].Kind != merkle.FindingArchive || !strings.Contains(rep.Findings[0].Detail, "SHA-256") {
		t.Fatalf("tampered archive: %+v", rep)
	}
	if _, err := models.OpenArchive(context.Background(), f.db, f.org, id); !errors.Is(err, models.ErrArchiveCorrupt) {
		t.Fatalf("reading a tampered archive: %v", err)
	}
	// Deletion refuses to rewrite a corrupt archive rather than losing track of its events.
	f.now = day(2023, time.June, 30, 0)
	if _, err := f.engine.Run(context.Background(), models.RetentionOptions{Org: f.org}); !errors.Is(err, models.ErrArchiveCorrupt) {
		t.Fatalf("deleting from a tampered archive: %v", err)
	}
	if _, archived, removed := f.checkExactlyOnce(); archived != 2 || removed != 0 {
		t.Fatalf("after the refused deletion: %d archived, %d removed", archived, removed)
	}
}

func TestRetentionRunWhileAnotherHoldsTheLock(t *testing.T) {
	f := newRetentionFixture(t)
	f.write(day(2024, time.February, 1, 0))
	sqlDB, err := f.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sqlDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), `SELECT pg_advisory_lock(72000013)`); err != nil {
		t.Fatal(err)
	}
	f.now = day(2024, time.February, 20, 0)
	_, err = f.engine.Run(context.Background(), models.RetentionOptions{Org: f.org})
	if !models.IsRetentionRunning(err) || models.KindOf(err) != models.KindConflict {
		t.Fatalf("run under another's lock: %v", err)
	}
	if live, archived, _ := f.checkExactlyOnce(); live != 1 || archived != 0 {
		t.Fatal("a refused run changed something")
	}
	if _, err := conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(72000013)`); err != nil {
		t.Fatal(err)
	}
	if res := f.run(f.now); res.Archived != 1 {
		t.Fatalf("after the lock was released: %+v", res)
	}
	// A dry run counts and changes nothing.
	f.write(day(2024, time.February, 2, 0))
	f.now = day(2024, time.February, 25, 0)
	res, err := f.engine.Run(context.Background(), models.RetentionOptions{Org: f.org, DryRun: true})
	if err != nil || res.Archived != 1 {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	if live, _, _ := f.checkExactlyOnce(); live != 1 {
		t.Fatal("the dry run changed something")
	}
}

// Archived events of both schemes verify from their archive lines: a v2 line carries its
// field commitments through compression and back.
func TestArchivedEventsOfBothSchemesVerify(t *testing.T) {
	f := newRetentionFixture(t)
	base := day(2021, time.January, 10, 15)
	v1 := f.writeWith(pgtest.Sealer(t).SealV1, base)
	v2 := f.write(base.Add(time.Minute), base.Add(2*time.Minute))
	if v1[0].HashAlgorithm != models.HashAlgorithmV1 || v2[0].HashAlgorithm != models.HashAlgorithmV3 {
		t.Fatalf("schemes %s and %s", v1[0].HashAlgorithm, v2[0].HashAlgorithm)
	}
	if res := f.run(day(2021, time.January, 21, 1)); res.Archived != 3 {
		t.Fatalf("archived %d, want 3", res.Archived)
	}
	rep := f.verify()
	// The live per-field events are the run's own audit events; the archive holds two more.
	live := f.count(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND hash_algorithm IN ('sha256-jcs-v2', 'sha256-jcs-v3')`)
	if !rep.OK() || rep.Archived != 3 || rep.V2Events != live+2 {
		t.Fatalf("after archiving: ok %v, %d archived, %d v2 events (want 3 and %d): %+v", rep.OK(), rep.Archived, rep.V2Events, live+2, rep.Findings)
	}
}

// The console's preview and the run select with the same rules (retentionRules with its
// classification fallback, whole-day cutoffs, HeldPredicate): on a mix of global and
// organization policies, classifications and a legal hold, what the preview says a run
// would archive, delete and keep is what a dry run counts and what the run does.
func TestRetentionPreviewAndRunAgree(t *testing.T) {
	f := newRetentionFixture(t) // the organization's own "short" (INTERNAL: archive 10, delete 30)
	ctx := context.Background()
	if err := f.db.Exec(`INSERT INTO audit_retention_policy (organization_id, policy_name, retention_days, archive_after_days,
		data_classification, description) VALUES (?, 'conf-own', 20, 5, 'CONFIDENTIAL', 'test')`, f.org).Error; err != nil {
		t.Fatal(err)
	}
	now := day(2026, 6, 15, 12)
	sealer := pgtest.Sealer(t)
	kinds := []struct{ class, policy string }{
		{"INTERNAL", "short"},              // the organization's own, by name
		{"INTERNAL", "standard"},           // the organization's INTERNAL policy wins over the global "standard"
		{"PUBLIC", "minimal"},              // global: archive 30, delete 90
		{"CONFIDENTIAL", "confidential"},   // the organization's "conf-own" wins
		{"PHI", "phi_extended"},            // global, nothing due within 120 days
		{"INTERNAL", "no-such-policy"},     // falls back to the organization's INTERNAL policy
		{"CONFIDENTIAL", "no-such-either"}, // falls back to "conf-own"
	}
	var evs []models.Event
	for i := range 7 * 40 {
		k := kinds[i%len(kinds)]
		principal := "free"
		if i%4 == 0 {
			principal = "held"
		}
		ev := models.Event{OrganizationID: f.org, Timestamp: now.Add(-time.Duration(i*10) * time.Hour), Action: "test.retention",
			Status: "success", DataClassification: k.class, RetentionPolicy: k.policy, EventVersion: "1.0", PrincipalID: &principal}
		if err := sealer.Seal(&ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if _, err := ingest.CopyEvents(ctx, f.db, models.NewPartitionManager(f.db), evs); err != nil {
		t.Fatal(err)
	}
	if _, err := f.log.Sequence(ctx, 100_000); err != nil {
		t.Fatal(err)
	}
	store := models.NewRetentionPolicyStore(f.db, models.NewAuditTrail(f.db, sealer, models.NewPartitionManager(f.db)))
	if _, err := store.PlaceHold(ctx, f.org, models.LegalHoldInput{Name: "litigation", Reason: "case 7", Scope: "principal",
		PrincipalID: "held"}, models.Actor{UserID: 1, Email: "owner@example.test"}); err != nil {
		t.Fatal(err)
	}

	preview, err := store.RetentionPreview(ctx, f.org, now)
	if err != nil {
		t.Fatal(err)
	}
	if preview.Archive == 0 || preview.Delete == 0 || preview.KeptByHolds == 0 {
		t.Fatalf("the dataset should exercise archive, delete and hold: %+v", preview)
	}
	f.now = now
	dry, err := f.engine.Run(ctx, models.RetentionOptions{Org: f.org, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.Archived != preview.Archive || dry.Deleted != preview.Delete || dry.KeptByHolds != preview.KeptByHolds {
		t.Fatalf("dry run archives %d, deletes %d, keeps %d; the preview says %d, %d, %d",
			dry.Archived, dry.Deleted, dry.KeptByHolds, preview.Archive, preview.Delete, preview.KeptByHolds)
	}
	res := f.run(now)
	if res.Archived != preview.Archive || res.Deleted != preview.Delete || res.KeptByHolds != preview.KeptByHolds {
		t.Fatalf("the run archived %d, deleted %d, kept %d; the preview said %d, %d, %d",
			res.Archived, res.Deleted, res.KeptByHolds, preview.Archive, preview.Delete, preview.KeptByHolds)
	}
	// No held event went.
	var heldHashes []string
	for _, ev := range evs {
		if *ev.PrincipalID == "held" {
			heldHashes = append(heldHashes, ev.Hash)
		}
	}
	var heldGone int64
	if err := f.db.Raw(`SELECT count(*) FROM removed_events WHERE organization_id = ? AND event_hash IN ?`, f.org, heldHashes).
		Scan(&heldGone).Error; err != nil || heldGone != 0 {
		t.Fatalf("%d held events were deleted (%v)", heldGone, err)
	}
	after, err := store.RetentionPreview(ctx, f.org, now)
	if err != nil {
		t.Fatal(err)
	}
	if after.Archive != 0 || after.Delete != 0 {
		t.Fatalf("after the run the preview still has work: %+v", after)
	}
	f.checkExactlyOnce()
}

// An archive whose every event is due under one policy goes without being decompressed: its
// archived_events rows become removed_events rows carrying the same leaf and hash, and the
// archive row stays (emptied). archive_storage rows can be neither deleted nor renumbered,
// which keeps archived_events.archive_id pointing at an archive without a foreign key.
func TestRetentionArchiveDueWholeIsRemovedFromItsRecords(t *testing.T) {
	f := newRetentionFixture(t)
	f.write(day(2023, time.May, 1, 0), day(2023, time.May, 2, 0), day(2023, time.May, 3, 0))
	if res := f.run(day(2023, time.May, 20, 0)); res.Archived != 3 {
		t.Fatalf("archived %d", res.Archived)
	}
	var id string
	f.db.Raw(`SELECT id FROM archive_storage WHERE organization_id = ?`, f.org).Scan(&id)
	if n := f.count(`SELECT count(*) FROM archived_events a JOIN audit_leaf l USING (organization_id, audit_log_id)
		WHERE a.organization_id = ? AND a.leaf_index = l.leaf_index AND a.event_hash = l.event_hash`); n != 3 {
		t.Fatalf("%d archived_events rows match their log entries", n)
	}
	for _, q := range []string{`DELETE FROM archive_storage WHERE id = ?`, `UPDATE archive_storage SET id = id || 'x' WHERE id = ?`} {
		if err := f.db.Exec(q, id).Error; err == nil || !strings.Contains(err.Error(), "archive_storage") {
			t.Fatalf("%s: %v", q, err)
		}
	}
	res := f.run(day(2023, time.June, 30, 0))
	if res.Deleted != 3 || res.DeletedArchived != 3 {
		t.Fatalf("deleted %d (%d from archives)", res.Deleted, res.DeletedArchived)
	}
	if live, archived, removed := f.checkExactlyOnce(); live != 0 || archived != 0 || removed != 3 {
		t.Fatalf("after deletion: %d live, %d archived, %d removed", live, archived, removed)
	}
	if n := f.count(`SELECT count(*) FROM removed_events d JOIN audit_leaf l USING (organization_id, audit_log_id)
		WHERE d.organization_id = ? AND d.leaf_index = l.leaf_index AND d.event_hash = l.event_hash
		AND d.reason = 'retention' AND d.policy = 'short' AND d.run_id IS NOT NULL`); n != 3 {
		t.Fatalf("%d removed_events rows match their log entries and policy", n)
	}
	if n := f.count(`SELECT count(*) FROM archive_storage WHERE organization_id = ? AND deleted_at IS NOT NULL
		AND content IS NULL AND event_count = 0`); n != 1 {
		t.Fatalf("%d emptied archives", n)
	}
	if rep := f.verify(); !rep.OK() {
		t.Fatalf("verify after deletion: %+v", rep)
	}
}

// The archive row goes in by a binary COPY written by hand: text with backslashes, tabs and
// newlines, bytes of every value, the month and the times come back as they were written.
func TestArchiveRowCopyKeepsEveryByte(t *testing.T) {
	f := newRetentionFixture(t)
	var runID int64
	if err := f.db.Raw(`INSERT INTO retention_runs (organization_id) VALUES (?) RETURNING id`, f.org).Scan(&runID).Error; err != nil {
		t.Fatal(err)
	}
	content := make([]byte, 200_000)
	for i := range content {
		content[i] = byte(i * 7)
	}
	meta := `{"policy":"a\\b\tc\nd","month":"2023-05"}`
	a := models.Archive{ID: f.org + "/x\\y\tz/2023-05/1", OrganizationID: f.org, Policy: "x\\y\tz",
		Month: day(2023, time.May, 1, 0), Part: 1, EventCount: 3, FirstEventAt: day(2023, time.May, 1, 5),
		LastEventAt: day(2023, time.May, 2, 6), MinEventID: 10, MaxEventID: 12, MinLeafIndex: 0, MaxLeafIndex: 2,
		OriginalSize: 999, CompressedSize: int64(len(content)), SHA256Original: "o", SHA256Compressed: "c", Encoding: models.ArchiveEncoding}
	if err := models.InsertArchiveRow(context.Background(), f.db, &a, meta, content, runID); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Policy, Metadata string
		Content          []byte
		Month            time.Time
		FirstEventAt     time.Time
		RunID            int64
		CompressedSize   int64
	}
	if err := f.db.Raw(`SELECT policy, metadata::text AS metadata, content, month, first_event_at, run_id, compressed_size
		FROM archive_storage WHERE id = ?`, a.ID).Scan(&got).Error; err != nil {
		t.Fatal(err)
	}
	if got.Policy != a.Policy || !bytes.Equal(got.Content, content) || got.RunID != runID || got.CompressedSize != int64(len(content)) ||
		!got.FirstEventAt.Equal(a.FirstEventAt) || got.Month.Format("2006-01-02") != "2023-05-01" {
		t.Fatalf("read back: policy %q, %d bytes (equal %v), run %d, first %s, month %s", got.Policy, len(got.Content),
			bytes.Equal(got.Content, content), got.RunID, got.FirstEventAt, got.Month)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(got.Metadata), &m); err != nil || m["policy"] != "a\\b\tc\nd" {
		t.Fatalf("metadata %s: %v", got.Metadata, err)
	}
}

// partitionRows counts the rows of audit_log's partition of month m (0 when it is gone).
func (f *retentionFixture) partitionRows(m time.Time) int64 {
	f.t.Helper()
	name := models.PartitionName("audit_log", m)
	var exists bool
	if err := f.db.Raw(`SELECT to_regclass(?) IS NOT NULL`, name).Scan(&exists).Error; err != nil {
		f.t.Fatal(err)
	}
	if !exists {
		return 0
	}
	var n int64
	if err := f.db.Raw(`SELECT count(*) FROM ` + name).Scan(&n).Error; err != nil {
		f.t.Fatal(err)
	}
	return n
}

// A month due whole whose partition holds nothing else is archived in one transaction and
// its partition emptied by TRUNCATE: the archives, their records and the cache version are
// what the part by part path writes, every event is in exactly one place, and verify and
// inclusion proofs of the archived events pass.
func TestRetentionArchivesAWholePartition(t *testing.T) {
	f := newRetentionFixture(t)
	june := day(2017, time.June, 1, 0)
	var times []time.Time
	for i := range 5 { // June 20 to 24: due for the archive from July 4, for deletion from July 20
		times = append(times, june.Add(time.Duration(19+i)*24*time.Hour+time.Hour))
	}
	evs := f.write(times...)
	f.engine.PartSize = 2
	var before int64
	f.db.Raw(`SELECT coalesce(max(version), 0) FROM query_cache_versions WHERE organization_id = ?`, f.org).Scan(&before)
	res := f.run(day(2017, time.July, 12, 0)) // archive after 10 days: all of June is due
	if res.Archived != 5 || res.Archives != 3 || res.Deleted != 0 {
		t.Fatalf("run: %+v", res)
	}
	if n := f.partitionRows(june); n != 0 {
		t.Fatalf("the partition keeps %d rows", n)
	}
	live, archived, removed := f.checkExactlyOnce()
	if live != 0 || archived != 5 || removed != 0 {
		t.Fatalf("after archival: %d live, %d archived, %d removed", live, archived, removed)
	}
	var as []models.Archive
	if err := f.db.Raw(`SELECT * FROM archive_storage WHERE organization_id = ? ORDER BY part`, f.org).Scan(&as).Error; err != nil {
		t.Fatal(err)
	}
	for i, a := range as {
		lo, hi := evs[2*i], evs[min(2*i+1, len(evs)-1)]
		if a.Part != i+1 || a.ID != fmt.Sprintf("%s/short/2017-06/%d", f.org, i+1) || a.Month.Format("2006-01-02") != "2017-06-01" ||
			a.MinEventID != lo.ID || a.MaxEventID != hi.ID || !a.FirstEventAt.Equal(lo.Timestamp) || !a.LastEventAt.Equal(hi.Timestamp) ||
			a.RunID == nil || *a.RunID != res.RunID || a.Encoding != models.ArchiveEncoding {
			t.Fatalf("archive %d: %+v", i+1, a)
		}
		if n := f.count(`SELECT count(*) FROM archived_events WHERE organization_id = ? AND archive_id = '` + a.ID + `'`); n != a.EventCount {
			t.Fatalf("archive %s: %d records for %d events", a.ID, n, a.EventCount)
		}
	}
	if len(as) != 3 || as[2].EventCount != 1 {
		t.Fatalf("%d archives", len(as))
	}
	var after int64
	f.db.Raw(`SELECT coalesce(max(version), 0) FROM query_cache_versions WHERE organization_id = ?`, f.org).Scan(&after)
	if after <= before {
		t.Fatalf("cache version %d → %d: TRUNCATE must retire the organization's cached answers", before, after)
	}
	if rep := f.verify(); !rep.OK() || rep.Archived != 5 || rep.Archives != 3 {
		t.Fatalf("verify after archival: %+v", rep)
	}
	for _, ev := range evs {
		p, err := f.log.Prove(context.Background(), f.org, ev.ID)
		if err != nil {
			t.Fatalf("proof of archived event %d: %v", ev.ID, err)
		}
		if p.EventHash != ev.Hash || merkle.VerifyInclusion(p) != nil {
			t.Fatalf("proof of archived event %d does not verify", ev.ID)
		}
	}
	if !slices.Contains(res.DroppedPartitions, models.PartitionName("audit_log", june)) {
		t.Fatalf("the emptied partition was not dropped: %v", res.DroppedPartitions)
	}
}

// A partition that holds anything the month's archival does not move — another
// organization's row, a row not in the Merkle log yet — is archived part by part with
// DELETE, and what is not moved stays.
func TestRetentionWholePartitionOnlyWhenNothingElseIsInIt(t *testing.T) {
	t.Run("another organization's row", func(t *testing.T) {
		f := newRetentionFixture(t)
		july := day(2017, time.July, 25, 0)
		f.write(july.Add(time.Hour), july.Add(2*time.Hour))
		other := &retentionFixture{t: t, db: f.db, org: pgtest.NewOrg(t, ""), log: f.log}
		other.write(july.Add(3 * time.Hour))
		if res := f.run(day(2017, time.August, 12, 0)); res.Archived != 2 {
			t.Fatalf("run: %+v", res)
		}
		if n := f.partitionRows(july); n != 1 {
			t.Fatalf("the partition holds %d rows, want the other organization's 1", n)
		}
		if live, archived, _ := f.checkExactlyOnce(); live != 0 || archived != 2 {
			t.Fatalf("%d live, %d archived", live, archived)
		}
		if live, archived, _ := other.checkExactlyOnce(); live != 1 || archived != 0 {
			t.Fatalf("other organization: %d live, %d archived", live, archived)
		}
	})
	t.Run("a row not in the Merkle log", func(t *testing.T) {
		f := newRetentionFixture(t)
		aug := day(2017, time.August, 25, 0)
		f.write(aug.Add(time.Hour), aug.Add(2*time.Hour))
		f.writeOne(aug.Add(3*time.Hour), "short", "INTERNAL", true)
		if res := f.run(day(2017, time.September, 12, 0)); res.Archived != 2 {
			t.Fatalf("run: %+v", res)
		}
		if n := f.partitionRows(aug); n != 1 {
			t.Fatalf("the partition holds %d rows, want the unsequenced 1", n)
		}
	})
	// A row the whole-partition path cannot take comes after parts were written: the
	// partition's reader meets it, the transaction (archives written so far included) rolls
	// back, and the part by part path archives the two due events once, without that row.
	for _, c := range []struct {
		name, policy, class string
		month, runAt        time.Time // a month no other subtest writes to
		unsequenced         bool
	}{
		{"a row of another policy", "confidential", "CONFIDENTIAL", day(2016, time.April, 20, 0), day(2016, time.May, 12, 0), false},
		{"a row not in the Merkle log after two parts", "short", "INTERNAL", day(2016, time.May, 25, 0), day(2016, time.June, 12, 0), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newRetentionFixture(t)
			f.engine.PartSize = 1
			f.write(c.month.Add(time.Hour), c.month.Add(2*time.Hour))
			f.writeOne(c.month.Add(3*time.Hour), c.policy, c.class, c.unsequenced)
			if _, err := f.log.Sequence(context.Background(), 100_000); err != nil {
				t.Fatal(err)
			}
			res := f.run(c.runAt)
			if res.Archived != 2 || res.Archives != 2 {
				t.Fatalf("run: %+v", res)
			}
			if n := f.partitionRows(c.month); n != 1 {
				t.Fatalf("the partition holds %d rows, want the one left out", n)
			}
			if n := f.count(`SELECT count(*) FROM archive_storage WHERE organization_id = ?`); n != 2 {
				t.Fatalf("%d archives stored, want the part by part path's 2", n)
			}
			if live, archived, _ := f.checkExactlyOnce(); live != 1 || archived != 2 {
				t.Fatalf("%d live, %d archived", live, archived)
			}
		})
	}
}

// While a reader holds the partition, TRUNCATE's lock does not come; the rows are deleted
// in the same transaction instead, and the outcome is the same.
func TestRetentionWholePartitionDeletesWhenTruncateWaits(t *testing.T) {
	f := newRetentionFixture(t)
	sep := day(2017, time.September, 25, 0)
	f.write(sep.Add(time.Hour), sep.Add(2*time.Hour), sep.Add(3*time.Hour))
	reader := f.db.Begin()
	defer reader.Rollback()
	var n int64
	if err := reader.Raw(`SELECT count(*) FROM ` + models.PartitionName("audit_log", sep)).Scan(&n).Error; err != nil || n != 3 {
		t.Fatalf("reader: %d rows, %v", n, err)
	}
	f.engine.PartSize = 2
	// The reader ends once the archival has committed (dropping the emptied partition
	// afterwards waits for it, as it always has).
	version := func() (v int64) {
		f.db.Raw(`SELECT coalesce((SELECT version FROM query_cache_versions WHERE organization_id = ?), 0)`, f.org).Scan(&v)
		return v
	}
	before, after := version(), int64(-1)
	f.engine.AfterBatch = func() {
		reader.Rollback()
		if after < 0 {
			after = version() // right after the archival's commit, before the run's own audit event
		}
	}
	if res := f.run(day(2017, time.October, 12, 0)); res.Archived != 3 || res.Archives != 2 {
		t.Fatalf("run: %+v", res)
	}
	// The partition's own DELETE fires none of audit_log's triggers: cached answers are
	// retired all the same.
	if after <= before {
		t.Fatalf("cache version %d after the archival, %d before: cached answers still show the archived events", after, before)
	}
	if n := f.partitionRows(sep); n != 0 {
		t.Fatalf("the partition keeps %d rows", n)
	}
	if live, archived, removed := f.checkExactlyOnce(); live != 0 || archived != 3 || removed != 0 {
		t.Fatalf("%d live, %d archived, %d removed", live, archived, removed)
	}
	if rep := f.verify(); !rep.OK() || rep.Archived != 3 {
		t.Fatalf("verify: %+v", rep)
	}
}

// A run cancelled between two whole months leaves the second untouched; the next run
// archives it, every event exactly once. A legal hold does not stop archiving a whole
// month, and the held event is then kept at its deletion day.
func TestRetentionWholePartitionsResumeAndHolds(t *testing.T) {
	f := newRetentionFixture(t)
	// Deletion after 100 days here, so that two whole months are due for the archive first.
	if err := f.db.Exec(`UPDATE audit_retention_policy SET retention_days = 100 WHERE organization_id = ? AND policy_name = 'short'`,
		f.org).Error; err != nil {
		t.Fatal(err)
	}
	oct, nov := day(2017, time.October, 25, 0), day(2017, time.November, 25, 0)
	evs := f.write(oct.Add(time.Hour), oct.Add(2*time.Hour), nov.Add(time.Hour), nov.Add(2*time.Hour))
	if err := f.db.Exec(`INSERT INTO legal_holds (organization_id, name, reason, scope, principal_id, placed_by)
		VALUES (?, 'case 1', 'litigation', 'principal', 'p-a', 'counsel')`, f.org).Error; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.engine.AfterBatch = cancel
	f.now = day(2017, time.December, 12, 0) // both months due for the archive, none for deletion
	if _, err := f.engine.Run(ctx, models.RetentionOptions{Org: f.org}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	if live, archived, _ := f.checkExactlyOnce(); live != 2 || archived != 2 || f.partitionRows(oct) != 0 || f.partitionRows(nov) != 2 {
		t.Fatalf("after the cancelled run: %d live, %d archived", live, archived)
	}
	f.engine.AfterBatch = nil
	if res := f.run(day(2017, time.December, 12, 0)); res.Archived != 2 || res.Archives != 1 {
		t.Fatalf("resumed run: %+v", res)
	}
	if live, archived, _ := f.checkExactlyOnce(); live != 0 || archived != 4 || f.partitionRows(nov) != 0 {
		t.Fatalf("after the resumed run: %d live, %d archived", live, archived)
	}
	// October's events are due for deletion on February 2; the held one stays.
	res := f.run(day(2018, time.February, 10, 0))
	if res.Deleted != 1 || res.KeptByHolds != 1 {
		t.Fatalf("deletion: %+v", res)
	}
	if n := f.count(`SELECT count(*) FROM archived_events WHERE organization_id = ? AND audit_log_id = ` +
		strconv.FormatInt(evs[0].ID, 10)); n != 1 {
		t.Fatal("the held event left its archive")
	}
	if rep := f.verify(); !rep.OK() || rep.Archived != 3 || rep.Removed != 1 {
		t.Fatalf("verify: %+v", rep)
	}
}

// A run that moves at least AnalyzeAfter events refreshes the statistics of the tables that
// record them, so that verification does not plan on stale ones (reltuples is what ANALYZE
// sets, synchronously).
func TestRetentionRefreshesTheRecordsStatistics(t *testing.T) {
	f := newRetentionFixture(t)
	sep := day(2017, time.September, 25, 0)
	f.write(sep.Add(time.Hour), sep.Add(2*time.Hour), sep.Add(3*time.Hour))
	f.engine.AnalyzeAfter = 3
	if res := f.run(day(2017, time.October, 12, 0)); res.Archived != 3 {
		t.Fatalf("run: %+v", res)
	}
	var reltuples float64
	var n int64
	f.db.Raw(`SELECT reltuples FROM pg_class WHERE oid = 'archived_events'::regclass`).Scan(&reltuples)
	f.db.Raw(`SELECT count(*) FROM archived_events`).Scan(&n)
	if int64(reltuples) != n {
		t.Fatalf("archived_events: statistics say %.0f rows, it holds %d", reltuples, n)
	}
}

// A run's transactions read and delete under one snapshot; the organization's cache version
// bumped meanwhile by anything else (an event sequenced, an alert) made their own bump inside
// that snapshot fail with a serialization error and the month roll back. With a bump every
// few milliseconds throughout, deletion and whole-partition archival still complete, and the
// organization's cache version moves past what the bumper alone did.
func TestRetentionCompletesWhileTheCacheVersionIsBumped(t *testing.T) {
	f := newRetentionFixture(t)
	f.engine.PartSize, f.engine.DeleteBatch = 50, 60
	var times []time.Time
	for i := range 300 { // January 2015: due for deletion on the run's day
		times = append(times, day(2015, time.January, 2, 0).Add(time.Duration(i)*time.Minute))
	}
	for i := range 300 { // February 2015: due for the archive only, a whole partition
		times = append(times, day(2015, time.February, 20, 0).Add(time.Duration(i)*time.Minute))
	}
	f.write(times...)
	bump := func() (int64, error) {
		var v int64
		err := f.db.Raw(`INSERT INTO query_cache_versions AS v (organization_id, version) VALUES (?, 1)
			ON CONFLICT (organization_id) DO UPDATE SET version = v.version + 1 RETURNING v.version`, f.org).Row().Scan(&v)
		return v, err
	}
	v0, err := bump()
	if err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			if _, err := bump(); err == nil {
				n++
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	f.now = day(2015, time.March, 12, 0)
	res, runErr := f.engine.Run(context.Background(), models.RetentionOptions{Org: f.org})
	close(stop)
	bumps := <-done
	err = runErr
	if err != nil {
		t.Fatalf("run under %d concurrent bumps: %v", bumps, err)
	}
	if res.Deleted != 300 || res.Archived != 300 {
		t.Fatalf("run: %+v", res)
	}
	if live, archived, removed := f.checkExactlyOnce(); live != 0 || archived != 300 || removed != 300 {
		t.Fatalf("%d live, %d archived, %d removed", live, archived, removed)
	}
	if v, err := bump(); err != nil || v <= v0+int64(bumps)+1 {
		t.Fatalf("cache version %d → %d with %d concurrent bumps (%v): the run's commits did not bump it", v0, v, bumps, err)
	}
}

// A legal hold placed while a run goes on keeps its events from the run's next batch on:
// every deletion batch looks at the holds anew, under a lock that makes a hold being placed
// wait for the batch or the batch see it. (The holds were counted once, at the run's start:
// an attack placed a hold on the organization 1.2 s into a run, and the run went on to delete
// 70,100 of the events it covered.)
func TestRetentionHoldPlacedDuringARunStopsItsDeletions(t *testing.T) {
	f := newRetentionFixture(t)
	f.writeHours(day(2014, time.March, 3, 0), 7) // due for deletion
	f.engine.DeleteBatch = 2
	f.afterFirstBatch(`INSERT INTO legal_holds (organization_id, name, reason, scope, placed_by)
		VALUES (?, 'audit', 'regulator''s inquiry', 'organization', 'counsel')`, f.org)
	res := f.run(day(2014, time.May, 20, 0))
	if res.Deleted != 2 {
		t.Fatalf("the run deleted %d events, want the first batch's 2 only: %+v", res.Deleted, res)
	}
	if live, _, removed := f.checkExactlyOnce(); live != 5 || removed != 2 {
		t.Fatalf("%d live, %d removed; want the 5 the hold keeps live", live, removed)
	}
}

// A run whose process ends after some of its transactions committed (simulated by a panic
// after the first batch) leaves its retention_runs row running and no gdpr.retention.apply
// event; the next run records what it did and marks it failed, before doing its own work.
func TestRetentionRecordsWhatAnInterruptedRunDid(t *testing.T) {
	f := newRetentionFixture(t)
	f.writeHours(day(2013, time.March, 3, 0), 5) // due for deletion
	f.engine.DeleteBatch = 2
	f.engine.AfterBatch = func() { panic("the process ends") }
	f.now = day(2013, time.May, 20, 0)
	func() {
		defer func() { recover() }()
		f.engine.Run(context.Background(), models.RetentionOptions{Org: f.org})
	}()
	var dead int64
	f.db.Raw(`SELECT id FROM retention_runs WHERE organization_id = ? AND status = 'running'`, f.org).Scan(&dead)
	if dead == 0 {
		t.Fatal("the interrupted run is not left running")
	}
	audited := func(run int64) int64 {
		return f.count(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = 'gdpr.retention.apply' AND
			target_resource_id = '` + strconv.FormatInt(run, 10) + `'`)
	}
	if audited(dead) != 0 {
		t.Fatal("the interrupted run wrote its event")
	}
	f.engine.AfterBatch = nil
	res := f.run(day(2013, time.May, 20, 0))
	if res.Deleted != 3 {
		t.Fatalf("the next run deleted %d, want the 3 left", res.Deleted)
	}
	var status, reason string
	var deleted int64
	f.db.Raw(`SELECT status, coalesce(error, ''), deleted FROM retention_runs WHERE id = ?`, dead).Row().Scan(&status, &reason, &deleted)
	if status != "failed" || deleted != 2 || !strings.Contains(reason, "ended before the run did") {
		t.Fatalf("the interrupted run is recorded as %s, %d deleted (%q)", status, deleted, reason)
	}
	if audited(dead) != 1 || audited(res.RunID) != 1 {
		t.Fatalf("gdpr.retention.apply events: %d for the interrupted run, %d for the next", audited(dead), audited(res.RunID))
	}
	// A recovery that ended after writing the event and before closing the run: the next
	// one closes it without a second event.
	f.db.Exec(`UPDATE retention_runs SET status = 'running' WHERE id = ?`, dead)
	f.run(day(2013, time.May, 20, 0))
	f.db.Raw(`SELECT status FROM retention_runs WHERE id = ?`, dead).Scan(&status)
	if status != "failed" || audited(dead) != 1 {
		t.Fatalf("after a second recovery: the run is %s with %d events, want failed with 1", status, audited(dead))
	}
}

// A policy changed while a run goes on stops the organization's deletions from the next batch
// on; the run says why, and the next run applies the new policy (here: archive, no longer
// delete). (The policies were read once: an attack lengthened a policy 1.2 s into a run,
// and 95,000 deletions followed.)
func TestRetentionPolicyChangedDuringARunStopsItsDeletions(t *testing.T) {
	f := newRetentionFixture(t)
	f.writeHours(day(2012, time.March, 3, 0), 7) // due for deletion
	f.engine.DeleteBatch = 2
	f.afterFirstBatch(`UPDATE audit_retention_policy SET retention_days = 3650 WHERE organization_id = ? AND policy_name = 'short'`,
		f.org)
	f.now = day(2012, time.May, 20, 0)
	res, err := f.engine.Run(context.Background(), models.RetentionOptions{Org: f.org})
	if !errors.Is(err, models.ErrPoliciesChanged) {
		t.Fatalf("run: %v", err)
	}
	if res.Deleted != 2 {
		t.Fatalf("the run deleted %d events, want the first batch's 2 only", res.Deleted)
	}
	f.engine.AfterBatch = nil
	if res := f.run(day(2012, time.May, 20, 0)); res.Deleted != 0 || res.Archived != 5 {
		t.Fatalf("the next run under the lengthened policy: %+v; want the 5 archived, none deleted", res)
	}
	if live, archived, removed := f.checkExactlyOnce(); live != 0 || archived != 5 || removed != 2 {
		t.Fatalf("%d live, %d archived, %d removed", live, archived, removed)
	}
}
