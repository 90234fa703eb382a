package models_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/merkle"
	"auditdb/models/pgtest"
)

// detectBase is the detection tests' "now": a weekday noon in UTC (inside office hours).
var detectBase = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// detectFixture drives detection over real events: it writes them, sequences them into the
// Merkle log and runs passes with an injected clock.
type detectFixture struct {
	t   *testing.T
	log *merkle.Log
	now time.Time
	mu  sync.Mutex
}

func newDetectFixture(t *testing.T) *detectFixture {
	t.Helper()
	ck, err := merkle.NewCheckpointKey([]byte("detection-test-checkpoint-seed!!"))
	if err != nil {
		t.Fatal(err)
	}
	l := merkle.NewLog(pgtest.DB(t), ck)
	l.CheckpointEvery = 0
	return &detectFixture{t: t, log: l, now: detectBase}
}

func (f *detectFixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *detectFixture) setNow(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
}

// detector returns a new detector (as a freshly started instance would have) on the
// fixture's clock.
func (f *detectFixture) detector(batch int) *models.Detector {
	return models.NewDetector(pgtest.DB(f.t), f.clock).WithBatch(batch)
}

// write seals, stores and sequences events and returns their ids.
func (f *detectFixture) write(events ...models.Event) []int64 {
	f.t.Helper()
	ids := seedEvents(f.t, events)
	for {
		res, err := f.log.Sequence(context.Background(), 10_000)
		if err != nil {
			f.t.Fatal(err)
		}
		if res.Leaves == 0 {
			return ids
		}
	}
}

// drain runs passes of d until nothing is left and returns the alerts raised.
func (f *detectFixture) drain(d *models.Detector) int {
	f.t.Helper()
	total := 0
	for {
		res, err := d.Pass(context.Background())
		if err != nil {
			f.t.Fatal(err)
		}
		total += res.Alerts
		if res.Events == 0 {
			return total
		}
	}
}

type alertRow struct {
	Title       string
	Description string
	Severity    string
	Type        string
	Principal   *string
	EventIDs    string
	CreatedAt   time.Time
}

func alertsOf(t *testing.T, org, rule string) []alertRow {
	t.Helper()
	var rows []alertRow
	if err := pgtest.DB(t).Raw(`SELECT title, description, severity, type, principal, event_ids::text AS event_ids, created_at
		FROM alerts WHERE organization_id = ? AND rule = ? ORDER BY created_at, title`, org, rule).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	return rows
}

