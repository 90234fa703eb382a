// Package reports builds the compliance reports of an organization: the five report types
// over a period and the events list's filters, aggregated in SQL; their formats (CSV
// streamed row by row, PDF, JSON, XML); templates, schedules and executions with their
// stored files; and the signed download links. It imports models and nothing above it.
package reports

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"auditdb/models"
)

// Report types.
const (
	TypeHIPAA         = "HIPAA_AUDIT_TRAIL"
	TypeGDPR          = "GDPR_PROCESSING_ACTIVITIES"
	TypeGeneral       = "GENERAL_COMPLIANCE"
	TypeIntegrity     = "INTEGRITY_VERIFICATION"
	TypePatientAccess = "PATIENT_ACCESS"
)

// Types are the report types, in the order the console offers them.
var Types = []string{TypeHIPAA, TypeGDPR, TypeGeneral, TypeIntegrity, TypePatientAccess}

// TypeTitles name each type for people.
var TypeTitles = map[string]string{
	TypeHIPAA:         "HIPAA audit trail",
	TypeGDPR:          "GDPR processing activities",
	TypeGeneral:       "General compliance",
	TypeIntegrity:     "Integrity verification",
	TypePatientAccess: "Patient access (accounting of disclosures)",
}

// Formats a report is produced in. Evidence is the offline-verifiable bundle, produced by
// the Runner's Evidence function when one is set.
const (
	FormatCSV      = "csv"
	FormatPDF      = "pdf"
	FormatJSON     = "json"
	FormatXML      = "xml"
	FormatEvidence = "evidence"
)

// Formats are every format, in the order the console offers them.
var Formats = []string{FormatCSV, FormatPDF, FormatJSON, FormatXML, FormatEvidence}

// DefaultPeriodDays is the period a report covers when none is given: the last 30 days.
const DefaultPeriodDays = 30

// MaxPeriodYears is the longest period a report may cover.
const MaxPeriodYears = 5

// HighVolume is the number of events in a period above which a HIPAA report flags a
// principal as high-volume access.
const HighVolume = 100

// FHIRClinical are the FHIR resource types whose access is access to PHI whatever the
// event's classification.
var FHIRClinical = []string{"Patient", "Encounter", "Observation", "Condition", "DiagnosticReport",
	"MedicationRequest", "MedicationStatement", "Procedure", "AllergyIntolerance", "Immunization",
	"CarePlan", "DocumentReference", "ServiceRequest", "Specimen", "ImagingStudy"}

// ErrEvidenceUnavailable is returned when the evidence format is asked for and this
// server has no bundle writer.
var ErrEvidenceUnavailable = errors.New("evidence bundles are not available")

// Filters narrow a report's events as the events list does, plus the patient of a
// PATIENT_ACCESS report. Empty means "any".
type Filters struct {
	Action         string `json:"action,omitempty" xml:"action,omitempty"`
	Status         string `json:"status,omitempty" xml:"status,omitempty"`
	Principal      string `json:"principal,omitempty" xml:"principal,omitempty"`
	ResourceType   string `json:"resource_type,omitempty" xml:"resource_type,omitempty"`
	ResourceID     string `json:"resource_id,omitempty" xml:"resource_id,omitempty"`
	Classification string `json:"classification,omitempty" xml:"classification,omitempty"`
	Patient        string `json:"patient,omitempty" xml:"patient,omitempty"`
}

