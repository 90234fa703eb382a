package reports

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"auditdb/models"
)

// Self-audit actions of the reports area.
const (
	ActionTemplateCreate = "report.template.create"
	ActionTemplateUpdate = "report.template.update"
	ActionTemplateDelete = "report.template.delete"
	ActionScheduleCreate = "report.schedule.create"
	ActionScheduleUpdate = "report.schedule.update"
	ActionScheduleDelete = "report.schedule.delete"
	ActionRun            = "report.run"
	ActionDownload       = "report.download"
)

// Execution statuses.
const (
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// MaxPeriodDays is the longest relative period a template may name (five years).
const MaxPeriodDays = 5*365 + 1

// Template is a saved report: a type, filters, a relative period and formats.
type Template struct {
	ID          string
	Name        string
	Description string
	Type        string
	Filters     Filters
	PeriodDays  int
	Formats     []string
	CreatedBy   string
	UpdatedAt   time.Time
}

// TemplateInput is a template as a form or the API gives it.
type TemplateInput struct {
	Name        string
	Description string
	Type        string
	Filters     Filters
	PeriodDays  int
	Formats     []string
}

// Validate returns a KindInvalid error naming the first bad field.
func (in TemplateInput) Validate() error {
	name := strings.TrimSpace(in.Name)
	if name == "" || utf8.RuneCountInString(name) > 255 || !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return models.Invalid("name", "a name of 1 to 255 characters is required")
	}
	if models.HasFormatChar(name) {
		return models.FormatCharError("name", name)
	}
	if utf8.RuneCountInString(in.Description) > 2000 || !utf8.ValidString(in.Description) || strings.ContainsRune(in.Description, 0) {
		return models.Invalid("description", "must be valid text of at most 2000 characters")
	}
	if in.PeriodDays < 1 || in.PeriodDays > MaxPeriodDays {
		return models.Invalid("period_days", fmt.Sprintf("must be from 1 to %d days", MaxPeriodDays))
	}
	from, to := LastDays(time.Now(), in.PeriodDays)
	if err := (Criteria{Type: in.Type, From: from, To: to, Filters: in.Filters}).Validate(); err != nil {
		return err
	}
	return ValidFormats("formats", in.Formats)
}

// Criteria returns the template's criteria for a run at now.
func (t Template) Criteria(now time.Time) Criteria {
	from, to := LastDays(now, t.PeriodDays)
	return Criteria{Type: t.Type, From: from, To: to, Filters: t.Filters}
}

// Delivery is where a schedule's files go besides the download list: nowhere else
// ("download", the default), a webhook or email addresses.
type Delivery struct {
	Kind   string   `json:"kind"`
	URL    string   `json:"url,omitempty"`
	Emails []string `json:"emails,omitempty"`
	// Secret signs a webhook's deliveries (X-Auditdb-Signature); made when the schedule is
	// saved, shown once, never recorded in the audit log.
	Secret string `json:"secret,omitempty"`
}

// Delivery kinds.
const (
	DeliverDownload = "download"
	DeliverWebhook  = "webhook"
	DeliverEmail    = "email"
)

// MaxEmails is how many addresses one schedule delivers to.
const MaxEmails = 10

// Validate returns a KindInvalid error naming the first bad field. A webhook's address is
// resolved and checked when the schedule is saved (Store.Resolver) and again at each
// delivery (loopback, private, link-local, multicast and unspecified addresses refused).
func (d Delivery) Validate() error {
	switch d.Kind {
	case "", DeliverDownload:
	case DeliverWebhook:
		// Only the form here: the address rule (https to public addresses) is
		// models.CheckReportWebhookURL's, at save (Store.Resolver) and at each delivery.
		if len(d.URL) > 2000 || !(strings.HasPrefix(d.URL, "https://") || strings.HasPrefix(d.URL, "http://")) {
			return models.Invalid("webhook_url", "must be an https:// address of at most 2000 characters")
		}
	case DeliverEmail:
		if len(d.Emails) == 0 || len(d.Emails) > MaxEmails {
			return models.Invalid("emails", fmt.Sprintf("give 1 to %d email addresses", MaxEmails))
		}
		for _, e := range d.Emails {
			if !models.ValidEmail(e) {
				return models.Invalid("emails", fmt.Sprintf("%q is not an email address", e))
			}
		}
	default:
		return models.Invalid("delivery", "must be download, webhook or email")
	}
	return nil
}