// ev is an event of org at at, shaped by the options.
func ev(org string, at time.Time, action, status string, opts ...func(*models.Event)) models.Event {
	e := models.Event{OrganizationID: org, Timestamp: at, Action: action, Status: status}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func by(p string) func(*models.Event) { return func(e *models.Event) { e.PrincipalID = ptr(p) } }
func resource(r string) func(*models.Event) {
	return func(e *models.Event) { e.TargetResourceType = ptr(r) }
}
func outcome(o string) func(*models.Event) {
	return func(e *models.Event) { e.OutcomeDescription = ptr(o) }
}
func fromIP(ip string) func(*models.Event) {
	return func(e *models.Event) { e.Details = json.RawMessage(`{"ipAddress":"` + ip + `"}`) }
}
func repeat(n int, f func(i int) models.Event) []models.Event {
	out := make([]models.Event, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func TestDetectionRaisesAtThresholdNotBelow(t *testing.T) {
	at := func(i int) time.Time { return detectBase.Add(-time.Duration(i) * time.Second) }
	for _, tc := range []struct {
		name, rule string
		below      int
		event      func(org string, i int) models.Event
		title      string
		severity   string
		principal  string
	}{
		{"failed sign-ins of a principal", models.RuleFailedLogins, 4,
			func(org string, i int) models.Event {
				return ev(org, at(i), "auth.login.failure", "failure", by("dr.smith"))
			},
			"5 failed sign-ins for dr.smith in 5 min", "HIGH", "dr.smith"},
		{"failed sign-ins of an address", models.RuleFailedLogins, 4,
			func(org string, i int) models.Event {
				return ev(org, at(i), "auth.login.failure", "failure", fromIP("10.1.2.3"))
			},
			"5 failed sign-ins for 10.1.2.3 in 5 min", "HIGH", "10.1.2.3"},
		{"unauthorized access", models.RuleUnauthorizedAccess, 2,
			func(org string, i int) models.Event {
				return ev(org, at(i), "fhir.patient.read", "failure", by("nurse.jo"), outcome([]string{"Access Denied", "FORBIDDEN", "unauthorized"}[i%3]))
			},
			"3 unauthorized access attempts by nurse.jo in 10 min", "CRITICAL", "nurse.jo"},
		{"data access velocity", models.RuleDataAccessVelocity, 49,
			func(org string, i int) models.Event {
				return ev(org, at(i), "data.read", "success", by("svc-etl"), resource([]string{"Patient", "Observation"}[i%2]))
			},
			"50 data reads by svc-etl in 1 min", "MEDIUM", "svc-etl"},
		{"bulk operations per organization", models.RuleBulkOperations, 99,
			func(org string, i int) models.Event {
				return ev(org, at(i), []string{"data.export", "data.import", "records.bulk.update"}[i%3], "success", by(fmt.Sprintf("user-%d", i)))
			},
			"100 bulk operations in 5 min", "MEDIUM", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newDetectFixture(t)
			org := pgtest.NewOrg(t, "")
			d := f.detector(1000)
			f.write(repeat(tc.below, func(i int) models.Event { return tc.event(org, i+1) })...)
			f.drain(d)
			if got := alertsOf(t, org, tc.rule); len(got) != 0 {
				t.Fatalf("%d events (one below the threshold) raised %v", tc.below, got)
			}
			ids := f.write(tc.event(org, 0))
			if n := f.drain(d); n != 1 {
				t.Fatalf("the event reaching the threshold raised %d alerts, want 1", n)
			}
			got := alertsOf(t, org, tc.rule)
			if len(got) != 1 || got[0].Title != tc.title || got[0].Severity != tc.severity {
				t.Fatalf("alerts = %+v, want one %q (%s)", got, tc.title, tc.severity)
			}
			if p := got[0].Principal; (tc.principal == "") != (p == nil) || (p != nil && *p != tc.principal) {
				t.Errorf("principal = %v, want %q", p, tc.principal)
			}
			if !strings.Contains(got[0].EventIDs, fmt.Sprint(ids[0])) || strings.Count(got[0].EventIDs, ",") != tc.below {
				t.Errorf("event ids = %s, want the %d triggering events including %d", got[0].EventIDs, tc.below+1, ids[0])
			}
			if tc.rule == models.RuleDataAccessVelocity && !strings.Contains(got[0].Description, "Resource types touched: Observation, Patient.") {
				t.Errorf("description %q does not list the resource types", got[0].Description)
			}
		})
	}
}

func TestDetectionIgnoresWhatTheRulesDoNotCount(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "")
	var evs []models.Event
	for i := range 10 {
		at := detectBase.Add(-time.Duration(i) * time.Second)
		evs = append(evs,
			ev(org, at, "auth.login.failure", "success", by("a")),                         // not a failure
			ev(org, at, "auth.login.success", "failure", by("b")),                         // not a failed sign-in action
			ev(org, at, "record.update", "failure", by("c"), outcome("validation error")), // not unauthorized
			ev(org, at, "record.update", "success", by("d"), outcome("forbidden")),        // not a failure
		)
	}
	f.write(evs...)
	f.drain(f.detector(1000))
	var n int64
	pgtest.DB(t).Raw(`SELECT count(*) FROM alerts WHERE organization_id = ?`, org).Scan(&n)
	if n != 0 {
		t.Fatalf("events no rule counts raised %d alerts", n)
	}
}

func TestDetectionWindowSlides(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "")
	d := f.detector(1000)
	fail := func(at time.Duration) models.Event {
		return ev(org, detectBase.Add(at), "auth.login.failure", "failure", by("dr.smith"))
	}
	// Four failures at 0–3 min.
	f.setNow(detectBase.Add(3 * time.Minute))
	f.write(fail(0), fail(time.Minute), fail(2*time.Minute), fail(3*time.Minute))
	f.drain(d)
	// A fifth at 5:30: the window (0:30, 5:30] holds four; the one at 0:00 slid out.
	f.setNow(detectBase.Add(5*time.Minute + 30*time.Second))
	f.write(fail(5*time.Minute + 30*time.Second))
	if n := f.drain(d); n != 0 {
		t.Fatalf("four failures within the window raised %d alerts", n)
	}
	// A sixth at 5:45: (0:45, 5:45] holds five.
	f.setNow(detectBase.Add(5*time.Minute + 45*time.Second))
	f.write(fail(5*time.Minute + 45*time.Second))
	if n := f.drain(d); n != 1 {
		t.Fatalf("five failures within the window raised %d alerts, want 1", n)
	}
	if got := alertsOf(t, org, models.RuleFailedLogins); len(got) != 1 || got[0].Title != "5 failed sign-ins for dr.smith in 5 min" {
		t.Fatalf("alerts = %+v", got)
	}
}

func TestDetectionDedupFor300Seconds(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "")
	d := f.detector(1000)
	burst := func(at time.Time, who string) []models.Event {
		return repeat(5, func(i int) models.Event {
			return ev(org, at.Add(-time.Duration(i)*time.Second), "auth.login.failure", "failure", by(who))
		})
	}
	f.write(burst(detectBase, "dr.smith")...)
	if n := f.drain(d); n != 1 {
		t.Fatalf("first burst raised %d alerts, want 1", n)
	}
	for _, step := range []struct {
		after time.Duration
		want  int
	}{
		{100 * time.Second, 1}, // within 300 s: the same alert is not raised again
		{299 * time.Second, 1},
		{301 * time.Second, 2}, // past 300 s it is
	} {
		f.setNow(detectBase.Add(step.after))
		f.write(burst(detectBase.Add(step.after), "dr.smith")...)
		f.drain(d)
		if got := alertsOf(t, org, models.RuleFailedLogins); len(got) != step.want {
			t.Fatalf("after %s: %d alerts, want %d", step.after, len(got), step.want)
		}
	}
	// Another principal is another alert, even within 300 s.
	f.write(burst(detectBase.Add(301*time.Second), "nurse.jo")...)
	f.drain(d)
	if got := alertsOf(t, org, models.RuleFailedLogins); len(got) != 3 {
		t.Fatalf("a second principal: %d alerts, want 3", len(got))
	}
}

