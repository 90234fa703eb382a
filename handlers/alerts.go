package handlers

import (
	"context"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/apijson"
	"auditdb/handlers/render"
	"auditdb/models"
	alertviews "auditdb/views/pages/alerts"
)

// AlertStore is what the alerts pages need from the alert store.
type AlertStore interface {
	List(ctx context.Context, org string, f models.AlertFilter, after *models.AlertCursor, limit int) (models.AlertPage, error)
	Get(ctx context.Context, org, id string) (*models.Alert, error)
	Acknowledge(ctx context.Context, org, id string, who models.Actor) (bool, error)
	AcknowledgeMany(ctx context.Context, org string, ids []string, who models.Actor) (int, error)
	Resolve(ctx context.Context, org, id string, who models.Actor, notes string) (bool, error)
}

// AlertEventReader loads the summaries of an alert's triggering events.
type AlertEventReader interface {
	ByIDs(ctx context.Context, org string, ids []int64) ([]models.Event, error)
}

// AlertDeliveries lists the notifications sent for an alert of org (the notifications
// area implements it).
type AlertDeliveries interface {
	ForAlert(ctx context.Context, org, alertID string) ([]models.AlertDelivery, error)
}

// AlertDeps are the alerts pages' dependencies. Deliveries and Badge may be nil.
type AlertDeps struct {
	Alerts     AlertStore
	Events     AlertEventReader
	Deliveries AlertDeliveries
	Badge      *AlertBadge
}

// AlertsPageSize is how many alerts a page of the list shows.
const AlertsPageSize = 50

// alertFilterParams are the query parameters of the alerts list, in form order.
var alertFilterParams = []string{"q", "state", "severity", "type", "source", "from", "to"}

// ParseAlertFilter reads the alerts list filter from query values. It returns a KindInvalid
// error naming the bad parameter.
func ParseAlertFilter(q func(string) string) (models.AlertFilter, alertviews.FilterValues, error) {
	fv := alertviews.FilterValues{Severity: q("severity"), Type: q("type"), Source: strings.TrimSpace(q("source")),
		State: q("state"), From: q("from"), To: q("to"), Q: strings.TrimSpace(q("q"))}
	f := models.AlertFilter{Severity: fv.Severity, Type: fv.Type, Source: fv.Source, State: fv.State, Text: fv.Q}
	var err error
	if fv.From != "" {
		if f.From, err = parseFormTime(fv.From); err != nil {
			return f, fv, models.Invalid("from", "must be a date and time such as 2026-01-31T13:45 (UTC)")
		}
	}
	if fv.To != "" {
		if f.To, err = parseFormTime(fv.To); err != nil {
			return f, fv, models.Invalid("to", "must be a date and time such as 2026-01-31T13:45 (UTC)")
		}
	}
	return f, fv, f.Validate()
}

// alertQuery returns the request's non-empty alert filter parameters (not the cursor).
func alertQuery(c *fiber.Ctx) url.Values {
	vals := url.Values{}
	for _, k := range alertFilterParams {
		if s := c.Query(k); s != "" {
			vals.Set(k, s)
		}
	}
	return vals
}

// alertCursor reads the optional ?after= of a list filtered by f.
func alertCursor(c *fiber.Ctx, f models.AlertFilter) (*models.AlertCursor, error) {
	raw := c.Query("after")
	if raw == "" {
		return nil, nil
	}
	return models.ParseAlertCursor(raw, f)
}

func alertFlash(c *fiber.Ctx) string {
	switch c.Query("done") {
	case "acknowledged":
		if n, err := strconv.Atoi(c.Query("n")); err == nil && n != 1 {
			return strconv.Itoa(n) + " alerts acknowledged."
		}
		return "Alert acknowledged."
	case "already-acknowledged":
		return "The alert was already acknowledged; nothing changed."
	case "resolved":
		return "Alert resolved."
	case "already-resolved":
		return "The alert was already resolved; nothing changed."
	}
	return ""
}

