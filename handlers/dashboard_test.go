package handlers_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

// rollups writes event-count rows the way the detection pass keeps them.
type rollups struct {
	t   *testing.T
	env *webtest.Env
}

func (r rollups) hour(org string, hour time.Time, events, failures int64) {
	r.t.Helper()
	if err := r.env.DB.Exec(`INSERT INTO event_counts_hourly (organization_id, hour, events, failures) VALUES (?, ?, ?, ?)`,
		org, hour.UTC().Truncate(time.Hour), events, failures).Error; err != nil {
		r.t.Fatal(err)
	}
}

func (r rollups) day(org string, day time.Time, kind, value string, events, failures int64) {
	r.t.Helper()
	if err := r.env.DB.Exec(`INSERT INTO event_counts_daily (organization_id, day, kind, value, events, failures) VALUES (?, ?, ?, ?, ?, ?)`,
		org, day.UTC().Format("2006-01-02"), kind, value, events, failures).Error; err != nil {
		r.t.Fatal(err)
	}
}

func raiseDashboardAlert(t *testing.T, env *webtest.Env, org, severity string, acknowledged bool) {
	t.Helper()
	id, err := models.NewAlertStore(env.DB).Raise(t.Context(), models.NewAlert{Org: org, Severity: severity,
		Type: "SECURITY", Title: "test alert " + severity, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if acknowledged {
		env.DB.Exec(`UPDATE alerts SET acknowledged = true, acknowledged_at = now() WHERE id = ?`, id)
	}
}

// testidText is the text inside the element carrying data-testid id (no nested tags).
func testidText(body, id string) string {
	m := regexp.MustCompile(`data-testid="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}

func TestDashboard(t *testing.T) {
	env := webtest.New(t)
	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	r := rollups{t, env}

	empty := env.Org("dash-empty")
	uncounted := env.Org("dash-uncounted")
	env.Events(models.Event{OrganizationID: uncounted, Timestamp: now.Add(-time.Minute), Action: "user.login", Status: "success"})

	busy, other := env.Org("dash-busy"), env.Org("dash-other")
	// The rollups below stand for busy's events; one real event makes it a sender.
	env.Events(models.Event{OrganizationID: busy, Timestamp: now.Add(-time.Minute), Action: "user.login", Status: "success"})
	r.hour(busy, now, 120, 6)
	r.hour(busy, now.Add(-3*time.Hour), 30, 0)
	r.hour(busy, now.Add(-30*time.Hour), 999, 0) // outside the 24 hours
	r.day(busy, today, "action", "user.login", 100, 5)
	r.day(busy, today, "action", "order.create", 50, 1)
	r.day(busy, today.AddDate(0, 0, -10), "action", "user.login", 40, 0)
	r.day(busy, today.AddDate(0, 0, -40), "action", "ancient.action", 7777, 0) // outside the 30 days
	r.day(busy, today, "principal", "alice@example.test", 90, 4)
	r.day(busy, today.AddDate(0, 0, -10), "principal", "bob@example.test", 60, 2)
	raiseDashboardAlert(t, env, busy, "CRITICAL", false)
	raiseDashboardAlert(t, env, busy, "CRITICAL", false)
	raiseDashboardAlert(t, env, busy, "HIGH", true) // acknowledged: not active
	raiseDashboardAlert(t, env, busy, "LOW", false)
	if err := models.NewSweepRunStore(env.DB).Record(t.Context(), busy,
		models.SweepRun{SweptAt: now.Add(-2 * time.Hour), OK: true, Events: 4321}); err != nil {
		t.Fatal(err)
	}
	// Another organization's counts and alerts, larger than every figure of busy's.
	r.hour(other, now, 5555, 55)
	r.day(other, today, "action", "other.secret", 4444, 44)
	r.day(other, today, "principal", "other.person", 4444, 44)
	for range 5 {
		raiseDashboardAlert(t, env, other, "MEDIUM", false)
	}

	cases := []struct {
		name   string
		org    string
		want   map[string]string // data-testid → its text
		has    []string
		hasNot []string
	}{
		{
			name: "empty organization shows how to send the first event",
			org:  empty,
			has: []string{`data-testid="dashboard-empty"`, `data-testid="dashboard-empty-curl"`, "/api/v1/events",
				"Authorization: Bearer", `href="/settings/apikeys"`},
			hasNot: []string{`data-testid="stats"`, `data-testid="chart-hourly"`, `data-testid="stat-24h"`},
		},
		{
			name:   "recorded but uncounted events are not drawn as zeros",
			org:    uncounted,
			has:    []string{`data-testid="dashboard-uncounted"`, `data-testid="recent-events"`, `data-testid="stat-ingest"`},
			hasNot: []string{`data-testid="dashboard-empty"`, `data-testid="chart-hourly"`, `data-testid="stat-24h"`},
		},
		{
			name: "populated organization shows its rollups",
			org:  busy,
			want: map[string]string{
				"stat-24h":             "150",
				"stat-failure-rate":    "4.0 %",
				"stat-detection":       "Not running",
				"stat-ingest":          "0 events",
				"active-alerts-total":  "3 active alerts",
				"integrity-checkpoint": "None signed yet",
			},
			has: []string{
				// Charts: accessible title and description with the totals, a table fallback.
				`<title id="chart-hourly-title">Events per hour, last 24 hours</title>`,
				`<desc id="chart-hourly-desc">150 events and 6 failures in the last 24 hours, by hour (UTC).</desc>`,
				`<desc id="chart-daily-desc">190 events and 6 failures in the last 30 days, by day (UTC).</desc>`,
				`data-testid="chart-hourly-table"`, `data-testid="chart-daily-table"`, "Show as a table",
				`<td class="py-1 pr-4 text-right tabular-nums">120</td><td class="py-1 text-right tabular-nums">6</td>`,
				": 120 events, 6 failures</title>",
				// Top lists in order, summed over the 30 days.
				`href="/events?action=user.login">user.login</a></td><td class="py-1 pr-2 text-right tabular-nums">140</td>`,
				`href="/events?action=order.create">order.create</a></td><td class="py-1 pr-2 text-right tabular-nums">50</td>`,
				`alice%40example.test">alice@example.test</a></td><td class="py-1 pr-2 text-right tabular-nums">90</td>`,
				// Severity colours.
				`fill="#dc2626"`, `fill="#64748b"`,
				"No problems in 4,321 events",
			},
			// Strict CSP: no inline style anywhere in the page.
			hasNot: []string{" style=", "<style", "other.secret", "other.person", "5,555", "4,444", "7,777", "ancient.action", "999 events",
				`data-testid="dashboard-empty"`, `data-testid="dashboard-uncounted"`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := env.Login(env.User(tc.org, models.OwnerRole))
			res := c.Get("/")
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %.300s", res.StatusCode, res.Body)
			}
			for id, want := range tc.want {
				if got := testidText(res.Body, id); got != want {
					t.Errorf("%s = %q, want %q", id, got, want)
				}
			}
			for _, s := range tc.has {
				if !strings.Contains(res.Body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, s := range tc.hasNot {
				if strings.Contains(res.Body, s) {
					t.Errorf("page shows %q", s)
				}
			}
		})
	}

	t.Run("a member who may not read alerts does not see their counts", func(t *testing.T) {
		res := env.Login(env.User(busy, "org:member")).Get("/")
		if res.StatusCode != http.StatusOK || !strings.Contains(res.Body, `data-testid="chart-hourly"`) {
			t.Fatalf("status %d, or no chart for a member who reads events: %.300s", res.StatusCode, res.Body)
		}
		if strings.Contains(res.Body, `data-testid="active-alerts"`) {
			t.Fatal("the member sees the active alerts panel")
		}
	})

	t.Run("active alerts by severity count only the organization's own", func(t *testing.T) {
		body := env.Login(env.User(busy, models.OwnerRole)).Get("/").Body
		for sev, want := range map[string]string{"CRITICAL": "2", "HIGH": "0", "MEDIUM": "0", "LOW": "1"} {
			li := between(body, `data-testid="alerts-`+sev+`"`, `</li>`)
			if !strings.Contains(li, `<span class="tabular-nums">`+want+`</span>`) {
				t.Errorf("%s: %q, want count %s", sev, li, want)
			}
		}
	})
}
