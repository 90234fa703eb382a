package models_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// writeFed writes events as seedEvents does and then their detection feed rows, as the
// ingest writer would in the same transaction, then sequences them.
func (f *detectFixture) writeFed(events ...models.Event) []int64 {
	f.t.Helper()
	ids := seedEvents(f.t, events)
	ptrs := make([]*models.Event, len(events))
	for i := range events {
		ptrs[i] = &events[i]
	}
	sql, err := models.DetectionFeedSQL(ptrs)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := pgtest.DB(f.t).Exec(sql[2:]).Error; err != nil { // after the leading ";\n"
		f.t.Fatal(err)
	}
	f.write()
	return ids
}

func feedRows(t *testing.T, org string) int64 {
	t.Helper()
	var n int64
	if err := pgtest.DB(t).Raw(`SELECT count(*) FROM detection_feed WHERE organization_id = ?`, org).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// What the feed hands detection is exactly what audit_log holds for the same events, as
// detection's own query reads it back: NULLs and empty strings, outcomes of failures only,
// addresses of events without a principal only, escaped JSON keys and strings, and an
// address that is not a string (left to audit_log, not guessed).
func TestDetectionFeedReadsWhatTheLogHolds(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "")
	at := detectBase.Add(-time.Minute).Add(123456789 * time.Nanosecond) // below a microsecond too
	details := func(s string) func(*models.Event) {
		return func(e *models.Event) { e.Details = json.RawMessage(s) }
	}
	events := []models.Event{
		ev(org, at, "data.read", "success", by("alice"), resource("Patient")),
		ev(org, at, "auth.login.failure", "failure", by("bob"), outcome("Access denied for bob")),
		ev(org, at, "data.export", "success", by("carol"), outcome("an outcome a success does not carry")),
		ev(org, at, "auth.login.failure", "failure", fromIP("10.1.1.1")),
		ev(org, at, "auth.login.failure", "failure", details(`{"ip\u0041ddress": "10.2.2.2", "other": 1}`)),
		ev(org, at, "auth.login.failure", "failure", details(`{"ipAddress": null}`)),
		ev(org, at, "auth.login.failure", "failure", details(`{"ipAddress": "caf\u00e9 \"quoted\" \\ 🚀"}`)),
		ev(org, at, "auth.login.failure", "failure", details(`{"nested": {"ipAddress": "10.5.5.5"}}`)),
		ev(org, at, "auth.login.failure", "failure", by(""), fromIP("10.6.6.6")),
		ev(org, at, "data.read", "success", by("dave"), fromIP("10.7.7.7")),
		ev(org, at.Add(-48*time.Hour), "fhir.Patient.read", "failure", by("Zoë 🚀"), outcome("Forbidden")),
		ev(org, at, "auth.login.failure", "failure"),
	}
	long := ev(org, at, "data.read", "failure", by("erin"), outcome(strings.Repeat("access denied ", 80)))
	unknown := ev(org, at, "auth.login.failure", "failure", details(`{"ipAddress": 10.08}`))
	events = append(events, long, unknown)
	f.writeFed(events...)
	long, unknown = events[len(events)-2], events[len(events)-1] // with their ids
	if n := feedRows(t, org); n != 1 {
		t.Fatalf("%d feed rows for one write of one organization, want 1", n)
	}

	batch, fed, logged, finished, err := models.ReadDetectionBatch(context.Background(), pgtest.DB(t), org, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	byID := func(a, b models.DetectEventForTest) int { return int(a.ID - b.ID) }
	slices.SortFunc(batch, byID)
	slices.SortFunc(logged, byID)
	if len(logged) != len(events) {
		t.Fatalf("audit_log gave %d events, want %d", len(logged), len(events))
	}
	if !slices.Equal(batch, logged) {
		for i := range logged {
			if i >= len(batch) || batch[i] != logged[i] {
				t.Errorf("event %d: through the feed %+v, in audit_log %+v", logged[i].ID, at1(batch, i), logged[i])
			}
		}
		t.FailNow()
	}
	// Every event but the one whose address is a number and the one with a long outcome
	// came from the feed.
	if len(fed) != len(events)-2 || slices.ContainsFunc(fed, func(e models.DetectEventForTest) bool {
		return e.ID == unknown.ID || e.ID == long.ID
	}) {
		t.Fatalf("the feed gave %d events (want %d, all but events %d and %d)", len(fed), len(events)-2, long.ID, unknown.ID)
	}
	if want := []int64{events[len(events)-1].ID}; !slices.Equal(finished, want) {
		t.Fatalf("the batch finished feed rows ending at %v, want %v", finished, want)
	}
	if got := logged[len(logged)-1].IPAddress; got != "10.08" {
		t.Fatalf("audit_log gives the numeric address as %q", got)
	}
}

func at1(s []models.DetectEventForTest, i int) any {
	if i < len(s) {
		return s[i]
	}
	return "nothing"
}

// A detection pass over fed events raises, counts and records exactly what it does over the
// same events read from audit_log, and deletes the feed rows it finished; a batch boundary
// inside a write's events keeps that write's row until its last event is read.
func TestDetectionFromTheFeedMatchesDetectionFromTheLog(t *testing.T) {
	f := newDetectFixture(t)
	fedOrg, loggedOrg := pgtest.NewOrg(t, "fed"), pgtest.NewOrg(t, "logged")
	mix := func(org string) []models.Event {
		out := repeat(12, func(i int) models.Event {
			return ev(org, detectBase.Add(-time.Duration(i)*time.Second), "auth.login.failure", "failure", by("mallory"))
		})
		out = append(out, repeat(6, func(i int) models.Event {
			return ev(org, detectBase.Add(-time.Duration(i)*time.Second), "auth.login.failure", "failure", fromIP("198.51.100.7"))
		})...)
		out = append(out, repeat(7, func(i int) models.Event {
			return ev(org, detectBase.Add(-time.Duration(i)*time.Second), "data.read", "failure", by("eve"), outcome("Unauthorized"))
		})...)
		out = append(out, repeat(30, func(i int) models.Event {
			return ev(org, detectBase.Add(-time.Duration(i)*time.Second), "data.export", "success", by("trent"), resource("Patient"))
		})...)
		return append(out, repeat(5, func(i int) models.Event {
			return ev(org, detectBase.Add(-3*time.Hour-time.Duration(i)*time.Minute).Add(-10*time.Hour), "data.read", "success", by("night"))
		})...)
	}
	fedIDs := f.writeFed(mix(fedOrg)...)
	f.write(mix(loggedOrg)...)
	if n := feedRows(t, fedOrg); n != 1 {
		t.Fatalf("%d feed rows before detection, want 1", n)
	}
	d := f.detector(25) // batches end inside the write's 60 events
	if _, err := d.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := feedRows(t, fedOrg); n != 1 {
		t.Fatalf("after a batch of 25 of the write's %d events: %d feed rows, want the row kept", len(fedIDs), n)
	}
	f.drain(d)
	if n := feedRows(t, fedOrg); n != 0 {
		t.Fatalf("%d feed rows left once detection read every event", n)
	}
	for _, rule := range []string{models.RuleFailedLogins, models.RuleUnauthorizedAccess, models.RuleBulkOperations,
		models.RuleDataAccessVelocity, models.RuleOffHoursAccess} {
		a, b := alertsOf(t, fedOrg, rule), alertsOf(t, loggedOrg, rule)
		if len(a) != len(b) {
			t.Fatalf("%s: %d alerts from the feed, %d from the log", rule, len(a), len(b))
		}
		for i := range a {
			if a[i].Title != b[i].Title || a[i].Severity != b[i].Severity || !equalPtr(a[i].Principal, b[i].Principal) {
				t.Errorf("%s alert %d: from the feed %+v, from the log %+v", rule, i, a[i], b[i])
			}
		}
	}
	if a, b := len(alertsOf(t, fedOrg, models.RuleFailedLogins)), 2; a != b {
		t.Fatalf("%d failed-login alerts (mallory and the address), want %d", a, b)
	}
	ha, aa, pa := eventCounts(t, fedOrg)
	hb, ab, pb := eventCounts(t, loggedOrg)
	if ha != hb || aa != ab || pa != pb || ha != int64(len(fedIDs)) {
		t.Fatalf("counts from the feed %d/%d/%d, from the log %d/%d/%d, want %d events", ha, aa, pa, hb, ab, pb, len(fedIDs))
	}
}

func equalPtr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// A feed row or run nobody finishes is trimmed once FeedTTL old, and only then: detection
// reads its events from audit_log and counts each once.
func TestTrimDetectionFeedDeletesOnlyOldRows(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "")
	f.writeFed(ev(org, detectBase, "data.read", "success", by("alice")))
	f.writeFed(ev(org, detectBase, "data.read", "success", by("bob")))
	db := pgtest.DB(t)
	if err := db.Exec(`UPDATE detection_feed SET written_at = now() - make_interval(secs => ?) - interval '1 second'
		WHERE organization_id = ? AND first_id = (SELECT min(first_id) FROM detection_feed WHERE organization_id = ?)`,
		models.FeedTTL.Seconds(), org, org).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(`UPDATE detection_run SET written_at = now() - make_interval(secs => ?) - interval '1 second'
		WHERE organization_id = ? AND first_leaf = 0`, models.FeedTTL.Seconds(), org).Error; err != nil {
		t.Fatal(err)
	}
	n, err := models.TrimDetectionFeed(context.Background(), db)
	if err != nil || n < 1 {
		t.Fatalf("trim: %d rows, %v", n, err)
	}
	if left := feedRows(t, org); left != 1 {
		t.Fatalf("%d feed rows left, want the younger one", left)
	}
	if runs := runRows(t, org); len(runs) != 1 || runs[0].FirstLeaf != 1 {
		t.Fatalf("runs left %v, want the younger one (from leaf 1)", runs)
	}
	f.drain(f.detector(100))
	if h, _, p := eventCounts(t, org); h != 2 || p != 2 {
		t.Fatalf("%d events counted (%d by principal), want 2", h, p)
	}
}