// TestDetectionCapsAnAlertStorm: one client inventing principals, each just over the
// threshold, raises MaxAlertsPerRule alerts and then one storm alert, not one alert (and its
// notifications) per principal; the dedup window ending lets alerts through again.
func TestDetectionCapsAnAlertStorm(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "")
	d := f.detector(1000)
	var evs []models.Event
	for p := range models.MaxAlertsPerRule + 15 {
		who := fmt.Sprintf("invented-%d", p)
		evs = append(evs, repeat(5, func(i int) models.Event {
			return ev(org, detectBase.Add(-time.Duration(i)*time.Second), "auth.login.failure", "failure", by(who))
		})...)
	}
	f.write(evs...)
	f.drain(d)
	got := alertsOf(t, org, models.RuleFailedLogins)
	storms := 0
	for _, a := range got {
		if strings.HasPrefix(a.Title, "Alert storm") {
			storms++
		}
	}
	if len(got) != models.MaxAlertsPerRule+1 || storms != 1 {
		t.Fatalf("%d alerts (%d storm alerts) for %d principals, want %d and 1", len(got), storms,
			models.MaxAlertsPerRule+15, models.MaxAlertsPerRule+1)
	}
	// A real principal within the same window is held back too, but counted again after it.
	f.setNow(detectBase.Add(301 * time.Second))
	f.write(repeat(5, func(i int) models.Event {
		return ev(org, detectBase.Add(301*time.Second-time.Duration(i)*time.Second), "auth.login.failure", "failure", by("dr.smith"))
	})...)
	f.drain(d)
	if n := len(alertsOf(t, org, models.RuleFailedLogins)); n != models.MaxAlertsPerRule+2 {
		t.Fatalf("after the window: %d alerts, want %d", n, models.MaxAlertsPerRule+2)
	}
}

func TestDetectionNeverAddsUpOrganizations(t *testing.T) {
	f := newDetectFixture(t)
	a, b := pgtest.NewOrg(t, "a"), pgtest.NewOrg(t, "b")
	d := f.detector(1000)
	bulk := func(org string, n int) []models.Event {
		return repeat(n, func(i int) models.Event {
			return ev(org, detectBase.Add(-time.Duration(i)*time.Second), "data.export", "success")
		})
	}
	fail := func(org string, n int) []models.Event {
		return repeat(n, func(i int) models.Event {
			return ev(org, detectBase.Add(-time.Duration(i)*time.Second), "auth.login.failure", "failure", by("shared.name"))
		})
	}
	f.write(append(append(bulk(a, 60), bulk(b, 60)...), append(fail(a, 3), fail(b, 3)...)...)...)
	if n := f.drain(d); n != 0 {
		t.Fatalf("60 + 60 bulk operations and 3 + 3 failures in two organizations raised %d alerts", n)
	}
	f.write(bulk(a, 40)...)
	f.drain(d)
	if got := alertsOf(t, a, models.RuleBulkOperations); len(got) != 1 || got[0].Title != "100 bulk operations in 5 min" {
		t.Fatalf("organization a: %+v, want one alert over its own 100", got)
	}
	if got := alertsOf(t, b, models.RuleBulkOperations); len(got) != 0 {
		t.Fatalf("organization b: %+v, want none", got)
	}
}

func TestDetectionOffHoursUsesTheOrganizationsTimeZone(t *testing.T) {
	f := newDetectFixture(t)
	rules := models.NewAlertRuleStore(pgtest.DB(t), testTrail(t))
	ctx := context.Background()
	for _, tc := range []struct {
		name, zone string
		at         time.Time
		want       int
	}{
		{"23:00 UTC in UTC", "UTC", time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC), 1},
		{"23:00 UTC is 18:00 in New York", "America/New_York", time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC), 0},
		{"14:00 UTC is 23:00 in Tokyo", "Asia/Tokyo", time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC), 1},
		{"14:00 UTC in UTC", "UTC", time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC), 0},
		{"05:59 is off hours", "UTC", time.Date(2026, 11, 25, 5, 59, 0, 0, time.UTC), 1},
		{"06:00 is not", "UTC", time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC), 0},
		{"22:00 is", "Europe/Berlin", time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			org := pgtest.NewOrg(t, "")
			if err := rules.SetTimeZone(ctx, org, tc.zone, actor("admin")); err != nil {
				t.Fatal(err)
			}
			f.setNow(tc.at.Add(time.Minute))
			f.write(ev(org, tc.at, "fhir.patient.read", "success", by("dr.night")))
			f.drain(f.detector(1000))
			got := alertsOf(t, org, models.RuleOffHoursAccess)
			if len(got) != tc.want {
				t.Fatalf("%d off-hours alerts, want %d: %+v", len(got), tc.want, got)
			}
			if tc.want == 1 && (got[0].Severity != "LOW" || !strings.Contains(got[0].Title, "Data access off hours by dr.night at ")) {
				t.Errorf("alert = %+v", got[0])
			}
		})
	}
}

