package handlers_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

// TestErrorLogPages: an admin sees the organization's server errors grouped by
// fingerprint with a 7-day trend, never another organization's; a superadmin sees all.
func TestErrorLogPages(t *testing.T) {
	env := webtest.New(t)
	ctx := context.Background()
	orgA, orgB := env.Org("erra"), env.Org("errb")
	markerA, markerB := webtest.Unique("alpha"), webtest.Unique("bravo")
	now := time.Now().UTC()
	store := env.Services.ErrorLog
	if err := store.Insert(ctx, []models.ErrorRecord{
		{Kind: models.ErrorKindHTTP, Component: "web", Operation: "GET /events/:id", Org: orgA, Message: markerA + " user 123 failed", Status: 500, At: now.Add(-time.Minute)},
		{Kind: models.ErrorKindHTTP, Component: "web", Operation: "GET /events/:id", Org: orgA, Message: markerA + " user 456 failed", Status: 500, At: now.AddDate(0, 0, -3)},
		{Kind: models.ErrorKindJob, Component: "jobs", Operation: "integrity-sweep", Org: orgB, Message: markerB + " sweep failed", At: now},
	}); err != nil {
		t.Fatal(err)
	}
	groups, err := store.List(ctx, models.ErrorScope{Org: orgB}, now)
	if err != nil || len(groups) != 1 {
		t.Fatalf("org B groups: %v %+v", err, groups)
	}
	keyB := groups[0].Key
	groups, err = store.List(ctx, models.ErrorScope{Org: orgA}, now)
	if err != nil || len(groups) != 1 {
		t.Fatalf("org A groups: %v %+v", err, groups)
	}
	keyA := groups[0].Key

	adminA := env.Login(env.User(orgA, "org:admin"))
	super := env.Login(env.User("", ""))
	super.SwitchOrg(orgA)
	bars := regexp.MustCompile(`data-testid="error-trend-bar"`)

	cases := []struct {
		name      string
		client    *webtest.Client
		path      string
		status    int
		want      []string
		forbidden []string
	}{
		{"admin lists own organization's errors", adminA, "/errors", http.StatusOK,
			[]string{`data-testid="error-group"`, "user &lt;n&gt; failed", markerA + " user 123 failed", `data-testid="error-count">2<`, `data-days="7"`, "GET /events/:id", "5xx answer"},
			[]string{markerB, `data-testid="error-org"`}},
		{"admin opens own fingerprint", adminA, "/errors/" + keyA, http.StatusOK,
			[]string{`data-testid="error-occurrence"`, markerA + " user 456 failed", `data-testid="error-trend-table"`, `data-days="7"`},
			[]string{markerB}},
		{"admin cannot open another organization's fingerprint", adminA, "/errors/" + keyB, http.StatusNotFound, nil, []string{markerB}},
		{"a malformed key is not found", adminA, "/errors/nope", http.StatusNotFound, nil, nil},
		{"superadmin sees every organization", super, "/errors", http.StatusOK,
			[]string{markerA, markerB, `data-testid="error-org"`, orgB, "failed job"}, nil},
		{"superadmin opens another organization's fingerprint", super, "/errors/" + keyB, http.StatusOK,
			[]string{markerB + " sweep failed", "integrity-sweep"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.client.Get(tc.path)
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.300s", r.StatusCode, tc.status, r.Body)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Body, w) {
					t.Errorf("missing %q", w)
				}
			}
			for _, f := range tc.forbidden {
				if strings.Contains(r.Body, f) {
					t.Errorf("shows %q", f)
				}
			}
		})
	}
	t.Run("the trend has seven days", func(t *testing.T) {
		body := adminA.Get("/errors/" + keyA).Body
		if n := len(bars.FindAllString(body, -1)); n != 7 {
			t.Fatalf("%d bars, want one per day (7)", n)
		}
		if !strings.Contains(body, "2 in the last 7 days") {
			t.Fatal("the trend's summary does not count both occurrences")
		}
	})
	t.Run("an organization without errors gets the empty state", func(t *testing.T) {
		c := env.Login(env.User(env.Org("errc"), "org:admin"))
		if body := c.Get("/errors").Body; !strings.Contains(body, `data-testid="errors-empty"`) {
			t.Fatalf("no empty state: %.300s", body)
		}
	})
}
