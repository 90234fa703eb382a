package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/models/reports"
	"auditdb/views/components"
	reportviews "auditdb/views/pages/reports"
)

// ReportStore reads and changes an organization's report templates, schedules and
// executions, and opens their files.
type ReportStore interface {
	Templates(ctx context.Context, org string) ([]reports.Template, error)
	SaveTemplate(ctx context.Context, org, id string, in reports.TemplateInput, by models.Actor) (*reports.Template, error)
	DeleteTemplate(ctx context.Context, org, id string, by models.Actor) error
	Template(ctx context.Context, org, id string) (*reports.Template, error)
	SchedulesOf(ctx context.Context, org, templateID string) ([]reports.ScheduledReport, error)
	Schedules(ctx context.Context, org string) ([]reports.ScheduledReport, error)
	ScheduledReport(ctx context.Context, org, id string) (*reports.ScheduledReport, error)
	SaveSchedule(ctx context.Context, org, id string, in reports.ScheduleInput, by models.Actor) (*reports.ScheduledReport, error)
	DeleteSchedule(ctx context.Context, org, id string, by models.Actor) error
	Executions(ctx context.Context, org string, limit int) ([]reports.Execution, error)
	Execution(ctx context.Context, org, id string) (*reports.Execution, error)
	OpenFile(ctx context.Context, org, exec, format string) (*reports.File, io.ReadCloser, error)
}

// ReportRunner starts report executions in the background.
type ReportRunner interface {
	Start(ctx context.Context, org string, req reports.RunRequest, by models.Actor) (*reports.Execution, error)
	EvidenceAvailable() bool
}

// ReportDeps is what the reports pages and API need.
type ReportDeps struct {
	Store  ReportStore
	Runner ReportRunner
	Links  *reports.Links
	Audit  Auditor
	Now    func() time.Time
}

// Confirmations of the reports forms.
const (
	doneReportTemplateSaved   = "report-template-saved"
	doneReportTemplateUpdated = "report-template-updated"
	doneReportTemplateDeleted = "report-template-deleted"
	doneReportScheduleSaved   = "report-schedule-saved"
	doneReportScheduleDeleted = "report-schedule-deleted"
)

func init() {
	doneMessages[doneReportTemplateSaved] = "Report template %s saved; recorded in the audit log (report.template.create)."
	doneMessages[doneReportTemplateUpdated] = "Report template %s updated; recorded in the audit log (report.template.update) with its previous definition."
	doneMessages[doneReportTemplateDeleted] = "Report template %s deleted with its schedules."
	doneMessages[doneReportScheduleSaved] = "Report schedule %s saved; recorded in the audit log."
	doneMessages[doneReportScheduleDeleted] = "Report schedule %s deleted."
}

// evidenceRefusal is the 422 answer to the evidence format on a server without bundles.
func evidenceRefusal(err error) error {
	if errors.Is(err, reports.ErrEvidenceUnavailable) {
		return fiber.NewError(fiber.StatusUnprocessableEntity, "evidence bundles are not available")
	}
	return err
}

// ReportsPage shows /reports: the run form, the latest executions, templates and schedules.
func ReportsPage(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		return renderReports(c, d, fiber.StatusOK, "", nil, nil)
	}
}

// reportForms carries a refused form's values back to it.
type reportForms struct {
	run      reportviews.RunForm
	template reportviews.TemplateForm
	schedule reportviews.ScheduleForm
}

func renderReports(c *fiber.Ctx, d ReportDeps, status int, form string, refusal *components.FormError, values *reportForms) error {
	p, err := reportsProps(c, d, form, refusal, values)
	if err != nil {
		return err
	}
	return render.HTML(c, status, reportviews.Index(render.ViewerOf(c).Shell("Reports", "reports"), p))
}

// reportOptions fills the choices the report forms offer.
func reportOptions(p *reportviews.IndexProps) {
	p.Statuses, p.Classifications = components.OptionsOf(models.EventStatuses), components.OptionsOf(models.DataClassifications)
	p.Frequencies = components.OptionsOf(reports.Frequencies)
	for _, t := range reports.Types {
		p.Types = append(p.Types, components.Option{Value: t, Label: reports.TypeTitles[t]})
	}
	for _, f := range reports.Formats {
		p.Formats = append(p.Formats, components.Option{Value: f, Label: strings.ToUpper(f)})
	}
}