// eventCounts returns the totals of org's hourly counts and of its daily counts by action
// and by principal.
func eventCounts(t *testing.T, org string) (hourly, actions, principals int64) {
	t.Helper()
	db := pgtest.DB(t)
	db.Raw(`SELECT coalesce(sum(events), 0) FROM event_counts_hourly WHERE organization_id = ?`, org).Scan(&hourly)
	db.Raw(`SELECT coalesce(sum(events), 0) FROM event_counts_daily WHERE organization_id = ? AND kind = 'action'`, org).Scan(&actions)
	db.Raw(`SELECT coalesce(sum(events), 0) FROM event_counts_daily WHERE organization_id = ? AND kind = 'principal'`, org).Scan(&principals)
	return
}

func TestDetectionTwoRunnersRaiseEachAlertOnce(t *testing.T) {
	f := newDetectFixture(t)
	orgs := []string{pgtest.NewOrg(t, "a"), pgtest.NewOrg(t, "b")}
	var evs []models.Event
	for _, org := range orgs {
		for i := range 40 {
			who := []string{"dr.smith", "nurse.jo"}[i%2]
			evs = append(evs, ev(org, detectBase.Add(-time.Duration(i)*time.Second), "auth.login.failure", "failure", by(who)))
		}
		evs = append(evs, repeat(30, func(i int) models.Event { return ev(org, detectBase, "page.view", "success") })...)
	}
	f.write(evs...)
	// Two instances, small batches, running at the same time until the logs are read.
	runners := []*models.Detector{f.detector(7), f.detector(7)}
	var wg sync.WaitGroup
	errs := make(chan error, len(runners))
	for _, d := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idle := 0
			for idle < 3 {
				res, err := d.Pass(context.Background())
				if err != nil {
					errs <- err
					return
				}
				if res.Events == 0 {
					idle++
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, org := range orgs {
		got := alertsOf(t, org, models.RuleFailedLogins)
		if len(got) != 2 {
			cursor, leaves := detectionProgress(t, org)
			t.Fatalf("%s: %d alerts, want one per principal: %+v (cursor %d of %d leaves)", org, len(got), got, cursor, leaves)
		}
		hourly, actions, principals := eventCounts(t, org)
		if hourly != 70 || actions != 70 || principals != 40 {
			t.Errorf("%s: counts hourly %d, by action %d, by principal %d; want 70, 70, 40", org, hourly, actions, principals)
		}
		cursor, leaves := detectionProgress(t, org)
		lag, _, err := runners[0].Lag(context.Background(), org)
		if err != nil || cursor != 70 || leaves != 70 || lag != 0 {
			t.Errorf("%s: cursor %d of %d leaves, lag %s (%v); want all 70 leaves processed", org, cursor, leaves, lag, err)
		}
	}
}

func TestDetectionRestartNeitherMissesNorDoubleCounts(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "")
	var evs []models.Event
	for i := range 95 {
		at := detectBase.Add(-time.Duration(95-i) * time.Second)
		if i%10 == 0 { // ten failures spread over the stream, two per batch of ten… across restarts
			evs = append(evs, ev(org, at, "auth.login.failure", "failure", by("dr.smith")))
		} else {
			evs = append(evs, ev(org, at, "page.view", "success", by(fmt.Sprintf("u%d", i%4))))
		}
	}
	f.write(evs...)
	ctx := context.Background()
	// A pass whose context is already cancelled commits nothing.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.detector(10).Pass(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pass: %v, want context.Canceled", err)
	}
	// Instance one processes two batches, then stops (between batches).
	first := f.detector(10)
	for range 2 {
		if _, err := first.Pass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// (The lag on the wall clock: the leaves were sequenced just now.)
	if cursor, leaves := detectionProgress(t, org); cursor != 20 || leaves != 95 {
		t.Fatalf("after two batches: cursor %d of %d leaves, want 20 of 95", cursor, leaves)
	}
	lag, running, err := models.NewDetector(pgtest.DB(t), nil).Lag(ctx, org)
	if err != nil || !running || lag <= 0 || lag > time.Minute {
		t.Fatalf("lag after two batches: %s, running %v (%v)", lag, running, err)
	}
	// The largest lag over every organization is at least this one's (other tests' organizations share the database).
	if most, err := models.NewDetector(pgtest.DB(t), nil).MaxLag(ctx); err != nil || most < lag {
		t.Fatalf("largest lag after two batches: %s (%v); this organization's is %s", most, err, lag)
	}
	if got := alertsOf(t, org, models.RuleFailedLogins); len(got) != 0 {
		t.Fatalf("two failures raised %v", got)
	}
	// A new instance carries on from the persisted cursor and window.
	f.drain(f.detector(10))
	hourly, actions, principals := eventCounts(t, org)
	if hourly != 95 || actions != 95 || principals != 95 {
		t.Fatalf("counts hourly %d, by action %d, by principal %d; want 95 each", hourly, actions, principals)
	}
	got := alertsOf(t, org, models.RuleFailedLogins)
	if len(got) != 1 || !strings.HasSuffix(got[0].Title, "failed sign-ins for dr.smith in 5 min") {
		t.Fatalf("alerts = %+v, want one over failures read before and after the restart", got)
	}
	// Nothing is left and another pass changes nothing.
	f.drain(f.detector(10))
	if h, _, _ := eventCounts(t, org); h != 95 {
		t.Fatalf("a pass after the end counted again: %d", h)
	}
	if lag, running, err := f.detector(10).Lag(ctx, org); err != nil || !running || lag != 0 {
		t.Fatalf("lag when caught up: %s, running %v (%v); want 0, running", lag, running, err)
	}
	if lag, running, err := f.detector(10).Lag(ctx, pgtest.NewOrg(t, "")); err != nil || running || lag != 0 {
		t.Fatalf("lag of an organization detection never read: %s, running %v (%v); want 0, not running", lag, running, err)
	}
}

func TestDetectionFirstStartCountsHistoryWithoutStaleAlerts(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "")
	old := detectBase.Add(-48 * time.Hour)
	f.write(repeat(20, func(i int) models.Event {
		return ev(org, old.Add(time.Duration(i)*time.Second), "auth.login.failure", "failure", by("dr.smith"))
	})...)
	f.drain(f.detector(1000))
	if h, _, _ := eventCounts(t, org); h != 20 {
		t.Fatalf("history counted %d times, want 20", h)
	}
	if got := alertsOf(t, org, models.RuleFailedLogins); len(got) != 0 {
		t.Fatalf("two-day-old failures raised %+v", got)
	}
	var hits int64
	pgtest.DB(t).Raw(`SELECT count(*) FROM detection_hit WHERE organization_id = ?`, org).Scan(&hits)
	if hits != 0 {
		t.Fatalf("stale events kept %d hits", hits)
	}
}

