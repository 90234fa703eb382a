package handlers_test

import (
	"context"
	"encoding/csv"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/reports"
	"auditdb/web/webtest"
)

func TestReportsPages(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("rep"), env.Org("rep-other")
	owner := env.Login(env.User(org, models.OwnerRole))
	member := env.Login(env.User(org, "org:member"))
	otherOwner := env.Login(env.User(other, models.OwnerRole))
	now := time.Now().UTC()
	outcome := `=cmd|' /C calc'!A0 <script>x</script> שלום 😀`
	env.Events(
		models.Event{OrganizationID: org, Timestamp: now.Add(-2 * time.Hour), Action: "data.read", Status: "success",
			DataClassification: "PHI", RetentionPolicy: "standard", OutcomeDescription: &outcome},
		models.Event{OrganizationID: org, Timestamp: now.Add(-time.Hour), Action: "data.read", Status: "failure",
			DataClassification: "PHI", RetentionPolicy: "standard"},
		models.Event{OrganizationID: other, Timestamp: now.Add(-time.Hour), Action: "data.read", Status: "success",
			DataClassification: "PHI", RetentionPolicy: "standard"},
	)

	page := owner.Get("/reports")
	if page.StatusCode != 200 || !strings.Contains(page.Body, `data-testid="run-form"`) ||
		!strings.Contains(page.Body, `data-testid="template-form"`) || !strings.Contains(page.Body, `data-testid="executions-empty"`) {
		t.Fatalf("reports page: %d", page.StatusCode)
	}
	if r := member.Get("/reports"); r.StatusCode != 200 || strings.Contains(r.Body, `data-testid="template-form"`) ||
		!strings.Contains(r.Body, `data-testid="run-form"`) {
		t.Fatalf("a member may run reports but not create templates: %d", r.StatusCode)
	}

	run := func(key, value string) url.Values {
		v := url.Values{"type": {"HIPAA_AUDIT_TRAIL"}, "from": {now.AddDate(0, 0, -1).Format("2006-01-02")}, "to": {""},
			"formats": {"csv", "pdf"}}
		if key != "" {
			v.Set(key, value)
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		field  string
	}{
		{"unknown type", run("type", "SOX"), 400, "type"},
		{"unknown format", run("formats", "docx"), 400, "formats"},
		{"no format", func() url.Values { v := run("", ""); v.Del("formats"); return v }(), 400, "formats"},
		{"end before start", run("to", now.AddDate(0, 0, -3).Format("2006-01-02")), 400, "to"},
		{"longer than five years", run("from", now.AddDate(-6, 0, 0).Format("2006-01-02")), 400, "to"},
		{"not a date", run("from", "yesterday"), 400, "from"},
		{"bad status filter", run("status", "maybe"), 400, "status"},
		{"patient access without patient", run("type", "PATIENT_ACCESS"), 400, "patient"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := owner.PostForm("/reports/run", tc.form)
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tc.status)
			}
			if !strings.Contains(r.Body, `data-testid="form-error-field">`+tc.field+`<`) {
				t.Fatalf("no error naming %s", tc.field)
			}
		})
	}
	var refused int64
	env.DB.Raw(`SELECT count(*) FROM report_executions WHERE organization_id = ?`, org).Scan(&refused)
	if refused != 0 {
		t.Fatalf("refused runs wrote %d executions", refused)
	}

	// A run: redirected to its page, which polls while running and shows the files after.
	r := member.PostForm("/reports/run", run("", ""))
	if r.StatusCode != 303 || !strings.HasPrefix(r.Header.Get("Location"), "/reports/executions/exe_") {
		t.Fatalf("run: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	execPath := r.Header.Get("Location")
	env.Services.ReportRunner.Wait()
	frag := member.GetHTMX(execPath)
	if frag.StatusCode != 200 || !strings.Contains(frag.Body, `data-testid="execution-panel"`) ||
		strings.Contains(frag.Body, "<html") || strings.Contains(frag.Body, `hx-trigger="every 1s"`) {
		t.Fatalf("finished execution's fragment: %d\n%s", frag.StatusCode, frag.Body)
	}
	full := member.Get(execPath)
	if !strings.Contains(full.Body, "completed") || !strings.Contains(full.Body, `data-testid="file-csv"`) ||
		!strings.Contains(full.Body, `data-testid="execution-records">2<`) {
		t.Fatalf("execution page lacks its outcome:\n%s", full.Body)
	}
	if r := otherOwner.Get(execPath); r.StatusCode != 404 {
		t.Fatalf("another organization's execution: %d", r.StatusCode)
	}
	link := regexp.MustCompile(`href="(/reports/executions/[^"]+/files/csv\?[^"]+)"`).FindStringSubmatch(full.Body)
	if link == nil {
		t.Fatal("no csv link")
	}
	href := strings.ReplaceAll(link[1], "&amp;", "&")

	t.Run("download", func(t *testing.T) {
		r := member.Get(href)
		if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("download: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
		}
		recs, err := csv.NewReader(strings.NewReader(r.Body)).ReadAll()
		if err != nil || len(recs) != 3 {
			t.Fatalf("csv: %d rows, %v", len(recs), err)
		}
		if got := recs[1][8]; got != "'"+outcome {
			t.Errorf("formula cell = %q, want it neutralized", got)
		}
		var audited int64
		env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = 'report.download'`, org).Scan(&audited)
		if audited != 1 {
			t.Errorf("report.download events = %d, want 1", audited)
		}
	})
	t.Run("tampered link", func(t *testing.T) {
		for _, bad := range []string{strings.Replace(href, "sig=", "sig=00", 1), strings.Replace(href, "/csv?", "/pdf?", 1),
			strings.Replace(href, "exp=", "exp=0", 1), strings.Replace(href, "exp=", "exp=%2B", 1), href + "&sig=00",
			strings.Replace(href, "sig=", "sig=00&sig=", 1),
			regexp.MustCompile(`exp=\d+`).ReplaceAllString(href, "exp=99999999999")} {
			if r := member.Get(bad); r.StatusCode != 404 {
				t.Errorf("%s: %d, want 404", bad, r.StatusCode)
			}
		}
	})
	t.Run("another organization's link", func(t *testing.T) {
		if r := otherOwner.Get(href); r.StatusCode != 404 {
			t.Fatalf("%d, want 404", r.StatusCode)
		}
	})
	t.Run("expired link", func(t *testing.T) {
		id := strings.TrimPrefix(execPath, "/reports/executions/")
		expired := execPath + "/files/csv?" + env.Services.ReportLinks.Query(org, id, "csv", -time.Minute)
		if r := member.Get(expired); r.StatusCode != 410 {
			t.Fatalf("%d, want 410", r.StatusCode)
		}
	})
	t.Run("withdrawn by an erasure", func(t *testing.T) {
		// What the erasure engine leaves (models/erasure withdrawReports): no content, the
		// metadata kept, the file marked in the execution's file list.
		id := strings.TrimPrefix(execPath, "/reports/executions/")
		note := "withdrawn after GDPR erasure gdpr_req_9"
		env.DB.Exec(`DELETE FROM report_file_chunks WHERE execution_id = ?`, id)
		env.DB.Exec(`UPDATE report_executions SET export_result = (SELECT jsonb_agg(x || jsonb_build_object('withdrawn', ?::text))
			FROM jsonb_array_elements(export_result) x) WHERE id = ?`, note, id)
		r := member.Get(href)
		if r.StatusCode != 410 || !strings.Contains(r.Body, note) {
			t.Fatalf("download of a withdrawn file: %d %s", r.StatusCode, r.Body)
		}
		page := member.Get(execPath)
		if page.StatusCode != 410 || !strings.Contains(page.Body, note) || !strings.Contains(page.Body, `data-testid="withdrawn-csv"`) ||
			strings.Contains(page.Body, "/files/csv?") {
			t.Fatalf("page of a withdrawn execution: %d", page.StatusCode)
		}
	})

	t.Run("templates and schedules", func(t *testing.T) {
		tpl := func() url.Values {
			return url.Values{"name": {"Weekly PHI"}, "type": {"HIPAA_AUDIT_TRAIL"}, "period_days": {"7"}, "formats": {"csv"}}
		}
		if r := member.PostForm("/reports/templates", tpl()); r.StatusCode != 403 {
			t.Fatalf("a member creates a template: %d", r.StatusCode)
		}
		if r := owner.PostForm("/reports/templates", url.Values{"name": {"x"}, "type": {"HIPAA_AUDIT_TRAIL"},
			"period_days": {"0"}, "formats": {"csv"}}); r.StatusCode != 400 || !strings.Contains(r.Body, `data-testid="form-error-field">period_days<`) {
			t.Fatalf("period of 0 days: %d", r.StatusCode)
		}
		r := owner.PostForm("/reports/templates", tpl())
		if r.StatusCode != 303 {
			t.Fatalf("create template: %d %s", r.StatusCode, r.Body)
		}
		var tplID string
		env.DB.Raw(`SELECT id FROM report_templates WHERE organization_id = ? AND name = 'Weekly PHI'`, org).Scan(&tplID)
		if r := otherOwner.PostForm("/reports/templates/"+tplID+"/run", url.Values{}); r.StatusCode != 404 {
			t.Fatalf("another organization runs the template: %d", r.StatusCode)
		}
		sched := func(key, value string) url.Values {
			v := url.Values{"name": {"Mondays"}, "template_id": {tplID}, "frequency": {"weekly"}, "weekday": {"monday"},
				"time": {"06:00"}, "time_zone": {"Europe/Berlin"}, "delivery": {"download"}}
			if key != "" {
				v.Set(key, value)
			}
			return v
		}
		for _, bad := range []struct{ key, value, field string }{
			{"time_zone", "Mars/Base", "time_zone"}, {"time_zone", "posixrules", "time_zone"}, {"weekday", "funday", "weekday"}, {"time", "25:00", "time"},
			{"time", "12:61", "time"}, {"frequency", "hourly", "frequency"},
		} {
			r := owner.PostForm("/reports/schedules", sched(bad.key, bad.value))
			if r.StatusCode != 400 || !strings.Contains(r.Body, `data-testid="form-error-field">`+bad.field+`<`) {
				t.Errorf("%s=%s: %d, want 400 naming %s", bad.key, bad.value, r.StatusCode, bad.field)
			}
		}
		monthly := sched("frequency", "monthly")
		monthly.Set("day", "32")
		if r := owner.PostForm("/reports/schedules", monthly); r.StatusCode != 400 || !strings.Contains(r.Body, `data-testid="form-error-field">day<`) {
			t.Errorf("day 32: %d", r.StatusCode)
		}
		if r := otherOwner.PostForm("/reports/schedules", sched("", "")); r.StatusCode != 404 {
			t.Errorf("a schedule of another organization's template: %d, want 404", r.StatusCode)
		}
		if r := owner.PostForm("/reports/schedules", sched("", "")); r.StatusCode != 303 {
			t.Fatalf("create schedule: %d %s", r.StatusCode, r.Body)
		}
		page := owner.Get("/reports")
		if !strings.Contains(page.Body, `data-testid="schedule-Mondays"`) || !strings.Contains(page.Body, "weekly on Monday at 06:00 Europe/Berlin") {
			t.Fatalf("list lacks the schedule")
		}
		var schID string
		env.DB.Raw(`SELECT id FROM scheduled_reports WHERE organization_id = ?`, org).Scan(&schID)
		if r := member.PostForm("/reports/schedules/"+schID+"/toggle", url.Values{}); r.StatusCode != 403 {
			t.Errorf("a member pauses: %d", r.StatusCode)
		}
		if r := otherOwner.PostForm("/reports/schedules/"+schID+"/toggle", url.Values{}); r.StatusCode != 404 {
			t.Errorf("another organization pauses: %d", r.StatusCode)
		}
		if r := owner.PostForm("/reports/schedules/"+schID+"/toggle", url.Values{}); r.StatusCode != 303 {
			t.Fatalf("pause: %d", r.StatusCode)
		}
		if !strings.Contains(owner.Get("/reports").Body, `data-testid="schedule-paused"`) {
			t.Error("the schedule is not shown paused")
		}
		// Editing the template: the page names the schedules that run it, a refused change
		// writes nothing, a change is self-audited with its previous definition.
		edit := "/reports/templates/" + tplID
		if r := member.Get(edit); r.StatusCode != 403 {
			t.Errorf("a member opens the template's edit form: %d", r.StatusCode)
		}
		if r := otherOwner.Get(edit); r.StatusCode != 404 {
			t.Errorf("another organization opens the template: %d, want 404", r.StatusCode)
		}
		if r := otherOwner.PostForm(edit, tpl()); r.StatusCode != 404 {
			t.Errorf("another organization changes the template: %d, want 404", r.StatusCode)
		}
		if r := owner.Get("/reports"); !strings.Contains(r.Body, `href="`+edit+`"`) {
			t.Error("the template list has no edit link for the owner")
		}
		if r := member.Get("/reports"); strings.Contains(r.Body, `href="`+edit+`"`) {
			t.Error("the template list offers a member the edit link")
		}
		form := owner.Get(edit)
		if form.StatusCode != 200 || !strings.Contains(form.Body, `data-testid="template-schedule"`) ||
			!strings.Contains(form.Body, "Mondays") || !strings.Contains(form.Body, `value="Weekly PHI"`) {
			t.Fatalf("edit page: %d, lacks the form's values or the schedule that uses it", form.StatusCode)
		}
		for _, bad := range []struct{ key, value, field string }{
			{"period_days", "0", "period_days"}, {"period_days", "seven", "period_days"}, {"type", "SOX", "type"},
			{"formats", "docx", "formats"}, {"name", " ", "name"}, {"status", "maybe", "status"},
		} {
			v := tpl()
			v.Set(bad.key, bad.value)
			r := owner.PostForm(edit, v)
			if r.StatusCode != 400 || !strings.Contains(r.Body, `data-testid="form-error-field">`+bad.field+`<`) ||
				!strings.Contains(r.Body, `data-testid="template-edit-form"`) {
				t.Errorf("%s=%q: %d, want 400 naming %s on the edit form", bad.key, bad.value, r.StatusCode, bad.field)
			}
		}
		var days string
		env.DB.Raw(`SELECT default_criteria->>'period_days' FROM report_templates WHERE id = ?`, tplID).Scan(&days)
		if days != "7" {
			t.Fatalf("a refused change was written: period_days %s", days)
		}
		changed := url.Values{"name": {"Fortnight PHI"}, "type": {"HIPAA_AUDIT_TRAIL"}, "period_days": {"14"},
			"formats": {"json", "csv"}, "status": {"failure"}}
		if r := owner.PostForm(edit, changed); r.StatusCode != 303 || !strings.Contains(r.Header.Get("Location"), "report-template-updated") {
			t.Fatalf("update template: %d %s", r.StatusCode, r.Header.Get("Location"))
		}
		if r := owner.Get(edit); !strings.Contains(r.Body, `value="Fortnight PHI"`) || !strings.Contains(r.Body, `value="14"`) {
			t.Error("the edit form does not show the change")
		}
		var schedFormats []string
		env.DB.Raw(`SELECT format FROM scheduled_reports WHERE template_id = ?`, tplID).Scan(&schedFormats)
		if len(schedFormats) == 0 || slices.ContainsFunc(schedFormats, func(f string) bool { return f != "json" }) {
			t.Errorf("the template's schedules keep their old format: %v", schedFormats)
		}
		var change struct{ PreviousValue, NewValue, ChangedBy string }
		env.DB.Raw(`SELECT previous_value::text, new_value::text, changed_by FROM config_change_event
			WHERE organization_id = ? AND field = ? ORDER BY id DESC LIMIT 1`, org, "report_template."+tplID).Scan(&change)
		if !strings.Contains(change.PreviousValue, `"period_days": 7`) && !strings.Contains(change.PreviousValue, `"period_days":7`) ||
			!strings.Contains(change.NewValue, "Fortnight PHI") || change.ChangedBy == "" {
			t.Errorf("config_change_event = %+v", change)
		}
		// A webhook schedule: the address rule refuses what a report webhook may not reach;
		// the signing secret is shown once, in the answer, and never again.
		for _, bad := range []string{"https://127.0.0.1/hook", "https://[::1]/hook", "https://10.0.0.8/hook",
			"https://169.254.169.254/latest", "http://93.184.216.34/hook", "ftp://93.184.216.34/"} {
			v := sched("delivery", "webhook")
			v.Set("name", "hook")
			v.Set("webhook_url", bad)
			if r := owner.PostForm("/reports/schedules", v); r.StatusCode != 400 || !strings.Contains(r.Body, `data-testid="form-error-field">webhook_url<`) {
				t.Errorf("webhook %s: %d, want 400 naming webhook_url", bad, r.StatusCode)
			}
		}
		hook := sched("delivery", "webhook")
		hook.Set("name", "To the SIEM")
		hook.Set("webhook_url", "https://93.184.216.34/hook")
		created := owner.PostForm("/reports/schedules", hook)
		secret := regexp.MustCompile(`data-testid="new-secret-value">(whsec_[^<]+)<`).FindStringSubmatch(created.Body)
		if created.StatusCode != 201 || secret == nil {
			t.Fatalf("webhook schedule: %d, no secret shown", created.StatusCode)
		}
		if strings.Contains(owner.Get("/reports").Body, secret[1]) {
			t.Error("the signing secret is shown again")
		}
		var logged int64
		env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND details::text LIKE ?`, org, "%"+secret[1]+"%").Scan(&logged)
		if logged != 0 {
			t.Error("the signing secret is in the audit log")
		}
		// A webhook schedule saved before deliveries were signed gets its secret, shown once,
		// when it is next saved (paused or resumed).
		var hookID string
		env.DB.Raw(`SELECT id FROM scheduled_reports WHERE organization_id = ? AND name = 'To the SIEM'`, org).Scan(&hookID)
		env.DB.Exec(`UPDATE scheduled_reports SET delivery = delivery - 'secret' WHERE id = ?`, hookID)
		toggled := owner.PostForm("/reports/schedules/"+hookID+"/toggle", url.Values{})
		again := regexp.MustCompile(`data-testid="new-secret-value">(whsec_[^<]+)<`).FindStringSubmatch(toggled.Body)
		if toggled.StatusCode != 201 || again == nil || again[1] == secret[1] {
			t.Fatalf("toggling an unsigned webhook schedule: %d, new secret %v", toggled.StatusCode, again)
		}
		if r := owner.PostForm("/reports/schedules/"+hookID+"/toggle", url.Values{}); r.StatusCode != 303 {
			t.Fatalf("toggling it again shows a secret again: %d", r.StatusCode)
		}

		// Editing a schedule: refused changes write nothing, a paused schedule stays paused,
		// a webhook keeps its signing secret while it stays a webhook.
		schEdit := "/reports/schedules/" + schID
		if r := member.Get(schEdit); r.StatusCode != 403 {
			t.Errorf("a member opens a schedule's edit form: %d", r.StatusCode)
		}
		if r := otherOwner.Get(schEdit); r.StatusCode != 404 {
			t.Errorf("another organization opens the schedule: %d, want 404", r.StatusCode)
		}
		if r := otherOwner.PostForm(schEdit, sched("", "")); r.StatusCode != 404 {
			t.Errorf("another organization changes the schedule: %d, want 404", r.StatusCode)
		}
		if r := owner.Get(schEdit); r.StatusCode != 200 || !strings.Contains(r.Body, `data-testid="schedule-edit-form"`) ||
			!strings.Contains(r.Body, `value="Mondays"`) || !strings.Contains(r.Body, `value="Europe/Berlin"`) {
			t.Fatalf("schedule edit page: %d", r.StatusCode)
		}
		for _, bad := range []struct{ key, value, field string }{
			{"time_zone", "Mars/Base", "time_zone"}, {"time", "24:00", "time"}, {"weekday", "funday", "weekday"},
		} {
			r := owner.PostForm(schEdit, sched(bad.key, bad.value))
			if r.StatusCode != 400 || !strings.Contains(r.Body, `data-testid="form-error-field">`+bad.field+`<`) ||
				!strings.Contains(r.Body, `data-testid="schedule-edit-form"`) {
				t.Errorf("%s=%s: %d, want 400 naming %s on the edit form", bad.key, bad.value, r.StatusCode, bad.field)
			}
		}
		monthEnd := sched("frequency", "monthly")
		monthEnd.Set("day", "31")
		monthEnd.Set("time", "07:30")
		if r := owner.PostForm(schEdit, monthEnd); r.StatusCode != 303 {
			t.Fatalf("update schedule: %d %s", r.StatusCode, r.Body)
		}
		var row struct {
			Schedule string
			Enabled  bool
		}
		env.DB.Raw(`SELECT schedule::text AS schedule, enabled FROM scheduled_reports WHERE id = ?`, schID).Scan(&row)
		if !strings.Contains(row.Schedule, `"monthly"`) || !strings.Contains(row.Schedule, `31`) || row.Enabled {
			t.Errorf("schedule after the edit: %+v (want monthly on the 31st, still paused)", row)
		}
		secretOf := func(id string) string {
			var sec string
			env.DB.Raw(`SELECT COALESCE(delivery->>'secret', '') FROM scheduled_reports WHERE id = ?`, id).Scan(&sec)
			return sec
		}
		before := secretOf(hookID)
		moved := sched("delivery", "webhook")
		moved.Set("name", "To the SIEM")
		moved.Set("webhook_url", "https://93.184.216.35/hook")
		if r := owner.PostForm("/reports/schedules/"+hookID, moved); r.StatusCode != 303 || secretOf(hookID) != before || before == "" {
			t.Errorf("moving a webhook: %d; the secret changed or was shown again", r.StatusCode)
		}
		moved.Set("webhook_url", "https://10.0.0.1/hook")
		if r := owner.PostForm("/reports/schedules/"+hookID, moved); r.StatusCode != 400 ||
			!strings.Contains(r.Body, `data-testid="form-error-field">webhook_url<`) {
			t.Errorf("moving a webhook to a private address: %d", r.StatusCode)
		}

		var actions []string
		env.DB.Raw(`SELECT action FROM audit_log WHERE organization_id = ? AND action LIKE 'report.%' ORDER BY id`, org).Scan(&actions)
		joined := strings.Join(actions, ",")
		for _, want := range []string{"report.run", "report.template.create", "report.template.update", "report.schedule.create", "report.schedule.update"} {
			if !strings.Contains(joined, want) {
				t.Errorf("self-audit lacks %s: %v", want, actions)
			}
		}
		if r := owner.PostForm("/reports/templates/"+tplID+"/delete", url.Values{}); r.StatusCode != 303 {
			t.Fatalf("delete template: %d", r.StatusCode)
		}
		var left int64
		env.DB.Raw(`SELECT count(*) FROM scheduled_reports WHERE organization_id = ?`, org).Scan(&left)
		if left != 0 {
			t.Errorf("the template's schedules outlived it: %d", left)
		}
	})
}

