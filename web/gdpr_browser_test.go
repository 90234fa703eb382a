package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"auditdb/models"
	"auditdb/models/gdpr"
	"auditdb/models/gdpr/gdprtest"
	"auditdb/web/webtest"
)

// browserErasureEngine is the erasure engine behind TestBrowserGDPRErasureFourEyes: a
// fake on this branch (switch: build the real erasure engine over env's database once it
// is wired, and assert on the events it erased).
func browserErasureEngine() gdpr.Engine {
	return &gdprtest.Engine{Events: 4, Pseudonym: "psn_browser"}
}

// One holder of audit.gdpr files an erasure and requests it; a second approves it in
// their own browser; the page polls until the erasure has completed.
func TestBrowserGDPRErasureFourEyes(t *testing.T) {
	env := webtest.New(t, webtest.Options{GDPREngine: browserErasureEngine()})
	org := env.Org("browsergdpr")
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
	if !done || strings.TrimSpace(pseudonym) != "psn_browser" {
		t.Fatalf("completed %v, pseudonym %q", done, pseudonym)
	}
	r, err := env.Services.GDPR.List(t.Context(), org)
	if err != nil || len(r) != 1 || r[0].ApprovedBy != b || r[0].SubmittedBy != a || r[0].Status != gdpr.StatusCompleted {
		t.Fatalf("stored request %+v, %v", r, err)
	}
}