// alertRow shapes an alert for the list, with the forms the viewer may use.
func alertRow(a *models.Alert, v *render.Viewer, ret string) alertviews.Row {
	r := alertviews.Row{ID: a.ID, Href: "/alerts/" + url.PathEscape(a.ID), Time: a.CreatedAt,
		Severity: a.Severity, Type: a.Type, Source: a.Source, Title: a.Title, Description: a.Description,
		State: a.State(), CSRF: v.Session.CSRFToken(), Return: ret}
	if !a.Acknowledged && v.Allowed("audit.alerts", "acknowledge") {
		r.AcknowledgeAction = r.Href + "/acknowledge"
		r.Selectable = true
	}
	if !a.Resolved && v.Allowed("audit.alerts", "resolve") {
		r.ResolveAction = r.Href + "/resolve"
	}
	return r
}

// ListAlerts shows the current organization's alerts, CRITICAL first then newest, with
// filters and keyset pages; htmx requests get the results fragment alone.
func ListAlerts(d AlertDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		if v.OrgID == "" {
			return models.Forbidden("you are not a member of any organization")
		}
		filter, values, err := ParseAlertFilter(func(k string) string { return c.Query(k) })
		if err != nil {
			return err
		}
		after, err := alertCursor(c, filter)
		if err != nil {
			return err
		}
		page, err := d.Alerts.List(c.UserContext(), v.OrgID, filter, after, AlertsPageSize)
		if err != nil {
			return err
		}
		base := alertQuery(c)
		ret := withParam("/alerts", base, "", "")
		if after != nil {
			ret = withParam("/alerts", base, "after", after.String())
		}
		props := alertviews.ListProps{Filter: values, Severities: models.AlertSeverities, Types: models.AlertTypes,
			States: models.AlertStates, Flash: alertFlash(c), CSRF: v.Session.CSRFToken(), Return: ret,
			Rows: make([]alertviews.Row, 0, len(page.Alerts))}
		if v.Allowed("audit.alerts", "acknowledge") {
			props.BulkAction = "/alerts/acknowledge"
		}
		for i := range page.Alerts {
			props.Rows = append(props.Rows, alertRow(&page.Alerts[i], v, ret))
		}
		if page.Next != nil {
			props.NextHref = withParam("/alerts", base, "after", page.Next.String())
		}
		if after != nil {
			props.FirstHref = withParam("/alerts", base, "", "")
		}
		if render.IsHTMX(c) {
			return render.HTML(c, fiber.StatusOK, alertviews.Results(props))
		}
		return render.HTML(c, fiber.StatusOK, alertviews.List(v.Shell("Alerts", "alerts"), props))
	}
}

// ShowAlert shows one alert of the current organization: its state and actions, the
// timeline (raised, notifications, acknowledged, resolved), the triggering events and its
// metadata. Another organization's alert is a 404.
func ShowAlert(d AlertDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		a, err := d.Alerts.Get(c.UserContext(), v.OrgID, c.Params("id"))
		if err != nil {
			return err
		}
		props, err := alertDetail(c, d, v, a)
		if err != nil {
			return err
		}
		props.Flash = alertFlash(c)
		return render.HTML(c, fiber.StatusOK, alertviews.Detail(v.Shell(a.Title, "alerts"), props))
	}
}