// Criteria are what one report covers: its type, the period [From, To) and the filters.
type Criteria struct {
	Type string    `json:"type"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	Filters
}

// LastDays returns the period of the n days before now ([now-n days, now)); n <= 0 is the
// default period.
func LastDays(now time.Time, n int) (from, to time.Time) {
	if n <= 0 {
		n = DefaultPeriodDays
	}
	now = now.UTC().Truncate(time.Second)
	return now.AddDate(0, 0, -n), now
}

// ValidType returns a KindInvalid error naming field unless t is a report type.
func ValidType(field, t string) error {
	for _, x := range Types {
		if x == t {
			return nil
		}
	}
	return models.Invalid(field, "must be one of "+strings.Join(Types, ", "))
}

// ValidFormats returns a KindInvalid error naming field unless formats holds at least one
// format and only known ones, each once.
func ValidFormats(field string, formats []string) error {
	if len(formats) == 0 {
		return models.Invalid(field, "choose at least one format")
	}
	seen := map[string]bool{}
	for _, f := range formats {
		known := false
		for _, x := range Formats {
			known = known || x == f
		}
		if !known {
			return models.Invalid(field, fmt.Sprintf("unknown format %q: must be one of %s", f, strings.Join(Formats, ", ")))
		}
		if seen[f] {
			return models.Invalid(field, fmt.Sprintf("format %s is listed twice", f))
		}
		seen[f] = true
	}
	return nil
}

// EarliestFrom is the earliest start a report's period may have: no audit event is older.
var EarliestFrom = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxAhead is how far past now a report's period may reach (clocks differ; a period
// wholly in the future is a mistake).
const MaxAhead = 24 * time.Hour

// ValidateAt is Validate, and also refuses (naming the field) a period that starts before
// EarliestFrom or reaches more than MaxAhead past now: the check of a period someone asks
// for. A start out of range is blamed on from before the period's length is checked, so
// an old from without a to is not taken for a to too far from it.
func (c Criteria) ValidateAt(now time.Time) error {
	if err := ValidType("type", c.Type); err != nil {
		return err
	}
	limit := now.Add(MaxAhead)
	if !c.From.IsZero() && c.From.Before(EarliestFrom) {
		return models.Invalid("from", "must be on or after 2000-01-01")
	}
	if c.From.After(limit) {
		return models.Invalid("from", "must be at most a day in the future")
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if c.To.After(limit) {
		return models.Invalid("to", "must be at most a day in the future")
	}
	return nil
}

// Validate returns a KindInvalid error naming the first bad field: an unknown type, a
// period whose end is not after its start or longer than MaxPeriodYears, a bad filter, or
// a PATIENT_ACCESS report without its patient.
func (c Criteria) Validate() error {
	if err := ValidType("type", c.Type); err != nil {
		return err
	}
	if c.From.IsZero() || c.To.IsZero() {
		return models.Invalid("from", "a period is required")
	}
	if !c.From.Before(c.To) {
		return models.Invalid("to", "the period's end must be after its start")
	}
	if c.From.AddDate(MaxPeriodYears, 0, 0).Before(c.To) {
		return models.Invalid("to", fmt.Sprintf("the period may be at most %d years", MaxPeriodYears))
	}
	if err := c.EventFilter().Validate(); err != nil {
		return err
	}
	if !utf8.ValidString(c.Patient) || strings.ContainsRune(c.Patient, 0) || utf8.RuneCountInString(c.Patient) > 255 {
		return models.Invalid("patient", "must be valid text of at most 255 characters")
	}
	if c.Type == TypePatientAccess && strings.TrimSpace(c.Patient) == "" {
		return models.Invalid("patient", "a patient access report needs the patient's id")
	}
	return nil
}

// EventFilter is the events list's filter for c's period and filters.
func (c Criteria) EventFilter() models.EventFilter {
	return models.EventFilter{
		From: c.From.UTC(), To: c.To.UTC(),
		Action: c.Action, Status: c.Status, PrincipalID: c.Principal,
		ResourceType: c.ResourceType, ResourceID: c.ResourceID, Classification: c.Classification,
		ExcludeRestricted: true,
	}
}

// Narrowed reports whether any filter is set.
func (f Filters) Narrowed() bool { return f != Filters{} }

// Pairs lists the criteria for people: type, period and each filter that is set.
func (c Criteria) Pairs() []Pair {
	out := []Pair{
		{"Report type", c.Type},
		{"Period from", c.From.UTC().Format(time.RFC3339)},
		{"Period to (exclusive)", c.To.UTC().Format(time.RFC3339)},
	}
	for _, p := range []Pair{
		{"Action", c.Action}, {"Status", c.Status}, {"Principal", c.Principal},
		{"Resource type", c.ResourceType}, {"Resource id", c.ResourceID},
		{"Classification", c.Classification}, {"Patient", c.Patient},
	} {
		if p.Value != "" {
			out = append(out, p)
		}
	}
	switch c.Type {
	case TypeHIPAA:
		out = append(out, Pair{"PHI", "classification PHI or a FHIR clinical resource type"},
			Pair{"High-volume", fmt.Sprintf("more than %d events in the period", HighVolume)})
	case TypePatientAccess:
		out = append(out, Pair{"Patient's records", "events on resource Patient/<id>, or whose details name the patient (patientId)"})
	}
	return out
}

// scope returns the condition selecting the events of c in org's audit_log and its
// arguments: the events list's filter plus the type's own selection.
func (c Criteria) scope(org string) (string, []any) {
	where, args := models.FilterSQL(org, c.EventFilter())
	switch c.Type {
	case TypeHIPAA:
		args = append(args, FHIRClinical)
		where += fmt.Sprintf(` AND (data_classification = 'PHI' OR target_resource_type = ANY($%d))`, len(args))
	case TypePatientAccess:
		args = append(args, c.Patient)
		n := len(args)
		where += fmt.Sprintf(` AND ((target_resource_type = 'Patient' AND target_resource_id = $%d) OR details->>'patientId' = $%d)`, n, n)
	}
	return where, args
}
