package handlers

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/models/merkle"
	"auditdb/views/components"
	"auditdb/views/pages/dashboard"
	"auditdb/views/pages/notbuilt"
)

// InvitationLister lists an account's pending invitations.
type InvitationLister interface {
	Invitations(ctx context.Context, userID int64) ([]models.Invitation, error)
}

// DashboardReader reads an organization's dashboard figures (from the event-count rollups,
// never from the events themselves).
type DashboardReader interface {
	Overview(ctx context.Context, org string, now time.Time) (*models.DashboardOverview, error)
}

// CheckpointReader returns an organization's newest signed checkpoint.
type CheckpointReader interface {
	Latest(ctx context.Context, org string) (*merkle.Checkpoint, error)
}

// DetectionLag reports how far alert detection trails the organization's committed events;
// running is false when detection is not running.
type DetectionLag interface {
	Lag(ctx context.Context, org string) (lag time.Duration, running bool, err error)
}

// DashboardSources are what the dashboard reads. Detection may be nil: the dashboard then
// says detection is not running.
type DashboardSources struct {
	Events      EventReader
	Invitations InvitationLister
	Figures     DashboardReader
	Checkpoints CheckpointReader
	Detection   DetectionLag
	Now         func() time.Time
}

// Dashboard shows the account's pending invitations and, to viewers who may read events,
// the current organization's activity: events per hour and per day with failures, top
// actions and principals, active alerts by severity, integrity, ingest rate, detection lag
// and the latest events; or, when it has never recorded an event, how to send the first.
func Dashboard(src DashboardSources) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		ctx := c.UserContext()
		props := dashboard.Props{OrgName: v.OrgName, ShowEvents: v.OrgID != "" && v.Allowed("audit.events", "read"),
			CSRF: v.Session.CSRFToken()}
		pending, err := src.Invitations.Invitations(ctx, v.User.ID)
		if err != nil {
			return err
		}
		for _, inv := range pending {
			base := "/invitations/" + strconv.FormatInt(inv.ID, 10)
			props.Invitations = append(props.Invitations, dashboard.Invitation{OrgID: inv.OrgID, OrgName: inv.OrgName,
				Role: inv.Role, InvitedBy: inv.InvitedBy, Expires: inv.ExpiresAt,
				AcceptAction: base + "/accept", DeclineAction: base + "/decline"})
		}
		if props.ShowEvents {
			t := src.Now().UTC()
			ov, err := src.Figures.Overview(ctx, v.OrgID, t)
			if err != nil {
				return err
			}
			if ov.Empty() {
				props.Empty = emptyDashboard(c.BaseURL(), v.Allowed("audit.apikeys", "create"))
				return render.HTML(c, fiber.StatusOK, dashboard.Page(v.Shell("Dashboard", "dashboard"), props))
			}
			cp, err := src.Checkpoints.Latest(ctx, v.OrgID)
			if err != nil && models.KindOf(err) != models.KindNotFound {
				return err
			}
			lag, running := time.Duration(0), false
			if src.Detection != nil {
				if lag, running, err = src.Detection.Lag(ctx, v.OrgID); err != nil {
					return err
				}
			}
			props.Overview = overviewView(ov, cp, lag, running, t)
			if !v.Allowed("audit.alerts", "read") {
				props.Overview.Alerts = nil
			}
			page, err := src.Events.List(ctx, v.OrgID,
				models.EventFilter{From: t.Add(-DefaultEventRange), To: t.Add(futureSlack)}, nil, 10)
			if err != nil {
				return err
			}
			for i := range page.Events {
				props.Recent = append(props.Recent, EventRow(&page.Events[i]))
			}
		}
		return render.HTML(c, fiber.StatusOK, dashboard.Page(v.Shell("Dashboard", "dashboard"), props))
	}
}

