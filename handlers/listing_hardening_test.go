package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

// TestEventPagesAreNotStored: every answer that carries events (console pages and
// fragments, API reads) tells browsers and proxies not to keep a copy.
func TestEventPagesAreNotStored(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("nostore")
	ev := env.Events(models.Event{OrganizationID: org, Timestamp: time.Now().Add(-time.Minute), Action: "patient.record.read", Status: "success"})[0]
	c := env.Login(env.User(org, "org:admin"))
	id := strings.TrimSpace(itoa(ev.ID))
	for _, path := range []string{"/", "/events", "/events/" + id, "/events?action=patient"} {
		if r := c.Get(path); r.StatusCode != http.StatusOK || !strings.Contains(r.Header.Get("Cache-Control"), "no-store") {
			t.Errorf("GET %s: status %d, Cache-Control %q, want no-store", path, r.StatusCode, r.Header.Get("Cache-Control"))
		}
	}
	if r := c.GetHTMX("/events"); !strings.Contains(r.Header.Get("Cache-Control"), "no-store") {
		t.Errorf("htmx GET /events: Cache-Control %q, want no-store", r.Header.Get("Cache-Control"))
	}
	key := env.APIKey(org, models.ScopeRead)
	for _, path := range []string{"/api/v1/events", "/api/v1/events/" + id} {
		if r := env.API("GET", path, key, "", ""); r.StatusCode != http.StatusOK || !strings.Contains(r.Header.Get("Cache-Control"), "no-store") {
			t.Errorf("GET %s: status %d, Cache-Control %q, want no-store", path, r.StatusCode, r.Header.Get("Cache-Control"))
		}
	}
}

// TestCursorOutsideTheRange: a cursor after the end of the listed range (or far before
// its start) is refused with 400 naming "after", instead of quietly serving the first page.
func TestCursorOutsideTheRange(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("cursor")
	now := time.Now()
	evs := env.Events(
		models.Event{OrganizationID: org, Timestamp: now.Add(-time.Hour), Action: "newer", Status: "success"},
		models.Event{OrganizationID: org, Timestamp: now.Add(-2 * time.Hour), Action: "older", Status: "success"})
	c := env.Login(env.User(org, "org:member"))
	key := env.APIKey(org, models.ScopeRead)
	cursor := func(ts time.Time, id int64) string {
		return url.QueryEscape(models.Cursor{Timestamp: ts, ID: id}.String())
	}
	for name, after := range map[string]string{
		"ten years ahead":        cursor(now.AddDate(10, 0, 0), evs[0].ID+1),
		"a day past the end":     cursor(now.Add(24*time.Hour), evs[0].ID+1),
		"years before the start": cursor(now.AddDate(-5, 0, 0), 1),
	} {
		t.Run(name, func(t *testing.T) {
			if r := c.Get("/events?after=" + after); r.StatusCode != http.StatusBadRequest {
				t.Errorf("console: status %d, want 400", r.StatusCode)
			}
			r := env.API("GET", "/api/v1/events?after="+after, key, "", "")
			if e := decode[apiError](t, r); r.StatusCode != http.StatusBadRequest || e.Error.Field != "after" {
				t.Errorf("API: status %d, body %s; want 400 naming after", r.StatusCode, r.Body)
			}
		})
	}
	t.Run("a cursor inside the range", func(t *testing.T) {
		after := cursor(evs[0].Timestamp, evs[0].ID)
		if r := c.Get("/events?after=" + after); r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "older") {
			t.Errorf("console: status %d, want the page after the first event", r.StatusCode)
		}
		r := env.API("GET", "/api/v1/events?after="+after, key, "", "")
		if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, `"older"`) || strings.Contains(r.Body, `"newer"`) {
			t.Errorf("API: status %d, body %.300s; want the second event only", r.StatusCode, r.Body)
		}
	})
}