func alertDetail(c *fiber.Ctx, d AlertDeps, v *render.Viewer, a *models.Alert) (alertviews.DetailProps, error) {
	ctx := c.UserContext()
	p := alertviews.DetailProps{Row: alertRow(a, v, "/alerts/"+url.PathEscape(a.ID)), Metadata: prettyJSON(a.Metadata)}
	if len(a.Metadata) == 0 {
		p.Metadata = ""
	}
	p.Row.Selectable = false
	dash := func(s string) string {
		if s == "" {
			return "—"
		}
		return s
	}
	p.Fields = []alertviews.DetailField{
		{Label: "ID", Value: a.ID, TestID: "field-id", Mono: true},
		{Label: "Severity", Value: a.Severity, TestID: "field-severity"},
		{Label: "Type", Value: a.Type, TestID: "field-type"},
		{Label: "Source", Value: dash(a.Source), TestID: "field-source", Mono: true},
		{Label: "Rule", Value: dash(a.Rule), TestID: "field-rule", Mono: true},
		{Label: "Principal", Value: dash(a.Principal), TestID: "field-principal", Mono: true},
		{Label: "Correlation id", Value: dash(a.CorrelationID), TestID: "field-correlation-id", Mono: true},
	}
	type step struct {
		at time.Time
		e  alertviews.TimelineEntry
	}
	steps := []step{{a.CreatedAt, alertviews.TimelineEntry{Kind: "raised", Title: "Raised" + by(a.Source),
		Time: a.CreatedAt, TestID: "timeline-raised"}}}
	if a.AcknowledgedAt != nil {
		steps = append(steps, step{*a.AcknowledgedAt, alertviews.TimelineEntry{Kind: "acknowledged",
			Title: "Acknowledged" + by(a.AcknowledgedBy), Time: *a.AcknowledgedAt, TestID: "timeline-acknowledged"}})
	}
	if a.ResolvedAt != nil {
		steps = append(steps, step{*a.ResolvedAt, alertviews.TimelineEntry{Kind: "resolved",
			Title: "Resolved" + by(a.ResolvedBy), Time: *a.ResolvedAt, Detail: a.ResolutionNotes,
			TestID: "timeline-resolved"}})
	}
	if d.Deliveries != nil {
		p.ShowDeliveries = true
		deliveries, err := d.Deliveries.ForAlert(ctx, v.OrgID, a.ID)
		if err != nil {
			return p, err
		}
		for _, dl := range deliveries {
			at := a.CreatedAt
			switch {
			case dl.DeliveredAt != nil:
				at = *dl.DeliveredAt
			case dl.LastAttemptAt != nil:
				at = *dl.LastAttemptAt
			}
			detail := dl.Status + " after " + strconv.Itoa(dl.Attempts) + " attempt"
			if dl.Attempts != 1 {
				detail += "s"
			}
			if dl.LastError != "" {
				detail += ": " + dl.LastError
			}
			steps = append(steps, step{at, alertviews.TimelineEntry{Kind: "notification",
				Title: "Notification via " + dl.Channel + " (" + dl.Kind + ")", Time: at,
				Detail: detail, TestID: "timeline-notification"}})
		}
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].at.Before(steps[j].at) })
	for _, s := range steps {
		p.Timeline = append(p.Timeline, s.e)
	}
	if len(a.EventIDs) > 0 && d.Events != nil {
		evs, err := d.Events.ByIDs(ctx, v.OrgID, a.EventIDs)
		if err != nil {
			return p, err
		}
		for i := range evs {
			ev := &evs[i]
			id := strconv.FormatInt(ev.ID, 10)
			p.Events = append(p.Events, alertviews.EventLink{ID: id, Href: "/events/" + id,
				Time: ev.Timestamp, Action: ev.Action, Status: ev.Status, Principal: deref(ev.PrincipalID)})
		}
		p.MissingEvents = min(len(a.EventIDs), models.MaxEventsByID) - len(evs)
	}
	return p, nil
}

func by(who string) string {
	if who == "" {
		return ""
	}
	return " by " + who
}

// alertReturn is where a plain form post goes back to: the form's local "return" path, or
// the alert's page.
func alertReturn(c *fiber.Ctx, id string) string {
	if r := c.FormValue("return"); r != "" && strings.HasPrefix(r, "/alerts") {
		return render.LocalPath(r)
	}
	return "/alerts/" + url.PathEscape(id)
}

