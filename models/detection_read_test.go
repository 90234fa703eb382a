package models

import (
	"slices"
	"testing"
	"time"
)

// Both forms of the batch's id set (a bitmap over a narrow id range, a map over a wide
// one) hold exactly the ids added and give each up once.
func TestIDSetTakesEachAddedIDOnce(t *testing.T) {
	for _, c := range []struct {
		name   string
		ids    []int64
		bitmap bool
	}{
		{"narrow range", []int64{1000, 1001, 1003, 1063, 1064, 1127}, true},
		{"wide range", []int64{5, 900, 1_000_000}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			lo, hi := c.ids[0], c.ids[len(c.ids)-1]
			s := newIDSet(lo, hi, len(c.ids))
			if got := s.bits != nil; got != c.bitmap {
				t.Fatalf("bitmap = %v for %d ids over %d, want %v", got, len(c.ids), hi-lo+1, c.bitmap)
			}
			for _, id := range c.ids {
				s.add(id)
			}
			for _, id := range []int64{lo - 1, lo + 2, hi + 1, hi + 64, hi - 1} {
				if s.take(id) {
					t.Errorf("id %d was never added but was taken", id)
				}
			}
			kept := s.clone()
			for _, id := range c.ids {
				if !s.take(id) {
					t.Errorf("id %d was added but not taken", id)
				}
				if s.take(id) {
					t.Errorf("id %d was taken twice", id)
				}
				if !kept.has(id) {
					t.Errorf("taking id %d from the set took it from its clone", id)
				}
			}
		})
	}
}

// The counts' hours and days, worked out as whole Unix hours and days, are the UTC hour and
// day Truncate gives, before 1970 and at the ends of the range too.
func TestCountHoursAndDaysAreUTCHoursAndDays(t *testing.T) {
	for _, ts := range []time.Time{
		time.Date(2026, 11, 30, 23, 59, 59, 999999000, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 30, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(1960, 3, 1, 0, 0, 0, 1000, time.UTC),
	} {
		sec := ts.Unix()
		if got, want := time.Unix(floorDiv(sec, 3600)*3600, 0).UTC(), ts.Truncate(time.Hour); !got.Equal(want) {
			t.Errorf("%s: hour %s, want %s", ts, got, want)
		}
		if got, want := time.Unix(floorDiv(sec, 86400)*86400, 0).UTC(), ts.Truncate(24*time.Hour); !got.Equal(want) {
			t.Errorf("%s: day %s, want %s", ts, got, want)
		}
	}
}

// A feed row decodes to what was encoded, and every truncation of it, or a byte too many,
// is refused as a whole: no event of a broken row is trusted.
func TestFeedRowDecodesWholeOrNotAtAll(t *testing.T) {
	p, r, o := "dr.smith", "Patient", "access denied"
	at := time.Date(2026, 11, 30, 12, 0, 0, 123456000, time.UTC)
	evs := []*Event{
		{ID: 1000, Timestamp: at, OrganizationID: "o", PrincipalID: &p, Action: "data.read", Status: "success", TargetResourceType: &r},
		{ID: 1001, Timestamp: at.Add(-time.Hour), OrganizationID: "o", Action: "auth.login.failure", Status: "failure",
			OutcomeDescription: &o, Details: []byte(`{"ipAddress":"10.0.0.1"}`)},
		{ID: 1003, Timestamp: at, OrganizationID: "o", Action: "auth.login.failure", Status: "failure",
			Details: []byte(`{"ipAddress":7}`)},
	}
	row := encodeFeed(evs)
	all := func(int64) bool { return true }
	got, held, err := decodeFeed(row, all)
	want := []detectEvent{
		{ID: 1000, Timestamp: at, PrincipalID: p, Action: "data.read", Status: "success", TargetResourceType: r},
		{ID: 1001, Timestamp: at.Add(-time.Hour), Action: "auth.login.failure", Status: "failure", OutcomeDescription: o, IPAddress: "10.0.0.1"},
	} // 1003's address is not a string: left to audit_log
	if err != nil || len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, want)
	}
	if len(held) != 1 || held[0] != (detectLeaf{AuditLogID: 1003, EventTimestamp: at}) {
		t.Fatalf("the events the row does not hold: %+v, want 1003 at %s", held, at)
	}
	for n := 0; n < len(row); n++ {
		if evs, held, err := decodeFeed(row[:n], all); err == nil || evs != nil || held != nil {
			t.Fatalf("the first %d of %d bytes decoded to %d events, %v", n, len(row), len(evs), err)
		}
	}
	if _, _, err := decodeFeed(append(row, 0), all); err == nil {
		t.Fatal("a byte too many was accepted")
	}
}

// A write's events group by organization in the order the organizations first appear, each
// group in the write's order; a write of one organization is one group of all its events.
func TestByOrganizationKeepsOrder(t *testing.T) {
	e := func(id int64, org string) *Event { return &Event{ID: id, OrganizationID: org} }
	ids := func(groups [][]*Event) [][]int64 {
		var out [][]int64
		for _, g := range groups {
			var row []int64
			for _, ev := range g {
				row = append(row, ev.ID)
			}
			out = append(out, row)
		}
		return out
	}
	mixed := []*Event{e(1, "b"), e(2, "a"), e(3, "b"), e(4, "c"), e(5, "a")}
	if got := ids(byOrganization(mixed)); !slices.EqualFunc(got, [][]int64{{1, 3}, {2, 5}, {4}}, slices.Equal) {
		t.Fatalf("mixed write grouped as %v", got)
	}
	one := []*Event{e(1, "a"), e(2, "a"), e(3, "a")}
	if got := ids(byOrganization(one)); !slices.EqualFunc(got, [][]int64{{1, 2, 3}}, slices.Equal) {
		t.Fatalf("one organization's write grouped as %v", got)
	}
	if got := byOrganization(nil); len(got) != 0 {
		t.Fatalf("no events grouped as %v", got)
	}
}
