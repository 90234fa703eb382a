package erasure_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"auditdb/models"
	"auditdb/models/erasure"
	"auditdb/models/ingest"
	"auditdb/models/reports"
)

// detect runs the detection pass until it has counted every sequenced event.
func (f *fixture) detect() {
	f.t.Helper()
	d := models.NewDetector(f.db, time.Now)
	for range 100 {
		res, err := d.Pass(context.Background())
		if err != nil {
			f.t.Fatal(err)
		}
		if res.Events == 0 {
			return
		}
	}
	f.t.Fatal("detection does not finish")
}

// checkRollups fails unless org's rollups count exactly the events in audit_log: per hour,
// per action and per principal.
func (f *fixture) checkRollups(when string) {
	f.t.Helper()
	for _, c := range []struct{ name, rollup, log string }{
		{"hourly", `SELECT coalesce(sum(events), 0) FROM event_counts_hourly WHERE organization_id = ?`,
			`SELECT count(*) FROM audit_log WHERE organization_id = ?`},
		{"actions", `SELECT coalesce(sum(events), 0) FROM event_counts_daily WHERE organization_id = ? AND kind = 'action'`,
			`SELECT count(*) FROM audit_log WHERE organization_id = ?`},
		{"principals", `SELECT coalesce(sum(events), 0) FROM event_counts_daily WHERE organization_id = ? AND kind = 'principal'`,
			`SELECT count(*) FROM audit_log WHERE organization_id = ? AND principal_id <> ''`},
	} {
		if got, want := f.count(c.rollup, f.org), f.count(c.log, f.org); got != want {
			f.t.Errorf("%s: %s rollups count %d events, audit_log holds %d", when, c.name, got, want)
		}
	}
}

