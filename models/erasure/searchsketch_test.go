package erasure_test

import (
	"context"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/erasure"
)

// TestRewritesDropTheSearchSketchesOfTheirDays checks that after a pseudonymization, and
// after an erasure that also redacts mentions in other principals' free text, a free-text
// search for the pseudonym finds every event that now carries it, although the day's search
// sketch was built from the text before: the rewrite dropped the sketch of its day.
func TestRewritesDropTheSearchSketchesOfTheirDays(t *testing.T) {
	f := newFixture(t, 50, 0)
	ctx := context.Background()
	now := time.Now().UTC()
	evs := mentionEvents(f.org, now.Add(-time.Minute), "standard")
	f.seal(evs)
	f.sequence()
	// Two days ahead, today is a closed day: its sketch is built.
	builder := models.NewSearchSketches(f.db, func() time.Time { return now.AddDate(0, 0, 2) })
	window := models.EventFilter{From: now.AddDate(0, 0, -2), To: now.Add(time.Hour)}
	// found lists the events a free-text search for word finds, and counts those whose search
	// text holds it, as the database owner.
	found := func(word string) (int, int64) {
		t.Helper()
		fl := window
		fl.Query = models.EventQuery{Terms: []models.QueryTerm{{Value: word}}}
		var all int
		var after *models.Cursor
		for {
			page, err := models.NewEventStore(f.db).List(ctx, f.org, fl, after, 500)
			if err != nil {
				t.Fatal(err)
			}
			all += len(page.Events)
			if page.Next == nil {
				break
			}
			after = page.Next
		}
		want := f.count(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND "timestamp" >= ? AND "timestamp" < ?
			AND strpos(`+models.SearchText+`, lower(?)) > 0`, f.org, window.From, window.To, word)
		return all, want
	}
	rewrites := []struct {
		name string
		run  func() (string, error)
	}{
		{"pseudonymization", func() (string, error) {
			res, err := f.engine.Pseudonymize(ctx, f.org, "req-p", erasure.Subject{PrincipalID: "user-5"}, erasure.StrategyHash, dpo, nil)
			return res.Pseudonym, err
		}},
		{"erasure with mention redaction", func() (string, error) {
			res, err := f.engine.Erase(ctx, f.org, "req-e", subject, dpo, nil)
			if err == nil && res.MentionsRedacted == 0 {
				t.Fatal("the erasure redacted no mention")
			}
			return res.Pseudonym, err
		}},
	}
	for _, rw := range rewrites {
		t.Run(rw.name, func(t *testing.T) {
			if _, err := builder.Build(ctx, f.org); err != nil {
				t.Fatal(err)
			}
			if n := f.count(`SELECT count(*) FROM search_sketches WHERE organization_id = ? AND day = ?`, f.org, now.Format(time.DateOnly)); n != 1 {
				t.Fatal("today has no sketch before the rewrite")
			}
			pseudonym, err := rw.run()
			if err != nil {
				t.Fatal(err)
			}
			got, want := found(pseudonym)
			if want == 0 || int64(got) != want {
				t.Fatalf("a search for the pseudonym %q finds %d events, %d carry it", pseudonym, got, want)
			}
		})
	}
}
