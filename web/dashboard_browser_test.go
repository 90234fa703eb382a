package web_test

import (
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"auditdb/models"
	"auditdb/web/webtest"
)

// TestBrowserDashboard draws the dashboard of an organization with counted events in
// headless Chromium: the charts render with visible bars under the strict CSP, and the page
// fits a 390 px wide screen.
func TestBrowserDashboard(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("browser-dash")
	email := env.User(org, models.OwnerRole)
	now := time.Now().UTC()
	env.Events(models.Event{OrganizationID: org, Timestamp: now.Add(-time.Minute), Action: "order.create", Status: "success"})
	for i, n := range []int64{40, 10, 25} {
		if err := env.DB.Exec(`INSERT INTO event_counts_hourly (organization_id, hour, events, failures) VALUES (?, ?, ?, ?)`,
			org, now.Truncate(time.Hour).Add(-time.Duration(i*4)*time.Hour), n, n/5).Error; err != nil {
			t.Fatal(err)
		}
		if err := env.DB.Exec(`INSERT INTO event_counts_daily (organization_id, day, kind, value, events, failures) VALUES (?, ?, 'action', 'order.create', ?, ?)`,
			org, now.AddDate(0, 0, -i*7).Format("2006-01-02"), n, n/5).Error; err != nil {
			t.Fatal(err)
		}
	}
	base := serve(t, env)
	ctx := browser(t)
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	step("sign in", chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`[data-testid="login-form"]`),
		chromedp.SendKeys(`[data-testid="login-email"]`, email),
		chromedp.SendKeys(`[data-testid="login-password"]`, webtest.Password),
		chromedp.Click(`[data-testid="login-submit"]`),
		chromedp.WaitVisible(`[data-testid="chart-hourly-svg"]`),
	))
	tallest, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`Math.max(...[...document.querySelectorAll('[data-testid="chart-hourly-svg"] rect')].map(r => r.getBoundingClientRect().height))`))
	step("measure bars", err)
	if tallest < 20 {
		t.Fatalf("tallest hourly bar is %.1f px high, want a visible bar", tallest)
	}
	if shot := os.Getenv("AUDITDB_SCREENSHOT_DIR"); shot != "" {
		img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		step("screenshot", err)
		step("write screenshot", os.WriteFile(shot+"/dashboard.png", img, 0o644))
	}
	step("narrow screen", chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`[data-testid="chart-daily-svg"]`)))
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	step("measure width", err)
	if overflow {
		t.Fatal("the dashboard is wider than a 390 px screen")
	}
	if shot := os.Getenv("AUDITDB_SCREENSHOT_DIR"); shot != "" {
		img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		step("screenshot", err)
		step("write screenshot", os.WriteFile(shot+"/dashboard-narrow.png", img, 0o644))
	}
}