// ScheduledReport is a template run on a schedule.
type ScheduledReport struct {
	ID           string
	Name         string
	TemplateID   string
	TemplateName string
	Schedule     Schedule
	Delivery     Delivery
	Enabled      bool
	LastRun      *time.Time
	NextRun      *time.Time
}

// ScheduleInput is a schedule as a form gives it.
type ScheduleInput struct {
	Name       string
	TemplateID string
	Schedule   Schedule
	Delivery   Delivery
	Enabled    bool
}

// File is one file an execution produced.
type File struct {
	Format      string `json:"format"`
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	StoredSize  int64  `json:"stored_size"`
	SHA256      string `json:"sha256"`
	// Withdrawn, when set, says why the file's content was deleted (an erasure: "withdrawn
	// after GDPR erasure <request>"); its metadata stays, its download answers 410.
	Withdrawn string `json:"withdrawn,omitempty"`
}

// DeliveryAttempt is one try to deliver an execution's files.
type DeliveryAttempt struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Target string    `json:"target"`
	OK     bool      `json:"ok"`
	Error  string    `json:"error,omitempty"`
}

// Execution is one run of a report.
type Execution struct {
	ID            string
	Org           string
	ScheduleID    string
	TemplateID    string
	Type          string
	Criteria      Criteria
	Formats       []string
	Status        string
	ScheduledTime time.Time
	StartedAt     time.Time
	DurationMS    *int64
	Records       *int64
	Progress      int64
	Files         []File
	Integrity     *IntegritySummary
	Deliveries    []DeliveryAttempt
	Error         string
	RequestedBy   string
}

// Store keeps one organization's templates, schedules and executions; every method takes
// the organization and every query filters by it.
type Store struct {
	db    *gorm.DB
	trail *models.AuditTrail
	Now   func() time.Time
	// Resolver, when set, resolves a webhook's host when a schedule is saved and refuses
	// addresses a report webhook may not reach (models.CheckReportWebhookURL).
	Resolver models.Resolver
}

// NewStore returns a store over db whose changes are self-audited through trail.
func NewStore(db *gorm.DB, trail *models.AuditTrail) *Store {
	return &Store{db: db, trail: trail, Now: time.Now}
}

func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

type templateRow struct {
	ID                  string
	Name                string
	Description         *string
	ReportType          string
	DefaultCriteria     []byte
	DefaultExportConfig []byte
	CreatedBy           *string
	UpdatedAt           time.Time
}

type templateCriteria struct {
	Filters    Filters `json:"filters"`
	PeriodDays int     `json:"period_days"`
}

type exportConfig struct {
	Formats []string `json:"formats"`
}

func (r templateRow) template() Template {
	t := Template{ID: r.ID, Name: r.Name, Type: r.ReportType, UpdatedAt: r.UpdatedAt}
	if r.Description != nil {
		t.Description = *r.Description
	}
	if r.CreatedBy != nil {
		t.CreatedBy = *r.CreatedBy
	}
	var c templateCriteria
	_ = json.Unmarshal(r.DefaultCriteria, &c)
	t.Filters, t.PeriodDays = c.Filters, c.PeriodDays
	var e exportConfig
	_ = json.Unmarshal(r.DefaultExportConfig, &e)
	t.Formats = e.Formats
	return t
}

const templateColumns = `id, name, description, report_type, default_criteria, default_export_config, created_by, updated_at`

// Templates returns org's active templates by name.
func (s *Store) Templates(ctx context.Context, org string) ([]Template, error) {
	var rows []templateRow
	err := s.db.WithContext(ctx).Raw(`SELECT `+templateColumns+` FROM report_templates
		WHERE organization_id = ? AND is_active ORDER BY name, id`, org).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("reports: list templates: %w", err)
	}
	out := make([]Template, len(rows))
	for i, r := range rows {
		out[i] = r.template()
	}
	return out, nil
}