func reportsProps(c *fiber.Ctx, d ReportDeps, form string, refusal *components.FormError, values *reportForms) (reportviews.IndexProps, error) {
	v := render.ViewerOf(c)
	ctx := c.UserContext()
	org := v.OrgID
	templates, err := d.Store.Templates(ctx, org)
	if err != nil {
		return reportviews.IndexProps{}, err
	}
	schedules, err := d.Store.Schedules(ctx, org)
	if err != nil {
		return reportviews.IndexProps{}, err
	}
	execs, err := d.Store.Executions(ctx, org, 20)
	if err != nil {
		return reportviews.IndexProps{}, err
	}
	p := reportviews.IndexProps{CSRF: v.Session.CSRFToken(), Flash: flash(c), Error: refusal, ErrorForm: form,
		CanRun: v.Allowed("audit.reports", "read"), CanCreate: v.Allowed("audit.reports", "create"), CanUpdate: v.Allowed("audit.reports", "update"),
		CanDelete: v.Allowed("audit.reports", "delete"), EvidenceAvailable: d.Runner.EvidenceAvailable(),
		Run:      reportviews.RunForm{Formats: map[string]bool{"csv": true, "pdf": true}},
		Template: reportviews.TemplateForm{PeriodDays: "30", Formats: map[string]bool{"csv": true, "pdf": true}},
		Schedule: reportviews.ScheduleForm{Frequency: "weekly", Weekday: "monday", Time: "06:00", TimeZone: "UTC", Delivery: "download"},
	}
	if values != nil {
		p.Run, p.Template, p.Schedule = values.run, values.template, values.schedule
	}
	reportOptions(&p)
	for _, w := range []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"} {
		p.Weekdays = append(p.Weekdays, components.Option{Value: w, Label: strings.ToUpper(w[:1]) + w[1:]})
	}
	for _, t := range templates {
		row := reportviews.TemplateRow{ID: t.ID, Name: t.Name, Type: reports.TypeTitles[t.Type],
			Period: fmt.Sprintf("last %d days", t.PeriodDays), Formats: strings.Join(t.Formats, ", "), Filters: describeFilters(t.Filters)}
		if p.CanRun {
			row.RunAction = "/reports/templates/" + t.ID + "/run"
		}
		if p.CanDelete {
			row.DeleteAction = "/reports/templates/" + t.ID + "/delete"
		}
		if p.CanUpdate {
			row.EditHref = "/reports/templates/" + t.ID
		}
		p.Templates = append(p.Templates, row)
		p.TemplateOptions = append(p.TemplateOptions, components.Option{Value: t.ID, Label: t.Name})
	}
	for _, s := range schedules {
		row := reportviews.ScheduleRow{ID: s.ID, Name: s.Name, Template: s.TemplateName, When: s.Schedule.Describe(),
			Delivery: describeDelivery(s.Delivery), Enabled: s.Enabled, LastRun: s.LastRun}
		if s.NextRun != nil && s.Enabled {
			row.NextRun = s.NextRun
		}
		if p.CanUpdate {
			row.ToggleAction = "/reports/schedules/" + s.ID + "/toggle"
			row.EditHref = "/reports/schedules/" + s.ID
		}
		if p.CanDelete {
			row.DeleteAction = "/reports/schedules/" + s.ID + "/delete"
		}
		p.Schedules = append(p.Schedules, row)
	}
	for i := range execs {
		p.Executions = append(p.Executions, executionRow(d, org, &execs[i]))
	}
	return p, nil
}