// storeReport stores a completed execution of org over [from, to) with one CSV file holding
// content, as the report runner does (zstd chunks).
func (f *fixture) storeReport(id string, from, to time.Time, content string) {
	f.t.Helper()
	enc, _ := zstd.NewWriter(nil)
	data := enc.EncodeAll([]byte(content), nil)
	crit := `{"type":"GENERAL_COMPLIANCE","from":"` + from.Format(time.RFC3339) + `","to":"` + to.Format(time.RFC3339) + `"}`
	files := `[{"format":"csv","name":"` + id + `.csv","content_type":"text/csv","size":` + strconv.Itoa(len(content)) + `,"sha256":"abc"}]`
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO report_executions (id, organization_id, scheduled_time, status, criteria, formats, export_result)
			VALUES (?, ?, now(), 'completed', ?::jsonb, '["csv"]', ?::jsonb)`, []any{id, f.org, crit, files}},
		{`INSERT INTO report_files (execution_id, format, organization_id, name, content_type, size, stored_size, sha256, complete)
			VALUES (?, 'csv', ?, ?, 'text/csv', ?, ?, 'abc', true)`, []any{id, f.org, id + ".csv", len(content), len(data)}},
		{`INSERT INTO report_file_chunks (execution_id, format, seq, data) VALUES (?, 'csv', 0, ?)`, []any{id, data}},
	} {
		if err := f.db.Exec(q.sql, q.args...).Error; err != nil {
			f.t.Fatal(err)
		}
	}
}

// Erasure takes the subject's events out of the dashboard's rollups in its own
// transactions (deleted events leave every count, kept ones move to the pseudonym) and
// withdraws the stored report files whose period holds any of them.
func TestEraseReachesRollupsAndStoredReports(t *testing.T) {
	f := newFixture(t, 2000, 300)
	ctx := context.Background()
	f.detect()
	if f.count(`SELECT count(*) FROM event_counts_daily WHERE organization_id = ? AND value = 'user-3'`, f.org) == 0 {
		t.Fatal("the fixture's rollups do not count the subject")
	}
	f.checkRollups("before")
	now := time.Now().UTC()
	f.storeReport("rex-live", now.Add(-24*time.Hour), now.Add(time.Hour), "principal\nuser-3\nuser-4\n")
	f.storeReport("rex-archived", time.Date(2022, time.March, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2022, time.April, 1, 0, 0, 0, 0, time.UTC), "principal\nuser-3\n")
	f.storeReport("rex-before", time.Date(2019, time.January, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2019, time.February, 1, 0, 0, 0, 0, time.UTC), "principal\nuser-4\n")

	// A report asked for the subject by name keeps the request, under the pseudonym.
	if err := f.db.Exec(`INSERT INTO report_executions (id, organization_id, scheduled_time, status, criteria, formats)
		VALUES ('rex-filtered', ?, now(), 'failed', '{"type":"GENERAL_COMPLIANCE","principal":"user-3","action":"user-3x"}', '["csv"]')`,
		f.org).Error; err != nil {
		t.Fatal(err)
	}
	// Named in another case, and beside a longer identifier it must not touch.
	if err := f.db.Exec(`INSERT INTO report_executions (id, organization_id, scheduled_time, status, criteria, formats)
		VALUES ('rex-case', ?, now(), 'failed', '{"type":"GENERAL_COMPLIANCE","principal":"USER-3"}', '["csv"]')`,
		f.org).Error; err != nil {
		t.Fatal(err)
	}
	if err := f.db.Exec(`INSERT INTO alerts (id, organization_id, severity, type, title, description, principal, resolution_notes)
		VALUES ('alert_case', ?, 'HIGH', 'SECURITY', '5 failed sign-ins for User-3', 'not user-34, not xuser-3', 'USER-3', 'checked with User-3')`,
		f.org).Error; err != nil {
		t.Fatal(err)
	}
	s := erasure.Subject{PrincipalID: "user-3"}
	res, err := f.engine.Erase(ctx, f.org, "req-r", s, dpo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pseudonymized == 0 || res.Deleted == 0 || res.ArchivedDeleted == 0 {
		t.Fatalf("the fixture should delete, archive-delete and keep: %+v", res)
	}
	if n := f.count(`SELECT count(*) FROM event_counts_daily WHERE organization_id = ? AND value = 'user-3'`, f.org); n != 0 {
		t.Errorf("%d rollup rows still keyed by the erased principal", n)
	}
	var crit struct{ Principal, Action string }
	if err := f.db.Raw(`SELECT criteria->>'principal' AS principal, criteria->>'action' AS action FROM report_executions
		WHERE id = 'rex-filtered'`).Scan(&crit).Error; err != nil || crit.Principal != res.Pseudonym || crit.Action != "user-3x" {
		t.Errorf("a report's criteria after the erasure: %+v (%v); want the principal %q and the other filter untouched",
			crit, err, res.Pseudonym)
	}
	var other string
	f.db.Raw(`SELECT criteria->>'principal' FROM report_executions WHERE id = 'rex-case'`).Scan(&other)
	if other != res.Pseudonym {
		t.Errorf("a report's criteria naming the subject in capitals kept %q, want the pseudonym", other)
	}
	var a struct{ Title, Description, Principal, ResolutionNotes string }
	f.db.Raw(`SELECT title, description, principal, resolution_notes FROM alerts WHERE id = 'alert_case'`).Scan(&a)
	if want := (struct{ Title, Description, Principal, ResolutionNotes string }{"5 failed sign-ins for " + res.Pseudonym,
		"not user-34, not xuser-3", res.Pseudonym, "checked with " + res.Pseudonym}); a != want {
		t.Errorf("an alert naming the subject in other cases, beside longer identifiers: %+v, want %+v", a, want)
	}
	if got := f.count(`SELECT coalesce(sum(events), 0) FROM event_counts_daily WHERE organization_id = ? AND kind = 'principal'
		AND value = ?`, f.org, res.Pseudonym); got != res.Pseudonymized {
		t.Errorf("the pseudonym counts %d events, %d were kept", got, res.Pseudonymized)
	}
	f.sequence() // the run's own self-audit event
	f.detect()
	f.checkRollups("after")
	f.detect() // counts nothing twice
	f.checkRollups("after another detection pass")

	store := reports.NewStore(f.db, nil)
	for _, id := range []string{"rex-live", "rex-archived"} {
		file, rc, err := store.OpenFile(ctx, f.org, id, "csv")
		var we *reports.WithdrawnError
		if !errors.As(err, &we) || we.Note != "withdrawn after GDPR erasure req-r" {
			if rc != nil {
				rc.Close()
			}
			t.Fatalf("%s: open a file made before the erasure: %v", id, err)
		}
		if file == nil || file.SHA256 != "abc" || file.Size == 0 {
			t.Errorf("%s: the withdrawn file's metadata is lost: %+v", id, file)
		}
		if n := f.count(`SELECT count(*) FROM report_file_chunks WHERE execution_id = ?`, id); n != 0 {
			t.Errorf("%s: %d chunks of content left", id, n)
		}
		e, err := store.Execution(ctx, f.org, id)
		if err != nil || len(e.Files) != 1 || e.Files[0].Withdrawn == "" || e.Files[0].SHA256 != "abc" {
			t.Errorf("%s: execution after withdrawal: %+v %v", id, e, err)
		}
	}
	_, rc, err := store.OpenFile(ctx, f.org, "rex-before", "csv")
	if err != nil {
		t.Fatalf("a report of a period without the subject's events is withdrawn: %v", err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "principal\nuser-4\n" {
		t.Errorf("the untouched report reads %q", b)
	}
}

// A legal hold placed while an erasure runs is serialized with its batches: a batch in
// flight holds the organization's hold lock, so PlaceHold waits for it; the next batch
// waits for the hold's transaction and then sees the hold, so nothing is deleted after it.
func TestLegalHoldPlacedDuringErasureStopsTheNextBatch(t *testing.T) {
	f := newFixture(t, 2000, 0)
	ctx := context.Background()
	store := models.NewRetentionPolicyStore(f.db, models.NewAuditTrail(f.db, f.sealer, models.NewPartitionManager(f.db)))
	s := erasure.Subject{PrincipalID: "user-3"}
	hold := models.LegalHoldInput{Name: "Litigation 9", Reason: "court order", Scope: models.HoldScopePrincipal, PrincipalID: "user-3"}

	// PlaceHold waits for a batch in flight (the lock taken as a batch takes it).
	tx := f.db.Begin()
	if err := tx.Exec(strings.Replace(models.LockHoldsSQL, "$1", "?", 1), f.org).Error; err != nil {
		t.Fatal(err)
	}
	placed := make(chan error, 1)
	go func() { _, err := store.PlaceHold(ctx, f.org, hold, dpo); placed <- err }()
	select {
	case err := <-placed:
		t.Fatalf("the hold was placed while a batch held the lock (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	tx.Rollback()
	if err := <-placed; err != nil {
		t.Fatal(err)
	}
	if _, err := f.engine.Erase(ctx, f.org, "req-h0", s, dpo, nil); models.KindOf(err) != models.KindConflict {
		t.Fatalf("erase under the hold: %v", err)
	}
	f.db.Exec(`UPDATE legal_holds SET released_at = now(), released_by = 'test' WHERE organization_id = ?`, f.org)

	// A hold whose transaction began (and took the lock) between two batches: the next batch
	// waits for it and stops; nothing is deleted after the first batch.
	f.engine.Batch = 10
	var afterFirst int64 = -1
	done := make(chan struct{})
	f.engine.AfterBatch = func() {
		if afterFirst >= 0 {
			return
		}
		afterFirst = f.count(`SELECT count(*) FROM removed_events WHERE organization_id = ? AND request_id = 'req-h'`, f.org)
		tx := f.db.Begin()
		if err := tx.Exec(strings.Replace(models.LockHoldsSQL, "$1", "?", 1), f.org).Error; err != nil {
			t.Error(err)
		}
		if err := tx.Exec(`INSERT INTO legal_holds (organization_id, name, reason, scope, principal_id, placed_by)
			VALUES (?, 'Litigation 10', 'court order', 'principal', 'user-3', 'test')`, f.org).Error; err != nil {
			t.Error(err)
		}
		go func() {
			time.Sleep(300 * time.Millisecond)
			tx.Commit()
			close(done)
		}()
	}
	_, err := f.engine.Erase(ctx, f.org, "req-h", s, dpo, nil)
	<-done
	if models.KindOf(err) != models.KindConflict || !strings.Contains(err.Error(), "Litigation 10") {
		t.Fatalf("erase with a hold placed between batches: %v", err)
	}
	if n := f.count(`SELECT count(*) FROM removed_events WHERE organization_id = ? AND request_id = 'req-h'`, f.org); n != afterFirst {
		t.Fatalf("%d events deleted after the hold's transaction began (first batch: %d)", n-afterFirst, afterFirst)
	}
}

// Duplicate requests for one subject: run at the same time, both complete and count each
// event once; one run after another completes with 0 matched, naming the first.
func TestDuplicateErasuresOfOneSubjectComplete(t *testing.T) {
	f := newFixture(t, 2000, 300)
	ctx := context.Background()
	s := erasure.Subject{PrincipalID: "user-3"}
	want, err := f.engine.Count(ctx, f.org, s)
	if err != nil || want == 0 {
		t.Fatal(want, err)
	}
	f.engine.Batch = 25
	type out struct {
		res erasure.Result
		err error
	}
	outs := make(chan out, 2)
	for _, id := range []string{"req-d1", "req-d2"} {
		go func() { res, err := f.engine.Erase(ctx, f.org, id, s, dpo, nil); outs <- out{res, err} }()
	}
	var matched int64
	for range 2 {
		o := <-outs
		if o.err != nil {
			t.Fatalf("a duplicate erasure failed: %v", o.err)
		}
		matched += o.res.Matched
	}
	if matched != want {
		t.Errorf("the two runs matched %d events, the subject had %d", matched, want)
	}
	if n := f.count(`SELECT count(*) FROM gdpr_erasure_runs WHERE organization_id = ? AND status <> 'completed'`, f.org); n != 0 {
		t.Errorf("%d runs left running", n)
	}
	res, err := f.engine.Erase(ctx, f.org, "req-d3", s, dpo, nil)
	if err != nil || res.Matched != 0 || (res.AlreadyErasedBy != "req-d1" && res.AlreadyErasedBy != "req-d2") {
		t.Fatalf("a third request: %+v %v", res, err)
	}
}

// Erasing a subject pseudonymized earlier finds its events under every pseudonym mapped to
// it (the mappings are ciphertext: the engine decrypts them), erases them the same way and
// deletes the mappings, so the pseudonym no longer looks up.
func TestEraseFindsEventsUnderEarlierPseudonyms(t *testing.T) {
	f := newFixture(t, 2000, 300)
	ctx := context.Background()
	for i, st := range []erasure.Strategy{erasure.StrategyHash, erasure.StrategyToken, erasure.StrategyEncryption} {
		t.Run(string(st), func(t *testing.T) {
			principal := []string{"user-4", "user-6", "user-7"}[i]
			s := erasure.Subject{PrincipalID: principal}
			before, err := f.engine.Count(ctx, f.org, s)
			if err != nil || before == 0 {
				t.Fatal(before, err)
			}
			p, err := f.engine.Pseudonymize(ctx, f.org, "req-p-"+string(st), s, st, dpo, nil)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := f.engine.Count(ctx, f.org, s); n != 0 {
				t.Fatalf("%d events still under the identifier after pseudonymization", n)
			}
			res, err := f.engine.Erase(ctx, f.org, "req-e-"+string(st), s, dpo, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Matched != before {
				t.Errorf("the erasure matched %d events, the subject had %d (under %s)", res.Matched, before, p.Pseudonym)
			}
			if n, _ := f.engine.Count(ctx, f.org, erasure.Subject{PrincipalID: p.Pseudonym}); n != 0 {
				t.Errorf("%d events still under the earlier pseudonym", n)
			}
			if n := f.count(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND principal_id = ?`, f.org, res.Pseudonym); n != res.Pseudonymized {
				t.Errorf("%d kept events under the erasure's pseudonym, %d kept", n, res.Pseudonymized)
			}
			if n := f.count(`SELECT count(*) FROM pseudonym_mapping WHERE organization_id = ? AND pseudonym_id = ?`, f.org, p.Pseudonym); n != 0 {
				t.Errorf("the mapping of %s is still there", p.Pseudonym)
			}
			if _, err := f.engine.Lookup(ctx, f.org, p.Pseudonym, "after the erasure", dpo); models.KindOf(err) != models.KindNotFound {
				t.Errorf("lookup of the earlier pseudonym after the erasure: %v", err)
			}
		})
	}
}

