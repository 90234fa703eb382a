package web_test

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"auditdb/models"
	"auditdb/models/gdpr"
	"auditdb/models/reports"
	"auditdb/web/webtest"
)

// axeSource is axe-core 4.14 (MPL-2.0, Deque Systems), vendored so that a clean clone runs
// this test without npm; refresh it with `npm install --no-save axe-core@4` and a copy of
// node_modules/axe-core/axe.min.js.
//
//go:embed testdata/axe.min.js
var axeSource string

// consolePages are the console's pages, each checked as who may see it ("" is signed out).
var consolePages = []struct{ path, as string }{
	{"/login", ""},
	{"/", "owner"},
	{"/events", "owner"},
	{"/events/:id", "owner"},
	{"/events/views", "owner"},
	{"/alerts", "owner"},
	{"/reports", "owner"},
	{"/reports/templates/:id", "owner"},
	{"/reports/schedules/:id", "owner"},
	{"/retention", "owner"},
	{"/retention/policies/new", "owner"},
	{"/retention/holds", "owner"},
	{"/gdpr", "owner"},
	{"/gdpr/requests/:gdpr", "owner"},
	{"/gdpr/lookup", "owner"},
	{"/roles", "owner"},
	{"/roles/new", "owner"},
	{"/roles/org:owner", "owner"},
	{"/members", "owner"},
	{"/settings", "owner"},
	{"/settings/notifications", "owner"},
	{"/settings/apikeys", "owner"},
	{"/settings/presets", "owner"},
	{"/settings/presets/new", "owner"},
	{"/settings/alert-rules", "owner"},
	{"/settings/dead-letters", "owner"},
	{"/errors", "owner"},
	{"/account", "owner"},
	{"/account/password", "owner"},
	{"/retention/partitions", "superadmin"},
	{"/orgs", "superadmin"},
}

// knownFailures are pages that fail a check today, by check ("axe" or "width") and path.
// An entry names its reason (e.g. "issue 16, events part: …" for the events pages being
// rebuilt); remove it when its page passes — the test says so in its log.
var knownFailures = map[string]string{}

// axeStepBudget bounds each call into the page (loading axe, one axe.run), so a stalled
// renderer fails the page it is on instead of hanging the test.
const axeStepBudget = 30 * time.Second