// Template returns org's template id; a KindNotFound error when there is none (another
// organization's template included).
func (s *Store) Template(ctx context.Context, org, id string) (*Template, error) {
	return templateOf(s.db.WithContext(ctx), org, id)
}

func templateOf(db *gorm.DB, org, id string) (*Template, error) {
	var rows []templateRow
	err := db.Raw(`SELECT `+templateColumns+` FROM report_templates WHERE organization_id = ? AND id = ? AND is_active`,
		org, id).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("reports: get template: %w", err)
	}
	if len(rows) == 0 {
		return nil, models.NotFound("report template")
	}
	t := rows[0].template()
	return &t, nil
}

// SaveTemplate creates a template (id "") or changes org's template id, self-audited in
// the same transaction. It returns a KindInvalid error for bad input and KindNotFound for
// an id org does not have.
func (s *Store) SaveTemplate(ctx context.Context, org, id string, in TemplateInput, by models.Actor) (*Template, error) {
	in.Name = strings.TrimSpace(in.Name)
	if err := in.Validate(); err != nil {
		return nil, err
	}
	crit, _ := json.Marshal(templateCriteria{Filters: in.Filters, PeriodDays: in.PeriodDays})
	exp, _ := json.Marshal(exportConfig{Formats: in.Formats})
	now := s.Now().UTC()
	var saved *Template
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		action := ActionTemplateUpdate
		var before any // nil for a new template
		if id == "" {
			action, id = ActionTemplateCreate, newID("tpl_")
			if err := tx.Exec(`INSERT INTO report_templates (id, name, description, organization_id, report_type,
				default_criteria, default_format, default_export_config, created_at, created_by, updated_at, updated_by)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, in.Name, in.Description, org, in.Type, crit, in.Formats[0],
				exp, now, by.Principal(), now, by.Principal()).Error; err != nil {
				return fmt.Errorf("reports: create template: %w", err)
			}
		} else {
			// The row is locked for the change, so the recorded "before" is what it replaced.
			var rows []templateRow
			if err := tx.Raw(`SELECT `+templateColumns+` FROM report_templates WHERE organization_id = ? AND id = ? AND is_active
				FOR UPDATE`, org, id).Scan(&rows).Error; err != nil {
				return fmt.Errorf("reports: get template: %w", err)
			}
			if len(rows) == 0 {
				return models.NotFound("report template")
			}
			before = rows[0].template().snapshot()
			res := tx.Exec(`UPDATE report_templates SET name = ?, description = ?, report_type = ?, default_criteria = ?,
				default_format = ?, default_export_config = ?, updated_at = ?, updated_by = ?
				WHERE organization_id = ? AND id = ? AND is_active`, in.Name, in.Description, in.Type, crit, in.Formats[0], exp,
				now, by.Principal(), org, id)
			if res.Error != nil {
				return fmt.Errorf("reports: update template: %w", res.Error)
			}
			// Schedules keep a copy of the template's type and first format: follow it.
			if err := tx.Exec(`UPDATE scheduled_reports SET report_type = ?, format = ? WHERE organization_id = ? AND template_id = ?`,
				in.Type, in.Formats[0], org, id).Error; err != nil {
				return fmt.Errorf("reports: update template's schedules: %w", err)
			}
		}
		var err error
		if saved, err = templateOf(tx, org, id); err != nil {
			return err
		}
		return s.trail.RecordTx(ctx, tx, models.AuditEntry{Org: org, Action: action, Actor: by,
			TargetType: "report_template", TargetID: id, Outcome: "Report template " + in.Name + " saved",
			Details: map[string]any{"type": in.Type, "formats": in.Formats, "period_days": in.PeriodDays, "filters": in.Filters},
			Change:  &models.ConfigChange{Field: "report_template." + id, Previous: before, New: saved.snapshot()}})
	})
	return saved, err
}

// templateSnapshot is what the audit log and config_change_event keep of a template.
type templateSnapshot struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Type        string   `json:"type"`
	Filters     Filters  `json:"filters"`
	PeriodDays  int      `json:"period_days"`
	Formats     []string `json:"formats"`
}

func (t Template) snapshot() templateSnapshot {
	return templateSnapshot{Name: t.Name, Description: t.Description, Type: t.Type, Filters: t.Filters, PeriodDays: t.PeriodDays,
		Formats: t.Formats}
}

// SchedulesOf returns org's schedules that run template id, by name (none for another
// organization's template).
func (s *Store) SchedulesOf(ctx context.Context, org, id string) ([]ScheduledReport, error) {
	var rows []scheduleRow
	if err := s.db.WithContext(ctx).Raw(scheduleSelect+`WHERE s.organization_id = ? AND s.template_id = ? ORDER BY s.name, s.id`,
		org, id).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("reports: schedules of template: %w", err)
	}
	out := make([]ScheduledReport, len(rows))
	for i, r := range rows {
		out[i] = r.scheduled()
	}
	return out, nil
}

// DeleteTemplate deletes org's template id (its schedules go with it), self-audited. It
// returns a KindNotFound error for an id org does not have.
func (s *Store) DeleteTemplate(ctx context.Context, org, id string, by models.Actor) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		t, err := templateOf(tx, org, id)
		if err != nil {
			return err
		}
		if err := tx.Exec(`DELETE FROM scheduled_reports WHERE organization_id = ? AND template_id = ?`, org, id).Error; err != nil {
			return fmt.Errorf("reports: delete template's schedules: %w", err)
		}
		if err := tx.Exec(`DELETE FROM report_templates WHERE organization_id = ? AND id = ?`, org, id).Error; err != nil {
			return fmt.Errorf("reports: delete template: %w", err)
		}
		return s.trail.RecordTx(ctx, tx, models.AuditEntry{Org: org, Action: ActionTemplateDelete, Actor: by,
			TargetType: "report_template", TargetID: id, Outcome: "Report template " + t.Name + " deleted"})
	})
}

type scheduleRow struct {
	ID           string
	Name         string
	TemplateID   *string
	TemplateName *string
	Schedule     []byte
	Delivery     []byte
	Enabled      bool
	LastRun      *time.Time
	NextRun      *time.Time
}

func (r scheduleRow) scheduled() ScheduledReport {
	out := ScheduledReport{ID: r.ID, Name: r.Name, Enabled: r.Enabled, LastRun: r.LastRun, NextRun: r.NextRun}
	if r.TemplateID != nil {
		out.TemplateID = *r.TemplateID
	}
	if r.TemplateName != nil {
		out.TemplateName = *r.TemplateName
	}
	_ = json.Unmarshal(r.Schedule, &out.Schedule)
	_ = json.Unmarshal(r.Delivery, &out.Delivery)
	if out.Delivery.Kind == "" {
		out.Delivery.Kind = DeliverDownload
	}
	return out
}

const scheduleSelect = `SELECT s.id, s.name, s.template_id, t.name AS template_name, s.schedule, s.delivery, s.enabled,
	s.last_run, s.next_run FROM scheduled_reports s LEFT JOIN report_templates t ON t.id = s.template_id `

// Schedules returns org's schedules by name.
func (s *Store) Schedules(ctx context.Context, org string) ([]ScheduledReport, error) {
	var rows []scheduleRow
	if err := s.db.WithContext(ctx).Raw(scheduleSelect+`WHERE s.organization_id = ? ORDER BY s.name, s.id`, org).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("reports: list schedules: %w", err)
	}
	out := make([]ScheduledReport, len(rows))
	for i, r := range rows {
		out[i] = r.scheduled()
	}
	return out, nil
}

// ScheduledReport returns org's schedule id, or a KindNotFound error.
func (s *Store) ScheduledReport(ctx context.Context, org, id string) (*ScheduledReport, error) {
	return scheduleOf(s.db.WithContext(ctx), org, id)
}

func scheduleOf(db *gorm.DB, org, id string) (*ScheduledReport, error) {
	var rows []scheduleRow
	if err := db.Raw(scheduleSelect+`WHERE s.organization_id = ? AND s.id = ?`, org, id).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("reports: get schedule: %w", err)
	}
	if len(rows) == 0 {
		return nil, models.NotFound("report schedule")
	}
	out := rows[0].scheduled()
	return &out, nil
}

// SaveSchedule creates a schedule (id "") or changes org's schedule id, computing its next
// run, self-audited. The template must be org's: another organization's is KindNotFound.
func (s *Store) SaveSchedule(ctx context.Context, org, id string, in ScheduleInput, by models.Actor) (*ScheduledReport, error) {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || utf8.RuneCountInString(in.Name) > 255 || !utf8.ValidString(in.Name) || strings.ContainsRune(in.Name, 0) {
		return nil, models.Invalid("name", "a name of 1 to 255 characters is required")
	}
	if models.HasFormatChar(in.Name) {
		return nil, models.FormatCharError("name", in.Name)
	}
	in.Schedule = in.Schedule.Normalize()
	if err := in.Schedule.Validate(); err != nil {
		return nil, err
	}
	if in.Delivery.Kind == "" {
		in.Delivery.Kind = DeliverDownload
	}
	if err := in.Delivery.Validate(); err != nil {
		return nil, err
	}
	if in.Delivery.Kind == DeliverWebhook {
		if s.Resolver != nil {
			if _, err := models.CheckReportWebhookURL(ctx, s.Resolver, in.Delivery.URL); err != nil {
				return nil, err
			}
		}
		if in.Delivery.Secret == "" {
			in.Delivery.Secret = "whsec_" + models.RandomToken(32)
		}
	} else {
		in.Delivery.Secret = ""
	}
	sched, _ := json.Marshal(in.Schedule)
	deliv, _ := json.Marshal(in.Delivery)
	now := s.Now().UTC()
	next := in.Schedule.Next(now)
	var saved *ScheduledReport
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		t, err := templateOf(tx, org, in.TemplateID)
		if err != nil {
			return err
		}
		action := ActionScheduleUpdate
		if id == "" {
			action, id = ActionScheduleCreate, newID("sch_")
			err = tx.Exec(`INSERT INTO scheduled_reports (id, name, organization_id, template_id, report_type, criteria, format,
				schedule, delivery, enabled, next_run, created_at, created_by, updated_at, updated_by)
				VALUES (?, ?, ?, ?, ?, '{}', ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, in.Name, org, t.ID, t.Type, t.Formats[0], sched, deliv,
				in.Enabled, next, now, by.Principal(), now, by.Principal()).Error
		} else {
			res := tx.Exec(`UPDATE scheduled_reports SET name = ?, template_id = ?, report_type = ?, format = ?, schedule = ?,
				delivery = ?, enabled = ?, next_run = ?, updated_at = ?, updated_by = ? WHERE organization_id = ? AND id = ?`,
				in.Name, t.ID, t.Type, t.Formats[0], sched, deliv, in.Enabled, next, now, by.Principal(), org, id)
			err = res.Error
			if err == nil && res.RowsAffected == 0 {
				return models.NotFound("report schedule")
			}
		}
		if err != nil {
			return fmt.Errorf("reports: save schedule: %w", err)
		}
		if saved, err = scheduleOf(tx, org, id); err != nil {
			return err
		}
		state := "paused"
		if in.Enabled {
			state = "enabled"
		}
		return s.trail.RecordTx(ctx, tx, models.AuditEntry{Org: org, Action: action, Actor: by,
			TargetType: "report_schedule", TargetID: id,
			Outcome: fmt.Sprintf("Report schedule %s saved: %s, %s", in.Name, in.Schedule.Describe(), state),
			Details: map[string]any{"template": t.ID, "schedule": in.Schedule, "delivery": in.Delivery.Kind, "enabled": in.Enabled}})
	})
	return saved, err
}

