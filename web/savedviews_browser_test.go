package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"auditdb/models"
	"auditdb/web/webtest"
)

// TestBrowserSavedViews: a user searches, saves the search under a name from the list,
// finds it on the saved views page, opens it (the list comes back with the same search
// and rows), is told next to the field when a name is taken, renames and shares it, and
// deletes it through the confirmation step.
func TestBrowserSavedViews(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("bsv")
	email := env.User(org, "org:member")
	now := time.Now().UTC()
	env.Events(
		models.Event{OrganizationID: org, Timestamp: now.Add(-2 * time.Hour), Action: "auth.login.failure", Status: "failure"},
		models.Event{OrganizationID: org, Timestamp: now.Add(-time.Hour), Action: "order.create", Status: "success"},
	)
	base := serve(t, env)
	ctx := browser(t)
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		s, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		step("read "+sel, err)
		return strings.TrimSpace(s)
	}
	step("sign in and search", chromedp.Do(ctx, signIn(base, email),
		chromedp.Navigate(base+"/events?q=status%3Afailure&range=7d"),
		chromedp.WaitVisible(css(`[data-testid="events-table"]`)),
		chromedp.Click(css(`[data-testid="save-view"]`)),
		chromedp.WaitVisible(css(`[data-testid="save-view-name"]`)),
		chromedp.SendKeys(css(`[data-testid="save-view-name"]`), "Failed logins"),
		chromedp.Click(css(`[data-testid="save-view-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="views-flash"]`)),
	))
	if got := text(`[data-testid="view-summary"]`); got != "status:failure · last 7 days" {
		t.Fatalf("saved view summary = %q", got)
	}
	step("open the view", chromedp.Do(ctx,
		chromedp.Click(css(`[data-testid="view-open"]`)),
		chromedp.WaitVisible(css(`[data-testid="events-table"]`)),
	))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	step("location", err)
	q, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="filter-q"]').value`))
	step("search box", err)
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="event-row"]').length`))
	step("rows", err)
	if !strings.HasSuffix(loc, "/events?q=status%3Afailure&range=7d") || q != "status:failure" || rows != 1 {
		t.Fatalf("opened view: location %q, search %q, rows %d", loc, q, rows)
	}

	// A second view under the same name (in another case) is refused next to the name.
	step("save a clash", chromedp.Do(ctx,
		chromedp.Click(css(`[data-testid="save-view"]`)),
		chromedp.SendKeys(css(`[data-testid="save-view-name"]`), "FAILED LOGINS"),
		chromedp.Click(css(`[data-testid="save-view-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="view-save-form"] [data-testid="error-name"]`)),
	))
	if got := text(`[data-testid="view-save-form"] [data-testid="error-name"]`); !strings.Contains(got, "already have a view named") {
		t.Fatalf("clash message = %q", got)
	}

	// Rename and share, then delete through the confirmation step.
	step("rename and share", chromedp.Do(ctx,
		chromedp.Navigate(base+"/events/views"),
		chromedp.Click(css(`[data-testid="view-edit"]`)),
		chromedp.SetValue(css(`[data-testid="view-edit-form"] [data-testid="view-name"]`), "Failures (team)"),
		chromedp.Click(css(`[data-testid="view-edit-form"] [data-testid="view-shared-input"]`)),
		chromedp.Click(css(`[data-testid="view-save"]`)),
		chromedp.WaitVisible(css(`[data-testid="view-shared"]`)),
	))
	if got := text(`[data-testid="view-open"]`); got != "Failures (team)" {
		t.Fatalf("renamed view = %q", got)
	}
	step("delete", chromedp.Do(ctx,
		chromedp.Click(css(`[data-testid="view-delete"]`)),
		chromedp.WaitVisible(css(`[data-testid="view-delete-consequence"]`)),
		chromedp.Click(css(`[data-testid="view-delete-confirm"]`)),
		chromedp.WaitVisible(css(`[data-testid="views-empty"]`)),
	))
}