// A failed delivery shows on the execution's page with its error, and what happens next.
func TestReportExecutionShowsFailedDeliveries(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("rep-deliv"), env.Org("rep-deliv-other")
	owner := env.Login(env.User(org, models.OwnerRole))
	otherOwner := env.Login(env.User(other, models.OwnerRole))
	r := owner.PostForm("/reports/run", url.Values{"type": {"GENERAL_COMPLIANCE"}, "formats": {"json"}})
	if r.StatusCode != 303 {
		t.Fatalf("run: %d", r.StatusCode)
	}
	path := r.Header.Get("Location")
	env.Services.ReportRunner.Wait()
	id := strings.TrimPrefix(path, "/reports/executions/")
	attempt := `{"at":"2026-11-30T02:00:00Z","kind":"webhook","target":"https://siem.example.com/hook","ok":false,"error":"models: webhook answered 500 Internal Server Error"}`
	for n, want := range map[int]string{1: "tried again automatically", 3: "not tried again"} {
		list := strings.TrimSuffix(strings.Repeat(attempt+",", n), ",")
		if err := env.DB.Exec(`UPDATE report_executions SET delivery_attempts = ?::jsonb WHERE id = ?`, "["+list+"]", id).Error; err != nil {
			t.Fatal(err)
		}
		page := owner.Get(path)
		if page.StatusCode != 200 || strings.Count(page.Body, `data-testid="delivery-failed"`) != n ||
			!strings.Contains(page.Body, "webhook answered 500 Internal Server Error") || !strings.Contains(page.Body, want) {
			t.Fatalf("%d failed attempts: page %d lacks them or %q", n, page.StatusCode, want)
		}
	}
	if r := otherOwner.Get(path); r.StatusCode != 404 {
		t.Fatalf("another organization sees the execution: %d", r.StatusCode)
	}
	ok := `{"at":"2026-11-30T02:20:00Z","kind":"webhook","target":"https://siem.example.com/hook","ok":true}`
	if err := env.DB.Exec(`UPDATE report_executions SET delivery_attempts = ?::jsonb WHERE id = ?`, "["+attempt+","+ok+"]", id).Error; err != nil {
		t.Fatal(err)
	}
	if page := owner.Get(path); !strings.Contains(page.Body, `data-testid="delivery-ok"`) || strings.Contains(page.Body, `data-testid="delivery-note"`) {
		t.Fatal("a delivered attempt is not shown as delivered, or a retry is still announced")
	}
}