// Any change of events under the purpose 'gdpr', whatever code makes it and whether it names
// audit_log or a partition, deletes the feed (triggers), as does any update of events;
// retention's deletions leave it.
func TestGDPRChangesOfEventsClearTheDetectionFeed(t *testing.T) {
	f := newDetectFixture(t)
	org, other := pgtest.NewOrg(t, "a"), pgtest.NewOrg(t, "b")
	ids := f.writeFed(ev(org, detectBase, "auth.login.failure", "failure", by("alice")),
		ev(org, detectBase, "data.read", "success", by("alice")))
	f.writeFed(ev(other, detectBase, "data.read", "success", by("carol")))
	db := pgtest.DB(t)
	change := func(purpose, stmt string, args ...any) {
		t.Helper()
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(`SET LOCAL auditdb.purpose = '` + purpose + `'`).Error; err != nil {
				return err
			}
			return tx.Exec(stmt, args...).Error
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	change("retention", `DELETE FROM audit_log WHERE organization_id = ? AND id = ?`, org, ids[1])
	if feedRows(t, org) != 1 || feedRows(t, other) != 1 {
		t.Fatal("a retention deletion cleared the feed")
	}
	change("gdpr", `UPDATE audit_log SET principal_id = 'pseudonym-1' WHERE organization_id = ? AND id = ?`, org, ids[0])
	if feedRows(t, org) != 0 || feedRows(t, other) != 0 {
		t.Fatal("an erasure's update left feed rows")
	}
	f.drain(f.detector(100))
	var alice int64
	db.Raw(`SELECT count(*) FROM event_counts_daily WHERE organization_id = ? AND value = 'alice'`, org).Scan(&alice)
	if alice != 0 {
		t.Fatal("detection counted the erased principal")
	}
	f.writeFed(ev(org, detectBase, "data.read", "success", by("dave")))
	change("gdpr", `DELETE FROM audit_log WHERE organization_id = ? AND principal_id = 'nobody'`, org)
	if feedRows(t, org) != 0 {
		t.Fatal("an erasure's deletion left feed rows")
	}
	// A statement naming the partition fires the partition's own triggers, not audit_log's.
	ids = f.writeFed(ev(org, detectBase, "data.read", "success", by("erin")))
	var part string
	if err := db.Raw(`SELECT tableoid::regclass::text FROM audit_log WHERE id = ?`, ids[0]).Scan(&part).Error; err != nil {
		t.Fatal(err)
	}
	change("gdpr", `UPDATE `+part+` SET principal_id = 'pseudonym-2' WHERE id = ?`, ids[0])
	if feedRows(t, org) != 0 {
		t.Fatalf("an erasure's update of partition %s left feed rows", part)
	}
	// Only GDPR changes update events; an update under another purpose clears the feed too.
	ids = f.writeFed(ev(org, detectBase, "data.read", "success", by("frank")))
	change("retention", `UPDATE `+part+` SET principal_id = 'pseudonym-3' WHERE id = ?`, ids[0])
	if feedRows(t, org) != 0 {
		t.Fatal("an update under the purpose 'retention' left feed rows")
	}
	// A partition made later gets the triggers when it is made.
	later := time.Date(2031, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := models.NewPartitionManager(db).EnsureFor(context.Background(), "audit_log", later); err != nil {
		t.Fatal(err)
	}
	var guards int64
	db.Raw(`SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_log_2031_03'::regclass
		AND tgname IN ('audit_log_detection_feed_clear_upd', 'audit_log_detection_feed_clear_del')`).Scan(&guards)
	if guards != 2 {
		t.Fatalf("a new partition has %d of the feed's two triggers", guards)
	}
}

// A feed row detection cannot decode (a fault of the writer) is not trusted in part: the
// batch reads its events from audit_log, counts each once, and deletes the row.
func TestDetectionReadsTheLogPastAMalformedFeedRow(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "")
	ids := f.write(repeat(3, func(i int) models.Event {
		return ev(org, detectBase.Add(-time.Duration(i)*time.Second), "data.read", "success", by("alice"))
	})...)
	// A row that decodes its first event and then breaks off.
	good, err := models.DetectionFeedSQL([]*models.Event{{ID: ids[0], OrganizationID: org, Timestamp: detectBase,
		Action: "data.read", Status: "success", PrincipalID: ptr("mallory")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pgtest.DB(t).Exec(strings.Replace(good[2:], "', 'hex')", "ff', 'hex')", 1)).Error; err != nil {
		t.Fatal(err)
	}
	if err := pgtest.DB(t).Exec(`UPDATE detection_feed SET last_id = ? WHERE organization_id = ?`, ids[2], org).Error; err != nil {
		t.Fatal(err)
	}
	f.drain(f.detector(100))
	if n := feedRows(t, org); n != 0 {
		t.Fatalf("%d feed rows left, want the malformed one deleted", n)
	}
	hourly, _, principals := eventCounts(t, org)
	if hourly != 3 || principals != 3 {
		t.Fatalf("counted %d events (%d by principal), want 3", hourly, principals)
	}
	var mallory int64
	pgtest.DB(t).Raw(`SELECT count(*) FROM event_counts_daily WHERE organization_id = ? AND value = 'mallory'`, org).Scan(&mallory)
	if mallory != 0 {
		t.Fatal("the malformed row's decodable part was trusted")
	}
}

func runRows(t *testing.T, org string) []struct{ FirstLeaf, Leaves int64 } {
	t.Helper()
	var runs []struct{ FirstLeaf, Leaves int64 }
	if err := pgtest.DB(t).Raw(`SELECT first_leaf, leaves FROM detection_run WHERE organization_id = ? ORDER BY first_leaf`,
		org).Scan(&runs).Error; err != nil {
		t.Fatal(err)
	}
	return runs
}

// The sequencer records a run for each call's fed writes, and none for writes without a
// feed row. A batch takes the whole runs that follow on from its cursor, with exactly the
// events audit_log holds for their leaves (an event the feed does not hold read from
// audit_log); where no whole run starts, it reads the leaves up to the next whole one; a run
// whose feed rows do not add up to it is not trusted. Detection over runs raises and counts
// what it does over the log, and leaves no run or feed row behind.
func TestDetectionTakesWholeRunsFromTheFeed(t *testing.T) {
	f := newDetectFixture(t)
	fedOrg, loggedOrg := pgtest.NewOrg(t, "fed"), pgtest.NewOrg(t, "logged")
	writes := func(org string) [][]models.Event {
		failures := repeat(12, func(i int) models.Event {
			return ev(org, detectBase.Add(-time.Duration(i)*time.Second), "auth.login.failure", "failure", by("mallory"))
		})
		failures = append(failures, ev(org, detectBase, "auth.login.failure", "failure",
			func(e *models.Event) { e.Details = json.RawMessage(`{"ipAddress": 7}`) }))
		return [][]models.Event{
			failures,
			repeat(30, func(i int) models.Event {
				return ev(org, detectBase.Add(-time.Duration(i)*time.Second), "data.export", "success", by("trent"), resource("Patient"))
			}),
			repeat(4, func(i int) models.Event { // written without a feed row: no run
				return ev(org, detectBase.Add(-time.Duration(i)*time.Second), "data.read", "failure", by("eve"), outcome("Unauthorized"))
			}),
			repeat(5, func(i int) models.Event {
				return ev(org, detectBase.Add(-time.Duration(i)*time.Second), "data.read", "failure", by("eve"), outcome("Unauthorized"))
			}),
			repeat(3, func(i int) models.Event {
				return ev(org, detectBase.Add(-time.Duration(i)*time.Second), "data.read", "success", by("zed"))
			}),
		}
	}
	fw, lw := writes(fedOrg), writes(loggedOrg)
	for i := range fw {
		if i == 2 {
			f.write(fw[i]...)
		} else {
			f.writeFed(fw[i]...)
		}
		f.write(lw[i]...)
	}
	want := []struct{ FirstLeaf, Leaves int64 }{{0, 13}, {13, 30}, {47, 5}, {52, 3}}
	if got := runRows(t, fedOrg); !slices.Equal(got, want) {
		t.Fatalf("runs %v, want %v", got, want)
	}
	if got := runRows(t, loggedOrg); len(got) != 0 {
		t.Fatalf("runs %v for writes without a feed", got)
	}
	ctx, db := context.Background(), pgtest.DB(t)
	byID := func(a, b models.DetectEventForTest) int { return int(a.ID - b.ID) }

	events, leaves, _, finished, err := models.ReadDetectionRunBatch(ctx, db, fedOrg, 0, 1000)
	if err != nil || leaves != 43 || len(finished) != 2 {
		t.Fatalf("from leaf 0: %d leaves, %d rows finished, %v; want the first two runs (43 leaves, 2 rows)", leaves, len(finished), err)
	}
	_, _, logged, _, err := models.ReadDetectionBatch(ctx, db, fedOrg, 0, 43)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(events, byID)
	slices.SortFunc(logged, byID)
	if !slices.Equal(events, logged) {
		t.Fatalf("the runs gave %d events, audit_log holds %d for their leaves:\n%+v\n%+v", len(events), len(logged), events, logged)
	}
	if _, leaves, _, _, _ = models.ReadDetectionRunBatch(ctx, db, fedOrg, 0, 42); leaves != 13 {
		t.Fatalf("a batch of 42 took %d leaves, want the first run's 13 (a run is taken whole or not at all)", leaves)
	}
	if _, leaves, limit, _, _ := models.ReadDetectionRunBatch(ctx, db, fedOrg, 43, 1000); leaves != 0 || limit != 4 {
		t.Fatalf("from leaf 43 (no run): %d leaves, read %d from the log; want 0 and the 4 up to the next run", leaves, limit)
	}
	if _, leaves, limit, _, _ := models.ReadDetectionRunBatch(ctx, db, fedOrg, 5, 1000); leaves != 0 || limit != 8 {
		t.Fatalf("from leaf 5 (inside a run): %d leaves, read %d from the log; want 0 and 8", leaves, limit)
	}
	// A run whose rows do not add up to it is not trusted: a wrong id sum, a row gone.
	if err := db.Exec(`UPDATE detection_run SET id_sum = id_sum + 1 WHERE organization_id = ? AND first_leaf = 47`, fedOrg).Error; err != nil {
		t.Fatal(err)
	}
	if _, leaves, limit, _, _ := models.ReadDetectionRunBatch(ctx, db, fedOrg, 47, 1000); leaves != 0 || limit != 5 {
		t.Fatalf("a run with a wrong id sum: %d leaves taken, read %d from the log; want 0 and 5", leaves, limit)
	}
	if err := db.Exec(`DELETE FROM detection_feed WHERE organization_id = ? AND last_id = (SELECT max(last_id) FROM detection_feed
		WHERE organization_id = ?)`, fedOrg, fedOrg).Error; err != nil {
		t.Fatal(err)
	}
	if _, leaves, limit, _, _ := models.ReadDetectionRunBatch(ctx, db, fedOrg, 52, 1000); leaves != 0 || limit != 1000 {
		t.Fatalf("a run without its feed row: %d leaves taken, read %d from the log; want 0 and the batch", leaves, limit)
	}

	f.drain(f.detector(1000))
	for _, rule := range []string{models.RuleFailedLogins, models.RuleUnauthorizedAccess, models.RuleBulkOperations,
		models.RuleDataAccessVelocity} {
		a, b := alertsOf(t, fedOrg, rule), alertsOf(t, loggedOrg, rule)
		if len(a) != len(b) {
			t.Fatalf("%s: %d alerts over runs, %d over the log", rule, len(a), len(b))
		}
	}
	ha, aa, pa := eventCounts(t, fedOrg)
	hb, ab, pb := eventCounts(t, loggedOrg)
	if ha != hb || aa != ab || pa != pb || ha != 55 {
		t.Fatalf("counts over runs %d/%d/%d, over the log %d/%d/%d, want 55 events", ha, aa, pa, hb, ab, pb)
	}
	if n, runs := feedRows(t, fedOrg), runRows(t, fedOrg); n != 0 || len(runs) != 0 {
		t.Fatalf("%d feed rows and runs %v left once detection read every event", n, runs)
	}
}

// A run that adds up to nothing (no leaves, no rows: the sequencer never writes one) is no
// batch: detection reads the leaves past it rather than stand still at its cursor.
func TestDetectionReadsPastAnEmptyRun(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "")
	f.write(repeat(3, func(i int) models.Event {
		return ev(org, detectBase.Add(-time.Duration(i)*time.Second), "data.read", "success", by("alice"))
	})...)
	if err := pgtest.DB(t).Exec(`INSERT INTO detection_run (organization_id, first_leaf, leaves, feed_last_ids, id_sum)
		VALUES (?, 0, 0, '{}', 0)`, org).Error; err != nil {
		t.Fatal(err)
	}
	if _, leaves, limit, _, err := models.ReadDetectionRunBatch(context.Background(), pgtest.DB(t), org, 0, 100); err != nil ||
		leaves != 0 || limit != 100 {
		t.Fatalf("from an empty run: %d leaves taken, read %d from the log, %v; want 0 and the batch", leaves, limit, err)
	}
	f.drain(f.detector(100))
	if h, _, p := eventCounts(t, org); h != 3 || p != 3 {
		t.Fatalf("%d events counted (%d by principal), want 3", h, p)
	}
	if runs := runRows(t, org); len(runs) != 0 {
		t.Fatalf("runs %v left below the cursor", runs)
	}
}
