package layout_test

import (
	"context"
	"strings"
	"testing"

	"github.com/a-h/templ"

	"auditdb/views/layout"
)

func render(t *testing.T, c templ.Component) string {
	t.Helper()
	var b strings.Builder
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatalf("render: %v", err)
	}
	return b.String()
}

func TestPage(t *testing.T) {
	base := layout.Shell{Title: "Events", Active: "events", UserEmail: "alice@example.org", OrgID: "2", OrgName: "Acme", CSRF: `to"k<en>`}
	multi := base
	multi.Orgs = []layout.OrgOption{{ID: "1", Name: "Globex"}, {ID: "2", Name: "Acme"}}

	tests := []struct {
		name    string
		shell   layout.Shell
		want    []string
		notWant []string
	}{
		{
			name:  "single organization has no switcher",
			shell: base,
			want: []string{
				"<title>Events · auditdb</title>",
				`data-testid="current-org"`, `data-testid="logout"`, `action="/logout"`,
				`data-testid="nav-dashboard"`, `data-testid="nav-events"`, `data-testid="nav-alerts"`,
				`data-testid="nav-reports"`, `data-testid="nav-retention"`, `data-testid="nav-gdpr"`,
				`data-testid="nav-roles"`, `data-testid="nav-settings"`,
				// The token is JSON-quoted, then HTML-escaped by templ.
				`hx-headers="{&#34;X-CSRF-Token&#34;:&#34;to\&#34;k\u003cen\u003e&#34;}"`,
				`name="_csrf" value="to&#34;k&lt;en&gt;"`,
				"/static/css/app.css", "/static/js/htmx.min.js",
			},
			notWant: []string{`data-testid="org-switcher"`, `to"k<en>`},
		},
		{
			name:  "several organizations show the switcher with the current one selected",
			shell: multi,
			want:  []string{`data-testid="org-switcher"`, `action="/session/org"`, `<option value="2" selected>Acme</option>`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			html := render(t, layout.Page(tc.shell))
			for _, s := range tc.want {
				if !strings.Contains(html, s) {
					t.Errorf("missing %q", s)
				}
			}
			for _, s := range tc.notWant {
				if strings.Contains(html, s) {
					t.Errorf("unexpected %q", s)
				}
			}
			// Once in the sidebar and once in the phone's menu (only one is displayed).
			if n := strings.Count(html, `aria-current="page"`); n != 2 {
				t.Errorf("aria-current appears %d times, want 2", n)
			}
			for _, s := range []string{`data-testid="nav-menu-button"`, `data-testid="account-menu-button"`, `href="/account/password"`} {
				if !strings.Contains(html, s) {
					t.Errorf("missing %q", s)
				}
			}
		})
	}
}