// axeViolations loads axe-core into the current page (once: a page that has it keeps it)
// and runs it with the WCAG 2.1 A and AA rules, returning one line per violation: the rule
// and the first nodes it names.
func axeViolations(ctx context.Context) ([]string, error) {
	loadCtx, cancel := context.WithTimeout(ctx, axeStepBudget)
	defer cancel()
	loaded, err := chromedp.Run(loadCtx, chromedp.Evaluate[bool](`typeof window.axe === "object"`))
	if err != nil {
		return nil, fmt.Errorf("probe axe: %w", err)
	}
	if !loaded {
		// The source is evaluated as a script of its own (it defines window.axe), not
		// fetched by the page: the console's CSP allows no foreign script.
		if _, err := chromedp.Run(loadCtx, chromedp.Evaluate[any](axeSource+";\nnull")); err != nil {
			return nil, fmt.Errorf("load axe: %w", err)
		}
	}
	runCtx, cancelRun := context.WithTimeout(ctx, axeStepBudget)
	defer cancelRun()
	raw, err := chromedp.Run(runCtx, chromedp.Evaluate[string](`axe.run(document, {
			runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
			resultTypes: ["violations"]
		}).then(r => JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact,
			nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))))`,
		chromedp.EvalAwaitPromise))
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

// TestBrowserEveryPageAccessibleAndPhoneWide: every console page has no axe-core violation
// at WCAG 2.1 A/AA (at 1440 px), and at 390 px no page is wider than the screen (no
// sideways scrolling). One browser visits every page once, signed out, then as an owner,
// then as a superadmin.
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
	// An erasure at work, so its page shows its steps (and its history) to the owner.
	req, err := env.Services.GDPR.Create(t.Context(), org, gdpr.Input{Type: gdpr.TypeErasure,
		Subject: gdpr.Subject{PrincipalID: "dr.grey"}, IdentityCheck: "passport", RequestedBy: "Dr Grey"}, models.SystemActor("a11y"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Services.GDPR.Start(t.Context(), org, req.ID, models.SystemActor("a11y")); err != nil {
		t.Fatal(err)
	}
	tpl, err := env.Services.Reports.SaveTemplate(context.Background(), org, "", reports.TemplateInput{Name: "Weekly PHI",
		Type: reports.TypeHIPAA, PeriodDays: 7, Formats: []string{"csv"}}, models.SystemActor("test"))
	if err != nil {
		t.Fatal(err)
	}
	sch, err := env.Services.Reports.SaveSchedule(context.Background(), org, "", reports.ScheduleInput{Name: "Mondays", TemplateID: tpl.ID,
		Enabled: true, Schedule: reports.Schedule{Frequency: "weekly", Weekday: "monday", Time: "06:00", TimeZone: "UTC"}},
		models.SystemActor("test"))
	if err != nil {
		t.Fatal(err)
	}
	owner := models.Actor{UserID: env.UserID(users["owner"]), Email: users["owner"]}
	if _, err := env.Services.SavedViews.Create(context.Background(), org,
		models.SavedViewInput{Name: "Failed logins this week", Query: "q=status%3Afailure&range=7d", Shared: true}, owner); err != nil {
		t.Fatal(err)
	}
	base := serve(t, env)

	ctx := browserFor(t, 4*time.Minute)
	signedInAs := ""
	for _, p := range consolePages {
		if p.as != signedInAs {
			var steps []chromedp.Action[chromedp.Void]
			if signedInAs != "" {
				steps = append(steps, chromedp.EmulateViewport(1440, 900),
					chromedp.Click(css(`[data-testid="account-menu-button"]`)),
					chromedp.Click(css(`[data-testid="logout"]`)),
					chromedp.WaitVisible(css(`[data-testid="login-form"]`)))
			}
			steps = append(steps, chromedp.EmulateViewport(1440, 900), signIn(base, users[p.as]))
			if err := chromedp.Do(ctx, steps...); err != nil {
				t.Fatalf("sign in as %s: %v", p.as, err)
			}
			signedInAs = p.as
		}
		checkPage(t, ctx, base, strings.Replace(p.path, ":gdpr", req.ID, 1), evs[0].ID, map[string]string{"/reports/templates/:id": "/reports/templates/" + tpl.ID,
			"/reports/schedules/:id": "/reports/schedules/" + sch.ID})
	}
}

// checkPage opens path at 1440 px, checks it with axe-core, then narrows the viewport to
// 390 px and checks that the page is no wider than that.
func checkPage(t *testing.T, ctx context.Context, base, path string, eventID int64, paths map[string]string) {
	t.Helper()
	url := base + path
	if path == "/events/:id" {
		url = base + "/events/" + strconv.FormatInt(eventID, 10)
	}
	if p, ok := paths[path]; ok {
		url = base + p
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1440, 900), chromedp.Navigate(url), chromedp.WaitReady(css("body"))); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	check := func(kind string, failed bool, detail string) {
		t.Helper()
		known, isKnown := knownFailures[kind+" "+path]
		switch {
		case failed && isKnown:
			t.Logf("%s %s: known failure (%s): %s", kind, path, known, detail)
		case failed:
			t.Errorf("%s %s: %s", kind, path, detail)
		case isKnown:
			t.Logf("%s %s passes now: remove it from knownFailures", kind, path)
		}
	}
	start := time.Now()
	violations, err := axeViolations(ctx)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		t.Errorf("axe %s: no answer within %s: %v", path, axeStepBudget, err)
	} else if err != nil {
		t.Fatalf("axe %s: %v", path, err)
	} else {
		check("axe", len(violations) > 0, strings.Join(violations, "; "))
	}
	t.Logf("axe %s: %d violations in %s", path, len(violations), time.Since(start).Round(time.Millisecond))

	const phone = 390
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(phone, 844)); err != nil {
		t.Fatalf("width %s: %v", path, err)
	}
	wide, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil {
		t.Fatalf("width %s: %v", path, err)
	}
	detail := fmt.Sprintf("the page is %d px wide on a %d px screen", wide, phone)
	if wide > phone {
		// Name the outermost elements that stick out, to say where to look.
		culprits, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("body *"))
			.filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 &&
				!(e.parentElement && e.parentElement.getBoundingClientRect().right > window.innerWidth + 1))
			.slice(0, 5)
			.map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
				(e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\s+/).join(".") : "") +
				" (right edge " + Math.round(e.getBoundingClientRect().right) + " px)")`))
		if err == nil && len(culprits) > 0 {
			detail += "; sticking out: " + strings.Join(culprits, ", ")
		}
	}
	check("width", wide > phone, detail)
}
