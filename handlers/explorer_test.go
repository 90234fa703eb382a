package handlers_test

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

func hrefOf(body, testID string) string {
	m := regexp.MustCompile(`href="([^"]+)"[^>]*data-testid="` + testID + `"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.ReplaceAll(m[1], "&amp;", "&")
}

// An empty result says which range was searched and offers a wider one that finds the
// older event (the hidden 30-day window misled before).
func TestEventsRangeIsVisibleAndEmptyOffersWider(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("evr")
	c := env.Login(env.User(org, "org:member"))
	env.Events(models.Event{OrganizationID: org, Timestamp: time.Now().UTC().Add(-40 * 24 * time.Hour), Action: "record.read",
		Status: "success", TargetResourceType: str("Patient"), TargetResourceID: str("old-1")})

	r := c.Get("/events?q=" + url.QueryEscape("resource:Patient/old-1"))
	if r.StatusCode != http.StatusOK || countRows(r.Body) != 0 {
		t.Fatalf("status %d rows %d", r.StatusCode, countRows(r.Body))
	}
	if !strings.Contains(r.Body, `data-testid="events-range"`) || !strings.Contains(r.Body, "Last 30 days") ||
		!strings.Contains(r.Body, "Nothing matches between "+time.Now().UTC().Add(-30*24*time.Hour).Format("2006-01-02")) {
		t.Fatalf("the empty result does not say which range it searched: %.3000s", r.Body)
	}
	wider := hrefOf(r.Body, "events-widen")
	if !strings.Contains(wider, "range=1y") || !strings.Contains(wider, "old-1") {
		t.Fatalf("widen link = %q", wider)
	}
	r = c.Get(wider)
	if countRows(r.Body) != 1 || !strings.Contains(r.Body, "Last 1 year") {
		t.Fatalf("the wider range should find the old event: rows %d", countRows(r.Body))
	}
	// Quick ranges and custom ranges: the form shows the range the URL holds.
	r = c.Get("/events?range=24h")
	if !strings.Contains(r.Body, `<option value="24h" selected>`) || countRows(r.Body) != 1 { // the sign-in only
		t.Fatalf("range=24h: rows %d", countRows(r.Body))
	}
	from := time.Now().UTC().Add(-41 * 24 * time.Hour).Format("2006-01-02T15:04")
	r = c.Get("/events?range=custom&from=" + from)
	if !strings.Contains(r.Body, `<option value="custom" selected>`) || !strings.Contains(r.Body, `value="`+from+`"`) || countRows(r.Body) != 2 {
		t.Fatalf("custom range: rows %d", countRows(r.Body))
	}
	// created: in the query sets the range.
	r = c.Get("/events?q=" + url.QueryEscape("created:<"+time.Now().UTC().Add(-39*24*time.Hour).Format("2006-01-02")))
	if countRows(r.Body) != 1 || !strings.Contains(r.Body, "Set by created:") {
		t.Fatalf("created: rows %d", countRows(r.Body))
	}
}

// withSummary appends to a list page the summary it loads (count, histogram, facets).
func withSummary(t *testing.T, c *webtest.Client, r webtest.Response) string {
	t.Helper()
	m := regexp.MustCompile(`hx-get="([^"]+)"[^>]*data-testid="events-summary-loading"`).FindStringSubmatch(r.Body)
	if m == nil {
		return r.Body
	}
	s := c.GetHTMX(strings.ReplaceAll(m[1], "&amp;", "&"))
	if s.StatusCode != http.StatusOK || strings.Contains(s.Body, "<html") {
		t.Fatalf("summary: status %d", s.StatusCode)
	}
	return r.Body + s.Body
}

