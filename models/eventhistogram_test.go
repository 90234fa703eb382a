package models_test

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// TestHistogramFromRollupsAgreesWithCount checks that the histogram of a query without
// conditions, read mostly from detection's hourly counts, equals a count of the events:
// with events counted, sequenced but not counted, only queued, in hours a bucket boundary
// cuts, at the range's ends, deleted or archived by retention after they were counted (in
// hours younger than any policy's age, as after a policy deleted once it had run), and
// another organization's events beside them.
func TestHistogramFromRollupsAgreesWithCount(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "hist")
	other := pgtest.NewOrg(t, "hist-other")
	now := time.Now().UTC()
	// A range whose ends and bucket boundaries fall inside hours.
	from, to := now.Add(-40*24*time.Hour).Add(-17*time.Minute), now.Add(5*time.Minute)
	ev := func(o string, at time.Time) models.Event {
		return models.Event{OrganizationID: o, Action: "record.read", Timestamp: at.Truncate(time.Microsecond)}
	}
	var counted, sequenced, queued []models.Event
	for i := range 400 {
		at := from.Add(time.Duration(i) * (to.Sub(from) / 400)).Add(time.Duration(i%7) * time.Minute)
		counted = append(counted, ev(org, at), ev(other, at))
	}
	counted = append(counted, ev(org, from), ev(org, to.Add(-time.Microsecond)), ev(org, from.Add(-time.Second)), ev(org, to))
	// Retention removes three counted events, as it records them: one deleted at the end of
	// its retention, one moved to an archive — both newer than any policy's age today, as
	// after a policy that was deleted once it had run — and one older.
	deleted, archived, old := ev(org, now.Add(-9*24*time.Hour)), ev(org, now.Add(-5*24*time.Hour)), ev(org, now.Add(-38*24*time.Hour))
	counted = append(counted, deleted, archived, old)
	ids := f.write(counted...)
	f.drain(f.detector(10_000))
	last := len(ids) - 1
	removeByRetention(t, org, ids[last-2], deleted.Timestamp, "")
	removeByRetention(t, org, ids[last-1], archived.Timestamp, "arc_hist_test")
	removeByRetention(t, org, ids[last], old.Timestamp, "")
	for i := range 30 {
		sequenced = append(sequenced, ev(org, now.Add(-time.Duration(i)*17*time.Hour)))
		queued = append(queued, ev(org, now.Add(-time.Duration(i)*23*time.Hour-time.Minute)))
	}
	f.write(sequenced...)
	seedEvents(t, queued)

	filter := models.EventFilter{From: from, To: to}
	for _, width := range []time.Duration{models.HistogramWidth(to.Sub(from)), 3 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour} {
		got, err := models.NewEventStore(db).Histogram(ctx, org, filter, width)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]int64, len(got))
		var all []time.Time
		db.Raw(`SELECT "timestamp" FROM audit_log WHERE organization_id = ? AND "timestamp" >= ? AND "timestamp" < ?`, org, from, to).Scan(&all)
		for _, ts := range all {
			want[int(ts.Sub(from)/width)]++
		}
		total := int64(0)
		for i := range got {
			total += got[i].Count
			if got[i].Count != want[i] {
				t.Errorf("width %s, bucket %d (%s): %d, want %d", width, i, got[i].Start.Format(time.RFC3339), got[i].Count, want[i])
			}
		}
		if total != int64(len(all)) || total == 0 {
			t.Errorf("width %s: %d events in the histogram, %d in the range", width, total, len(all))
		}
	}

	// The hours after the newest removal come from the counts: a count changed by hand shows.
	res := db.Exec(`UPDATE event_counts_hourly SET events = events + 1000 WHERE organization_id = ? AND hour = (
		SELECT min(hour) FROM event_counts_hourly WHERE organization_id = ? AND hour > ?)`, org, org, now.Add(-4*24*time.Hour))
	if res.Error != nil || res.RowsAffected != 1 {
		t.Fatalf("update a counted hour: %v, %d rows", res.Error, res.RowsAffected)
	}
	got, err := models.NewEventStore(db).Histogram(ctx, org, filter, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for _, b := range got {
		total += b.Count
	}
	var n int64
	db.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND "timestamp" >= ? AND "timestamp" < ?`, org, from, to).Scan(&n)
	if total != n+1000 {
		t.Fatalf("histogram total %d after adding 1000 to a counted hour, want %d: the counts were not read", total, n+1000)
	}
}

// removeByRetention removes event id of org from the log the way a retention run does:
// under the retention purpose, recording it in removed_events, or, with archive set, in an
// archive whose last event it is.
func removeByRetention(t *testing.T, org string, id int64, at time.Time, archive string) {
	t.Helper()
	err := pgtest.DB(t).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SET LOCAL auditdb.purpose = 'retention'`).Error; err != nil {
			return err
		}
		if err := tx.Exec(`DELETE FROM audit_log WHERE id = ?`, id).Error; err != nil {
			return err
		}
		if archive != "" {
			return tx.Exec(`INSERT INTO archive_storage (id, organization_id, metadata, first_event_at, last_event_at)
				VALUES (?, ?, '{}', ?, ?)`, archive, org, at, at).Error
		}
		return tx.Exec(`INSERT INTO removed_events (organization_id, audit_log_id, event_timestamp, event_hash, reason, policy)
			VALUES (?, ?, ?, repeat('0', 64), 'retention', 'standard')`, org, id, at).Error
	})
	if err != nil {
		t.Fatal(err)
	}
}
