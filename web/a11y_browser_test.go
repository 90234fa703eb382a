package web_test

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"auditdb/models"
	"auditdb/web/webtest"
)

// axeSource is axe-core 4.14 (MPL-2.0, Deque Systems), vendored so that a clean clone runs
// this test without npm; refresh it with `npm install --no-save axe-core@4` and a copy of
// node_modules/axe-core/axe.min.js.
//
//go:embed testdata/axe.min.js
var axeSource string

// consolePages are the console's pages, each checked as who may see it.
var consolePages = []struct{ path, as string }{
	{"/", "owner"},
	{"/events", "owner"},
	{"/events/:id", "owner"},
	{"/alerts", "owner"},
	{"/reports", "owner"},
	{"/retention", "owner"},
	{"/retention/policies/new", "owner"},
	{"/retention/holds", "owner"},
	{"/retention/partitions", "superadmin"},
	{"/gdpr", "owner"},
	{"/roles", "owner"},
	{"/roles/new", "owner"},
	{"/roles/org:owner", "owner"},
	{"/members", "owner"},
	{"/orgs", "superadmin"},
	{"/settings", "owner"},
	{"/settings/notifications", "owner"},
	{"/settings/apikeys", "owner"},
	{"/settings/presets", "owner"},
	{"/settings/presets/new", "owner"},
	{"/settings/alert-rules", "owner"},
	{"/settings/dead-letters", "owner"},
	{"/errors", "owner"},
	{"/account/password", "owner"},
	{"/login", ""},
}

// knownFailures are pages that fail a check today, by check ("axe" or "width") and path.
// The events list and event page are being rebuilt by the events part of issue 16 (the
// detail grid below xl, the focusable details box, the filter form at 390 px); remove an
// entry when its page passes — the test says so in its log.
var knownFailures = map[string]string{
	"axe /events/:id":   "issue 16, events part: the event details box is a scrollable region without focus",
	"width /events/:id": "issue 16, events part: the event detail grid has no column template below xl",
}

// axeViolations runs axe-core on the current page with the WCAG 2.1 A and AA rules and
// returns one line per violation: the rule and the first nodes it names.
func axeViolations() chromedp.Action[[]string] {
	return func(ctx context.Context, tg *chromedp.Target) ([]string, error) {
		if _, err := chromedp.Evaluate[any](axeSource+";null")(ctx, tg); err != nil {
			return nil, fmt.Errorf("load axe: %w", err)
		}
		raw, err := chromedp.Evaluate[string](`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
			.then(r => JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))))`,
			chromedp.EvalAwaitPromise)(ctx, tg)
		if err != nil {
			return nil, fmt.Errorf("run axe: %w", err)
		}
		var vs []struct {
			ID, Impact string
			Nodes      []string
		}
		if err := json.Unmarshal([]byte(raw), &vs); err != nil {
			return nil, err
		}
		var out []string
		for _, v := range vs {
			out = append(out, fmt.Sprintf("%s (%s) at %s", v.ID, v.Impact, strings.Join(v.Nodes, ", ")))
		}
		return out, nil
	}
}

// TestBrowserEveryPageAccessibleAndPhoneWide: every console page has no axe-core violation
// at WCAG 2.1 A/AA (at 1440 px), and at 390 px no page is wider than the screen (no
// sideways scrolling). axe runs at one width only: it takes seconds a page.
func TestBrowserEveryPageAccessibleAndPhoneWide(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("a11y")
	users := map[string]string{"owner": env.User(org, models.OwnerRole), "superadmin": env.User("", "")}
	now := time.Now().UTC()
	str := func(s string) *string { return &s }
	evs := env.Events(
		models.Event{OrganizationID: org, Timestamp: now.Add(-3 * time.Hour), Action: "patient.record.read", Status: "success",
			PrincipalID: str("dr.grey"), TargetResourceType: str("Patient"), TargetResourceID: str("pt-4711"), DataClassification: "PHI"},
		models.Event{OrganizationID: org, Timestamp: now.Add(-2 * time.Hour), Action: "auth.login.failure", Status: "failure",
			PrincipalID: str("mallory"), OutcomeDescription: str("Wrong password")},
	)
	env.APIKey(org, models.ScopeIngest)
	base := serve(t, env)

	for _, width := range []int64{1440, 390} {
		t.Run(fmt.Sprintf("%dpx", width), func(t *testing.T) {
			for _, as := range []string{"owner", "superadmin", ""} {
				// A browser per identity: each starts signed out.
				ctx := browserFor(t, 8*time.Minute)
				steps := []chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(width, 900)}
				if as != "" {
					steps = append(steps, signIn(base, users[as]))
				}
				if err := chromedp.Do(ctx, steps...); err != nil {
					t.Fatalf("sign in as %q: %v", as, err)
				}
				for _, p := range consolePages {
					if p.as == as {
						checkPage(t, ctx, base, p.path, evs[0].ID, width)
					}
				}
			}
		})
	}
}

// checkPage opens path and checks it with axe-core and, on a phone, its width.
func checkPage(t *testing.T, ctx context.Context, base, path string, eventID int64, width int64) {
	t.Helper()
	url := base + path
	if path == "/events/:id" {
		url = base + "/events/" + strconv.FormatInt(eventID, 10)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady(css("body"))); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	check := func(kind string, failed bool, detail string) {
		t.Helper()
		known, isKnown := knownFailures[kind+" "+path]
		switch {
		case failed && isKnown:
			t.Logf("%s %s: known failure (%s): %s", kind, path, known, detail)
		case failed:
			t.Errorf("%s %s at %d px: %s", kind, path, width, detail)
		case isKnown:
			t.Logf("%s %s passes now: remove it from knownFailures", kind, path)
		}
	}
	if width > 390 {
		violations, err := chromedp.Run(ctx, axeViolations())
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		check("axe", len(violations) > 0, strings.Join(violations, "; "))
	} else {
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		if err != nil {
			t.Fatal(err)
		}
		check("width", wide > int(width), fmt.Sprintf("the page is %d px wide on a %d px screen", wide, width))
	}
}