func TestEventsQualifiersCountFacetsAndHistogram(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("evq"), env.Org("evqo")
	c := env.Login(env.User(org, "org:member"))
	now := time.Now().UTC()
	var evs []models.Event
	for i := 0; i < 60; i++ {
		evs = append(evs, models.Event{OrganizationID: org, Timestamp: now.Add(-time.Duration(i+1) * time.Minute),
			Action: "Patient.Record.Read", Status: "success", PrincipalID: str("Dr.Grey"), TargetResourceType: str("Patient"),
			TargetResourceID: str("pt-1"), DataClassification: "PHI"})
	}
	evs = append(evs, models.Event{OrganizationID: org, Timestamp: now.Add(-2 * time.Hour), Action: "auth.login.failure",
		Status: "failure", PrincipalID: str("mallory"), OutcomeDescription: str("Wrong password")})
	evs = append(evs, models.Event{OrganizationID: other, Timestamp: now.Add(-time.Minute), Action: "patient.record.read",
		Status: "success", PrincipalID: str("dr.grey")})
	env.Events(evs...)

	for _, tc := range []struct {
		q    string
		rows int
		text string
	}{
		{"action:patient.record.*", 50, "1–50 of 60"},
		{"actor:DR.GREY", 50, "1–50 of 60"},
		{"-action:patient.* -action:auth.login.success", 1, "1–1 of 1"},
		{"wrong", 1, "1–1 of 1"},
		{"resource:patient/PT-1 status:success", 50, "1–50 of 60"},
		{`"password" class:INTERNAL`, 1, "1–1 of 1"},
	} {
		r := c.Get("/events?q=" + url.QueryEscape(tc.q))
		r.Body = withSummary(t, c, r)
		if r.StatusCode != http.StatusOK || countRows(r.Body) != tc.rows || !strings.Contains(r.Body, tc.text) {
			t.Errorf("q=%s: status %d rows %d, want %d and %q", tc.q, r.StatusCode, countRows(r.Body), tc.rows, tc.text)
		}
	}
	r := c.Get("/events?q=" + url.QueryEscape("action:patient.record.*"))
	r.Body = withSummary(t, c, r)
	next := hrefOf(r.Body, "page-next")
	r2 := c.Get(next)
	r2.Body = withSummary(t, c, r2)
	if countRows(r2.Body) != 10 || !strings.Contains(r2.Body, "51–60 of 60") {
		t.Fatalf("page 2: rows %d", countRows(r2.Body))
	}
	// Facets of the query, each value a link adding its qualifier.
	for _, want := range []string{`data-testid="facet-status"`, `data-testid="facet-actor"`, `data-testid="events-histogram"`} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("missing %s", want)
		}
	}
	r = c.Get("/events")
	r.Body = withSummary(t, c, r)
	m := regexp.MustCompile(`href="([^"]*mallory[^"]*)"[^>]*data-testid="facet-value"`).FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatal("no facet link for principal mallory")
	}
	if f := c.Get(strings.ReplaceAll(m[1], "&amp;", "&")); countRows(f.Body) != 1 {
		t.Fatalf("the facet link should filter to mallory's event: %d rows", countRows(f.Body))
	}
	// Clicking a principal in a row filters by it.
	m = regexp.MustCompile(`href="([^"]+)"[^>]*data-testid="row-principal"`).FindStringSubmatch(r.Body)
	if m == nil || !strings.Contains(m[1], "actor%3A") {
		t.Fatalf("row principal link: %v", m)
	}
	// A histogram bar narrows the range to its bucket.
	bars := regexp.MustCompile(`href="([^"]+)"[^>]*data-testid="histogram-bar"`).FindAllStringSubmatch(r.Body, -1)
	if len(bars) < 10 {
		t.Fatalf("histogram has %d bars", len(bars))
	}
	// The newest bar that holds one of the events: the very newest can be a sliver of the range's
	// last minute, after the newest event (a minute old).
	var last string
	for i := len(bars) - 1; i >= 0 && last == ""; i-- {
		u, err := url.Parse(strings.ReplaceAll(bars[i][1], "&amp;", "&"))
		if err != nil {
			t.Fatal(err)
		}
		from, _ := time.Parse("2006-01-02T15:04", u.Query().Get("from"))
		to, _ := time.Parse("2006-01-02T15:04", u.Query().Get("to"))
		for _, ev := range evs[:61] {
			if !ev.Timestamp.Before(from) && ev.Timestamp.Before(to.Add(time.Minute)) {
				last = u.String()
				break
			}
		}
	}
	if b := c.Get(last); !strings.Contains(last, "range=custom") || countRows(b.Body) == 0 || countRows(b.Body) > 61 {
		t.Fatalf("the newest bar with events %q should narrow the range: %d rows", last, countRows(b.Body))
	}
	// The foreign organization's event never counts.
	if r := c.Get("/events?q=" + url.QueryEscape("actor:dr.grey")); strings.Contains(withSummary(t, c, r), "of 61") || !strings.Contains(withSummary(t, c, r), "of 60") {
		t.Fatal("another organization's event is counted")
	}
}