func describeFilters(f reports.Filters) string {
	var parts []string
	for _, kv := range [][2]string{{"action", f.Action}, {"status", f.Status}, {"principal", f.Principal},
		{"resource type", f.ResourceType}, {"resource id", f.ResourceID}, {"classification", f.Classification}, {"patient", f.Patient}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+" "+kv[1])
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func describeDelivery(d reports.Delivery) string {
	switch d.Kind {
	case reports.DeliverWebhook:
		return "webhook " + d.URL
	case reports.DeliverEmail:
		return "email " + strings.Join(d.Emails, ", ")
	}
	return "download only"
}

// fileHref is the console's expiring download link of f.
func fileHref(d ReportDeps, org, exec, format string) string {
	return "/reports/executions/" + exec + "/files/" + format + "?" + d.Links.Query(org, exec, format, reports.LinkTTL)
}

func executionRow(d ReportDeps, org string, e *reports.Execution) reportviews.ExecutionRow {
	row := reportviews.ExecutionRow{ID: e.ID, Href: "/reports/executions/" + e.ID, Type: reports.TypeTitles[e.Type],
		From: e.Criteria.From, To: e.Criteria.To, Status: e.Status,
		Started: e.StartedAt, Duration: "—", Records: "—", Progress: count(e.Progress),
		Error: e.Error, Running: e.Status == reports.StatusRunning, RequestedBy: e.RequestedBy}
	if e.DurationMS != nil {
		row.Duration = (time.Duration(*e.DurationMS) * time.Millisecond).String()
	}
	if e.Records != nil {
		row.Records = count(*e.Records)
	}
	for _, f := range e.Files {
		row.Files = append(row.Files, reportviews.FileRow{Format: f.Format, Name: f.Name, Size: byteSize(f.Size),
			SHA256: f.SHA256, Href: fileHref(d, org, e.ID, f.Format), Withdrawn: f.Withdrawn})
	}
	return row
}

// parseDay reads a form's date (YYYY-MM-DD, UTC) or an RFC 3339 time; "" is the zero time.
func parseDay(field, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, models.Invalid(field, "must be a date YYYY-MM-DD (UTC) or an RFC 3339 time")
}

// period fills a missing end of a period: no start is 30 days before the end, no end is now.
func period(from, to, now time.Time) (time.Time, time.Time) {
	if to.IsZero() {
		to = now.UTC().Truncate(time.Second)
	}
	if from.IsZero() {
		from = to.AddDate(0, 0, -reports.DefaultPeriodDays)
	}
	return from, to
}

func formatSet(fs []string) map[string]bool {
	m := map[string]bool{}
	for _, f := range fs {
		m[f] = true
	}
	return m
}

// filtersOf reads the filters, copied out of Fiber's buffers: a run keeps them after the
// request.
func filtersOf(get func(string) string) reports.Filters {
	get0 := get
	get = func(k string) string { return strings.Clone(get0(k)) }
	return reports.Filters{Action: strings.TrimSpace(get("action")), Status: get("status"),
		Principal: strings.TrimSpace(get("principal")), ResourceType: strings.TrimSpace(get("resource_type")),
		ResourceID: strings.TrimSpace(get("resource_id")), Classification: get("classification"),
		Patient: strings.TrimSpace(get("patient"))}
}

// refuseReportForm shows /reports again with the refusal next to form, or hands err on.
func refuseReportForm(c *fiber.Ctx, d ReportDeps, form string, err error, values *reportForms) error {
	if errors.Is(err, reports.ErrEvidenceUnavailable) {
		return renderReports(c, d, fiber.StatusUnprocessableEntity, form,
			&components.FormError{Field: "formats", Message: "evidence bundles are not available"}, values)
	}
	if r := refusalOf(err); r != nil {
		return renderReports(c, d, render.StatusOf(err), form, r, values)
	}
	return err
}

// RunReport starts an ad-hoc report from the run form and redirects to its page.
func RunReport(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		formats := formValues(c, "formats")
		f := filtersOf(func(k string) string { return c.FormValue(k) })
		values := &reportForms{run: reportviews.RunForm{Type: c.FormValue("type"), From: c.FormValue("from"), To: c.FormValue("to"),
			Action: f.Action, Status: f.Status, Principal: f.Principal, ResourceType: f.ResourceType, ResourceID: f.ResourceID,
			Classification: f.Classification, Patient: f.Patient, Formats: formatSet(formats)},
			template: reportviews.TemplateForm{PeriodDays: "30", Formats: map[string]bool{"csv": true}},
			schedule: reportviews.ScheduleForm{Frequency: "weekly", Weekday: "monday", Time: "06:00", TimeZone: "UTC"}}
		from, err := parseDay("from", c.FormValue("from"))
		if err != nil {
			return refuseReportForm(c, d, "run", err, values)
		}
		to, err := parseDay("to", c.FormValue("to"))
		if err != nil {
			return refuseReportForm(c, d, "run", err, values)
		}
		from, to = period(from, to, d.Now())
		e, err := d.Runner.Start(c.UserContext(), v.OrgID, reports.RunRequest{
			Criteria: reports.Criteria{Type: strings.Clone(c.FormValue("type")), From: from, To: to, Filters: f}, Formats: formats}, ActorOf(c))
		if err != nil {
			return refuseReportForm(c, d, "run", err, values)
		}
		return render.Redirect(c, "/reports/executions/"+e.ID)
	}
}

// RunTemplate starts a template's report now and redirects to its page.
func RunTemplate(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		e, err := d.Runner.Start(c.UserContext(), v.OrgID, reports.RunRequest{TemplateID: strings.Clone(c.Params("id"))}, ActorOf(c))
		if err != nil {
			return refuseReportForm(c, d, "run", err, nil)
		}
		return render.Redirect(c, "/reports/executions/"+e.ID)
	}
}

// templateFormOf reads the template form: the values to show again and the input, or the
// refusal of a period that is not a number.
func templateFormOf(c *fiber.Ctx) (reportviews.TemplateForm, reports.TemplateInput, error) {
	formats := formValues(c, "formats")
	f := filtersOf(func(k string) string { return c.FormValue(k) })
	form := reportviews.TemplateForm{Name: c.FormValue("name"), Type: c.FormValue("type"),
		PeriodDays: c.FormValue("period_days"), Description: c.FormValue("description"), Action: f.Action, Status: f.Status,
		Principal: f.Principal, ResourceType: f.ResourceType, ResourceID: f.ResourceID, Classification: f.Classification,
		Patient: f.Patient, Formats: formatSet(formats)}
	in := reports.TemplateInput{Name: strings.Clone(c.FormValue("name")), Description: strings.Clone(c.FormValue("description")),
		Type: strings.Clone(c.FormValue("type")), Filters: f, PeriodDays: reports.DefaultPeriodDays, Formats: formats}
	if s := strings.TrimSpace(c.FormValue("period_days")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return form, in, models.Invalid("period_days", "must be a whole number of days")
		}
		in.PeriodDays = n
	}
	return form, in, nil
}

