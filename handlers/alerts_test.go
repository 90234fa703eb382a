package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web"
	"auditdb/web/webtest"
)

// raiseAlert raises an alert in org through the application's store and returns its id.
func raiseAlert(t *testing.T, env *webtest.Env, a models.NewAlert) string {
	t.Helper()
	if a.Type == "" {
		a.Type = "SECURITY"
	}
	if a.Severity == "" {
		a.Severity = "HIGH"
	}
	id, err := env.Services.Alerts.Raise(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func getAlert(t *testing.T, env *webtest.Env, org, id string) *models.Alert {
	t.Helper()
	a, err := env.Services.Alerts.Get(context.Background(), org, id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func auditCount(t *testing.T, env *webtest.Env, org, action, target string) int64 {
	t.Helper()
	var n int64
	env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = ? AND target_resource_id = ?`, org, action, target).Scan(&n)
	return n
}

// postHTMX posts form as htmx would, with the client's CSRF token in the header.
func postHTMX(c *webtest.Client, path string, form url.Values) webtest.Response {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	req.Header.Set("X-CSRF-Token", c.CSRF)
	return c.Do(req)
}

func TestAlertsByRole(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("alr"), env.Org("alro")
	env.Role(org, "alert-reader", []string{"audit.alerts:read"})
	// Raised before anyone signs in: the navigation's count is kept for a few seconds.
	mine := raiseAlert(t, env, models.NewAlert{Org: org, Severity: "CRITICAL", Title: "Unauthorized access attempts", Source: "detection"})
	raiseAlert(t, env, models.NewAlert{Org: org, Severity: "LOW", Type: "COMPLIANCE", Title: "Data access off hours", Source: "detection"})
	admin := env.Login(env.User(org, "org:admin"))
	member := env.Login(env.User(org, "org:member"))
	reader := env.Login(env.User(org, "alert-reader"))
	foreign := raiseAlert(t, env, models.NewAlert{Org: other, Title: "Foreign secret alert"})
	page, err := env.Services.Alerts.List(context.Background(), org, models.AlertFilter{}, nil, 1)
	if err != nil || page.Next == nil {
		t.Fatalf("a first page of one: %v", err)
	}
	otherFilterCursor := page.Next.String()

	cases := []struct {
		name    string
		client  *webtest.Client
		method  string
		path    string
		form    url.Values
		status  int
		want    []string
		wantNot []string
	}{
		{"admin lists with actions", admin, "GET", "/alerts", nil, 200,
			[]string{`data-testid="alert-row"`, "Unauthorized access attempts", `data-testid="alert-acknowledge"`, `data-testid="alert-resolve"`,
				`data-testid="alerts-bulk-acknowledge"`, `data-testid="nav-alerts-count">2 `, "bg-red-100"},
			[]string{"Foreign secret alert"}},
		{"reader lists without actions", reader, "GET", "/alerts", nil, 200,
			[]string{"Unauthorized access attempts"}, []string{`data-testid="alert-acknowledge"`, `data-testid="alert-resolve"`, `data-testid="alerts-bulk"`}},
		{"member may not read", member, "GET", "/alerts", nil, 403, nil, []string{"Unauthorized access attempts"}},
		{"member sees no alerts in the navigation", member, "GET", "/events", nil, 200, nil, []string{`data-testid="nav-alerts"`}},
		{"member may not acknowledge", member, "POST", "/alerts/" + mine + "/acknowledge", url.Values{}, 403, nil, nil},
		{"reader may not acknowledge", reader, "POST", "/alerts/" + mine + "/acknowledge", url.Values{}, 403, nil, nil},
		{"reader may not resolve", reader, "POST", "/alerts/" + mine + "/resolve", url.Values{"notes": {"x"}}, 403, nil, nil},
		{"member may not acknowledge several", member, "POST", "/alerts/acknowledge", url.Values{"ids": {mine}}, 403, nil, nil},
		{"another organization's alert is a 404", admin, "GET", "/alerts/" + foreign, nil, 404, nil, []string{"Foreign secret alert"}},
		{"acknowledging another organization's alert is a 404", admin, "POST", "/alerts/" + foreign + "/acknowledge", url.Values{}, 404, nil, nil},
		{"resolving another organization's alert is a 404", admin, "POST", "/alerts/" + foreign + "/resolve", url.Values{"notes": {"mine"}}, 404, nil, nil},
		{"acknowledging several with a foreign one is a 404", admin, "POST", "/alerts/acknowledge", url.Values{"ids": {mine, foreign}}, 404, nil, nil},
		{"unknown alert is a 404", admin, "GET", "/alerts/alert_nope", nil, 404, nil, nil},
		{"resolve without notes names notes", admin, "POST", "/alerts/" + mine + "/resolve", url.Values{"notes": {"  "}}, 400,
			[]string{`data-testid="alert-notes-error"`, "notes: say how the alert was resolved"}, nil},
		{"unknown severity names severity", admin, "GET", "/alerts?severity=URGENT", nil, 400, []string{"severity"}, nil},
		{"unknown type names type", admin, "GET", "/alerts?type=FUN", nil, 400, []string{"type"}, nil},
		{"unknown state names state", admin, "GET", "/alerts?state=open", nil, 400, []string{"state"}, nil},
		{"unreadable time names from", admin, "GET", "/alerts?from=yesterday", nil, 400, []string{"from"}, nil},
		{"a cursor of another filter names after", admin, "GET", "/alerts?severity=LOW&after=" + otherFilterCursor, nil, 400, []string{"after"}, nil},
		{"acknowledging none names ids", admin, "POST", "/alerts/acknowledge", url.Values{}, 400, []string{"ids"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.client.Send(c.method, c.path, c.form)
			if r.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %.400s", r.StatusCode, c.status, r.Body)
			}
			for _, w := range c.want {
				if !strings.Contains(r.Body, w) {
					t.Errorf("body lacks %q", w)
				}
			}
			for _, w := range c.wantNot {
				if strings.Contains(r.Body, w) {
					t.Errorf("body has %q", w)
				}
			}
		})
	}
	// Nothing the refused requests tried changed anything.
	for _, id := range []string{mine} {
		if a := getAlert(t, env, org, id); a.Acknowledged || a.Resolved {
			t.Errorf("alert %s changed by refused requests: %+v", id, a)
		}
	}
	if a := getAlert(t, env, other, foreign); a.Acknowledged || a.Resolved {
		t.Errorf("the foreign alert changed: %+v", a)
	}
}

func TestAlertsListFiltersAndPages(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("alf")
	admin := env.Login(env.User(org, "org:admin"))
	for i := 0; i < 55; i++ {
		raiseAlert(t, env, models.NewAlert{Org: org, Severity: "LOW", Title: "Bulk operations " + itoa(int64(i)), Source: "detection"})
	}
	raiseAlert(t, env, models.NewAlert{Org: org, Severity: "CRITICAL", Type: "COMPLIANCE", Title: "Integrity sweep: 100% wrong", Source: "integrity-sweep"})
	cases := []struct {
		name  string
		query string
		rows  int
		want  []string
	}{
		{"first page, critical first", "", 50, []string{"Integrity sweep", `data-testid="page-next"`}},
		{"severity", "?severity=CRITICAL", 1, []string{"Integrity sweep"}},
		{"type", "?type=COMPLIANCE", 1, []string{"Integrity sweep"}},
		{"source", "?source=integrity-sweep", 1, nil},
		{"state", "?state=resolved", 0, []string{`data-testid="alerts-empty"`, "No matching alerts"}},
		{"text is literal", "?q=" + url.QueryEscape("100%"), 1, nil},
		{"text matches nothing", "?q=" + url.QueryEscape("1_0"), 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := admin.Get("/alerts" + c.query)
			if r.StatusCode != 200 {
				t.Fatalf("status %d: %.300s", r.StatusCode, r.Body)
			}
			if n := strings.Count(r.Body, `data-testid="alert-row"`); n != c.rows {
				t.Errorf("%d rows, want %d", n, c.rows)
			}
			for _, w := range c.want {
				if !strings.Contains(r.Body, w) {
					t.Errorf("body lacks %q", w)
				}
			}
		})
	}
	t.Run("next page and htmx fragment", func(t *testing.T) {
		r := admin.Get("/alerts")
		i := strings.Index(r.Body, `data-testid="page-next"`)
		start := strings.LastIndex(r.Body[:i], `href="`) + len(`href="`)
		href := strings.ReplaceAll(r.Body[start:start+strings.Index(r.Body[start:], `"`)], "&amp;", "&")
		next := admin.GetHTMX(href)
		if next.StatusCode != 200 || strings.Contains(next.Body, "<html") || strings.Count(next.Body, `data-testid="alert-row"`) != 6 {
			t.Fatalf("next page: %d, %d rows", next.StatusCode, strings.Count(next.Body, `data-testid="alert-row"`))
		}
		if !strings.Contains(next.Header.Get("Vary"), "HX-Request") {
			t.Error("no Vary: HX-Request")
		}
	})
	t.Run("nothing at all says what to expect", func(t *testing.T) {
		empty := env.Org("ale")
		c := env.Login(env.User(empty, "org:admin"))
		r := c.Get("/alerts")
		if !strings.Contains(r.Body, `data-testid="alerts-empty"`) || !strings.Contains(r.Body, "Alerts appear here when") {
			t.Errorf("no empty state: %.300s", r.Body)
		}
		if strings.Contains(r.Body, `data-testid="nav-alerts-count"`) {
			t.Error("a count with no active alerts")
		}
	})
}

func TestAlertAcknowledgeAndResolveForms(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("ala")
	admin := env.Login(env.User(org, "org:admin"))
	admin.Get("/alerts")

	t.Run("plain acknowledge, then again: idempotent", func(t *testing.T) {
		id := raiseAlert(t, env, models.NewAlert{Org: org, Title: "Failed logins"})
		r := admin.PostForm("/alerts/"+id+"/acknowledge", url.Values{})
		if r.StatusCode != 303 || r.Header.Get("Location") != "/alerts/"+id+"?done=acknowledged" {
			t.Fatalf("first: %d %q", r.StatusCode, r.Header.Get("Location"))
		}
		first := getAlert(t, env, org, id)
		r = admin.PostForm("/alerts/"+id+"/acknowledge", url.Values{})
		if r.StatusCode != 303 || r.Header.Get("Location") != "/alerts/"+id+"?done=already-acknowledged" {
			t.Fatalf("second: %d %q", r.StatusCode, r.Header.Get("Location"))
		}
		second := getAlert(t, env, org, id)
		if !second.AcknowledgedAt.Equal(*first.AcknowledgedAt) || second.AcknowledgedBy != first.AcknowledgedBy {
			t.Error("the second acknowledge changed the alert")
		}
		if n := auditCount(t, env, org, models.ActionAlertAcknowledge, id); n != 1 {
			t.Errorf("%d alert.acknowledge events, want 1", n)
		}
		page := admin.Get("/alerts/" + id + "?done=already-acknowledged")
		if !strings.Contains(page.Body, "already acknowledged; nothing changed") || !strings.Contains(page.Body, `data-testid="timeline-acknowledged"`) {
			t.Error("the page does not say the alert was already acknowledged")
		}
	})

	t.Run("htmx acknowledge from the list swaps the row", func(t *testing.T) {
		id := raiseAlert(t, env, models.NewAlert{Org: org, Title: "Velocity"})
		r := postHTMX(admin, "/alerts/"+id+"/acknowledge", url.Values{"return": {"/alerts?severity=HIGH"}})
		if r.StatusCode != 200 || !strings.HasPrefix(strings.TrimSpace(r.Body), `<tr id="alert-`+id+`"`) ||
			!strings.Contains(r.Body, ">acknowledged<") || strings.Contains(r.Body, `data-testid="alert-acknowledge"`) {
			t.Fatalf("row: %d %.400s", r.StatusCode, r.Body)
		}
	})

	t.Run("htmx resolve without notes shows the error in the row", func(t *testing.T) {
		id := raiseAlert(t, env, models.NewAlert{Org: org, Title: "Bulk"})
		r := postHTMX(admin, "/alerts/"+id+"/resolve", url.Values{"return": {"/alerts"}, "notes": {""}})
		if r.StatusCode != 400 || !strings.Contains(r.Body, `data-testid="alert-notes-error"`) || !strings.Contains(r.Body, "<details class=\"min-w-[16rem]\" open") {
			t.Fatalf("refusal: %d %.500s", r.StatusCode, r.Body)
		}
		r = postHTMX(admin, "/alerts/"+id+"/resolve", url.Values{"return": {"/alerts"}, "notes": {"Scheduled export, approved"}})
		if r.StatusCode != 200 || !strings.Contains(r.Body, ">resolved<") {
			t.Fatalf("resolve: %d %.300s", r.StatusCode, r.Body)
		}
		a := getAlert(t, env, org, id)
		if !a.Resolved || !a.Acknowledged || a.ResolutionNotes != "Scheduled export, approved" {
			t.Errorf("after resolve: %+v", a)
		}
		if n := auditCount(t, env, org, models.ActionAlertResolve, id); n != 1 {
			t.Errorf("%d alert.resolve events, want 1", n)
		}
		detail := admin.Get("/alerts/" + id)
		for _, w := range []string{`data-testid="timeline-raised"`, `data-testid="timeline-acknowledged"`, `data-testid="timeline-resolved"`, "Scheduled export, approved"} {
			if !strings.Contains(detail.Body, w) {
				t.Errorf("detail lacks %q", w)
			}
		}
	})

	t.Run("acknowledge several at once", func(t *testing.T) {
		a := raiseAlert(t, env, models.NewAlert{Org: org, Title: "One"})
		b := raiseAlert(t, env, models.NewAlert{Org: org, Title: "Two"})
		r := admin.PostForm("/alerts/acknowledge", url.Values{"ids": {a, b}, "return": {"/alerts?state=active"}})
		if r.StatusCode != 303 {
			t.Fatalf("status %d", r.StatusCode)
		}
		loc, _ := url.Parse(r.Header.Get("Location"))
		if loc.Path != "/alerts" || loc.Query().Get("state") != "active" || loc.Query().Get("n") != "2" {
			t.Errorf("redirect %s", loc)
		}
		for _, id := range []string{a, b} {
			if !getAlert(t, env, org, id).Acknowledged {
				t.Errorf("%s not acknowledged", id)
			}
		}
		if !strings.Contains(admin.Get(loc.String()).Body, "2 alerts acknowledged.") {
			t.Error("no flash")
		}
	})

	t.Run("a foreign return path is not followed", func(t *testing.T) {
		id := raiseAlert(t, env, models.NewAlert{Org: org, Title: "Redirect"})
		r := admin.PostForm("/alerts/"+id+"/acknowledge", url.Values{"return": {"https://evil.example/alerts"}})
		if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, "/alerts/"+id) {
			t.Errorf("redirected to %q", loc)
		}
	})
}

func TestAlertDetailShowsTriggeringEventsOfTheOrganization(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("ald"), env.Org("aldo")
	admin := env.Login(env.User(org, "org:admin"))
	now := time.Now().UTC()
	evs := env.Events(
		models.Event{OrganizationID: org, Timestamp: now.Add(-time.Minute), Action: "auth.login.failure", Status: "failure", PrincipalID: str("mallory")},
		models.Event{OrganizationID: other, Timestamp: now.Add(-time.Minute), Action: "foreign.secret", Status: "failure"},
	)
	id := raiseAlert(t, env, models.NewAlert{Org: org, Title: "Failed logins", Rule: "failed_logins", Principal: "mallory",
		EventIDs: []int64{evs[0].ID, evs[1].ID}, Metadata: map[string]any{"count": 5}})
	r := admin.Get("/alerts/" + id)
	if r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	for _, w := range []string{`href="/events/` + itoa(evs[0].ID) + `"`, "auth.login.failure", `data-testid="alert-events-missing"`,
		`data-testid="field-rule">failed_logins<`, `data-testid="alert-metadata"`, `data-testid="timeline-raised"`} {
		if !strings.Contains(r.Body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	if strings.Contains(r.Body, "foreign.secret") || strings.Contains(r.Body, `href="/events/`+itoa(evs[1].ID)+`"`) {
		t.Error("another organization's event is shown")
	}
	plain := raiseAlert(t, env, models.NewAlert{Org: org, Title: "Sweep"})
	if r := admin.Get("/alerts/" + plain); !strings.Contains(r.Body, `data-testid="alert-events-empty"`) {
		t.Error("no empty state for an alert without events")
	}
}

func TestAPIListAlerts(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("apa"), env.Org("apao")
	read, ingest := env.APIKey(org, models.ScopeRead), env.APIKey(org, models.ScopeIngest)
	for i := 0; i < 3; i++ {
		raiseAlert(t, env, models.NewAlert{Org: org, Severity: "MEDIUM", Title: "Velocity " + itoa(int64(i))})
	}
	crit := raiseAlert(t, env, models.NewAlert{Org: org, Severity: "CRITICAL", Title: "Unauthorized", EventIDs: []int64{7}})
	raiseAlert(t, env, models.NewAlert{Org: other, Severity: "CRITICAL", Title: "Foreign"})
	type page struct {
		Alerts []struct {
			ID, Severity, State, Title string
			EventIDs                   []int64 `json:"eventIds"`
		} `json:"alerts"`
		NextCursor *string `json:"nextCursor"`
	}
	var seen []string
	path := "/api/v1/alerts?limit=2"
	for i := 0; i < 5; i++ {
		r := env.API("GET", path, read, "", "")
		if r.StatusCode != 200 {
			t.Fatalf("status %d: %s", r.StatusCode, r.Body)
		}
		var p page
		if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
			t.Fatal(err)
		}
		for _, a := range p.Alerts {
			seen = append(seen, a.Title)
			if a.ID == crit && (a.State != "active" || len(a.EventIDs) != 1 || a.EventIDs[0] != 7) {
				t.Errorf("critical alert: %+v", a)
			}
		}
		if p.NextCursor == nil {
			break
		}
		path = "/api/v1/alerts?limit=2&after=" + url.QueryEscape(*p.NextCursor)
	}
	if len(seen) != 4 || seen[0] != "Unauthorized" || strings.Contains(strings.Join(seen, ","), "Foreign") {
		t.Errorf("listed %v", seen)
	}
	cases := []struct {
		name, path, key string
		status          int
		field           string
	}{
		{"filter", "/api/v1/alerts?severity=CRITICAL", read, 200, ""},
		{"unknown severity", "/api/v1/alerts?severity=urgent", read, 400, "severity"},
		{"unknown state", "/api/v1/alerts?state=closed", read, 400, "state"},
		{"bad limit", "/api/v1/alerts?limit=0", read, 400, "limit"},
		{"garbage cursor", "/api/v1/alerts?after=zzz", read, 400, "after"},
		{"ingest key", "/api/v1/alerts", ingest, 403, ""},
		{"no key", "/api/v1/alerts", "", 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := env.API("GET", c.path, c.key, "", "")
			if r.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", r.StatusCode, c.status, r.Body)
			}
			if c.field != "" && !strings.Contains(r.Body, c.field) {
				t.Errorf("error does not name %s: %s", c.field, r.Body)
			}
			if c.status == 200 && (!strings.Contains(r.Body, "Unauthorized") || strings.Contains(r.Body, "Velocity")) {
				t.Errorf("filtered body: %s", r.Body)
			}
		})
	}
}