func TestEventsSuggestions(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("evs"), env.Org("evso")
	c := env.Login(env.User(org, "org:member"))
	now := time.Now().UTC()
	env.Events(
		models.Event{OrganizationID: org, Timestamp: now.Add(-time.Minute), Action: "Patient.Record.Read", Status: "success", PrincipalID: str("dr.grey")},
		models.Event{OrganizationID: other, Timestamp: now.Add(-time.Minute), Action: "patient.secret.read", Status: "success"},
	)
	r := c.GetHTMX("/events/suggest?q=" + url.QueryEscape("status:failure action:PATIENT"))
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, `value="status:failure action:Patient.Record.Read"`) {
		t.Fatalf("suggestions: %d %s", r.StatusCode, r.Body)
	}
	if strings.Contains(r.Body, "secret") {
		t.Fatal("suggestions leak another organization's actions")
	}
	if r := c.GetHTMX("/events/suggest?q=ac"); !strings.Contains(r.Body, `value="action:"`) || !strings.Contains(r.Body, `value="actor:"`) {
		t.Fatalf("qualifier suggestions: %s", r.Body)
	}
	if r := c.GetHTMX("/events/suggest?q=" + url.QueryEscape("-status:f")); !strings.Contains(r.Body, `value="-status:failure"`) {
		t.Fatalf("status suggestions: %s", r.Body)
	}
}

func TestEventsSidePanelAndBackLink(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("evpn"), env.Org("evpno")
	c := env.Login(env.User(org, "org:member"))
	own := env.Events(models.Event{OrganizationID: org, Timestamp: time.Now().Add(-time.Minute), Action: "order.create", Status: "success"})[0]
	foreign := env.Events(models.Event{OrganizationID: other, Timestamp: time.Now().Add(-time.Minute), Action: "foreign", Status: "success"})[0]
	panel := func(path string) webtest.Response {
		req, _ := http.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("HX-Request", "true")
		req.Header.Set("HX-Target", "event-panel")
		return c.Do(req)
	}
	r := panel("/events/" + itoa(own.ID) + "?q=order")
	if r.StatusCode != http.StatusOK || strings.Contains(r.Body, "<html") || !strings.Contains(r.Body, `data-testid="event-panel-card"`) ||
		!strings.Contains(r.Body, `href="/events/`+itoa(own.ID)+`?q=order"`) {
		t.Fatalf("panel: %d %.500s", r.StatusCode, r.Body)
	}
	if r := panel("/events/" + itoa(foreign.ID)); r.StatusCode != http.StatusNotFound {
		t.Fatalf("foreign panel: status %d", r.StatusCode)
	}
	// The list links each event with the list's place; the page links back to it.
	list := c.Get("/events?q=order")
	if !strings.Contains(list.Body, `href="/events/`+itoa(own.ID)+`?q=order"`) {
		t.Fatalf("row link lacks the query: %.2000s", list.Body)
	}
	page := c.Get("/events/" + itoa(own.ID) + "?q=order&range=7d&after=abc&pos=50")
	back := hrefOf(page.Body, "event-back")
	for _, want := range []string{"q=order", "range=7d", "after=abc", "pos=50", "#event-" + itoa(own.ID)} {
		if !strings.Contains(back, want) {
			t.Errorf("back link %q lacks %q", back, want)
		}
	}
}

func TestEventsExport(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("evex"), env.Org("evexo")
	admin := env.Login(env.User(org, "org:admin"))
	member := env.Login(env.User(org, "org:member"))
	now := time.Now().UTC()
	env.Events(
		models.Event{OrganizationID: org, Timestamp: now.Add(-time.Minute), Action: "export.me", Status: "success",
			PrincipalID: str("=HYPERLINK(\"http://evil\")"), OutcomeDescription: str("line one\nline \"two\"")},
		models.Event{OrganizationID: org, Timestamp: now.Add(-2 * time.Minute), Action: "export.me", Status: "failure"},
		models.Event{OrganizationID: org, Timestamp: now.Add(-3 * time.Minute), Action: "other.thing", Status: "success"},
		models.Event{OrganizationID: other, Timestamp: now.Add(-time.Minute), Action: "export.me", Status: "success"},
	)
	q := "?q=" + url.QueryEscape("action:export.me")
	if r := member.Get("/events/export.csv" + q); r.StatusCode != http.StatusForbidden {
		t.Fatalf("member export: status %d, want 403", r.StatusCode)
	}
	r := admin.Get("/events/export.csv" + q)
	if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(r.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("csv: %d %v", r.StatusCode, r.Header)
	}
	recs, err := csv.NewReader(strings.NewReader(r.Body)).ReadAll()
	if err != nil || len(recs) != 3 || recs[0][0] != "id" {
		t.Fatalf("csv records %v: %v", recs, err)
	}
	if recs[1][4] != "'=HYPERLINK(\"http://evil\")" || recs[1][7] != "line one\nline \"two\"" {
		t.Fatalf("csv cells %q %q: formula not neutralized or text changed", recs[1][4], recs[1][7])
	}
	j := admin.Get("/events/export.jsonl" + q)
	lines := strings.Split(strings.TrimSpace(j.Body), "\n")
	if j.StatusCode != http.StatusOK || len(lines) != 2 || !strings.Contains(lines[0], `"action":"export.me"`) {
		t.Fatalf("jsonl: %d %q", j.StatusCode, j.Body)
	}
	// Self-audited with the query; a bad query exports nothing and records nothing.
	var n int64
	env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = 'data.export' AND details->>'query' = 'action:export.me'`, org).Scan(&n)
	if n != 2 {
		t.Fatalf("data.export events = %d, want 2", n)
	}
	if r := admin.Get("/events/export.csv?q=foo:bar"); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad query export: status %d", r.StatusCode)
	}
	env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = 'data.export'`, org).Scan(&n)
	if n != 2 {
		t.Fatalf("a refused export was audited: %d", n)
	}
}