// CreateReportTemplate saves a new template from the template form.
func CreateReportTemplate(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		form, in, err := templateFormOf(c)
		values := &reportForms{run: reportviews.RunForm{Formats: map[string]bool{"csv": true}}, template: form,
			schedule: reportviews.ScheduleForm{Frequency: "weekly", Weekday: "monday", Time: "06:00", TimeZone: "UTC"}}
		if err != nil {
			return refuseReportForm(c, d, "template", err, values)
		}
		t, err := d.Store.SaveTemplate(c.UserContext(), v.OrgID, "", in, ActorOf(c))
		if err != nil {
			return refuseReportForm(c, d, "template", err, values)
		}
		return redirectDone(c, "/reports", doneReportTemplateSaved, t.Name)
	}
}

// templateFormValues is a saved template as its form shows it.
func templateFormValues(t *reports.Template) reportviews.TemplateForm {
	return reportviews.TemplateForm{Name: t.Name, Type: t.Type, PeriodDays: strconv.Itoa(t.PeriodDays), Description: t.Description,
		Action: t.Filters.Action, Status: t.Filters.Status, Principal: t.Filters.Principal, ResourceType: t.Filters.ResourceType,
		ResourceID: t.Filters.ResourceID, Classification: t.Filters.Classification, Patient: t.Filters.Patient,
		Formats: formatSet(t.Formats)}
}

// renderTemplateEdit shows org's template id's edit page with form, and the schedules
// that run it.
func renderTemplateEdit(c *fiber.Ctx, d ReportDeps, status int, id string, form reportviews.TemplateForm, refusal *components.FormError) error {
	v := render.ViewerOf(c)
	uses, err := d.Store.SchedulesOf(c.UserContext(), v.OrgID, id)
	if err != nil {
		return err
	}
	p := reportviews.TemplateEditProps{CSRF: v.Session.CSRFToken(), ID: id, Action: "/reports/templates/" + id, Error: refusal, Form: form}
	reportOptions(&p.Options)
	for _, u := range uses {
		p.UsedBy = append(p.UsedBy, reportviews.ScheduleUse{Name: u.Name, When: u.Schedule.Describe(), Delivery: describeDelivery(u.Delivery),
			Enabled: u.Enabled})
	}
	return render.HTML(c, status, reportviews.TemplateEdit(v.Shell("Edit report template", "reports"), p))
}

// EditReportTemplate shows a template's edit form and the schedules that use it.
func EditReportTemplate(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		t, err := d.Store.Template(c.UserContext(), v.OrgID, c.Params("id"))
		if err != nil {
			return err
		}
		return renderTemplateEdit(c, d, fiber.StatusOK, t.ID, templateFormValues(t), nil)
	}
}

// UpdateReportTemplate saves a changed template (its schedules run it from their next
// run); a refused change shows the form again with the reason next to the field.
func UpdateReportTemplate(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id := strings.Clone(c.Params("id"))
		// Another organization's template is 404 before anything of the form is looked at.
		if _, err := d.Store.Template(c.UserContext(), v.OrgID, id); err != nil {
			return err
		}
		form, in, err := templateFormOf(c)
		if err == nil {
			var t *reports.Template
			if t, err = d.Store.SaveTemplate(c.UserContext(), v.OrgID, id, in, ActorOf(c)); err == nil {
				return redirectDone(c, "/reports", doneReportTemplateUpdated, t.Name)
			}
		}
		if r := refusalOf(err); r != nil {
			return renderTemplateEdit(c, d, render.StatusOf(err), id, form, r)
		}
		return err
	}
}

// DeleteReportTemplate deletes a template and its schedules.
func DeleteReportTemplate(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		if err := d.Store.DeleteTemplate(c.UserContext(), v.OrgID, c.Params("id"), ActorOf(c)); err != nil {
			return err
		}
		return redirectDone(c, "/reports", doneReportTemplateDeleted, "")
	}
}

// CreateReportSchedule saves a new schedule from the schedule form.
func CreateReportSchedule(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		form, in, err := scheduleFormOf(c)
		values := &reportForms{run: reportviews.RunForm{Formats: map[string]bool{"csv": true}},
			template: reportviews.TemplateForm{PeriodDays: "30", Formats: map[string]bool{"csv": true}}, schedule: form}
		if err != nil {
			return refuseReportForm(c, d, "schedule", err, values)
		}
		in.Enabled = true
		sc, err := d.Store.SaveSchedule(c.UserContext(), v.OrgID, "", in, ActorOf(c))
		if err != nil {
			return refuseReportForm(c, d, "schedule", err, values)
		}
		if sc.Delivery.Kind == reports.DeliverWebhook {
			return renderNewSecret(c, d, sc)
		}
		return redirectDone(c, "/reports", doneReportScheduleSaved, sc.Name)
	}
}

