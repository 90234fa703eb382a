package handlers_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"auditdb/web/webtest"
)

func TestSavedViewsHandlers(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("sv"), env.Org("svo")
	alice := env.Login(env.User(org, "org:member"))
	bob := env.Login(env.User(org, "org:member"))
	carol := env.Login(env.User(other, "org:admin"))

	// The list offers the form with its query; saving keeps only the list's parameters.
	page := alice.Get("/events?q=" + url.QueryEscape("status:failure") + "&range=7d")
	if !strings.Contains(page.Body, `data-testid="save-view-form"`) || !strings.Contains(page.Body, `name="query" value="q=status%3Afailure&amp;range=7d"`) {
		t.Fatalf("the events list does not offer to save its search: %.3000s", page.Body)
	}
	save := func(c *webtest.Client, name, query string, shared bool) webtest.Response {
		f := url.Values{"name": {name}, "query": {query}}
		if shared {
			f.Set("shared", "on")
		}
		return c.PostForm("/events/views", f)
	}
	r := save(alice, "Failures this week", "q=status%3Afailure&range=7d&after=abc&pos=50&junk=1", false)
	if r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "done=view-saved") {
		t.Fatalf("save: status %d location %q: %.500s", r.StatusCode, r.Header.Get("Location"), r.Body)
	}
	list := alice.Get("/events/views?done=view-saved&name=x")
	if !strings.Contains(list.Body, "Failures this week") || !strings.Contains(list.Body, "status:failure · last 7 days") {
		t.Fatalf("the list does not show the view: %.3000s", list.Body)
	}
	open := regexp.MustCompile(`href="(/events/views/\d+)"[^>]*data-testid="view-open"`).FindStringSubmatch(list.Body)
	if open == nil {
		t.Fatal("no link to open the view")
	}
	private := open[1]
	r = alice.Get(private)
	if loc := r.Header.Get("Location"); r.StatusCode/100 != 3 || loc != "/events?q=status%3Afailure&range=7d" {
		t.Fatalf("open: status %d location %q (the cursor and unknown parameters must not be kept)", r.StatusCode, loc)
	}

	// Bad input: field errors, nothing written.
	for _, tc := range []struct {
		name, query string
		status      int
		field, says string
	}{
		{"", "q=xyz", http.StatusBadRequest, "name", "is required"},
		{strings.Repeat("n", 81), "q=xyz", http.StatusBadRequest, "name", "at most 80 characters"},
		{"FAILURES THIS WEEK", "", http.StatusConflict, "name", "already have a view named"},
		{"bad search", "q=" + url.QueryEscape("foo:bar"), http.StatusBadRequest, "query", "unknown qualifier"},
		{"bad range", "range=2w", http.StatusBadRequest, "query", "range must be one of"},
	} {
		r := save(alice, tc.name, tc.query, false)
		if r.StatusCode != tc.status {
			t.Fatalf("%q: status %d, want %d", tc.name, r.StatusCode, tc.status)
		}
		m := regexp.MustCompile(`data-testid="error-` + tc.field + `">([^<]+)<`).FindStringSubmatch(r.Body)
		if m == nil || !strings.Contains(m[1], tc.says) {
			i := strings.Index(r.Body, "view-save-form")
			t.Fatalf("%q: no message next to %s saying %q: %.3000s", tc.name, tc.field, tc.says, r.Body[max(i, 0):])
		}
		if !strings.Contains(r.Body, `data-testid="view-save-form"`) {
			t.Fatalf("%q: the form is not shown again", tc.name)
		}
	}
	if n := strings.Count(alice.Get("/events/views").Body, `data-testid="view-row"`); n != 1 {
		t.Fatalf("%d views listed after refused saves, want 1", n)
	}

	// A private view is its owner's alone; another organization's id is a 404 everywhere.
	if r := bob.Get(private); r.StatusCode != http.StatusNotFound {
		t.Fatalf("bob opens alice's private view: %d", r.StatusCode)
	}
	for _, c := range []*webtest.Client{bob, carol} {
		if r := c.PostForm(private, url.Values{"name": {"mine"}}); r.StatusCode != http.StatusNotFound {
			t.Fatalf("rename of a view the user does not see: %d", r.StatusCode)
		}
		if r := c.PostForm(private+"/delete", url.Values{}); r.StatusCode != http.StatusNotFound {
			t.Fatalf("delete of a view the user does not see: %d", r.StatusCode)
		}
	}
	// Shared: bob sees and opens it, but only alice changes it.
	if r := alice.PostForm(private, url.Values{"name": {"Failures, shared"}, "shared": {"on"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("share: %d %.500s", r.StatusCode, r.Body)
	}
	bl := bob.Get("/events/views")
	if !strings.Contains(bl.Body, "Failures, shared") || strings.Contains(bl.Body, `data-testid="view-delete"`) {
		t.Fatalf("bob's list: %.3000s", bl.Body)
	}
	if r := bob.Get(private); r.StatusCode/100 != 3 {
		t.Fatalf("bob opens the shared view: %d", r.StatusCode)
	}
	if r := bob.PostForm(private+"/delete", url.Values{}); r.StatusCode != http.StatusForbidden || !strings.Contains(r.Body, "only its owner") {
		t.Fatalf("bob deletes alice's shared view: %d %s", r.StatusCode, r.Body[strings.Index(r.Body, "<main"):])
	}
	if r := carol.Get(private); r.StatusCode != http.StatusNotFound {
		t.Fatalf("another organization opens the shared view: %d", r.StatusCode)
	}
	if strings.Contains(carol.Get("/events/views").Body, "Failures") {
		t.Fatal("another organization lists the shared view")
	}
	// A refused rename shows the message in the view's own form.
	save(alice, "Second", "", false)
	r = alice.PostForm(private, url.Values{"name": {"second"}})
	if r.StatusCode != http.StatusConflict || !regexp.MustCompile(`data-testid="error-name">[^<]*already have a view named second`).MatchString(r.Body) ||
		!strings.Contains(r.Body, `value="second"`) {
		t.Fatalf("refused rename: %d %.3000s", r.StatusCode, r.Body)
	}
	// Delete goes through the confirmation step and says what happens.
	if !strings.Contains(r.Body, `data-testid="view-delete-consequence"`) {
		t.Fatal("delete has no confirmation step")
	}
	if r := alice.PostForm(private+"/delete", url.Values{}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %d", r.StatusCode)
	}
	if r := alice.Get(private); r.StatusCode != http.StatusNotFound {
		t.Fatalf("a deleted view opens: %d", r.StatusCode)
	}
}