// DeleteSchedule deletes org's schedule id and its executions, self-audited.
func (s *Store) DeleteSchedule(ctx context.Context, org, id string, by models.Actor) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		sc, err := scheduleOf(tx, org, id)
		if err != nil {
			return err
		}
		if err := tx.Exec(`DELETE FROM scheduled_reports WHERE organization_id = ? AND id = ?`, org, id).Error; err != nil {
			return fmt.Errorf("reports: delete schedule: %w", err)
		}
		return s.trail.RecordTx(ctx, tx, models.AuditEntry{Org: org, Action: ActionScheduleDelete, Actor: by,
			TargetType: "report_schedule", TargetID: id, Outcome: "Report schedule " + sc.Name + " deleted"})
	})
}

type executionRow struct {
	ID               string
	OrganizationID   string
	ReportConfigID   *string
	TemplateID       *string
	ReportType       string
	Criteria         []byte
	Formats          []byte
	Status           string
	ScheduledTime    time.Time
	ExecutionTime    *time.Time
	Duration         *int64
	RecordsProcessed *int64
	Progress         int64
	ExportResult     []byte
	IntegrityReport  []byte
	DeliveryAttempts []byte
	Error            *string
	RequestedBy      *string
}

const executionColumns = `id, organization_id, report_config_id, template_id, report_type, criteria, formats, status,
	scheduled_time, execution_time, duration, records_processed, progress, export_result, integrity_report,
	delivery_attempts, error, requested_by`

