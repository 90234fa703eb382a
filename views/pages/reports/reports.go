// Package reports renders the reports area: running a report, templates, schedules and
// executions with their progress and downloads.
package reports

import (
	"auditdb/views/components"
	"time"
)

// RunForm is the ad-hoc report form's values (kept when it is shown again with an error).
type RunForm struct {
	Type, From, To                                               string
	Action, Status, Principal, ResourceType, ResourceID, Patient string
	Classification                                               string
	Formats                                                      map[string]bool
}

// TemplateForm is the new-template form's values.
type TemplateForm struct {
	Name, Type, PeriodDays, Description                          string
	Action, Status, Principal, ResourceType, ResourceID, Patient string
	Classification                                               string
	Formats                                                      map[string]bool
}

// ScheduleForm is the new-schedule form's values.
type ScheduleForm struct {
	Name, TemplateID, Frequency, Weekday, Day, Time, TimeZone string
	Delivery, WebhookURL, Emails                              string
}

// TemplateRow is one template in the list.
type TemplateRow struct {
	ID, Name, Type, Period, Formats, Filters string
	RunAction, DeleteAction, EditHref        string // "" when the viewer may not
}

// ScheduleRow is one schedule in the list.
type ScheduleRow struct {
	ID, Name, Template, When, Delivery   string
	NextRun, LastRun                     *time.Time // nil: none (disabled) and never
	Enabled                              bool
	ToggleAction, DeleteAction, EditHref string // "" when the viewer may not
}

// ScheduleEditProps is the view model of a schedule's edit page; Options holds the
// choices (templates, frequencies, weekdays).
type ScheduleEditProps struct {
	CSRF, Action string
	Error        *components.FormError
	Options      IndexProps
	Form         ScheduleForm
}

// FileRow is one file of an execution, with its download link.
type FileRow struct {
	Format, Name, Size, SHA256, Href string
	// Withdrawn, when set, replaces the link: the content was deleted (e.g. by an erasure).
	Withdrawn string
}

// ExecutionRow is one execution, formatted.
type ExecutionRow struct {
	ID, Href, Type, Status, Duration, Records, Progress, Error, RequestedBy string
	From, To, Started                                                       time.Time // the period, and when it started
	Running                                                                 bool
	Files                                                                   []FileRow
}

// IndexProps is the view model of /reports.
type IndexProps struct {
	CSRF, Flash string
	// Error is the refusal of the form named by ErrorForm (run, template or schedule).
	Error                        *components.FormError
	ErrorForm                    string
	CanRun, CanCreate, CanUpdate bool
	CanDelete                    bool
	Types, Formats, Frequencies  []components.Option
	Weekdays, Classifications    []components.Option
	Statuses, TemplateOptions    []components.Option
	Run                          RunForm
	Template                     TemplateForm
	Schedule                     ScheduleForm
	Templates                    []TemplateRow
	Schedules                    []ScheduleRow
	Executions                   []ExecutionRow
	EvidenceAvailable            bool
	// NewSecret is the signing secret of the webhook schedule NewSecretSchedule just
	// saved, shown this once.
	NewSecret, NewSecretSchedule string
}

// ScheduleUse is one schedule that runs the template being edited.
type ScheduleUse struct {
	Name, When, Delivery string
	Enabled              bool
}

// TemplateEditProps is the view model of a template's edit page: the form (the options
// come from Options), and the schedules that run the template.
type TemplateEditProps struct {
	CSRF    string
	ID      string
	Action  string
	Error   *components.FormError
	Options IndexProps
	Form    TemplateForm
	UsedBy  []ScheduleUse
}

// Pair is a labelled value.
type Pair struct{ Name, Value string }

// DeliveryRow is one delivery attempt.
type DeliveryRow struct {
	At                    time.Time
	Kind, Target, Outcome string
	OK                    bool
}

// ExecutionProps is the view model of one execution's page, which polls itself while the
// execution runs.
type ExecutionProps struct {
	E ExecutionRow
	// DeliveryNote says what happens next to a delivery that has not succeeded ("" when
	// one did or none is due).
	DeliveryNote string
	Criteria     []Pair
	Integrity    []Pair
	Deliveries   []DeliveryRow
	PollURL      string
}

func errorFor(p IndexProps, form string) *components.FormError {
	if p.ErrorForm == form {
		return p.Error
	}
	return nil
}