// scheduleFormOf reads the schedule form: the values to show again and the input, or the
// refusal of a day that is not a number.
func scheduleFormOf(c *fiber.Ctx) (reportviews.ScheduleForm, reports.ScheduleInput, error) {
	get := func(k string) string { return strings.Clone(c.FormValue(k)) }
	form := reportviews.ScheduleForm{Name: get("name"), TemplateID: get("template_id"), Frequency: get("frequency"),
		Weekday: get("weekday"), Day: get("day"), Time: get("time"), TimeZone: get("time_zone"), Delivery: get("delivery"),
		WebhookURL: get("webhook_url"), Emails: get("emails")}
	in := reports.ScheduleInput{Name: form.Name, TemplateID: form.TemplateID,
		Schedule: reports.Schedule{Frequency: form.Frequency, Weekday: form.Weekday, Time: strings.TrimSpace(form.Time),
			TimeZone: strings.TrimSpace(form.TimeZone)},
		Delivery: reports.Delivery{Kind: form.Delivery}}
	if s := strings.TrimSpace(form.Day); s != "" && (form.Frequency == reports.Monthly || form.Frequency == reports.Quarterly) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return form, in, models.Invalid("day", "must be a day of the month from 1 to 31")
		}
		in.Schedule.Day = n
	}
	switch in.Delivery.Kind {
	case reports.DeliverWebhook:
		in.Delivery.URL = strings.TrimSpace(form.WebhookURL)
	case reports.DeliverEmail:
		for _, e := range strings.Split(form.Emails, ",") {
			if e = strings.TrimSpace(e); e != "" {
				in.Delivery.Emails = append(in.Delivery.Emails, e)
			}
		}
	}
	return form, in, nil
}

// scheduleFormValues is a saved schedule as its form shows it.
func scheduleFormValues(sc *reports.ScheduledReport) reportviews.ScheduleForm {
	f := reportviews.ScheduleForm{Name: sc.Name, TemplateID: sc.TemplateID, Frequency: sc.Schedule.Frequency,
		Weekday: sc.Schedule.Weekday, Time: sc.Schedule.Time, TimeZone: sc.Schedule.TimeZone, Delivery: sc.Delivery.Kind,
		WebhookURL: sc.Delivery.URL, Emails: strings.Join(sc.Delivery.Emails, ", ")}
	if sc.Schedule.Day > 0 {
		f.Day = strconv.Itoa(sc.Schedule.Day)
	}
	if f.Weekday == "" {
		f.Weekday = "monday"
	}
	return f
}

// renderScheduleEdit shows org's schedule id's edit page with form.
func renderScheduleEdit(c *fiber.Ctx, d ReportDeps, status int, id string, form reportviews.ScheduleForm, refusal *components.FormError) error {
	v := render.ViewerOf(c)
	p, err := reportsProps(c, d, "", nil, nil)
	if err != nil {
		return err
	}
	return render.HTML(c, status, reportviews.ScheduleEdit(v.Shell("Edit report schedule", "reports"),
		reportviews.ScheduleEditProps{CSRF: v.Session.CSRFToken(), Action: "/reports/schedules/" + id, Error: refusal, Options: p, Form: form}))
}

// EditReportSchedule shows a schedule's edit form.
func EditReportSchedule(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		sc, err := d.Store.ScheduledReport(c.UserContext(), v.OrgID, c.Params("id"))
		if err != nil {
			return err
		}
		return renderScheduleEdit(c, d, fiber.StatusOK, sc.ID, scheduleFormValues(sc), nil)
	}
}

// UpdateReportSchedule saves a changed schedule: it stays enabled or paused, a webhook keeps
// its signing secret (a new webhook target gets one, shown once), and its next run is
// computed again.
func UpdateReportSchedule(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		sc, err := d.Store.ScheduledReport(c.UserContext(), v.OrgID, c.Params("id"))
		if err != nil {
			return err
		}
		form, in, err := scheduleFormOf(c)
		if err == nil {
			in.Enabled = sc.Enabled
			if in.Delivery.Kind == reports.DeliverWebhook && sc.Delivery.Kind == reports.DeliverWebhook {
				in.Delivery.Secret = sc.Delivery.Secret
			}
			var saved *reports.ScheduledReport
			if saved, err = d.Store.SaveSchedule(c.UserContext(), v.OrgID, sc.ID, in, ActorOf(c)); err == nil {
				if saved.Delivery.Kind == reports.DeliverWebhook && saved.Delivery.Secret != sc.Delivery.Secret {
					return renderNewSecret(c, d, saved)
				}
				return redirectDone(c, "/reports", doneReportScheduleSaved, saved.Name)
			}
		}
		if r := refusalOf(err); r != nil {
			return renderScheduleEdit(c, d, render.StatusOf(err), sc.ID, form, r)
		}
		return err
	}
}