func TestDetectionFollowsTheOrganizationsRules(t *testing.T) {
	f := newDetectFixture(t)
	rules := models.NewAlertRuleStore(pgtest.DB(t), testTrail(t))
	ctx := context.Background()
	org := pgtest.NewOrg(t, "")
	if _, err := rules.Update(ctx, org, models.AlertRuleInput{Rule: models.RuleFailedLogins, Enabled: true, Threshold: 2,
		Window: time.Minute, Severity: "CRITICAL"}, actor("admin")); err != nil {
		t.Fatal(err)
	}
	if _, err := rules.Update(ctx, org, models.AlertRuleInput{Rule: models.RuleBulkOperations, Enabled: false, Threshold: 100,
		Window: 5 * time.Minute, Severity: "MEDIUM"}, actor("admin")); err != nil {
		t.Fatal(err)
	}
	evs := repeat(2, func(i int) models.Event {
		return ev(org, detectBase.Add(-time.Duration(i)*time.Second), "auth.login.failure", "failure", by("dr.smith"))
	})
	evs = append(evs, repeat(150, func(i int) models.Event { return ev(org, detectBase, "data.export", "success") })...)
	f.write(evs...)
	f.drain(f.detector(1000))
	if got := alertsOf(t, org, models.RuleFailedLogins); len(got) != 1 || got[0].Severity != "CRITICAL" ||
		got[0].Title != "2 failed sign-ins for dr.smith in 1 min" {
		t.Fatalf("failed sign-ins: %+v", got)
	}
	if got := alertsOf(t, org, models.RuleBulkOperations); len(got) != 0 {
		t.Fatalf("a disabled rule raised %+v", got)
	}
}