// withDone adds ?done= (and n) to a local path.
func withDone(path, done string, n int) string {
	u, err := url.Parse(path)
	if err != nil {
		return "/alerts"
	}
	q := u.Query()
	q.Set("done", done)
	if n >= 0 {
		q.Set("n", strconv.Itoa(n))
	} else {
		q.Del("n")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// fromList reports whether an htmx form post came from a row of the list (which swaps the
// row) rather than from the alert's page (which reloads).
func fromList(c *fiber.Ctx, ret string) bool {
	return render.IsHTMX(c) && (ret == "/alerts" || strings.HasPrefix(ret, "/alerts?"))
}

// renderAlertRow answers an htmx post from the list with the alert's row, as it is now.
func renderAlertRow(c *fiber.Ctx, d AlertDeps, v *render.Viewer, id, ret string, status int, edit func(*alertviews.Row)) error {
	a, err := d.Alerts.Get(c.UserContext(), v.OrgID, id)
	if err != nil {
		return err
	}
	row := alertRow(a, v, ret)
	if edit != nil {
		edit(&row)
	}
	return render.HTML(c, status, alertviews.RowView(row))
}

// AcknowledgeAlert acknowledges one alert (POST /alerts/{id}/acknowledge). Acknowledging it
// again changes nothing and says so. htmx from the list gets the row again; a plain post is
// sent back where it came from. Another organization's alert is a 404.
func AcknowledgeAlert(d AlertDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id := c.Params("id")
		changed, err := d.Alerts.Acknowledge(c.UserContext(), v.OrgID, id, ActorOf(c))
		if err != nil {
			return err
		}
		d.Badge.Forget(v.OrgID)
		ret := alertReturn(c, id)
		if fromList(c, ret) {
			return renderAlertRow(c, d, v, id, ret, fiber.StatusOK, nil)
		}
		done := "acknowledged"
		if !changed {
			done = "already-acknowledged"
		}
		return render.Redirect(c, withDone(ret, done, -1))
	}
}

// ResolveAlert resolves one alert with notes (POST /alerts/{id}/resolve). Missing or
// overlong notes are refused with a 400 shown next to the notes field (the row for htmx
// from the list, the alert's page otherwise). Another organization's alert is a 404.
func ResolveAlert(d AlertDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		ctx := c.UserContext()
		id := c.Params("id")
		notes := c.FormValue("notes")
		ret := alertReturn(c, id)
		changed, err := d.Alerts.Resolve(ctx, v.OrgID, id, ActorOf(c), notes)
		if err != nil {
			if models.KindOf(err) != models.KindInvalid {
				return err
			}
			msg := models.MessageOf(err)
			if fromList(c, ret) {
				return renderAlertRow(c, d, v, id, ret, fiber.StatusBadRequest, func(r *alertviews.Row) {
					r.NotesError, r.Notes = msg, notes
				})
			}
			a, gerr := d.Alerts.Get(ctx, v.OrgID, id)
			if gerr != nil {
				return gerr
			}
			props, derr := alertDetail(c, d, v, a)
			if derr != nil {
				return derr
			}
			props.Row.NotesError, props.Row.Notes = msg, notes
			return render.HTML(c, fiber.StatusBadRequest, alertviews.Detail(v.Shell(a.Title, "alerts"), props))
		}
		d.Badge.Forget(v.OrgID)
		if fromList(c, ret) {
			return renderAlertRow(c, d, v, id, ret, fiber.StatusOK, nil)
		}
		done := "resolved"
		if !changed {
			done = "already-resolved"
		}
		return render.Redirect(c, withDone(ret, done, -1))
	}
}

// AcknowledgeAlerts acknowledges the selected alerts at once (POST /alerts/acknowledge,
// form field ids, repeated), all or none, and goes back to the list.
func AcknowledgeAlerts(d AlertDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		var ids []string
		for _, raw := range c.Request().PostArgs().PeekMulti("ids") {
			ids = append(ids, string(raw))
		}
		n, err := d.Alerts.AcknowledgeMany(c.UserContext(), v.OrgID, ids, ActorOf(c))
		if err != nil {
			return err
		}
		d.Badge.Forget(v.OrgID)
		ret := "/alerts"
		if r := c.FormValue("return"); strings.HasPrefix(r, "/alerts") {
			ret = render.LocalPath(r)
		}
		return render.Redirect(c, withDone(ret, "acknowledged", n))
	}
}