// deliveries stands in for the notifications area at the handler boundary.
type deliveries struct {
	org string
	out map[string][]models.AlertDelivery
}

func (d deliveries) ForAlert(_ context.Context, org, alertID string) ([]models.AlertDelivery, error) {
	if org != d.org {
		return nil, nil
	}
	return d.out[alertID], nil
}

func TestAlertTimelineShowsNotificationsWhenWired(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("aln")
	sent := raiseAlert(t, env, models.NewAlert{Org: org, Title: "Failed logins"})
	quiet := raiseAlert(t, env, models.NewAlert{Org: org, Title: "Nothing sent"})
	at := time.Now().UTC().Add(time.Minute)
	env.Services.AlertDeliveries = deliveries{org: org, out: map[string][]models.AlertDelivery{sent: {
		{Channel: "soc-webhook", Kind: "webhook", Status: "delivered", Attempts: 1, LastAttemptAt: &at, DeliveredAt: &at},
		{Channel: "oncall", Kind: "email", Status: "failed", Attempts: 7, LastAttemptAt: &at, LastError: "550 mailbox unavailable"},
	}}}
	env.App = web.New(env.Services)
	admin := env.Login(env.User(org, "org:admin"))
	r := admin.Get("/alerts/" + sent)
	if n := strings.Count(r.Body, `data-testid="timeline-notification"`); n != 2 {
		t.Errorf("%d notifications in the timeline, want 2", n)
	}
	for _, w := range []string{"Notification via soc-webhook (webhook)", "delivered after 1 attempt<", "failed after 7 attempts: 550 mailbox unavailable"} {
		if !strings.Contains(r.Body, w) {
			t.Errorf("timeline lacks %q", w)
		}
	}
	if r := admin.Get("/alerts/" + quiet); !strings.Contains(r.Body, `data-testid="alert-no-deliveries"`) {
		t.Error("no note that nothing was sent")
	}
}
