package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"auditdb/models"
	"auditdb/models/gdpr"
	"auditdb/web/webtest"
)

// One holder of audit.gdpr files an erasure and requests it; a second approves it in
// their own browser; the page polls until the erasure has completed.
func TestBrowserGDPRErasureFourEyes(t *testing.T) {
	env := webtest.New(t) // the real erasure engine
	org := env.Org("browsergdpr")
	// john.doe's events: two to delete, one sign-in (compliance-critical) to keep pseudonymized;
	// jane.roe's stay as they are.
	john, jane := "john.doe", "jane.roe"
	now := time.Now().UTC().Add(-time.Hour)
	env.Events(
		models.Event{OrganizationID: org, Timestamp: now, Action: "patient.record.read", Status: "success", PrincipalID: &john},
		models.Event{OrganizationID: org, Timestamp: now, Action: "patient.record.update", Status: "success", PrincipalID: &john},
		models.Event{OrganizationID: org, Timestamp: now, Action: "auth.login.success", Status: "success", PrincipalID: &john},
		models.Event{OrganizationID: org, Timestamp: now, Action: "patient.record.read", Status: "success", PrincipalID: &jane},
	)
	env.Sequence()
	a, b := env.User(org, models.OwnerRole), env.User(org, models.OwnerRole)
	base := serve(t, env)
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	signIn := func(email string) []chromedp.Action[chromedp.Void] {
		return []chromedp.Action[chromedp.Void]{
			chromedp.WaitVisible(`[data-testid="login-form"]`),
			chromedp.SendKeys(`[data-testid="login-email"]`, email),
			chromedp.SendKeys(`[data-testid="login-password"]`, webtest.Password),
			chromedp.Click(`[data-testid="login-submit"]`),
		}
	}
	ctxA := browser(t)
	step("A files an erasure", chromedp.Do(ctxA, append(append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(base + "/gdpr")}, signIn(a)...),
		chromedp.WaitVisible(`[data-testid="new-request-form"]`),
		chromedp.SetValue(`[data-testid="new-type"]`, gdpr.TypeErasure),
		chromedp.SendKeys(`[data-testid="new-requested-by"]`, "John Doe"),
		chromedp.SendKeys(`[data-testid="new-principal"]`, "john.doe"),
		chromedp.SendKeys(`[data-testid="new-identity"]`, "passport at the front desk"),
		chromedp.Click(`[data-testid="new-submit"]`),
		chromedp.WaitVisible(`[data-testid="gdpr-flash"]`),
		chromedp.Click(`[data-testid="request-link"]`),
		chromedp.WaitVisible(`[data-testid="step-start"]`),
		chromedp.Click(`[data-testid="step-start"]`),
		chromedp.WaitVisible(`[data-testid="step-request-erasure"]`),
		chromedp.Click(`[data-testid="step-request-erasure"]`),
		chromedp.WaitVisible(`[data-testid="step-request-erasure-confirm"]`),
		chromedp.Click(`[data-testid="step-request-erasure-confirm"]`),
		chromedp.WaitVisible(`[data-testid="approve-note"]`),
	)...))
	url, err := chromedp.Run(ctxA, chromedp.Location())
	step("the request's address", err)
	path := url[strings.Index(url, "/gdpr/requests/"):]
	if i := strings.Index(path, "?"); i > 0 {
		path = path[:i]
	}

	ctxB := browser(t)
	step("B approves", chromedp.Do(ctxB, append(append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(base + path)}, signIn(b)...),
		chromedp.WaitVisible(`[data-testid="step-approve"]`),
		chromedp.Click(`[data-testid="step-approve"]`),
		chromedp.WaitVisible(`[data-testid="step-approve-confirm"]`),
		chromedp.Click(`[data-testid="step-approve-confirm"]`),
		// The confirmation exists only on the page the approval redirects to.
		chromedp.WaitVisible(`[data-testid="gdpr-flash"]`),
	)...))
	done, err := chromedp.Run(ctxB, chromedp.Poll[bool](
		`!!document.querySelector('[data-testid="request-status"][data-status="completed"]')`,
		chromedp.WithPollingTimeout(30*time.Second)))
	step("the page shows the erasure completed", err)
	pseudonym, err := chromedp.Run(ctxB, chromedp.Text(`[data-testid="request-pseudonym"]`))
	step("read the pseudonym", err)
	pseudonym = strings.TrimSpace(pseudonym)
	if !done || pseudonym == "" || strings.Contains(pseudonym, john) {
		t.Fatalf("completed %v, pseudonym %q", done, pseudonym)
	}
	var left []struct{ Action, Principal string }
	if err := env.DB.Raw(`SELECT action, coalesce(principal_id, '') AS principal FROM audit_log
		WHERE organization_id = ? AND action NOT LIKE 'gdpr.%' ORDER BY action, principal_id`, org).Scan(&left).Error; err != nil {
		t.Fatal(err)
	}
	var kept, others int
	for _, e := range left {
		switch {
		case e.Principal == john:
			t.Fatalf("an event still names the erased subject: %+v", e)
		case e.Principal == pseudonym && e.Action == "auth.login.success":
			kept++
		case e.Principal == jane:
			others++
		}
	}
	if kept != 1 || others != 1 {
		t.Fatalf("after erasure: %d kept sign-ins under the pseudonym (want 1), %d of jane's events (want 1): %+v", kept, others, left)
	}
	r, err := env.Services.GDPR.List(t.Context(), org)
	if err != nil || len(r) != 1 || r[0].ApprovedBy != b || r[0].SubmittedBy != a || r[0].Status != gdpr.StatusCompleted {
		t.Fatalf("stored request %+v, %v", r, err)
	}
}
