package models_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// sketchFixture is an organization with events on four days of May 2026, sequenced into
// the Merkle log, and the sketches of its closed days built as of June 1st.
type sketchFixture struct {
	*detectFixture
	org, other string
	may        models.EventFilter
	builder    *models.SearchSketches
}

var sketchDay = func(d int) time.Time { return time.Date(2026, 5, d, 10, 0, 0, 0, time.UTC) }

func newSketchFixture(t *testing.T) *sketchFixture {
	f := &sketchFixture{detectFixture: newDetectFixture(t), org: pgtest.NewOrg(t, "sketch"), other: pgtest.NewOrg(t, "sketch-other"),
		may: models.EventFilter{From: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}}
	f.builder = models.NewSearchSketches(pgtest.DB(t), func() time.Time { return time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC) })
	text := func(s string) *string { return &s }
	f.write(
		models.Event{OrganizationID: f.org, Action: "session.opened", Timestamp: sketchDay(1)},
		models.Event{OrganizationID: f.org, Action: "medication.given", Timestamp: sketchDay(3), OutcomeDescription: text("Aspirin 100 mg")},
		models.Event{OrganizationID: f.org, Action: "medication.given", Timestamp: sketchDay(10), OutcomeDescription: text("METFORMIN 500 mg")},
		models.Event{OrganizationID: f.org, Action: "record.read", Timestamp: sketchDay(10).Add(time.Hour), OutcomeDescription: text("Café-Prüfung bestanden")},
		models.Event{OrganizationID: f.org, Action: "record.read", Timestamp: sketchDay(20), CorrelationID: text("corr-7f3a")},
		models.Event{OrganizationID: f.other, Action: "record.read", Timestamp: sketchDay(1), OutcomeDescription: text("secretword of another tenant")},
	)
	f.build(t)
	return f
}

