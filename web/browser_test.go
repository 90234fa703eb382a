package web_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"auditdb/models"
	"auditdb/web/webtest"
)

// chromium returns the browser to drive: AUDITDB_CHROMIUM, else Debian's chromium on PATH.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("AUDITDB_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found: install Debian's chromium package or set AUDITDB_CHROMIUM")
	return ""
}

// browser starts a headless Chromium and returns its context, for 90 seconds of work.
func browser(t *testing.T) context.Context {
	t.Helper()
	return browserFor(t, 90*time.Second)
}

// browserFor is browser with a longer or shorter budget for the whole test's work.
func browserFor(t *testing.T, budget time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, budget)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// serve runs env's app on a loopback port and returns its base URL.
func serve(t *testing.T, env *webtest.Env) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go env.App.Listener(ln)
	t.Cleanup(func() { env.App.Shutdown() })
	return "http://" + ln.Addr().String()
}

func TestBrowserLoginFilterAndOpenEvent(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("browser")
	email := env.User(org, "org:member")
	now := time.Now().UTC()
	str := func(s string) *string { return &s }
	env.Events(
		models.Event{OrganizationID: org, Timestamp: now.Add(-3 * time.Hour), Action: "patient.record.read", Status: "success",
			PrincipalID: str("dr.grey"), TargetResourceType: str("Patient"), TargetResourceID: str("pt-4711"),
			OutcomeDescription: str("Viewed <b>allergies</b>"), DataClassification: "PHI"},
		models.Event{OrganizationID: org, Timestamp: now.Add(-2 * time.Hour), Action: "auth.login.failure", Status: "failure",
			PrincipalID: str("mallory"), OutcomeDescription: str("Wrong password")},
		models.Event{OrganizationID: org, Timestamp: now.Add(-1 * time.Hour), Action: "order.create", Status: "success",
			PrincipalID: str("dr.grey"), TargetResourceType: str("MedicationRequest"), TargetResourceID: str("mr-9")},
	)
	base := serve(t, env)
	ctx := browser(t)

	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	rows := func() int {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="event-row"]').length`))
		step("count rows", err)
		return n
	}

	// Not signed in: the console sends us to the sign-in page.
	step("sign in", chromedp.Do(ctx,
		chromedp.Navigate(base+"/events"),
		chromedp.WaitVisible(`[data-testid="login-form"]`),
		chromedp.SendKeys(`[data-testid="login-email"]`, email),
		chromedp.SendKeys(`[data-testid="login-password"]`, webtest.Password),
		chromedp.Click(`[data-testid="login-submit"]`),
		chromedp.WaitVisible(`[data-testid="events-table"]`),
	))
	rowsBefore := rows()

	// Search by status: htmx swaps the results and pushes the query into the URL.
	step("filter", chromedp.Do(ctx,
		chromedp.SendKeys(`[data-testid="filter-q"]`, "status:failure"),
	))
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelectorAll('[data-testid="event-row"]').length === 1 && location.search.includes("status%3Afailure")`,
		chromedp.WithPollingTimeout(10*time.Second)))
	step("wait for the filtered rows", err)
	rowsAfter := rows()
	location, err := chromedp.Run(ctx, chromedp.Location())
	step("location", err)

	// Open the remaining event: its full page.
	step("open event", chromedp.Do(ctx,
		chromedp.Navigate(base+"/events/"+strings.TrimPrefix(mustAttr(ctx, t, `[data-testid="event-link"]`, "href"), "/events/")),
		chromedp.WaitVisible(`[data-testid="field-action"]`),
	))
	action, err := chromedp.Run(ctx, chromedp.Text(`[data-testid="field-action"]`))
	step("read action", err)

	// The PHI event: markup in its data must stay text.
	step("open PHI event", chromedp.Do(ctx,
		chromedp.Navigate(base+"/events?principal=dr.grey&action=patient.record.read"),
		chromedp.WaitVisible(`[data-testid="event-link"]`),
	))
	step("open PHI event page", chromedp.Do(ctx,
		chromedp.Navigate(base+mustAttr(ctx, t, `[data-testid="event-link"]`, "href")),
		chromedp.WaitVisible(`[data-testid="field-outcome"]`),
	))
	outcome, err := chromedp.Run(ctx, chromedp.Text(`[data-testid="field-outcome"]`))
	step("read outcome", err)

	// A bad filter value shows the error naming the field.
	step("bad filter", chromedp.Do(ctx,
		chromedp.Navigate(base+"/events?classification=TOPSECRET"),
		chromedp.WaitVisible(`[data-testid="events-error"]`),
	))
	errorText, err := chromedp.Run(ctx, chromedp.Text(`[data-testid="events-error"]`))
	step("read error", err)
	if shot := os.Getenv("AUDITDB_SCREENSHOT_DIR"); shot != "" {
		// Optional: keep a picture of the list for a person to look at.
		step("navigate for screenshot", chromedp.Do(ctx, chromedp.Navigate(base+"/events")))
		img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		step("screenshot", err)
		step("write screenshot", os.WriteFile(shot+"/events.png", img, 0o644))
	}

	// Signing in is itself audited: the list also holds this user's auth.login.success.
	if rowsBefore != 4 || rowsAfter != 1 {
		t.Fatalf("rows before/after filtering = %d/%d, want 4/1", rowsBefore, rowsAfter)
	}
	if !strings.Contains(location, "status%3Afailure") {
		t.Fatalf("URL %q does not carry the filter", location)
	}
	if strings.TrimSpace(action) != "auth.login.failure" {
		t.Fatalf("opened event action = %q", action)
	}
	if strings.TrimSpace(outcome) != "Viewed <b>allergies</b>" {
		t.Fatalf("outcome = %q, want the literal text", outcome)
	}
	if !strings.Contains(errorText, "classification") {
		t.Fatalf("error page %q does not name the field", errorText)
	}
}

// mustAttr reads an attribute of the first element matching sel.
func mustAttr(ctx context.Context, t *testing.T, sel, name string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('`+sel+`').getAttribute('`+name+`')`))
	if err != nil {
		t.Fatalf("read %s of %s: %v", name, sel, err)
	}
	return v
}