// renderNewSecret shows /reports with the webhook signing secret of sc, this once, in the
// answer itself (never in a URL).
func renderNewSecret(c *fiber.Ctx, d ReportDeps, sc *reports.ScheduledReport) error {
	p, err := reportsProps(c, d, "", nil, nil)
	if err != nil {
		return err
	}
	p.NewSecret, p.NewSecretSchedule = sc.Delivery.Secret, sc.Name
	c.Set(fiber.HeaderCacheControl, "no-store")
	return render.HTML(c, fiber.StatusCreated, reportviews.Index(render.ViewerOf(c).Shell("Reports", "reports"), p))
}

// ToggleReportSchedule pauses an enabled schedule or resumes a paused one.
func ToggleReportSchedule(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		sc, err := d.Store.ScheduledReport(c.UserContext(), v.OrgID, c.Params("id"))
		if err != nil {
			return err
		}
		saved, err := d.Store.SaveSchedule(c.UserContext(), v.OrgID, sc.ID, reports.ScheduleInput{Name: sc.Name, TemplateID: sc.TemplateID,
			Schedule: sc.Schedule, Delivery: sc.Delivery, Enabled: !sc.Enabled}, ActorOf(c))
		if err != nil {
			return err
		}
		if sc.Delivery.Kind == reports.DeliverWebhook && sc.Delivery.Secret == "" && saved.Delivery.Secret != "" {
			// A webhook schedule saved before deliveries were signed got its secret now.
			return renderNewSecret(c, d, saved)
		}
		return redirectDone(c, "/reports", doneReportScheduleSaved, sc.Name)
	}
}

// DeleteReportSchedule deletes a schedule.
func DeleteReportSchedule(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		if err := d.Store.DeleteSchedule(c.UserContext(), v.OrgID, c.Params("id"), ActorOf(c)); err != nil {
			return err
		}
		return redirectDone(c, "/reports", doneReportScheduleDeleted, "")
	}
}

// ShowReportExecution shows one execution; its htmx poll gets the progress panel alone.
func ShowReportExecution(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		e, err := d.Store.Execution(c.UserContext(), v.OrgID, c.Params("id"))
		if err != nil {
			return err
		}
		p := reportviews.ExecutionProps{E: executionRow(d, v.OrgID, e), PollURL: "/reports/executions/" + e.ID}
		for _, kv := range e.Criteria.Pairs() {
			p.Criteria = append(p.Criteria, reportviews.Pair{Name: kv.Name, Value: kv.Value})
		}
		if in := e.Integrity; in != nil {
			cp := "none yet"
			if in.Checkpoint != nil {
				cp = fmt.Sprintf("#%d, tree size %d, root %s, signed %s", in.Checkpoint.Number, in.Checkpoint.TreeSize,
					in.Checkpoint.RootHash, components.DateTime(in.Checkpoint.CreatedAt))
			}
			p.Integrity = []reportviews.Pair{{Name: "Checked against checkpoint", Value: cp},
				{Name: "Events of the period in it", Value: count(in.Covered)}, {Name: "Not yet in a checkpoint", Value: count(in.Pending)},
				{Name: "Verifications found tampered", Value: count(in.Tampered)}, {Name: "Removed by policy", Value: count(in.Removed)},
				{Name: "Latest sweep", Value: in.LastSweep}}
		}
		for _, a := range e.Deliveries {
			outcome := "delivered"
			if !a.OK {
				outcome = "failed: " + a.Error
			}
			p.Deliveries = append(p.Deliveries, reportviews.DeliveryRow{At: a.At, Kind: a.Kind, Target: a.Target,
				Outcome: outcome, OK: a.OK})
		}
		p.DeliveryNote = deliveryNote(e.Deliveries)
		status := fiber.StatusOK
		if withdrawn(e.Files) {
			status = fiber.StatusGone // every file withdrawn: what the page offered is gone; its record stays
		}
		if render.IsHTMX(c) {
			return render.HTML(c, status, reportviews.ExecutionPanel(p))
		}
		return render.HTML(c, status, reportviews.Execution(v.Shell("Report", "reports"), p))
	}
}

// withdrawn reports whether an execution had files and every one was withdrawn.
func withdrawn(fs []reports.File) bool {
	for _, f := range fs {
		if f.Withdrawn == "" {
			return false
		}
	}
	return len(fs) > 0
}

// deliveryNote says what comes of deliveries that have all failed: another try, or none.
func deliveryNote(attempts []reports.DeliveryAttempt) string {
	if len(attempts) == 0 {
		return ""
	}
	for _, a := range attempts {
		if a.OK {
			return ""
		}
	}
	if len(attempts) >= reports.MaxDeliveryAttempts {
		return fmt.Sprintf("Delivery failed %d times and is not tried again; the files stay available for download here.", len(attempts))
	}
	return fmt.Sprintf("Delivery is tried again automatically (at most %d attempts within 24 hours).", reports.MaxDeliveryAttempts)
}