// A batch that fails after its hits, alert and counts were written (here: the cursor's
// update refused, as a crash before commit would) leaves nothing behind; the next pass
// redoes it exactly once.
func TestDetectionCrashInsideABatchLeavesNothing(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "")
	db := pgtest.DB(t)
	evs := repeat(30, func(i int) models.Event {
		at := detectBase.Add(-time.Duration(30-i) * time.Second)
		if i >= 10 && i < 15 { // the second batch reaches the failed sign-in threshold
			return ev(org, at, "auth.login.failure", "failure", by("dr.smith"))
		}
		return ev(org, at, "page.view", "success", by("u1"))
	})
	f.write(evs...)
	ctx := context.Background()
	d := f.detector(10)
	if _, err := d.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	fn := "detect_crash_" + strings.ReplaceAll(org, "-", "_")
	for _, q := range []string{
		`CREATE FUNCTION ` + fn + `() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'simulated crash'; END $$`,
		`CREATE TRIGGER ` + fn + ` BEFORE UPDATE ON detection_cursor FOR EACH ROW WHEN (NEW.organization_id = '` + org + `') EXECUTE FUNCTION ` + fn + `()`,
	} {
		if err := db.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	dropped := false
	drop := func() {
		if !dropped {
			db.Exec(`DROP TRIGGER ` + fn + ` ON detection_cursor`)
			db.Exec(`DROP FUNCTION ` + fn + `()`)
			dropped = true
		}
	}
	defer drop()
	if _, err := d.Pass(ctx); err == nil || !strings.Contains(err.Error(), "simulated crash") {
		t.Fatalf("pass = %v, want the simulated crash", err)
	}
	if h, a, _ := eventCounts(t, org); h != 10 || a != 10 {
		t.Fatalf("after the crash: counts %d per hour, %d per action; want the first batch's 10", h, a)
	}
	if got := alertsOf(t, org, models.RuleFailedLogins); len(got) != 0 {
		t.Fatalf("the crashed batch left alerts %+v", got)
	}
	if n := countWhere(t, `SELECT count(*) FROM detection_hit WHERE organization_id = ?`, org); n != 0 {
		t.Fatalf("the crashed batch left %d hits", n)
	}
	drop()
	f.drain(d)
	if h, a, p := eventCounts(t, org); h != 30 || a != 30 || p != 30 {
		t.Fatalf("after recovery: counts %d, %d, %d; want 30 each", h, a, p)
	}
	if got := alertsOf(t, org, models.RuleFailedLogins); len(got) != 1 {
		t.Fatalf("after recovery: alerts %+v, want one", got)
	}
}

// Hits older than twice their rule's window are purged; newer ones stay.
func TestDetectionPurgesExpiredHits(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "")
	read := func(at time.Duration) models.Event {
		return ev(org, detectBase.Add(at), "data.read", "success", by("svc"))
	}
	// Three batches, so three runs: one at -90 s, one at -10 s, one from -100 s to -5 s.
	for _, batch := range [][]models.Event{{read(-90 * time.Second)}, {read(-10 * time.Second)},
		{read(-100 * time.Second), read(-5 * time.Second)}} {
		f.write(batch...)
		f.drain(f.detector(1000))
	}
	if n := countWhere(t, `SELECT count(*) FROM detection_hit_run WHERE organization_id = ? AND rule = ?`, org, models.RuleDataAccessVelocity); n != 3 {
		t.Fatalf("%d velocity runs, want 3", n)
	}
	// At +31 s (the cutoff is twice the 1 min window before, -89 s) a new instance's pass
	// purges the run at -90 s; the run that straddles the cutoff stays whole.
	f.setNow(detectBase.Add(31 * time.Second))
	f.write(ev(org, detectBase.Add(30*time.Second), "page.view", "success"))
	f.drain(f.detector(1000))
	var left []time.Time
	if err := pgtest.DB(t).Raw(`SELECT event_time FROM detection_hit WHERE organization_id = ? AND rule = ? ORDER BY event_time`,
		org, models.RuleDataAccessVelocity).Scan(&left).Error; err != nil {
		t.Fatal(err)
	}
	want := []time.Time{detectBase.Add(-100 * time.Second), detectBase.Add(-10 * time.Second), detectBase.Add(-5 * time.Second)}
	if len(left) != len(want) {
		t.Fatalf("hits left at %v, want %v", left, want)
	}
	for i := range want {
		if !left[i].Equal(want[i]) {
			t.Fatalf("hits left at %v, want %v", left, want)
		}
	}
}

// Pruning never drops a hit that a window of now can still count, and a hit kept only
// because its run straddles the cutoff is never counted: 48 reads at +20 s complete a
// window of exactly 50 with the two kept hits at -10 s and -5 s (49 without either, 51 with
// the one at -100 s).
func TestDetectionPurgeKeepsWhatAWindowCounts(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "")
	read := func(at time.Duration) models.Event {
		return ev(org, detectBase.Add(at), "data.read", "success", by("svc"))
	}
	d := f.detector(1000)
	f.write(read(-90 * time.Second))
	f.drain(d)
	f.write(read(-100*time.Second), read(-10*time.Second), read(-5*time.Second))
	f.drain(d)
	f.setNow(detectBase.Add(31 * time.Second))
	f.write(repeat(47, func(int) models.Event { return read(20 * time.Second) })...)
	if n := f.drain(f.detector(1000)); n != 0 {
		t.Fatalf("49 reads in the window raised %d alerts", n)
	}
	if n := countWhere(t, `SELECT count(*) FROM detection_hit WHERE organization_id = ? AND event_time = ?`,
		org, detectBase.Add(-90*time.Second)); n != 0 {
		t.Fatalf("the expired run at -90 s was not purged")
	}
	f.write(read(20 * time.Second))
	if n := f.drain(d); n != 1 {
		t.Fatalf("50 reads in the window raised %d alerts, want 1", n)
	}
	if got := alertsOf(t, org, models.RuleDataAccessVelocity); len(got) != 1 || got[0].Title != "50 data reads by svc in 1 min" {
		t.Fatalf("alerts = %+v", got)
	}
}