// Free text: released legal holds naming the subject are scrubbed to the pseudonym; a kept
// event (sha256-jcs-v3) whose outcome description and details name the subject has them
// pseudonymized, and nothing is left to count.
func TestEraseScrubsReleasedHoldsAndKeptFreeText(t *testing.T) {
	f := newFixture(t, 500, 0)
	ctx := context.Background()
	trail := models.NewAuditTrail(f.db, f.sealer, models.NewPartitionManager(f.db))
	store := models.NewRetentionPolicyStore(f.db, trail)
	h, err := store.PlaceHold(ctx, f.org, models.LegalHoldInput{Name: "Case of user-3", Reason: "user-3 sued us",
		Scope: models.HoldScopePrincipal, PrincipalID: "user-3"}, dpo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.ReleaseHold(ctx, f.org, h.ID, dpo); err != nil {
		t.Fatal(err)
	}
	p, outcome := "user-3", "user-3 typed a wrong password"
	ev := models.Event{OrganizationID: f.org, Timestamp: time.Now().UTC().Add(-time.Minute), Action: "auth.login.failure",
		Status: "failure", DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0", PrincipalID: &p,
		OutcomeDescription: &outcome, Details: []byte(`{"note":"again user-3","email":"user-3@example.com"}`)}
	if err := f.sealer.Seal(&ev); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.CopyEvents(ctx, f.db, models.NewPartitionManager(f.db), []models.Event{ev}); err != nil {
		t.Fatal(err)
	}
	f.sequence()
	res, err := f.engine.Erase(ctx, f.org, "req-t", erasure.Subject{PrincipalID: "user-3"}, dpo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.MentionsLeft != 0 || res.MentionsRedacted < 1 {
		t.Errorf("events mentioning the subject: %d redacted, %d left; want ≥ 1 and 0", res.MentionsRedacted, res.MentionsLeft)
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND principal_id = ?
		AND outcome_description = ? AND details->>'note' = ? AND NOT details ? 'email'`, f.org, res.Pseudonym,
		res.Pseudonym+" typed a wrong password", "again "+res.Pseudonym); n != 1 {
		t.Errorf("the kept event's free text is not pseudonymized (%d)", n)
	}
	if n := f.count(`SELECT count(*) FROM legal_holds WHERE organization_id = ? AND (strpos(name, 'user-3') > 0
		OR strpos(reason, 'user-3') > 0 OR principal_id = 'user-3')`, f.org); n != 0 {
		t.Errorf("%d released holds still name the subject", n)
	}
	if n := f.count(`SELECT count(*) FROM legal_holds WHERE organization_id = ? AND principal_id = ?`, f.org, res.Pseudonym); n != 1 {
		t.Errorf("the released hold does not name the pseudonym (%d)", n)
	}
}

// Erasure clears the organization's detection feed in its own transactions: events fed to
// detection and not read by it yet are then read from audit_log as the erasure left them,
// so no count or hit of detection names the erased principal.
func TestEraseClearsTheDetectionFeed(t *testing.T) {
	f := newFixture(t, 2000, 300)
	var evs []models.Event
	if err := f.db.Where("organization_id = ?", f.org).Order("id").Find(&evs).Error; err != nil {
		t.Fatal(err)
	}
	ptrs := make([]*models.Event, len(evs))
	for i := range evs {
		ptrs[i] = &evs[i]
	}
	feed, err := models.DetectionFeedSQL(ptrs)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.Exec(strings.TrimPrefix(feed, ";\n")).Error; err != nil {
		t.Fatal(err)
	}
	const rows = `SELECT count(*) FROM detection_feed WHERE organization_id = ?`
	if f.count(rows, f.org) == 0 {
		t.Fatal("no feed rows to clear")
	}
	res, err := f.engine.Erase(context.Background(), f.org, "req-feed", erasure.Subject{PrincipalID: "user-3"}, dpo, nil)
	if err != nil || res.Pseudonymized == 0 {
		t.Fatalf("erase: %+v %v; the fixture should keep events under a pseudonym", res, err)
	}
	if n := f.count(rows, f.org); n != 0 {
		t.Fatalf("%d feed rows left after the erasure", n)
	}
	f.sequence()
	f.detect()
	f.checkRollups("after")
	if n := f.count(`SELECT count(*) FROM event_counts_daily WHERE organization_id = ? AND value = 'user-3'`, f.org); n != 0 {
		t.Errorf("%d rollup rows counted under the erased principal", n)
	}
	if n := f.count(`SELECT count(*) FROM detection_hit_run WHERE organization_id = ? AND group_key = 'user-3'`, f.org); n != 0 {
		t.Errorf("%d detection hit runs keyed by the erased principal", n)
	}
}