// linkQuery returns a signed link's exp and sig, each "" (which no link check takes)
// unless given exactly once: a link has one spelling.
func linkQuery(c *fiber.Ctx) (exp, sig string) {
	args := c.Context().QueryArgs()
	one := func(name string) string {
		if vs := args.PeekMulti(name); len(vs) == 1 {
			return string(vs[0])
		}
		return ""
	}
	return one("exp"), one("sig")
}

// DownloadReportFile serves a file through its signed link, self-audited as
// report.download: a changed link or another organization's is 404, an expired one 410.
func DownloadReportFile(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		return serveReportFile(c, d, v.OrgID, ActorOf(c))
	}
}

func serveReportFile(c *fiber.Ctx, d ReportDeps, org string, by models.Actor) error {
	exec, format := strings.Clone(c.Params("id")), strings.Clone(c.Params("format"))
	exp, sig := linkQuery(c)
	if err := d.Links.Check(org, exec, format, exp, sig); err != nil {
		if errors.Is(err, reports.ErrLinkExpired) {
			return fiber.NewError(fiber.StatusGone, "this download link has expired: open the report again for a fresh link")
		}
		return err
	}
	ctx := context.WithoutCancel(c.UserContext())
	f, rc, err := d.Store.OpenFile(ctx, org, exec, format)
	if we := (*reports.WithdrawnError)(nil); errors.As(err, &we) {
		return fiber.NewError(fiber.StatusGone, we.Error())
	}
	if err != nil {
		return err
	}
	err = d.Audit.Record(ctx, models.AuditEntry{Org: org, Action: reports.ActionDownload, Actor: by,
		TargetType: "report_file", TargetID: exec + "/" + format, Outcome: "Report file " + f.Name + " downloaded",
		Details: map[string]any{"execution": exec, "format": format, "size": f.Size, "sha256": f.SHA256}})
	if err != nil {
		rc.Close()
		return err
	}
	c.Set(fiber.HeaderContentType, f.ContentType)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+url.PathEscape(f.Name)+`"`)
	c.Set("X-Content-SHA256", f.SHA256)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Response().SetBodyStream(rc, int(f.Size))
	return nil
}

// apiReportRequest is POST /api/v1/reports's body. The times are read by the handler so
// a bad one is refused naming its field.
type apiReportRequest struct {
	TemplateID     string   `json:"template_id"`
	Type           string   `json:"type"`
	From           string   `json:"from"`
	To             string   `json:"to"`
	Formats        []string `json:"formats"`
	Action         string   `json:"action"`
	Status         string   `json:"status"`
	Principal      string   `json:"principal"`
	ResourceType   string   `json:"resource_type"`
	ResourceID     string   `json:"resource_id"`
	Classification string   `json:"classification"`
	Patient        string   `json:"patient"`
}

// apiReportFields are the members of a report request; with template_id only formats may
// be given beside it (the template sets the rest).
var apiReportFields = map[string]bool{"template_id": true, "type": true, "from": true, "to": true, "formats": true,
	"action": true, "status": true, "principal": true, "resource_type": true, "resource_id": true, "classification": true,
	"patient": true}

// decodeReportRequest reads body as exactly one JSON object of known members, each given
// once, in valid text (see checkStrictJSON), and returns a KindInvalid error naming the
// member (or "body") at fault.
func decodeReportRequest(body []byte) (apiReportRequest, error) {
	var req apiReportRequest
	if err := checkStrictJSON(body); err != nil {
		return req, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var members map[string]json.RawMessage
	if err := dec.Decode(&members); err != nil || members == nil {
		return req, models.Invalid("body", "must be one JSON object of template_id or type, from, to, formats and filters")
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, models.Invalid("body", "must hold one JSON object and nothing after it")
	}
	names := make([]string, 0, len(members))
	for k := range members {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if !apiReportFields[k] {
			return req, models.Invalid(k, "is not a member of a report request")
		}
	}
	if _, ok := members["template_id"]; ok {
		for _, k := range names {
			if k != "template_id" && k != "formats" {
				return req, models.Invalid(k, "must not be given with template_id: the template sets it (only formats may be given beside it)")
			}
		}
	}
	for _, k := range names {
		if err := json.Unmarshal(members[k], reportMember(&req, k)); err != nil {
			want := "a string"
			if k == "formats" {
				want = "an array of format names"
			}
			return req, models.Invalid(k, "must be "+want)
		}
	}
	return req, nil
}

// reportMember is where member k of a report request is decoded.
func reportMember(r *apiReportRequest, k string) any {
	return map[string]any{"template_id": &r.TemplateID, "type": &r.Type, "from": &r.From, "to": &r.To, "formats": &r.Formats,
		"action": &r.Action, "status": &r.Status, "principal": &r.Principal, "resource_type": &r.ResourceType,
		"resource_id": &r.ResourceID, "classification": &r.Classification, "patient": &r.Patient}[k]
}

// apiTime reads an RFC 3339 time (or a YYYY-MM-DD day, UTC) of field; "" is the zero time.
func apiTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, models.Invalid(field, "must be an RFC 3339 time such as 2026-11-01T00:00:00Z, or a date YYYY-MM-DD (UTC)")
}