// With a hold, a pass leaves an organization's few newly logged events for a later pass
// until half a batch has gathered or the oldest has waited the hold; nothing is lost.
func TestDetectionHoldBatchesUntilHalfABatchOrTheHold(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "")
	fail := func(int) models.Event { return ev(org, detectBase, "auth.login.failure", "failure", by("dr.smith")) }
	held := f.detector(20).WithHold(time.Hour)
	f.write(repeat(9, fail)...)
	res, err := held.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 0 {
		t.Fatalf("a pass read %d of 9 events, less than half a batch of 20, within the hold", res.Events)
	}
	f.write(fail(0))
	if res, err = held.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res.Events != 10 || res.Alerts != 1 {
		t.Fatalf("with half a batch pending a pass read %d events and raised %d alerts, want 10 and 1", res.Events, res.Alerts)
	}
	f.write(repeat(3, fail)...)
	if res, _ = held.Pass(context.Background()); res.Events != 0 {
		t.Fatalf("a pass read %d events logged less than the hold ago", res.Events)
	}
	short := f.detector(20).WithHold(50 * time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	if res, err = short.Pass(context.Background()); err != nil || res.Events != 3 {
		t.Fatalf("after the hold a pass read %d of 3 events (%v)", res.Events, err)
	}
}

// A batch's hits are stored as one run per (rule, group), each in (time, event id) order
// with its own events' resource types (none where an event has none), however the batch
// interleaves groups and times.
func TestDetectionStoresEachGroupsRunInOrder(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "")
	read := func(p string, at time.Duration, opts ...func(*models.Event)) models.Event {
		return ev(org, detectBase.Add(at), "data.read", "success", append(opts, by(p))...)
	}
	ids := f.write(read("b", -3*time.Second, resource("Observation")), read("a", -1*time.Second),
		read("a", -5*time.Second, resource("Patient")), read("b", -3*time.Second, resource("Patient")),
		read("a", -2*time.Second, resource("Encounter")))
	f.drain(f.detector(1000))
	var runs []struct {
		GroupKey string
		Hits     int
		Times    string
		IDs      string
		Types    string
	}
	if err := pgtest.DB(t).Raw(`SELECT group_key, hits, array_to_string(ARRAY(SELECT extract(epoch FROM x)::bigint FROM unnest(event_times) x), ',') AS times,
			array_to_string(event_ids, ',') AS ids, array_to_string(resource_types, ',', '-') AS types
		FROM detection_hit_run WHERE organization_id = ? AND rule = ? ORDER BY group_key`, org, models.RuleDataAccessVelocity).Scan(&runs).Error; err != nil {
		t.Fatal(err)
	}
	base := detectBase.Unix()
	want := []struct{ group, times, ids, types string }{
		{"a", fmt.Sprintf("%d,%d,%d", base-5, base-2, base-1), fmt.Sprintf("%d,%d,%d", ids[2], ids[4], ids[1]), "Patient,Encounter,-"},
		{"b", fmt.Sprintf("%d,%d", base-3, base-3), fmt.Sprintf("%d,%d", min(ids[0], ids[3]), max(ids[0], ids[3])), ""},
	}
	if len(runs) != 2 {
		t.Fatalf("runs = %+v, want one per principal", runs)
	}
	for i, w := range want {
		r := runs[i]
		if r.GroupKey != w.group || r.Times != w.times || r.IDs != w.ids {
			t.Fatalf("run %d = %+v, want %+v", i, r, w)
		}
		if w.types != "" && r.Types != w.types {
			t.Fatalf("run %d resource types = %q, want %q", i, r.Types, w.types)
		}
	}
	// b's two hits share their time: ordered by id, each keeps its own type.
	wantB := "Observation,Patient"
	if ids[3] < ids[0] {
		wantB = "Patient,Observation"
	}
	if runs[1].Types != wantB {
		t.Fatalf("b's resource types = %q, want %q", runs[1].Types, wantB)
	}
}