// A quote inside a quoted value is written \" and finds the principal that holds it; a
// facet link for such a value quotes it the same way.
func TestEventsSearchQuoteInsideQuotes(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("evq")
	c := env.Login(env.User(org, "org:member"))
	now := time.Now().UTC()
	env.Events(
		models.Event{OrganizationID: org, Timestamp: now.Add(-time.Minute), Action: "q.one", Status: "success", PrincipalID: str(`dr "o" neil`)},
		models.Event{OrganizationID: org, Timestamp: now.Add(-2 * time.Minute), Action: "q.two", Status: "success", PrincipalID: str(`dr o neil`)},
	)
	r := c.Get("/events?q=" + url.QueryEscape(`actor:"dr \"o\" neil"`))
	if r.StatusCode != http.StatusOK || countRows(r.Body) != 1 || !strings.Contains(r.Body, "q.one") {
		t.Fatalf("status %d rows %d", r.StatusCode, countRows(r.Body))
	}
	// The row's principal link adds the same escaped term, which finds the same row.
	r = c.Get("/events?q=q.one")
	m := regexp.MustCompile(`href="(/events\?[^"]*q=[^"]*actor[^"]*)"`).FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no principal link: %.2000s", r.Body)
	}
	link := strings.ReplaceAll(m[1], "&amp;", "&")
	u, _ := url.Parse(link)
	if got := u.Query().Get("q"); got != `q.one actor:"dr \"o\" neil"` {
		t.Fatalf("principal link q = %q", got)
	}
	if r := c.Get(link); countRows(r.Body) != 1 {
		t.Fatalf("principal link rows = %d", countRows(r.Body))
	}
	if r := c.Get("/events?q=" + url.QueryEscape(`actor:"dr \"o`)); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "unclosed quote") {
		t.Fatalf("unclosed: status %d", r.StatusCode)
	}
}

// action: resolves into the organization's exact actions first (any case, a prefix); an
// action that matches nothing answers at once, saying which range it searched and offering a
// wider one, and another organization's actions never resolve.
func TestEventsActionResolvesToExactActions(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("evact")
	other := env.Org("evact-other")
	c := env.Login(env.User(org, "org:member"))
	now := time.Now().UTC()
	env.Events(
		models.Event{OrganizationID: org, Timestamp: now.Add(-time.Hour), Action: "Patient.Record.Read", Status: "success"},
		models.Event{OrganizationID: org, Timestamp: now.Add(-2 * time.Hour), Action: "patient.chart.print", Status: "success"},
		models.Event{OrganizationID: other, Timestamp: now.Add(-time.Hour), Action: "patient.secret.read", Status: "success"},
	)
	cases := []struct {
		name, q string
		rows    int
		want    string // in the body
	}{
		{"exact in another case", "action:patient.record.read", 1, "Patient.Record.Read"},
		{"prefix in another case", "action:PATIENT.*", 2, "patient.chart.print"},
		{"no such action names the range", "action:no.such.action", 0,
			"Nothing matches between " + now.Add(-30*24*time.Hour).Format("2006-01-02")},
		{"another organization's action", "action:patient.secret.read", 0, `data-testid="events-widen"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Get("/events?q=" + url.QueryEscape(tc.q))
			if r.StatusCode != http.StatusOK || countRows(r.Body) != tc.rows || !strings.Contains(r.Body, tc.want) {
				t.Fatalf("status %d, rows %d (want %d), %q in body: %v", r.StatusCode, countRows(r.Body), tc.rows, tc.want,
					strings.Contains(r.Body, tc.want))
			}
		})
	}
}