// apiExecution is an execution in the API.
type apiExecution struct {
	ID          string                    `json:"id"`
	Status      string                    `json:"status"`
	Type        string                    `json:"type"`
	From        time.Time                 `json:"from"`
	To          time.Time                 `json:"to"`
	Formats     []string                  `json:"formats"`
	StartedAt   time.Time                 `json:"started_at"`
	DurationMS  *int64                    `json:"duration_ms"`
	Records     *int64                    `json:"records_processed"`
	Progress    int64                     `json:"progress"`
	Error       string                    `json:"error,omitempty"`
	Files       []apiReportFile           `json:"files"`
	Integrity   *reports.IntegritySummary `json:"integrity,omitempty"`
	Deliveries  []reports.DeliveryAttempt `json:"delivery_attempts"`
	ScheduleID  string                    `json:"schedule_id,omitempty"`
	TemplateID  string                    `json:"template_id,omitempty"`
	RequestedBy string                    `json:"requested_by"`
}

type apiReportFile struct {
	Format      string    `json:"format"`
	Name        string    `json:"name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	URL         string    `json:"url"`
	Expires     time.Time `json:"expires_at"`
}

func newAPIExecution(d ReportDeps, e *reports.Execution) apiExecution {
	out := apiExecution{ID: e.ID, Status: e.Status, Type: e.Type, From: e.Criteria.From, To: e.Criteria.To, Formats: e.Formats,
		StartedAt: e.StartedAt, DurationMS: e.DurationMS, Records: e.Records, Progress: e.Progress, Error: e.Error,
		Files: []apiReportFile{}, Integrity: e.Integrity, Deliveries: e.Deliveries, ScheduleID: e.ScheduleID,
		TemplateID: e.TemplateID, RequestedBy: e.RequestedBy}
	if out.Deliveries == nil {
		out.Deliveries = []reports.DeliveryAttempt{}
	}
	for _, f := range e.Files {
		out.Files = append(out.Files, apiReportFile{Format: f.Format, Name: f.Name, ContentType: f.ContentType, Size: f.Size,
			SHA256: f.SHA256, Expires: d.Now().Add(reports.LinkTTL).UTC().Truncate(time.Second),
			URL: "/api/v1/reports/" + e.ID + "/files/" + f.Format + "?" + d.Links.Query(e.Org, e.ID, f.Format, reports.LinkTTL)})
	}
	return out
}

func apiActor(c *fiber.Ctx) models.Actor {
	k := render.APIKeyOf(c)
	return models.Actor{System: "apikey:" + strconv.FormatInt(k.ID, 10), IP: strings.Clone(c.IP())}
}

// APIRunReport starts a report (a template, or an ad-hoc type and period) and answers 202
// with the execution.
func APIRunReport(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		org := render.APIKeyOf(c).OrganizationID
		req, err := decodeReportRequest(c.Body())
		if err != nil {
			return err
		}
		run := reports.RunRequest{TemplateID: req.TemplateID, Formats: req.Formats}
		if req.TemplateID == "" {
			from, err := apiTime("from", req.From)
			if err != nil {
				return err
			}
			to, err := apiTime("to", req.To)
			if err != nil {
				return err
			}
			from, to = period(from, to, d.Now())
			run.Criteria = reports.Criteria{Type: req.Type, From: from, To: to, Filters: reports.Filters{Action: req.Action,
				Status: req.Status, Principal: req.Principal, ResourceType: req.ResourceType, ResourceID: req.ResourceID,
				Classification: req.Classification, Patient: req.Patient}}
			if len(run.Formats) == 0 {
				run.Formats = []string{reports.FormatCSV}
			}
		}
		e, err := d.Runner.Start(c.UserContext(), org, run, apiActor(c))
		if err != nil {
			return evidenceRefusal(err)
		}
		c.Location("/api/v1/reports/" + e.ID)
		return c.Status(fiber.StatusAccepted).JSON(newAPIExecution(d, e))
	}
}

// APIGetReport answers an execution's status, progress and files with download links.
func APIGetReport(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		org := render.APIKeyOf(c).OrganizationID
		e, err := d.Store.Execution(c.UserContext(), org, c.Params("id"))
		if err != nil {
			return err
		}
		return c.JSON(newAPIExecution(d, e))
	}
}

// APIDownloadReport serves a file through its signed link, as the console's download.
func APIDownloadReport(d ReportDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		return serveReportFile(c, d, render.APIKeyOf(c).OrganizationID, apiActor(c))
	}
}