func TestBrowserAcknowledgeAndResolveAlert(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("browseral")
	email := env.User(org, "org:admin")
	bg := context.Background()
	id, err := env.Services.Alerts.Raise(bg, models.NewAlert{Org: org, Severity: "CRITICAL", Type: "SECURITY",
		Title: "Unauthorized access attempts", Description: "3 denied requests by mallory", Source: "detection"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Services.Alerts.Raise(bg, models.NewAlert{Org: org, Severity: "LOW", Type: "COMPLIANCE",
		Title: "Data access off hours", Source: "detection"}); err != nil {
		t.Fatal(err)
	}
	base := serve(t, env)
	ctx := browser(t)
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	row := `tr[data-alert-id="` + id + `"] `
	stateIs := func(state string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](`(document.querySelector('`+row+`[data-testid="alert-state"]') || {}).textContent === '`+state+`'`,
			chromedp.WithPollingTimeout(10*time.Second)))
		step("wait for "+state, err)
	}

	step("sign in to the alerts", chromedp.Do(ctx,
		chromedp.Navigate(base+"/alerts"),
		chromedp.WaitVisible(`[data-testid="login-form"]`),
		chromedp.SendKeys(`[data-testid="login-email"]`, email),
		chromedp.SendKeys(`[data-testid="login-password"]`, webtest.Password),
		chromedp.Click(`[data-testid="login-submit"]`),
		chromedp.WaitVisible(`[data-testid="alerts-table"]`),
	))
	badge, err := chromedp.Run(ctx, chromedp.Text(`[data-testid="nav-alerts-count"]`))
	step("read the navigation count", err)

	// Acknowledge inline: htmx swaps the row.
	step("acknowledge", chromedp.Do(ctx, chromedp.Click(row+`[data-testid="alert-acknowledge"]`)))
	stateIs("acknowledged")

	// Resolve with notes from the same row.
	step("resolve", chromedp.Do(ctx,
		chromedp.Click(row+`[data-testid="alert-resolve-open"]`),
		chromedp.WaitVisible(row+`[data-testid="alert-notes"]`),
		chromedp.SendKeys(row+`[data-testid="alert-notes"]`, "Blocked the account; the requests were a misconfigured script."),
		chromedp.Click(row+`[data-testid="alert-resolve"]`),
	))
	stateIs("resolved")

	// The alert's page tells the story.
	step("open the alert", chromedp.Do(ctx,
		chromedp.Navigate(base+"/alerts/"+id),
		chromedp.WaitVisible(`[data-testid="timeline-resolved"]`),
	))
	timeline, err := chromedp.Run(ctx, chromedp.Text(`[data-testid="alert-timeline"]`))
	step("read the timeline", err)
	badgeAfter, err := chromedp.Run(ctx, chromedp.Text(`[data-testid="nav-alerts-count"]`))
	step("read the navigation count again", err)

	a, err := env.Services.Alerts.Get(bg, org, id)
	step("read the alert", err)
	if !a.Acknowledged || !a.Resolved || a.ResolvedBy != email || !strings.HasPrefix(a.ResolutionNotes, "Blocked the account") {
		t.Fatalf("alert after the browser: %+v", a)
	}
	if !strings.Contains(timeline, "Acknowledged by "+email) || !strings.Contains(timeline, "misconfigured script") {
		t.Fatalf("timeline %q", timeline)
	}
	if !strings.HasPrefix(strings.TrimSpace(badge), "2") || !strings.HasPrefix(strings.TrimSpace(badgeAfter), "1") {
		t.Fatalf("navigation count %q then %q, want 2 then 1", badge, badgeAfter)
	}
}