// While a group is quiet (its alert within the dedup window) its hits that no window after
// the quiet can count are not recorded, and those a later window can count are: the first
// alert after the quiet counts exactly the hits it would have counted had all been kept.
func TestDetectionQuietGroupsRecordOnlyHitsALaterWindowCounts(t *testing.T) {
	f := newDetectFixture(t)
	org := pgtest.NewOrg(t, "")
	d := f.detector(1000)
	reads := func(n int, last time.Duration) []models.Event { // n reads, one a second, the last at base+last
		return repeat(n, func(i int) models.Event {
			return ev(org, detectBase.Add(last-time.Duration(i)*time.Second), "data.read", "success", by("svc"))
		})
	}
	recorded := func(from, to time.Duration) int64 {
		return countWhere(t, `SELECT count(*) FROM detection_hit WHERE organization_id = ? AND rule = ? AND event_time BETWEEN ? AND ?`,
			org, models.RuleDataAccessVelocity, detectBase.Add(from), detectBase.Add(to))
	}
	// 50 reads in the minute before base: the velocity alert, quiet until base+300 s.
	f.write(reads(50, 0)...)
	if n := f.drain(d); n != 1 {
		t.Fatalf("first minute raised %d alerts, want 1", n)
	}
	// At base+100 s, 50 reads of base+51 … base+100 s: a window after the quiet ends no
	// earlier than base+240 s and so starts after base+180 s; none of them is recorded.
	f.setNow(detectBase.Add(100 * time.Second))
	f.write(reads(50, 100*time.Second)...)
	if n := f.drain(d); n != 0 {
		t.Fatalf("a quiet group raised %d alerts", n)
	}
	if n := recorded(51*time.Second, 100*time.Second); n != 0 {
		t.Fatalf("%d hits of a quiet group recorded that no later window counts", n)
	}
	// At base+290 s, 40 reads of base+251 … base+290 s: still quiet, but a window after the
	// quiet can count them, so they are recorded.
	f.setNow(detectBase.Add(290 * time.Second))
	f.write(reads(40, 290*time.Second)...)
	if n := f.drain(d); n != 0 {
		t.Fatalf("a quiet group raised %d alerts", n)
	}
	if n := recorded(251*time.Second, 290*time.Second); n != 40 {
		t.Fatalf("%d of the 40 hits a later window counts were recorded", n)
	}
	// Past the quiet, 9 more reads make 49 in the minute to base+299 s — one below — and the
	// 10th makes 50: the alert counts the 40 recorded during the quiet.
	f.setNow(detectBase.Add(301 * time.Second))
	f.write(reads(9, 299*time.Second)...)
	if n := f.drain(d); n != 0 {
		t.Fatalf("49 reads in a minute raised %d alerts", n)
	}
	f.write(reads(1, 300*time.Second)...)
	if n := f.drain(d); n != 1 {
		t.Fatalf("50 reads in a minute after the quiet raised %d alerts, want 1", n)
	}
}

// A pass's first statement, which finds the organizations with leaves to read, stays an index
// lookup per organization however much the Merkle log grows after its plans were made. As a
// prepared join it kept the plan made for a small log (a hash join over a sequential scan of
// audit_leaf) and read the whole log every pass: 60 ms a pass at 1,200,000 events. The blocks
// the statement reads per call, from pg_stat_statements, tell the two apart.
func TestDetectionBacklogStaysAnIndexLookupAsTheLogGrows(t *testing.T) {
	db, _ := pgtest.ExtraDB(t)
	if err := db.Exec(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`).Error; err != nil {
		t.Skipf("pg_stat_statements is not available: %v", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1) // one connection, so a cached plan would be the one reused
	for _, q := range []string{
		`ALTER TABLE audit_leaf SET (autovacuum_enabled = false)`, // no ANALYZE behind the test's back
		`INSERT INTO organizations (id, name) VALUES ('plan-org', 'Plan')`,
		`INSERT INTO audit_leaf (organization_id, leaf_index, audit_log_id, event_timestamp, event_hash)
			SELECT 'plan-org', g, g + 1, now(), repeat('a', 64) FROM generate_series(0, 19) g`,
		`ANALYZE audit_leaf`,
	} {
		if err := db.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	d := models.NewDetector(db, nil).WithBatch(1_000_000) // half a batch is never pending: only the cursor's leaf counts
	ctx := context.Background()
	for range 8 { // past the five custom plans a prepared statement starts with
		if _, err := d.Pass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Exec(`INSERT INTO audit_leaf (organization_id, leaf_index, audit_log_id, event_timestamp, event_hash)
		SELECT 'plan-org', g, g + 1, now(), repeat('a', 64) FROM generate_series(20, 200019) g`).Error; err != nil {
		t.Fatal(err)
	}
	blocks := func() (calls, n int64) {
		t.Helper()
		if err := db.Raw(`SELECT coalesce(sum(calls), 0), coalesce(sum(shared_blks_hit + shared_blks_read), 0) FROM pg_stat_statements
			WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query LIKE '%FROM detection_cursor c%LATERAL%'
				OR dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query LIKE '%FROM detection_cursor c%JOIN audit_leaf p%'`).
			Row().Scan(&calls, &n); err != nil {
			t.Fatal(err)
		}
		return calls, n
	}
	c0, b0 := blocks()
	if _, err := d.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	c1, b1 := blocks()
	if c1 != c0+1 {
		t.Fatalf("the backlog statement ran %d times in one pass (pg_stat_statements)", c1-c0)
	}
	if b1-b0 > 100 {
		t.Fatalf("the backlog statement read %d blocks with 200,020 leaves: it scans the log", b1-b0)
	}
}

// detectionProgress is org's detection cursor (the next leaf to read) and the number of
// leaves in its log.
func detectionProgress(t *testing.T, org string) (cursor, leaves int64) {
	t.Helper()
	var row struct{ Cursor, Leaves int64 }
	if err := pgtest.DB(t).Raw(`SELECT coalesce((SELECT leaf_index FROM detection_cursor WHERE organization_id = ?), 0) AS cursor,
		(SELECT count(*) FROM audit_leaf WHERE organization_id = ?) AS leaves`, org, org).Scan(&row).Error; err != nil {
		t.Fatal(err)
	}
	return row.Cursor, row.Leaves
}
