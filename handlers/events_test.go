package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func str(s string) *string { return &s }

var rowPattern = regexp.MustCompile(`data-testid="event-row"`)

func countRows(body string) int { return len(rowPattern.FindAllString(body, -1)) }

func TestEventsListFilters(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("evf"), env.Org("evo")
	c := env.Login(env.User(org, "org:member"))
	now := time.Now().UTC()
	env.Events(
		models.Event{OrganizationID: org, Timestamp: now.Add(-1 * time.Hour), Action: "patient.record.read", Status: "success",
			PrincipalID: str("dr.house"), TargetResourceType: str("Patient"), TargetResourceID: str("p-1"),
			DataClassification: "PHI", CorrelationID: str("corr-1"), OutcomeDescription: str("Chart opened for review")},
		models.Event{OrganizationID: org, Timestamp: now.Add(-2 * time.Hour), Action: "auth.login.failure", Status: "failure",
			PrincipalID: str("nurse.kim"), OutcomeDescription: str("Bad password 100% wrong_guess")},
		models.Event{OrganizationID: org, Timestamp: now.Add(-40 * 24 * time.Hour), Action: "old.event", Status: "success"},
		models.Event{OrganizationID: other, Timestamp: now.Add(-1 * time.Hour), Action: "foreign.secret", Status: "success"},
	)
	cases := []struct {
		name      string
		query     string
		want      []string
		wantNot   []string
		wantCount int
	}{
		// Signing in is itself audited, so the viewer's own auth.login.success is listed too.
		{"default last 30 days", "", []string{"patient.record.read", "auth.login.failure", "auth.login.success"}, []string{"old.event", "foreign.secret"}, 3},
		{"wider range", "?from=" + now.Add(-60*24*time.Hour).Format("2006-01-02"), []string{"old.event"}, []string{"foreign.secret"}, 4},
		{"action", "?action=auth.login.failure", []string{"auth.login.failure"}, []string{"patient.record.read"}, 1},
		{"status", "?status=failure", []string{"auth.login.failure"}, nil, 1},
		{"principal", "?principal=dr.house", []string{"patient.record.read"}, nil, 1},
		{"resource type", "?resource_type=Patient", []string{"patient.record.read"}, nil, 1},
		{"resource id", "?resource_id=p-1", []string{"patient.record.read"}, nil, 1},
		{"classification", "?classification=PHI", []string{"patient.record.read"}, nil, 1},
		{"correlation id", "?correlation_id=corr-1", []string{"patient.record.read"}, nil, 1},
		{"free text, case-insensitive", "?q=chart+OPENED", []string{"patient.record.read"}, nil, 1},
		{"free text percent is literal", "?q=" + url.QueryEscape("100%"), []string{"auth.login.failure"}, nil, 1},
		{"free text underscore is literal", "?q=" + url.QueryEscape("g_ess"), nil, nil, 0},
		{"foreign action is invisible", "?action=foreign.secret", nil, []string{"foreign.secret</"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Get("/events" + tc.query)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %.300s", r.StatusCode, r.Body)
			}
			if got := countRows(r.Body); got != tc.wantCount {
				t.Errorf("rows = %d, want %d", got, tc.wantCount)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Body, w) {
					t.Errorf("missing %q", w)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(r.Body, w) {
					t.Errorf("unexpected %q", w)
				}
			}
		})
	}
}