// The archive browser: from the retention page to an archive, its events paged and filtered
// with htmx, decompressed on the fly.
func TestBrowserArchiveBrowser(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("browserarch")
	email := env.User(org, models.OwnerRole)
	month := models.MonthStart(time.Now().UTC().AddDate(0, -14, 0))
	evs := make([]models.Event, 60)
	for i := range evs {
		status := "success"
		if i%3 == 0 {
			status = "failure"
		}
		evs[i] = models.Event{OrganizationID: org, Timestamp: month.Add(24*time.Hour + time.Duration(i)*time.Minute),
			Action: "record.read", Status: status}
	}
	env.Events(evs...)
	env.Sequence()
	res, err := env.Services.Retention.Run(context.Background(), models.RetentionOptions{Org: org})
	if err != nil || res.Archived != 60 {
		t.Fatalf("retention run: %+v %v", res, err)
	}
	base := serve(t, env)
	ctx := browser(t)
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	waitRows := func(what, cond string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelectorAll('[data-testid="archive-event"]').length === `+cond,
			chromedp.WithPollingTimeout(10*time.Second)))
		step(what, err)
	}

	step("sign in to retention", chromedp.Do(ctx,
		chromedp.Navigate(base+"/retention"),
		chromedp.WaitVisible(`[data-testid="login-form"]`),
		chromedp.SendKeys(`[data-testid="login-email"]`, email),
		chromedp.SendKeys(`[data-testid="login-password"]`, webtest.Password),
		chromedp.Click(`[data-testid="login-submit"]`),
		chromedp.WaitVisible(`[data-testid="archives-link"]`),
	))
	step("open the archives", chromedp.Do(ctx,
		chromedp.Click(`[data-testid="archives-link"]`),
		chromedp.WaitVisible(`[data-testid="archive-link"]`),
		chromedp.Click(`[data-testid="archive-link"]`),
		chromedp.WaitVisible(`[data-testid="archive-events"]`),
	))
	waitRows("first page", "50")
	count, err := chromedp.Run(ctx, chromedp.Text(`[data-testid="meta-count"]`))
	step("read the count", err)

	step("next page", chromedp.Do(ctx, chromedp.Click(`[data-testid="page-next"]`)))
	waitRows("second page", "10 && location.search.includes('after=')")

	step("filter", chromedp.Do(ctx,
		chromedp.SetValue(`[data-testid="filter-q"]`, "status:failure"),
		func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Evaluate[any](`document.querySelector('[data-testid="filter-q"]').dispatchEvent(new Event('input', {bubbles: true})), null`)(ctx, tg)
			return chromedp.Void{}, err
		},
	))
	waitRows("filtered rows", "20 && decodeURIComponent(location.search.replace(/\\+/g, ' ')).includes('q=status:failure')")
	if strings.TrimSpace(count) != "60" {
		t.Fatalf("the archive's metadata says %q events", count)
	}
}
