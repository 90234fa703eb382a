package web_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"auditdb/models/demo"
	"auditdb/web/webtest"
)

// TestBrowserConsoleScreenshots draws the console's key pages for docs/console.md, at
// 1440 px and at a phone's 390 px, over the demo data set. It runs only when
// AUDITDB_SCREENSHOT_DIR names the directory to write the PNGs to:
//
//	AUDITDB_SCREENSHOT_DIR=$PWD/docs/img go test ./web -run TestBrowserConsoleScreenshots -count=1
func TestBrowserConsoleScreenshots(t *testing.T) {
	dir := os.Getenv("AUDITDB_SCREENSHOT_DIR")
	if dir == "" {
		t.Skip("set AUDITDB_SCREENSHOT_DIR to write the console's screenshots")
	}
	env := webtest.New(t)
	ctx0 := context.Background()
	res, err := demo.Seed(ctx0, env.DB, env.Sealer, env.Parts, demo.Options{Events: 3000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var email, password string
	for _, c := range res.Credentials {
		if c.OrgID == "acme-health" && c.Role == "org:admin" {
			email, password = c.Email, c.Password
		}
	}
	if email == "" {
		t.Fatalf("no demo admin of acme-health in %+v", res.Credentials)
	}
	env.Sequence()
	base := serve(t, env)
	ctx := browserFor(t, 3*time.Minute)
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	step("sign in", chromedp.Do(ctx, chromedp.EmulateViewport(1440, 900),
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(css(`[data-testid="login-email"]`)),
		chromedp.SendKeys(css(`[data-testid="login-email"]`), email),
		chromedp.SendKeys(css(`[data-testid="login-password"]`), password),
		chromedp.Click(css(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="user-email"]`)),
	))
	shot := func(name string, width, height int64, path string, then ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		steps := append([]chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(width, height),
			chromedp.Navigate(base + path), chromedp.WaitReady(css("body"))}, then...)
		steps = append(steps, chromedp.Sleep(700*time.Millisecond)) // htmx's second request (count, histogram, facets)
		step(name, chromedp.Do(ctx, steps...))
		img, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		step(name+" screenshot", err)
		step(name+" write", os.WriteFile(filepath.Join(dir, name+".png"), img, 0o644))
	}
	list := "/events?range=1y&q=" + "status%3Afailure"
	for _, w := range []struct {
		suffix        string
		width, height int64
	}{{"1440", 1440, 900}, {"390", 390, 844}} {
		shot("events-list-"+w.suffix, w.width, w.height, list)
		shot("events-panel-"+w.suffix, w.width, w.height, list,
			chromedp.Click(css(`[data-testid="event-link"]`)),
			chromedp.WaitVisible(css(`[data-testid="event-panel"] [data-testid="field-action"]`)))
		shot("events-query-panel-"+w.suffix, w.width, w.height, "/events?range=7d",
			chromedp.Click(css(`[data-testid="query-panel"] summary`)),
			chromedp.WaitVisible(css(`[data-testid="panel-action"]`)))
		shot("dashboard-"+w.suffix, w.width, w.height, "/")
	}
}