func TestEventsListBadInput(t *testing.T) {
	env := webtest.New(t)
	c := env.Login(env.User(env.Org("evb"), "org:member"))
	cases := []struct {
		name, query, field string
		slot               bool // the form has a message slot for the field
	}{
		{"bad from date", "?from=yesterday", "from", true},
		{"bad to date", "?to=2026-13-45", "to", true},
		{"to before from", "?from=2026-02-01&to=2026-01-01", "to", true},
		{"unknown range", "?range=2w", "range", true},
		{"unknown status", "?status=maybe", "status", false},
		{"unknown classification", "?classification=SECRET", "classification", false},
		{"over-long free text", "?q=" + strings.Repeat("x", models.MaxTextFilter+1), "q", true},
		{"unknown qualifier", "?q=foo:bar", "q", true},
		{"bad created", "?q=" + url.QueryEscape("created:>someday"), "q", true},
		{"garbage cursor", "?after=not-a-cursor", "after", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, htmx := range []bool{false, true} {
				var r webtest.Response
				if htmx {
					r = c.GetHTMX("/events" + tc.query)
				} else {
					r = c.Get("/events" + tc.query)
				}
				if r.StatusCode != http.StatusBadRequest {
					t.Fatalf("htmx=%v: status %d, want 400", htmx, r.StatusCode)
				}
				// The refusal replaces the rows and names the field; a bad search or range is
				// also shown next to its field, and htmx never pushes the refused URL.
				if !strings.Contains(r.Body, `data-testid="events-error"`) || !strings.Contains(r.Body, tc.field) {
					t.Fatalf("htmx=%v: page does not name field %q: %.400s", htmx, tc.field, r.Body)
				}
				if countRows(r.Body) != 0 || strings.Contains(r.Body, `data-testid="events-table"`) {
					t.Fatalf("htmx=%v: a refused search still shows rows", htmx)
				}
				if htmx && r.Header.Get("HX-Push-Url") != "false" {
					t.Fatalf("HX-Push-Url = %q, want false", r.Header.Get("HX-Push-Url"))
				}
				if htmx && strings.Contains(r.Body, "<html") {
					t.Fatal("htmx got a whole page")
				}
				if slot := regexp.MustCompile(`<p id="error-` + tc.field + `"[^>]*>([^<]+)</p>`).FindStringSubmatch(r.Body); slot == nil && tc.slot {
					t.Fatalf("htmx=%v: no message next to field %s: %.2000s", htmx, tc.field, r.Body)
				}
				if htmx && tc.slot && !strings.Contains(r.Body, `id="error-`+tc.field+`" hx-swap-oob="true"`) {
					t.Fatalf("the htmx answer does not replace the field's message slot")
				}
			}
		})
	}
}

