package models_test

import (
	"reflect"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// TestDashboardIngestRate: the ingest figure counts exactly the leaves sequenced within the
// last five minutes, found by a binary search over the leaf numbers, for every position of
// the window's edge; another organization's leaves never count.
func TestDashboardIngestRate(t *testing.T) {
	db := pgtest.DB(t)
	ctx := t.Context()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	store := models.NewDashboardStore(db)
	cases := []struct {
		name   string
		leaves int
		recent int // the last `recent` leaves fall inside the window
	}{
		{"no leaves", 0, 0},
		{"all old", 37, 0},
		{"all recent", 37, 37},
		{"edge in the middle", 100, 41},
		{"only the newest", 64, 1},
		{"all but the oldest", 64, 63},
	}
	other := testOrg(t, "other")
	if err := db.Exec(`INSERT INTO audit_leaf (organization_id, leaf_index, audit_log_id, event_timestamp, event_hash, sequenced_at)
		SELECT ?, g, g, ?, 'x', ? FROM generate_series(0, 99) g`, other, now, now.Add(-time.Minute)).Error; err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			org := testOrg(t, "ingest")
			old := tc.leaves - tc.recent
			// Old leaves an hour ago and before; recent ones within the last four minutes.
			if tc.leaves > 0 {
				err := db.Exec(`INSERT INTO audit_leaf (organization_id, leaf_index, audit_log_id, event_timestamp, event_hash, sequenced_at)
					SELECT ?, g, g, ?, 'x', CASE WHEN g < ? THEN ?::timestamptz - (? - g) * interval '1 second'
						ELSE ?::timestamptz + g * interval '1 millisecond' END
					FROM generate_series(0, ? - 1) g`,
					org, now, old, now.Add(-time.Hour), old, now.Add(-4*time.Minute), tc.leaves).Error
				if err != nil {
					t.Fatal(err)
				}
			}
			ov, err := store.Overview(ctx, org, now)
			if err != nil {
				t.Fatal(err)
			}
			if ov.LogSize != int64(tc.leaves) || ov.Ingested != int64(tc.recent) {
				t.Fatalf("log size %d, ingested %d; want %d and %d", ov.LogSize, ov.Ingested, tc.leaves, tc.recent)
			}
		})
	}
}

// TestDashboardOverviewWindows: hours and days outside the windows are left out, missing
// ones are present with zeros, and the top lists sum days and rank by events.
func TestDashboardOverviewWindows(t *testing.T) {
	db := pgtest.DB(t)
	now := time.Date(2026, 11, 29, 12, 30, 0, 0, time.UTC)
	org := testOrg(t, "windows")
	exec := func(sql string, args ...any) {
		t.Helper()
		if err := db.Exec(sql, args...).Error; err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []struct {
		at     time.Time
		ev, fl int64
	}{{now, 10, 1}, {now.Add(-23 * time.Hour), 5, 0}, {now.Add(-24 * time.Hour), 1000, 0}, {now.Add(time.Hour), 2000, 0}} {
		exec(`INSERT INTO event_counts_hourly VALUES (?, ?, ?, ?)`, org, h.at.Truncate(time.Hour), h.ev, h.fl)
	}
	for _, d := range []struct {
		day        string
		kind, v    string
		ev, failed int64
	}{
		{"2026-11-29", "action", "a", 3, 1}, {"2026-10-31", "action", "a", 4, 0}, {"2026-10-30", "action", "a", 500, 0},
		{"2026-11-20", "action", "b", 6, 2}, {"2026-11-29", "principal", "p", 9, 0},
	} {
		exec(`INSERT INTO event_counts_daily VALUES (?, ?, ?, ?, ?, ?)`, org, d.day, d.kind, d.v, d.ev, d.failed)
	}
	ov, err := models.NewDashboardStore(db).Overview(t.Context(), org, now)
	if err != nil {
		t.Fatal(err)
	}
	var hours, days int64
	for _, h := range ov.Hours {
		hours += h.Events
	}
	for _, d := range ov.Days {
		days += d.Events
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"hours", len(ov.Hours), models.DashboardHours},
		{"first hour", ov.Hours[0].Hour, time.Date(2026, 11, 28, 13, 0, 0, 0, time.UTC)},
		{"last hour", ov.Hours[23], models.HourCount{Hour: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), Events: 10, Failures: 1}},
		{"events in 24 hours", hours, int64(15)},
		{"days", len(ov.Days), models.DashboardDays},
		{"first day", ov.Days[0].Day, time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC)},
		{"events in 30 days", days, int64(13)},
		{"top actions", len(ov.TopActions), 2},
		{"busiest action", ov.TopActions[0], models.ValueCount{Value: "a", Events: 7, Failures: 1}},
		{"top principal", ov.TopPrincipals, []models.ValueCount{{Value: "p", Events: 9}}},
		{"counted", ov.Counted, true},
		{"no sweep", ov.LastSweep == nil, true},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !reflectEqual(c.got, c.want) {
				t.Fatalf("got %+v, want %+v", c.got, c.want)
			}
		})
	}
}

func reflectEqual(a, b any) bool { return reflect.DeepEqual(a, b) }

// TestDashboardMonthlyKept: the 30-day aggregates are kept for MonthlyTTL (a change to them
// shows only after it), then answered once more while a background read replaces them; the
// hourly figures are read on every call.
func TestDashboardMonthlyKept(t *testing.T) {
	db := pgtest.DB(t)
	now := time.Now().UTC()
	org := testOrg(t, "kept")
	store := models.NewDashboardStore(db)
	store.MonthlyTTL = time.Hour
	add := func() {
		t.Helper()
		if err := db.Exec(`INSERT INTO event_counts_hourly VALUES (?, ?, 1, 0) ON CONFLICT (organization_id, hour)
			DO UPDATE SET events = event_counts_hourly.events + 1`, org, now.Truncate(time.Hour)).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Exec(`INSERT INTO event_counts_daily VALUES (?, ?, 'action', 'a', 1, 0) ON CONFLICT (organization_id, day, kind, value)
			DO UPDATE SET events = event_counts_daily.events + 1`, org, now.Format("2006-01-02")).Error; err != nil {
			t.Fatal(err)
		}
	}
	read := func() (hour, day int64) {
		t.Helper()
		ov, err := store.Overview(t.Context(), org, now)
		if err != nil {
			t.Fatal(err)
		}
		return ov.Hours[len(ov.Hours)-1].Events, ov.Days[len(ov.Days)-1].Events
	}
	steps := []struct {
		name      string
		ttl       time.Duration
		hour, day int64
	}{
		{"first read", time.Hour, 1, 1},
		{"within the TTL the daily figures are kept", time.Hour, 2, 1},
		{"past the TTL the kept figures answer while they are read again", time.Nanosecond, 3, 1},
		{"without a TTL they are read on every call", 0, 4, 4},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			add()
			store.MonthlyTTL = st.ttl
			if h, d := read(); h != st.hour || d != st.day {
				t.Fatalf("hour %d, day %d; want %d and %d", h, d, st.hour, st.day)
			}
		})
		if st.ttl == time.Nanosecond {
			t.Run("the background read replaces them", func(t *testing.T) {
				store.MonthlyTTL = time.Hour
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					if _, d := read(); d == 3 {
						return
					}
					if time.Now().After(deadline) {
						t.Fatal("the 30-day figures were not refreshed within 10 s")
					}
				}
			})
		}
	}
}