func (r executionRow) execution() Execution {
	e := Execution{ID: r.ID, Org: r.OrganizationID, Type: r.ReportType, Status: r.Status, ScheduledTime: r.ScheduledTime,
		DurationMS: r.Duration, Records: r.RecordsProcessed, Progress: r.Progress}
	if r.ReportConfigID != nil {
		e.ScheduleID = *r.ReportConfigID
	}
	if r.TemplateID != nil {
		e.TemplateID = *r.TemplateID
	}
	if r.ExecutionTime != nil {
		e.StartedAt = *r.ExecutionTime
	}
	if r.Error != nil {
		e.Error = *r.Error
	}
	if r.RequestedBy != nil {
		e.RequestedBy = *r.RequestedBy
	}
	_ = json.Unmarshal(r.Criteria, &e.Criteria)
	_ = json.Unmarshal(r.Formats, &e.Formats)
	_ = json.Unmarshal(r.ExportResult, &e.Files)
	if len(r.IntegrityReport) > 0 && string(r.IntegrityReport) != "null" {
		e.Integrity = &IntegritySummary{}
		_ = json.Unmarshal(r.IntegrityReport, e.Integrity)
	}
	_ = json.Unmarshal(r.DeliveryAttempts, &e.Deliveries)
	return e
}

// Executions returns org's newest executions, at most limit.
func (s *Store) Executions(ctx context.Context, org string, limit int) ([]Execution, error) {
	var rows []executionRow
	if err := s.db.WithContext(ctx).Raw(`SELECT `+executionColumns+` FROM report_executions WHERE organization_id = ?
		ORDER BY created_at DESC, id DESC LIMIT ?`, org, limit).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("reports: list executions: %w", err)
	}
	out := make([]Execution, len(rows))
	for i, r := range rows {
		out[i] = r.execution()
	}
	return out, nil
}

// Execution returns org's execution id, or a KindNotFound error (another organization's
// included).
func (s *Store) Execution(ctx context.Context, org, id string) (*Execution, error) {
	var rows []executionRow
	if err := s.db.WithContext(ctx).Raw(`SELECT `+executionColumns+` FROM report_executions
		WHERE organization_id = ? AND id = ?`, org, id).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("reports: get execution: %w", err)
	}
	if len(rows) == 0 {
		return nil, models.NotFound("report execution")
	}
	e := rows[0].execution()
	return &e, nil
}

// clampInt32 keeps a count within the integer columns' range.
func clampInt32(n int64) int64 { return min(n, int64(1<<31-1)) }

var errNoFile = errors.New("reports: no such file")