func TestEventsListSQLMetacharactersAreHarmless(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("evsql")
	c := env.Login(env.User(org, "org:member"))
	env.Events(models.Event{OrganizationID: org, Timestamp: time.Now().Add(-time.Minute), Action: "x'; DROP TABLE audit_log; --", Status: "success"})
	evil := []string{`'; DROP TABLE audit_log; --`, `" OR 1=1 --`, `\`, `%`, `_`, `$1`, `) OR (1=1`}
	for _, param := range []string{"action", "principal", "resource_type", "resource_id", "correlation_id", "q"} {
		for _, v := range evil {
			r := c.Get("/events?" + url.Values{param: {v}}.Encode())
			if param == "q" && r.StatusCode == http.StatusBadRequest && strings.Contains(r.Body, `data-testid="events-error"`) {
				continue // the query language refused it (too short, a lone -, …): harmless too
			}
			if r.StatusCode != http.StatusOK {
				t.Fatalf("%s=%q: status %d", param, v, r.StatusCode)
			}
			if param == "action" && v == evil[0] {
				continue
			}
			if n := countRows(r.Body); n != 0 {
				t.Fatalf("%s=%q matched %d rows; metacharacters must match literally", param, v, n)
			}
		}
	}
	r := c.Get("/events?" + url.Values{"action": {"x'; DROP TABLE audit_log; --"}}.Encode())
	if countRows(r.Body) != 1 {
		t.Fatalf("the literal action should match exactly one row")
	}
	var n int64
	if err := env.DB.Raw("SELECT count(*) FROM audit_log").Scan(&n).Error; err != nil || n == 0 {
		t.Fatalf("audit_log damaged: %v", err)
	}
}

func TestEventsEscapeEverything(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("evx")
	c := env.Login(env.User(org, "org:member"))
	xss := `<script>alert("x")</script><img src=x onerror=alert(1)>`
	details, _ := json.Marshal(map[string]any{"note": xss, "nested": map[string]string{"k": xss}})
	ev := env.Events(models.Event{OrganizationID: org, Timestamp: time.Now().Add(-time.Minute), Action: "act" + xss, Status: "success",
		PrincipalID: str(xss), TargetResourceType: str(xss), TargetResourceID: str(xss), OutcomeDescription: str(xss),
		CorrelationID: str(xss), TTL: str(xss), Details: details})[0]
	for _, path := range []string{"/events", "/events/" + itoa(ev.ID), "/"} {
		r := c.Get(path)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", path, r.StatusCode)
		}
		if strings.Contains(r.Body, "<script>alert") || strings.Contains(r.Body, "<img src=x") {
			t.Fatalf("%s renders markup from event data", path)
		}
		if !strings.Contains(r.Body, "&lt;script&gt;") {
			t.Fatalf("%s does not show the escaped text", path)
		}
	}
}

func TestEventDetail(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("evd"), env.Org("evdo")
	c := env.Login(env.User(org, "org:member"))
	now := time.Now().UTC()
	own := env.Events(models.Event{OrganizationID: org, Timestamp: now.Add(-time.Minute), Action: "order.create", Status: "success",
		Details: json.RawMessage(`{"b":2,"a":{"deep":[1,2,3]}}`), CorrelationID: str("c-77")})[0]
	foreign := env.Events(models.Event{OrganizationID: other, Timestamp: now.Add(-time.Minute), Action: "foreign", Status: "success"})[0]

	r := c.Get("/events/" + itoa(own.ID))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("own event: status %d", r.StatusCode)
	}
	for _, want := range []string{"order.create", "c-77", own.Hash, own.Signature, `data-testid="event-details"`, "&#34;deep&#34;: [\n"} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("detail page lacks %q", want)
		}
	}
	for _, path := range []string{"/events/" + itoa(foreign.ID), "/events/abc", "/events/-1", "/events/0", "/events/99999999999999999999", "/events/1.5"} {
		t.Run(path, func(t *testing.T) {
			if r := c.Get(path); r.StatusCode != http.StatusNotFound {
				t.Fatalf("status %d, want 404", r.StatusCode)
			}
		})
	}
}

func TestEventsKeysetPagesAndHTMXFragment(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("evp")
	c := env.Login(env.User(org, "org:member"))
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var evs []models.Event
	for i := 0; i < 120; i++ {
		// Pairs of equal timestamps: the keyset must break ties by id.
		evs = append(evs, models.Event{OrganizationID: org, Timestamp: base.Add(-time.Duration(i/2) * time.Second),
			Action: "page.event." + strconv.Itoa(i), Status: "success"})
	}
	env.Events(evs...)

	seen := map[string]bool{}
	var sizes []int
	next := "/events"
	for next != "" {
		r := c.Get(next)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("page %d: status %d", len(sizes), r.StatusCode)
		}
		sizes = append(sizes, countRows(r.Body))
		for _, m := range regexp.MustCompile(`href="/events/(\d+)[?"]`).FindAllStringSubmatch(r.Body, -1) {
			seen[m[1]] = true
		}
		m := regexp.MustCompile(`data-testid="page-next"[^>]*href="([^"]+)"|href="([^"]+)"[^>]*data-testid="page-next"`).FindStringSubmatch(r.Body)
		next = ""
		if m != nil {
			next = strings.ReplaceAll(m[1]+m[2], "&amp;", "&")
		}
		if len(sizes) > 5 {
			t.Fatal("too many pages")
		}
	}
	// 120 events plus the audited sign-in of the client itself.
	if len(sizes) != 3 || sizes[0] != 50 || sizes[1] != 50 || sizes[2] != 21 || len(seen) != 121 {
		t.Fatalf("page sizes = %v, distinct events = %d; want [50 50 21] and 121", sizes, len(seen))
	}

	frag := c.GetHTMX("/events?status=success")
	if frag.StatusCode != http.StatusOK || strings.Contains(frag.Body, "<html") || !strings.Contains(frag.Body, `id="events-results"`) {
		t.Fatalf("htmx request should get the results fragment alone: %.200s", frag.Body)
	}
	if !strings.Contains(frag.Header.Get("Vary"), "HX-Request") {
		t.Fatalf("Vary = %q, want HX-Request", frag.Header.Get("Vary"))
	}
	full := c.Get("/events?status=success")
	if !strings.Contains(full.Body, "<html") || !strings.Contains(full.Body, `value="success"`) {
		t.Fatal("the full page should carry the filter values in the form")
	}
}

// pageIDs returns the event ids of a list page in row order.
func pageIDs(body string) []string {
	var ids []string
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`href="/events/(\d+)[?"]`).FindAllStringSubmatch(body, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			ids = append(ids, m[1])
		}
	}
	return ids
}

func linkOf(body, testID string) string {
	m := regexp.MustCompile(`data-testid="` + testID + `"[^>]*href="([^"]+)"|href="([^"]+)"[^>]*data-testid="` + testID + `"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.ReplaceAll(m[1]+m[2], "&amp;", "&")
}

// "← Newer" walks the keyset pages backwards: each page read backwards holds exactly the
// rows it held read forwards (ties on the timestamp broken by id), the newest page has no
// newer link, and a row that arrived meanwhile shows up as a short newest page.
func TestEventsPreviousPage(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("evb")
	c := env.Login(env.User(org, "org:member"))
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var evs []models.Event
	for i := 0; i < 120; i++ {
		evs = append(evs, models.Event{OrganizationID: org, Timestamp: base.Add(-time.Duration(i/2) * time.Second),
			Action: "prev.event." + strconv.Itoa(i), Status: "success"})
	}
	env.Events(evs...)

	var pages [][]string
	var bodies []string
	for next := "/events"; next != ""; next = linkOf(bodies[len(bodies)-1], "page-next") {
		r := c.Get(next)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("forward page %d: status %d", len(pages), r.StatusCode)
		}
		pages, bodies = append(pages, pageIDs(r.Body)), append(bodies, r.Body)
		if len(pages) > 5 {
			t.Fatal("too many pages")
		}
	}
	if len(pages) != 3 || len(pages[2]) != 21 {
		t.Fatalf("forward pages = %d, last holds %d", len(pages), len(pages[len(pages)-1]))
	}
	if linkOf(bodies[0], "page-prev") != "" || linkOf(bodies[0], "page-first") != "" {
		t.Fatal("the newest page offers a newer page")
	}
	// Backwards from the last page: page 2, then page 1, row for row.
	prev := linkOf(bodies[2], "page-prev")
	if !strings.Contains(prev, "before=") || !strings.Contains(prev, "pos=50") {
		t.Fatalf("newer link of page 3 = %q", prev)
	}
	r := c.Get(prev)
	if got := pageIDs(r.Body); strings.Join(got, ",") != strings.Join(pages[1], ",") {
		t.Fatalf("page 2 read backwards = %v, forwards = %v", got, pages[1])
	}
	if n := linkOf(r.Body, "page-next"); c.Get(n).StatusCode != http.StatusOK || strings.Join(pageIDs(c.Get(n).Body), ",") != strings.Join(pages[2], ",") {
		t.Fatalf("older link of page 2 read backwards = %q does not lead to page 3", n)
	}
	r = c.Get(linkOf(r.Body, "page-prev"))
	if got := pageIDs(r.Body); strings.Join(got, ",") != strings.Join(pages[0], ",") {
		t.Fatalf("page 1 read backwards = %v, forwards = %v", got, pages[0])
	}
	if linkOf(r.Body, "page-prev") != "" || linkOf(r.Body, "page-first") != "" {
		t.Fatal("page 1 read backwards still offers a newer page")
	}
	if !strings.Contains(linkOf(r.Body, "page-next"), "pos=50") {
		t.Fatalf("page 1 read backwards: older link %q should say pos=50", linkOf(r.Body, "page-next"))
	}
	// htmx gets the fragment, with the same rows.
	if f := c.GetHTMX(prev); strings.Contains(f.Body, "<html") || strings.Join(pageIDs(f.Body), ",") != strings.Join(pages[1], ",") {
		t.Fatal("htmx: the newer page should come as the results fragment with page 2's rows")
	}

	// A newer event arrives while page 2 is shown: Newer from page 2 gives page 1's rows and
	// a newer link to a one-row page at the top.
	env.Events(models.Event{OrganizationID: org, Timestamp: time.Now().UTC(), Action: "prev.late", Status: "success"})
	r = c.Get(linkOf(bodies[1], "page-prev"))
	if got := pageIDs(r.Body); strings.Join(got, ",") != strings.Join(pages[0], ",") {
		t.Fatalf("page 1 after a late event = %v, want %v", got, pages[0])
	}
	top := linkOf(r.Body, "page-prev")
	if top == "" {
		t.Fatal("a newer event exists but there is no newer link")
	}
	r = c.Get(top)
	if got := pageIDs(r.Body); len(got) != 1 || linkOf(r.Body, "page-prev") != "" || !strings.Contains(r.Body, "prev.late") {
		t.Fatalf("the top page = %v (want the late event alone, with no newer link)", got)
	}

	// Bad cursors are refused next to their parameter.
	for _, tc := range []struct{ url, field string }{
		{"/events?before=not-a-cursor", "before"},
		{prev + "&after=" + regexp.MustCompile(`before=([^&]+)`).FindStringSubmatch(prev)[1], "before"},
	} {
		r := c.Get(tc.url)
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, `data-testid="error-`) || countRows(r.Body) != 0 {
			t.Fatalf("%s: status %d rows %d", tc.url, r.StatusCode, countRows(r.Body))
		}
		if !strings.Contains(r.Body, tc.field+" ") {
			t.Fatalf("%s: the refusal does not name %q", tc.url, tc.field)
		}
	}
}
