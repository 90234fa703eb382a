package web_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"auditdb/models"
	"auditdb/web/webtest"
)

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

func signIn(base, email string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(css(`[data-testid="login-email"]`)),
		chromedp.SendKeys(css(`[data-testid="login-email"]`), email),
		chromedp.SendKeys(css(`[data-testid="login-password"]`), webtest.Password),
		chromedp.Click(css(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="user-email"]`)),
	)
}

// TestBrowserRoleGivesExactlyItsPages: an owner creates a role in the form and gives it to
// a member; the member then sees exactly the pages the role allows, and the 403 page
// everywhere else.
func TestBrowserRoleGivesExactlyItsPages(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("browser")
	ownerEmail := env.User(org, models.OwnerRole)
	memberEmail := env.User(org, "org:member")
	base := serve(t, env)
	ctx := browser(t)

	// The owner creates the role "triage": read events, read and acknowledge alerts.
	err := chromedp.Do(ctx,
		signIn(base, ownerEmail),
		chromedp.Navigate(base+"/roles"),
		chromedp.Click(css(`[data-testid="role-new"]`)),
		chromedp.WaitVisible(css(`[data-testid="role-form"]`)),
		chromedp.SendKeys(css(`[data-testid="role-name-input"]`), "triage"),
		chromedp.SendKeys(css(`[data-testid="role-description-input"]`), "Works the alert queue"),
		chromedp.Click(css(`[data-testid="perm-audit.events-read"]`)),
		chromedp.Click(css(`[data-testid="perm-audit.alerts-read"]`)),
		chromedp.Click(css(`[data-testid="perm-audit.alerts-acknowledge"]`)),
		chromedp.Click(css(`[data-testid="role-save"]`)),
		chromedp.WaitVisible(css(`[data-testid="roles-flash"]`)),
	)
	if err != nil {
		t.Fatalf("create the role: %v", err)
	}
	flash, err := chromedp.Run(ctx, chromedp.Text(css(`[data-testid="roles-flash"]`)))
	if err != nil || !strings.Contains(flash, "triage") {
		t.Fatalf("flash %q: %v", flash, err)
	}

	// … and gives it to the member on the members page.
	row := `tr[data-email="` + memberEmail + `"] `
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/members"),
		chromedp.WaitVisible(css(row+`[data-testid="member-role-select"]`)),
		chromedp.SetValue(css(row+`[data-testid="member-role-select"]`), "triage"),
		chromedp.Click(css(row+`[data-testid="member-role-save"]`)),
		chromedp.WaitVisible(css(`[data-testid="members-flash"]`)),
		chromedp.Click(css(`[data-testid="account-menu-button"]`)),
		chromedp.Click(css(`[data-testid="logout"]`)),
		chromedp.WaitVisible(css(`[data-testid="login-form"]`)),
	)
	if err != nil {
		t.Fatalf("give the role: %v", err)
	}

	// The member sees exactly the navigation the role allows.
	if err := chromedp.Do(ctx, signIn(base, memberEmail)); err != nil {
		t.Fatalf("member signs in: %v", err)
	}
	keys, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('nav[aria-label="Main"] a')).map(a => a.dataset.testid.replace("nav-", ""))`))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	// audit.alerts:read also opens the error log (the organization's server errors).
	if strings.Join(keys, ",") != "alerts,dashboard,errors,events" {
		t.Fatalf("member's navigation: %v, want alerts, dashboard, errors, events", keys)
	}

	pages := []struct {
		path    string
		allowed bool
	}{
		{"/", true}, {"/events", true}, {"/alerts", true}, {"/errors", true},
		{"/reports", false}, {"/retention", false}, {"/gdpr", false}, {"/roles", false},
		{"/members", false}, {"/orgs", false}, {"/settings", false},
	}
	for _, p := range pages {
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(base+p.path))
		if err != nil {
			t.Fatalf("%s: %v", p.path, err)
		}
		errorPages, err := chromedp.Run(ctx, chromedp.Nodes(css(`[data-testid="error-page"]`), chromedp.AtLeast(0)))
		if err != nil {
			t.Fatalf("%s: %v", p.path, err)
		}
		status := ""
		if len(errorPages) > 0 {
			status, _ = chromedp.Run(ctx, chromedp.Text(css(`[data-testid="error-status"]`)))
		}
		switch {
		case p.allowed && (resp.Status != 200 || len(errorPages) > 0):
			t.Errorf("%s: HTTP %d, error page %q; want the page", p.path, resp.Status, status)
		case !p.allowed && (resp.Status != 403 || strings.TrimSpace(status) != "403"):
			t.Errorf("%s: HTTP %d, error page %q; want the 403 page", p.path, resp.Status, status)
		}
	}
}