// ActiveAlertCounter counts an organization's active alerts.
type ActiveAlertCounter interface {
	ActiveCount(ctx context.Context, org string) (int64, error)
}

// AlertBadge keeps each organization's count of active alerts for the navigation, for a
// short while per instance, so a page costs at most one cheap count. A nil *AlertBadge
// does nothing.
type AlertBadge struct {
	counter ActiveAlertCounter
	ttl     time.Duration
	now     func() time.Time
	mu      sync.Mutex
	counts  map[string]badgeCount
}

type badgeCount struct {
	n  int64
	at time.Time
}

// NewAlertBadge returns a badge reading counter, keeping each count for ttl.
func NewAlertBadge(counter ActiveAlertCounter, ttl time.Duration) *AlertBadge {
	return &AlertBadge{counter: counter, ttl: ttl, now: time.Now, counts: map[string]badgeCount{}}
}

// Count returns org's active alerts, from the cache when fresh; 0 when the count fails
// (the navigation must never fail a page).
func (b *AlertBadge) Count(ctx context.Context, org string) int64 {
	if b == nil || org == "" {
		return 0
	}
	now := b.now()
	b.mu.Lock()
	c, ok := b.counts[org]
	b.mu.Unlock()
	if ok && now.Sub(c.at) < b.ttl {
		return c.n
	}
	n, err := b.counter.ActiveCount(ctx, org)
	if err != nil {
		return 0
	}
	b.mu.Lock()
	if len(b.counts) > 10_000 {
		b.counts = map[string]badgeCount{}
	}
	b.counts[org] = badgeCount{n: n, at: now}
	b.mu.Unlock()
	return n
}

// Forget drops org's cached count (after an acknowledge or resolve on this instance).
func (b *AlertBadge) Forget(org string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	delete(b.counts, org)
	b.mu.Unlock()
}

// Middleware makes the signed-in pages' navigation show the active alerts beside Alerts.
// The count is read only when a full page builds its navigation with that entry.
func (b *AlertBadge) Middleware() fiber.Handler {
	return func(c *fiber.Ctx) error {
		if v := render.ViewerOf(c); v != nil && b != nil {
			ctx, org := c.UserContext(), v.OrgID
			v.NavCount = func(key string) int64 {
				if key != "alerts" {
					return 0
				}
				return b.Count(ctx, org)
			}
		}
		return c.Next()
	}
}

// AlertLister is what the alerts API needs from the alert store.
type AlertLister interface {
	List(ctx context.Context, org string, f models.AlertFilter, after *models.AlertCursor, limit int) (models.AlertPage, error)
}

// APIListAlerts lists the key's organization's alerts (GET /api/v1/alerts) with the
// console's filters, CRITICAL first then newest, in keyset pages (?after=nextCursor) for
// SIEM pulls.
func APIListAlerts(alerts AlertLister) fiber.Handler {
	return func(c *fiber.Ctx) error {
		org := render.APIKeyOf(c).OrganizationID
		filter, _, err := ParseAlertFilter(func(k string) string { return c.Query(k) })
		if err != nil {
			return err
		}
		limit, err := apiLimit(c)
		if err != nil {
			return err
		}
		after, err := alertCursor(c, filter)
		if err != nil {
			return err
		}
		page, err := alerts.List(c.UserContext(), org, filter, after, limit)
		if err != nil {
			return err
		}
		out := apijson.AlertPage{Alerts: make([]apijson.Alert, len(page.Alerts))}
		for i := range page.Alerts {
			out.Alerts[i] = apijson.NewAlert(&page.Alerts[i])
		}
		if page.Next != nil {
			s := page.Next.String()
			out.NextCursor = &s
		}
		return c.JSON(out)
	}
}