// emptyDashboard tells how to send the first event to this server's API.
func emptyDashboard(base string, mayCreateKeys bool) *dashboard.Empty {
	e := &dashboard.Empty{
		Curl: "curl -X POST " + base + "/api/v1/events \\\n" +
			"  -H \"Authorization: Bearer $AUDITDB_API_KEY\" \\\n" +
			"  -H \"Content-Type: application/json\" \\\n" +
			"  -d '{\"action\": \"user.login\", \"status\": \"success\", \"principalId\": \"alice@example.com\"}'",
		EventsDetail: "Reload this page: the event is in the events list at once, and in these figures as soon as it is counted.",
	}
	if mayCreateKeys {
		e.KeysHref = "/settings/apikeys"
	}
	return e
}

// ago is a short relative time: "just now", "3 min ago", "5 h ago", "2 d ago".
func ago(then, now time.Time) string {
	d := now.Sub(then)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " d ago"
}

// percent is failures as a share of events, "2.5 %"; "" when there were no events.
func percent(failures, events int64) string {
	if events == 0 {
		return ""
	}
	return strconv.FormatFloat(float64(failures)*100/float64(events), 'f', 1, 64) + " %"
}

// overviewView shapes the figures like the screen.
func overviewView(ov *models.DashboardOverview, cp *merkle.Checkpoint, lag time.Duration, detecting bool, now time.Time) *dashboard.Overview {
	var ev24, fail24, ev30, fail30 int64
	hours := make([]dashboard.Point, len(ov.Hours))
	for i, h := range ov.Hours {
		ev24, fail24 = ev24+h.Events, fail24+h.Failures
		short := ""
		if h.Hour.Hour()%3 == 0 {
			short = h.Hour.Format("15:04")
		}
		hours[i] = dashboard.Point{Label: h.Hour.Format("2006-01-02 15:04") + "–" + h.Hour.Add(time.Hour).Format("15:04") + " UTC",
			Short: short, Events: h.Events, Failures: h.Failures}
	}
	days := make([]dashboard.Point, len(ov.Days))
	for i, d := range ov.Days {
		ev30, fail30 = ev30+d.Events, fail30+d.Failures
		short := ""
		if (len(ov.Days)-1-i)%5 == 0 {
			short = d.Day.Format("01-02")
		}
		days[i] = dashboard.Point{Label: d.Day.Format("2006-01-02") + " UTC", Short: short, Events: d.Events, Failures: d.Failures}
	}
	o := &dashboard.Overview{
		Counted:     ov.Counted,
		MonthlyAsOf: ov.MonthlyAsOf,
		Hourly: dashboard.NewChart("chart-hourly", "Events per hour, last 24 hours",
			fmt.Sprintf("%s and %s in the last 24 hours, by hour (UTC).", dashboard.Plural(ev24, "event"), dashboard.Plural(fail24, "failure")), hours),
		Daily: dashboard.NewChart("chart-daily", "Events per day, last 30 days",
			fmt.Sprintf("%s and %s in the last 30 days, by day (UTC).", dashboard.Plural(ev30, "event"), dashboard.Plural(fail30, "failure")), days),
	}
	rate := dashboard.Stat{Label: "Failure rate, last 24 hours", Value: percent(fail24, ev24), TestID: "stat-failure-rate",
		Detail: dashboard.Plural(fail24, "failure") + " of " + dashboard.Plural(ev24, "event")}
	if rate.Value == "" {
		rate.Value, rate.Detail = "—", "No events in the last 24 hours"
	}
	if r := percent(fail30, ev30); r != "" {
		rate.Detail += "; 30 days: " + r
	}
	perSecond := strconv.FormatFloat(float64(ov.Ingested)/models.DashboardIngestSpan.Seconds(), 'f', 1, 64)
	detection := dashboard.Stat{Label: "Detection lag", Value: "Not running", TestID: "stat-detection",
		Detail: "Alert rules are not being evaluated on new events"}
	if detecting {
		detection.Value = lag.Round(100 * time.Millisecond).String()
		detection.Detail = "How far alert detection trails committed events"
	}
	var counts []dashboard.Stat
	if ov.Counted {
		counts = []dashboard.Stat{{Label: "Events, last 24 hours", Value: dashboard.Thousands(ev24), TestID: "stat-24h",
			Detail: dashboard.Thousands(ev30) + " in the last 30 days"}, rate}
	}
	o.Figures = append(counts, []dashboard.Stat{
		{Label: "Ingest, last 5 minutes", Value: dashboard.Plural(ov.Ingested, "event"), TestID: "stat-ingest",
			Detail: perSecond + " per second, sequenced into the log"},
		detection,
	}...)
	top := func(rows []models.ValueCount, param string) []dashboard.TopRow {
		var out []dashboard.TopRow
		for _, r := range rows {
			out = append(out, dashboard.TopRow{Value: r.Value, Events: dashboard.Thousands(r.Events),
				Failures: dashboard.Thousands(r.Failures), Href: "/events?" + url.Values{param: {r.Value}}.Encode()})
		}
		return out
	}
	o.TopActions, o.TopPrincipals = top(ov.TopActions, "action"), top(ov.TopPrincipals, "principal")

	var total, peak int64
	for _, sev := range models.AlertSeverities {
		total += ov.ActiveAlerts[sev]
		peak = max(peak, ov.ActiveAlerts[sev])
	}
	o.ActiveAlerts = "No active alerts"
	if total > 0 {
		o.ActiveAlerts = dashboard.Plural(total, "active alert")
	}
	for i, sev := range models.AlertSeverities {
		if total == 0 {
			break // "No active alerts" says it all; no chart of zeros
		}
		n, width := ov.ActiveAlerts[sev], 0.0
		if peak > 0 {
			width = float64(n) / float64(peak) * 100
		}
		y := 4 + i*27
		o.Alerts = append(o.Alerts, dashboard.SeverityCount{Severity: sev, Count: dashboard.Thousands(n),
			Colour: dashboard.SeverityColour(sev), BarWidth: strconv.FormatFloat(width, 'f', 1, 64),
			CountX: strconv.FormatFloat(70+width+6, 'f', 1, 64),
			Y:      strconv.Itoa(y), TextY: strconv.Itoa(y + 13),
			Href: "/alerts?" + url.Values{"state": {"active"}, "severity": {sev}}.Encode()})
	}

	o.Integrity.Checkpoint = "None signed yet"
	if cp != nil {
		o.Integrity.Checkpoint = fmt.Sprintf("#%d · %s · %s (%s)", cp.Number, dashboard.Plural(cp.TreeSize, "event"),
			components.Timestamp(cp.CreatedAt), ago(cp.CreatedAt, now))
	}
	in := &o.Integrity
	switch s := ov.LastSweep; {
	case s == nil:
		in.SweepStatus, in.SweepVariant, in.Sweep = "Not run", components.Neutral, "The sweep runs daily at 03:30 UTC."
	case s.Error != "":
		in.SweepStatus, in.SweepVariant = "Failed", components.Danger
		in.Sweep = "Could not check at " + components.Timestamp(s.SweptAt) + " (" + ago(s.SweptAt, now) + ")."
	case s.OK:
		in.SweepStatus, in.SweepVariant = "Passed", components.Success
		in.Sweep = "No problems in " + dashboard.Plural(s.Events, "event") + " at " + components.Timestamp(s.SweptAt) + " (" + ago(s.SweptAt, now) + ")."
	default:
		in.SweepStatus, in.SweepVariant = "Problems", components.Danger
		in.Sweep = dashboard.Plural(s.Problems, "problem") + " found at " + components.Timestamp(s.SweptAt) + " (" + ago(s.SweptAt, now) + "): see the alerts."
	}
	return o
}

// NotBuilt shows an area of the console that does not exist yet, saying so plainly.
func NotBuilt(area, title, description string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		return render.HTML(c, fiber.StatusOK, notbuilt.Page(v.Shell(title, area),
			notbuilt.Props{Area: title, Description: description}))
	}
}
