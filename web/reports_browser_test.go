package web_test

import (
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"auditdb/models"
	"auditdb/models/reports"
	"auditdb/web/webtest"
)

// A member runs a report from /reports, watches its page poll until it completes, and
// downloads its CSV through the signed link.
func TestBrowserRunAndDownloadReport(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("browserrep")
	email := env.User(org, "org:member")
	now := time.Now().UTC()
	str := func(s string) *string { return &s }
	env.Events(
		models.Event{OrganizationID: org, Timestamp: now.Add(-3 * time.Hour), Action: "patient.record.read", Status: "success",
			PrincipalID: str("dr.grey"), TargetResourceType: str("Patient"), TargetResourceID: str("pt-4711"),
			OutcomeDescription: str("=1+1 Viewed <b>allergies</b> שלום 😀"), DataClassification: "PHI"},
		models.Event{OrganizationID: org, Timestamp: now.Add(-2 * time.Hour), Action: "auth.login.failure", Status: "failure",
			PrincipalID: str("mallory"), OutcomeDescription: str("Wrong password")},
	)
	base := serve(t, env)
	ctx := browser(t)
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	step("sign in and run", chromedp.Do(ctx,
		chromedp.Navigate(base+"/reports"),
		chromedp.WaitVisible(`[data-testid="login-form"]`),
		chromedp.SendKeys(`[data-testid="login-email"]`, email),
		chromedp.SendKeys(`[data-testid="login-password"]`, webtest.Password),
		chromedp.Click(`[data-testid="login-submit"]`),
		chromedp.WaitVisible(`[data-testid="run-form"]`),
		chromedp.SetValue(`[data-testid="run-type"]`, "GENERAL_COMPLIANCE"),
		chromedp.Click(`[data-testid="run-submit"]`),
		chromedp.WaitVisible(`[data-testid="execution-panel"]`),
	))
	// The page polls (htmx) until the execution completes and its files appear.
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`!!document.querySelector('[data-testid="file-csv"]')`,
		chromedp.WithPollingTimeout(30*time.Second)))
	step("wait for the files", err)
	status, err := chromedp.Run(ctx, chromedp.Text(`[data-testid="execution-status"]`))
	step("read the status", err)
	if strings.TrimSpace(status) != "completed" {
		t.Fatalf("status = %q", status)
	}
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`fetch(document.querySelector('[data-testid="file-csv"]').href).then(r => r.ok ? r.text() : "HTTP " + r.status)`,
		chromedp.EvalAwaitPromise))
	step("download the csv", err)
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	// The header and the two events; the member's self-audited sign-in also counts when its
	// second falls inside the report's period, which ends when the run starts.
	if err != nil || len(recs) < 3 || len(recs) > 4 || !strings.Contains(body, "pt-4711") || !strings.Contains(body, "mallory") {
		t.Fatalf("downloaded csv: %d rows, %v\n%s", len(recs), err, body)
	}
	if !strings.Contains(body, "'=1+1 Viewed <b>allergies</b> שלום 😀") {
		t.Errorf("the csv lacks the neutralized outcome:\n%s", body)
	}
	var downloads int64
	env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = 'report.download'`, org).Scan(&downloads)
	if downloads != 1 {
		t.Errorf("report.download events = %d, want 1", downloads)
	}
}

// An owner edits a template in the browser: the edit page names the schedule that runs it,
// the change is saved and confirmed.
func TestBrowserEditReportTemplate(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("browsertpl")
	email := env.User(org, models.OwnerRole)
	ctx0 := context.Background()
	by := models.SystemActor("test")
	tpl, err := env.Services.Reports.SaveTemplate(ctx0, org, "", reports.TemplateInput{Name: "Weekly PHI", Type: reports.TypeHIPAA,
		PeriodDays: 7, Formats: []string{"csv"}}, by)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Services.Reports.SaveSchedule(ctx0, org, "", reports.ScheduleInput{Name: "Mondays", TemplateID: tpl.ID, Enabled: true,
		Schedule: reports.Schedule{Frequency: "weekly", Weekday: "monday", Time: "06:00", TimeZone: "Europe/Berlin"}}, by); err != nil {
		t.Fatal(err)
	}
	base := serve(t, env)
	ctx := browser(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/reports"),
		chromedp.WaitVisible(`[data-testid="login-form"]`),
		chromedp.SendKeys(`[data-testid="login-email"]`, email),
		chromedp.SendKeys(`[data-testid="login-password"]`, webtest.Password),
		chromedp.Click(`[data-testid="login-submit"]`),
		chromedp.WaitVisible(`[data-testid="template-edit"]`),
		chromedp.Click(`[data-testid="template-edit"]`),
		chromedp.WaitVisible(`[data-testid="template-edit-form"]`),
	); err != nil {
		t.Fatal(err)
	}
	used, err := chromedp.Run(ctx, chromedp.Text(`[data-testid="template-used-by"]`))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SetValue(`[data-testid="template-days"]`, "14"),
		chromedp.Click(`[data-testid="template-update"]`),
		chromedp.WaitVisible(`[data-testid="reports-flash"]`),
	); err != nil {
		t.Fatal(err)
	}
	flash, err := chromedp.Run(ctx, chromedp.Text(`[data-testid="reports-flash"]`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(used, "Mondays") || !strings.Contains(flash, "updated") {
		t.Fatalf("used by %q, flash %q", used, flash)
	}
	got, err := env.Services.Reports.Template(ctx0, org, tpl.ID)
	if err != nil || got.PeriodDays != 14 {
		t.Fatalf("template after the edit: %+v, %v", got, err)
	}
}
