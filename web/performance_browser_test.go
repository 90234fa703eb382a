package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"auditdb/models"
	"auditdb/web/webtest"
)

// TestBrowserPerformance drives /performance in headless Chromium. A superadmin sees the
// slow statements or, without pg_stat_statements, how to enable it; the 24-hour charts
// draw their lines under the strict CSP; a named query's plan opens; VACUUM ANALYZE runs
// only once the table's name is typed exactly, and says so. An organization's admin sees
// its own organization's part (health and its dashboard's plans), none of the database's,
// and another organization's figures are not found.
func TestBrowserPerformance(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("browser-perf"), env.Org("browser-perf-other")
	rootEmail := env.User("", "")
	adminEmail := env.User(org, "org:admin")
	now := time.Now().UTC()
	for i := range 6 {
		if _, err := env.Services.Perf.SaveSnapshot(t.Context(), models.SnapshotSlot(now.Add(-time.Duration(i)*time.Hour)), time.Millisecond,
			models.PerfFigures{IngestPerSec: float64(10 + 5*i), SequencerLagSec: float64(i), Cache: models.CacheFigures{Reads: 10, Ratio: 0.5 + 0.05*float64(i)},
				Latency: map[string]models.Quantiles{"/events": {P50: 3, P95: float64(9 + i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	base := serve(t, env)
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// The superadmin.
	ctx := browser(t)
	step("superadmin signs in", chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(`[data-testid="login-form"]`),
		chromedp.SendKeys(`[data-testid="login-email"]`, rootEmail),
		chromedp.SendKeys(`[data-testid="login-password"]`, webtest.Password),
		chromedp.Click(`[data-testid="login-submit"]`),
		chromedp.WaitNotPresent(`[data-testid="login-form"]`),
		chromedp.Navigate(base+"/performance?org="+org),
		chromedp.WaitVisible(`[data-testid="perf-health-overall"]`),
	))
	slow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector('[data-testid="perf-slow-row"], [data-testid="perf-slow-none"]') ||
		(document.querySelector('[data-testid="perf-slow-missing"]')?.textContent || '').includes('shared_preload_libraries')`))
	step("read the slow statements", err)
	if !slow {
		t.Fatal("the page shows neither slow statements nor how to enable pg_stat_statements")
	}
	for _, chart := range []string{"perf-24h-ingest-svg", "perf-24h-cache-svg", "perf-24h-lag-svg", "perf-24h-latency-svg"} {
		width, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`Math.max(0, ...[...document.querySelectorAll('[data-testid="`+chart+`"] polyline')].map(l => l.getBoundingClientRect().width))`))
		step("measure "+chart, err)
		if width < 50 {
			t.Errorf("%s: widest line %.1f px, want a drawn line", chart, width)
		}
	}

	// A named query's plan.
	step("explain", chromedp.Do(ctx,
		chromedp.Click(`[data-testid="perf-explain-hours"]`),
		chromedp.WaitVisible(`[data-testid="perf-explain-plan"]`),
	))
	plan, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="perf-explain-plan"]').textContent`))
	step("read the plan", err)
	if !strings.Contains(plan, "Execution Time") {
		t.Fatalf("the plan lacks its execution time: %.200q", plan)
	}

	// VACUUM ANALYZE: choose, mistype (refused, nothing done), then type it right.
	// Other tests of the package may have recorded maintenance before this one: count from here.
	var recordedBefore int64
	env.DB.Raw(`SELECT count(*) FROM audit_log WHERE action = ?`, models.ActionPerfVacuum).Scan(&recordedBefore)
	audited := func() int64 {
		var n int64
		env.DB.Raw(`SELECT count(*) FROM audit_log WHERE action = ?`, models.ActionPerfVacuum).Scan(&n)
		return n - recordedBefore
	}
	step("choose a table", chromedp.Do(ctx,
		chromedp.Navigate(base+"/performance"),
		chromedp.WaitVisible(`[data-testid="perf-vacuum-choose"]`),
		chromedp.SetValue(`[data-testid="perf-vacuum-table"]`, "alerts"),
		chromedp.Submit(`[data-testid="perf-vacuum-choose"]`),
		chromedp.WaitVisible(`[data-testid="perf-vacuum-form"]`),
		chromedp.SendKeys(`[data-testid="perf-vacuum-confirm"]`, "alert"),
		chromedp.Click(`[data-testid="perf-vacuum-submit"]`),
		chromedp.WaitVisible(`[data-testid="form-error"]`),
	))
	if n := audited(); n != 0 {
		t.Fatalf("a mistyped confirmation ran the maintenance (%d recorded)", n)
	}
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.querySelector('[data-testid="perf-vacuum-confirm"]').value = '') === ''`))
	step("clear the confirmation", err)
	step("confirm", chromedp.Do(ctx,
		chromedp.SendKeys(`[data-testid="perf-vacuum-confirm"]`, "alerts"),
		chromedp.Click(`[data-testid="perf-vacuum-submit"]`),
		chromedp.WaitVisible(`[data-testid="performance-flash"]`),
	))
	flash, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="performance-flash"]').textContent`))
	step("read the flash", err)
	if !strings.Contains(flash, "VACUUM ANALYZE of alerts done") || audited() != 1 {
		t.Fatalf("after the confirmed VACUUM: flash %q, %d recorded; want the confirmation and 1", flash, audited())
	}

	// The organization's admin.
	actx := browser(t)
	step("admin signs in", chromedp.Do(actx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(`[data-testid="login-form"]`),
		chromedp.SendKeys(`[data-testid="login-email"]`, adminEmail),
		chromedp.SendKeys(`[data-testid="login-password"]`, webtest.Password),
		chromedp.Click(`[data-testid="login-submit"]`),
		chromedp.WaitNotPresent(`[data-testid="login-form"]`),
		chromedp.Navigate(base+"/performance"),
		chromedp.WaitVisible(`[data-testid="perf-health"]`),
	))
	for _, id := range []string{"perf-explain-hours"} {
		n, err := chromedp.Run(actx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="`+id+`"]').length`))
		step("look for "+id, err)
		if n != 1 {
			t.Errorf("the admin's page lacks %s", id)
		}
	}
	for _, id := range []string{"perf-tables", "perf-slow", "perf-pool", "perf-cache", "perf-charts", "perf-vacuum-choose", "perf-indexes"} {
		n, err := chromedp.Run(actx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="`+id+`"]').length`))
		step("look for "+id, err)
		if n != 0 {
			t.Errorf("the admin sees the database's %s", id)
		}
	}
	step("another organization's figures", chromedp.Do(actx, chromedp.Navigate(base+"/performance?org="+other)))
	text, err := chromedp.Run(actx, chromedp.Evaluate[string](`document.body.innerText`))
	step("read the page", err)
	if strings.Contains(text, "Query plans of") || !strings.Contains(strings.ToLower(text), "not found") {
		t.Fatalf("another organization's performance page: %.300q, want not found", text)
	}
}