// The server's runner has its deliverer: a scheduled email without an SMTP server fails
// saying so (not "not configured"), recorded on the execution, which still completes.
func TestServerDeliversScheduledReports(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("rep-wired")
	ctx := context.Background()
	by := models.SystemActor("test")
	tpl, err := env.Services.Reports.SaveTemplate(ctx, org, "", reports.TemplateInput{Name: "Daily", Type: reports.TypeGeneral,
		PeriodDays: 1, Formats: []string{"json"}}, by)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := env.Services.Reports.SaveSchedule(ctx, org, "", reports.ScheduleInput{Name: "mail", TemplateID: tpl.ID, Enabled: true,
		Schedule: reports.Schedule{Frequency: "daily", Time: "06:00", TimeZone: "UTC"},
		Delivery: reports.Delivery{Kind: reports.DeliverEmail, Emails: []string{"dpo@example.com"}}}, by)
	if err != nil {
		t.Fatal(err)
	}
	runner := env.Services.ReportRunner
	runner.Now = func() time.Time { return sc.NextRun.Add(time.Minute) }
	if n, err := runner.RunDue(ctx); err != nil || n < 1 {
		t.Fatalf("RunDue = %d, %v", n, err)
	}
	runner.Wait()
	execs, err := env.Services.Reports.Executions(ctx, org, 1)
	if err != nil || len(execs) != 1 {
		t.Fatalf("executions %v %v", execs, err)
	}
	e := execs[0]
	if e.Status != reports.StatusCompleted || len(e.Deliveries) != 1 || e.Deliveries[0].OK ||
		!strings.Contains(e.Deliveries[0].Error, "AUDITDB_SMTP_URL") {
		t.Fatalf("execution %s, attempts %+v", e.Status, e.Deliveries)
	}
}