func (f *sketchFixture) build(t *testing.T) models.SketchBuildResult {
	t.Helper()
	res, err := f.builder.Build(context.Background(), f.org)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// search resolves q over f.may for org and lists its matches.
func (f *sketchFixture) search(t *testing.T, org, q string) (models.EventFilter, []models.Event) {
	t.Helper()
	fl := f.may
	var err error
	if fl.Query, err = models.ParseEventQuery(q); err != nil {
		t.Fatal(err)
	}
	resolved, err := models.NewEventStore(pgtest.DB(t)).ResolveFilter(context.Background(), org, fl)
	if err != nil {
		t.Fatal(err)
	}
	return resolved, listAll(t, org, fl, 500)
}

// plain lists q's matches with the sketches left out (a filter marked resolved is not
// looked up).
func (f *sketchFixture) plain(t *testing.T, org, q string) []models.Event {
	t.Helper()
	fl := f.may
	fl.Query, _ = models.ParseEventQuery(q)
	fl.TextResolved = true
	return listAll(t, org, fl, 500)
}

func eventIDs(evs []models.Event) []int64 {
	ids := make([]int64, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	return ids
}

func TestSearchSketchesNarrowFreeText(t *testing.T) {
	f := newSketchFixture(t)
	if n := countWhere(t, `SELECT count(*) FROM search_sketches WHERE organization_id = $1`, f.org); n != 31 {
		t.Fatalf("%d sketches, want 31: one per day of May, not June 1st's (not closed)", n)
	}
	cases := []struct {
		name, q string
		want    int
		days    []int // the days the search is narrowed to; nil: the whole range
	}{
		{"a word present only on an old day", "aspirin", 1, []int{3}},
		{"in another case", "ASPIRIN", 1, []int{3}},
		{"multi-byte characters", "café-prüfung", 1, []int{10}},
		{"two words on one day", "metformin 500", 1, []int{10}},
		{"a correlation id", "7f3a", 1, []int{20}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resolved, got := f.search(t, f.org, c.q)
			if len(got) != c.want {
				t.Fatalf("%q listed %d events, want %d", c.q, len(got), c.want)
			}
			if !resolved.TextResolved || resolved.MatchesNothing() {
				t.Fatalf("%q: resolved %v, matches nothing %v", c.q, resolved.TextResolved, resolved.MatchesNothing())
			}
			var days []int
			for _, r := range resolved.Within {
				days = append(days, r.From.Day())
			}
			if !slices.Equal(days, c.days) {
				t.Fatalf("%q narrowed to the days %v, want %v", c.q, days, c.days)
			}
		})
	}

	t.Run("a word absent answers nothing without reading events", func(t *testing.T) {
		for _, q := range []string{"zzq-no-such-word", "prüfunx", "aspirin metformin"} {
			resolved, got := f.search(t, f.org, q)
			if !resolved.MatchesNothing() || len(got) != 0 {
				t.Fatalf("%q: matches nothing %v, %d events", q, resolved.MatchesNothing(), len(got))
			}
			count, err := models.NewEventStore(pgtest.DB(t)).Count(context.Background(), f.org, resolved)
			if err != nil || count.N != 0 {
				t.Fatalf("%q counted %+v (%v)", q, count, err)
			}
		}
	})

	t.Run("two organizations' sketches never mix", func(t *testing.T) {
		if resolved, got := f.search(t, f.org, "secretword"); !resolved.MatchesNothing() || len(got) != 0 {
			t.Fatalf("another organization's word: matches nothing %v, %d events", resolved.MatchesNothing(), len(got))
		}
		if _, err := f.builder.Build(context.Background(), f.other); err != nil {
			t.Fatal(err)
		}
		if resolved, got := f.search(t, f.other, "secretword"); len(got) != 1 || len(resolved.Within) != 1 {
			t.Fatalf("its own word: %d events, narrowed to %+v", len(got), resolved.Within)
		}
		if resolved, got := f.search(t, f.other, "aspirin"); !resolved.MatchesNothing() || len(got) != 0 {
			t.Fatalf("the first organization's word: matches nothing %v, %d events", resolved.MatchesNothing(), len(got))
		}
	})

	// (Free text under 3 characters is refused when the query is parsed.)
	t.Run("negated words are not narrowed", func(t *testing.T) {
		for _, q := range []string{"-aspirin", "action:record.read -zzq"} {
			resolved, got := f.search(t, f.org, q)
			if resolved.MatchesNothing() || resolved.Within != nil {
				t.Fatalf("%q was narrowed: %+v", q, resolved.Within)
			}
			if want := f.plain(t, f.org, q); !slices.Equal(eventIDs(got), eventIDs(want)) {
				t.Fatalf("%q listed %v, want %v", q, eventIDs(got), eventIDs(want))
			}
		}
	})

	t.Run("the same rows as without sketches", func(t *testing.T) {
		for _, q := range []string{"medication", "500", "aspirin", "metformin", "bestanden", "record", "zzq-no-such-word", "café",
			"50%", "a_b", `back\slash`, "a%b", strings.Repeat("aspirin", 28), "ASPIRIN", "rin"} {
			_, got := f.search(t, f.org, q)
			if want := f.plain(t, f.org, q); !slices.Equal(eventIDs(got), eventIDs(want)) {
				t.Fatalf("%q listed %v with sketches, %v without", q, eventIDs(got), eventIDs(want))
			}
		}
	})
}

// TestSearchSketchesFindEventsAddedAfterTheBuild checks that an event written into a
// sketched day after its sketch was built is found, sequenced or still queued for the Merkle
// log, and that the next build takes it into the sketch.
func TestSearchSketchesFindEventsAddedAfterTheBuild(t *testing.T) {
	f := newSketchFixture(t)
	late := "latecomer arrived"
	f.write(models.Event{OrganizationID: f.org, Action: "record.read", Timestamp: sketchDay(5), OutcomeDescription: &late})
	queued := "queuedword waiting"
	seedEvents(t, []models.Event{{OrganizationID: f.org, Action: "record.read", Timestamp: sketchDay(6), OutcomeDescription: &queued}})
	for _, q := range []string{"latecomer", "queuedword"} {
		if resolved, got := f.search(t, f.org, q); resolved.MatchesNothing() || len(got) != 1 {
			t.Fatalf("%q after the build: matches nothing %v, %d events", q, resolved.MatchesNothing(), len(got))
		}
	}
	if _, err := f.log.Sequence(context.Background(), 10_000); err != nil { // the queued event
		t.Fatal(err)
	}
	res := f.build(t)
	if res.Refreshed != 2 || res.Built != 0 {
		t.Fatalf("the next build: %+v, want 2 sketches refreshed and none built", res)
	}
	if n := countWhere(t, `SELECT count(DISTINCT below_leaf) FROM search_sketches WHERE organization_id = $1`, f.org); n != 1 {
		t.Fatalf("%d different watermarks after the refresh, want 1", n)
	}
	for _, q := range []string{"latecomer", "queuedword"} {
		resolved, got := f.search(t, f.org, q)
		if len(got) != 1 || len(resolved.Within) != 1 {
			t.Fatalf("%q after the refresh: %d events, narrowed to %+v", q, len(got), resolved.Within)
		}
	}
}

// TestSearchSketchesDroppedWhenTextChanges checks that an UPDATE of an event's search text
// (as erasure and redaction make) deletes the sketch of its day in its transaction, so the
// new text is found, and that one changing other columns keeps it.
func TestSearchSketchesDroppedWhenTextChanges(t *testing.T) {
	f := newSketchFixture(t)
	db := pgtest.DB(t)
	update := func(set string) {
		t.Helper()
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(`SET LOCAL auditdb.purpose = 'gdpr'`).Error; err != nil {
				return err
			}
			return tx.Exec(`UPDATE audit_log SET `+set+` WHERE organization_id = ? AND "timestamp" = ?`, f.org, sketchDay(3)).Error
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	day3 := `SELECT count(*) FROM search_sketches WHERE organization_id = $1 AND day = '2026-05-03'`
	update(`details = '{"x": 1}'`)
	if countWhere(t, day3, f.org) != 1 {
		t.Fatal("a change outside the search text dropped the sketch")
	}
	update(`outcome_description = 'pst_0123abcd given'`)
	if countWhere(t, day3, f.org) != 0 {
		t.Fatal("the sketch of the rewritten day is still there")
	}
	if countWhere(t, `SELECT count(*) FROM search_sketches WHERE organization_id = $1`, f.org) != 30 {
		t.Fatal("other days' sketches went too")
	}
	if resolved, got := f.search(t, f.org, "pst_0123abcd"); resolved.MatchesNothing() || len(got) != 1 {
		t.Fatalf("the new text: matches nothing %v, %d events", resolved.MatchesNothing(), len(got))
	}
	if res := f.build(t); res.Built != 1 {
		t.Fatalf("the next build built %d sketches, want the dropped one", res.Built)
	}
	if _, got := f.search(t, f.org, "pst_0123abcd"); len(got) != 1 {
		t.Fatalf("after the rebuild the new text lists %d events", len(got))
	}
	// An UPDATE naming the partition fires the partition's own trigger, not audit_log's.
	var part string
	if err := db.Raw(`SELECT tableoid::regclass::text FROM audit_log WHERE organization_id = ? AND "timestamp" = ? LIMIT 1`,
		f.org, sketchDay(10)).Scan(&part).Error; err != nil || part == "" {
		t.Fatalf("partition of day 10: %q %v", part, err)
	}
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SET LOCAL auditdb.purpose = 'gdpr'`).Error; err != nil {
			return err
		}
		return tx.Exec(`UPDATE `+part+` SET outcome_description = 'pst_4567cdef given' WHERE organization_id = ? AND "timestamp" = ?`,
			f.org, sketchDay(10)).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	if countWhere(t, `SELECT count(*) FROM search_sketches WHERE organization_id = $1 AND day = '2026-05-10'`, f.org) != 0 {
		t.Fatalf("an update of partition %s left the sketch of the rewritten day", part)
	}
	if _, got := f.search(t, f.org, "pst_4567cdef"); len(got) != 1 {
		t.Fatalf("the text rewritten through the partition lists %d events", len(got))
	}
}

// TestNarrowedSearchesArePlannedForTheirValues checks the plan choice of a narrowed free-text
// search: for its values when the candidate ranges cover at most a quarter of the range, the
// generic plan (newest first, stopping at the page's end) otherwise.
func TestNarrowedSearchesArePlannedForTheirValues(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := models.EventFilter{From: from, To: from.AddDate(0, 0, 100), Query: models.EventQuery{Terms: []models.QueryTerm{{Value: "word"}}}}
	cases := []struct {
		name    string
		within  []models.TimeRange
		generic bool
	}{
		{"not narrowed", nil, true},
		{"a quarter", []models.TimeRange{{From: from, To: from.AddDate(0, 0, 20)}, {From: from.AddDate(0, 0, 50), To: from.AddDate(0, 0, 55)}}, false},
		{"more than a quarter", []models.TimeRange{{From: from, To: from.AddDate(0, 0, 26)}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.Within = c.within
			if got := models.PreferGenericPlan(f); got != c.generic {
				t.Fatalf("PreferGenericPlan = %v, want %v", got, c.generic)
			}
		})
	}
}

// TestSearchSketchBuildersOfOneOrganizationTakeTurns checks that two builders of the same
// organization at once (the job at a server's start, the command) both succeed.
func TestSearchSketchBuildersOfOneOrganizationTakeTurns(t *testing.T) {
	f := newSketchFixture(t)
	if err := pgtest.DB(t).Exec(`DELETE FROM search_sketches WHERE organization_id = ?`, f.org).Error; err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := f.builder.Build(context.Background(), f.org)
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := countWhere(t, `SELECT count(*) FROM search_sketches WHERE organization_id = $1`, f.org); n != 31 {
		t.Fatalf("%d sketches, want 31", n)
	}
}

// The ranges a narrowed search reads are its range without the days the sketches rule out,
// computed from those days alone: a range from year 1 to 9999 costs what its sketched days
// cost (it used to walk every day of the range in the server, 4 s and 155 MB a request).
func TestSearchSketchCandidateRangesFollowTheExcludedDays(t *testing.T) {
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, time.UTC) }
	from, to := d(1, 1, 1), d(9999, 12, 31)
	mid := d(2026, 3, 10).Add(7 * time.Hour)
	cases := []struct {
		name     string
		from, to time.Time
		excluded []time.Time
		want     []models.TimeRange
	}{
		{"nothing excluded", from, to, nil, []models.TimeRange{{From: from, To: to}}},
		{"two days of an endless range", from, to, []time.Time{d(2026, 3, 10), d(2026, 3, 12)},
			[]models.TimeRange{{From: from, To: d(2026, 3, 10)}, {From: d(2026, 3, 11), To: d(2026, 3, 12)}, {From: d(2026, 3, 13), To: to}}},
		{"adjacent days merge into one gap", from, to, []time.Time{d(2026, 3, 10), d(2026, 3, 11)},
			[]models.TimeRange{{From: from, To: d(2026, 3, 10)}, {From: d(2026, 3, 12), To: to}}},
		{"a range inside one excluded day", mid, mid.Add(time.Hour), []time.Time{d(2026, 3, 10)}, nil},
		{"ends cut inside days", mid, mid.Add(48 * time.Hour), []time.Time{d(2026, 3, 11)},
			[]models.TimeRange{{From: mid, To: d(2026, 3, 11)}, {From: d(2026, 3, 12), To: mid.Add(48 * time.Hour)}}},
	}
	for _, c := range cases {
		got := models.CandidateRanges(c.from, c.to, c.excluded)
		if len(got) != len(c.want) {
			t.Fatalf("%s: %v, want %v", c.name, got, c.want)
		}
		for i := range got {
			if !got[i].From.Equal(c.want[i].From) || !got[i].To.Equal(c.want[i].To) {
				t.Fatalf("%s: %v, want %v", c.name, got, c.want)
			}
		}
	}
}
