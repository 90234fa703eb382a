// Package events renders the audit-event list (with its htmx-swappable
// results fragment) and the single-event detail page.
package events

import (
	"fmt"
	"strconv"
	"time"

	"auditdb/views/components"
)

// FilterValues are the list's search and range as the user gave them. Q is the search
// query (qualifiers and free text); Range is a quick range key (15m, 1h, 24h, 7d, 30d,
// 1y), "custom" (From and To, datetime-local "2006-01-02T15:04" in UTC) or "query" (the
// query's created: terms set it). RangeText is the range searched, formatted.
type FilterValues struct {
	Q         string
	Range     string
	From      string
	To        string
	RangeText string
}

// IsZero reports whether no search and no range were given.
func (f FilterValues) IsZero() bool {
	return f.Q == "" && f.From == "" && f.To == "" && (f.Range == "" || f.Range == "30d")
}

// Row is one event in the list, every field already formatted for display.
type Row struct {
	ID             int64
	Href           string // link to the event's detail page (carrying the list's place)
	InPanel        bool   // with htmx, the link opens the event in the list's side panel
	Time           time.Time
	Action         string
	Status         string // attempt, success or failure
	Principal      string
	PrincipalHref  string // the list filtered by this principal; "" when already filtered
	Resource       string // e.g. "Patient/123", or "" when the event has none
	ResourceHref   string
	Classification string
	Outcome        string
}

// RangeOption is one quick range.
type RangeOption struct {
	Key, Label, Href string
}

// FieldError is a refused search or range: which field ("q", "range", "from", "to",
// "after", "before") and why.
type FieldError struct {
	Field, Message string
}

// Bar is one histogram bucket; Href narrows the range to it.
type Bar struct {
	Count int64
	Href  string
	Label string
}

// Histogram is the volume of the current query over its range.
type Histogram struct {
	Bars             []Bar
	Max              int64
	FromText, ToText string
}

// FacetValue is one clickable value of a facet; Href is "" when the query already has it.
type FacetValue struct {
	Value string
	Count int64
	Href  string
}

// Facet is the counts of one field among the matches.
type Facet struct {
	Title  string
	TestID string
	Values []FacetValue
}

// ListProps is the view model of the event list and of its results fragment.
type ListProps struct {
	Filter          FilterValues
	Error           *FieldError // a refused query or range; Rows is then empty
	Ranges          []RangeOption
	Rows            []Row
	Start           int    // the 1-based index of the first row
	SummaryHref     string // where the count, histogram and facets load from; "" for none
	NextHref        string // "" when there is no older page
	PrevHref        string // the newer page; "" on the newest page
	FirstHref       string // "" when already on the newest page
	WidenHref       string // for an empty result: the same query over a year
	ExportCSV       string // "" when the viewer may not export
	ExportJSONL     string
	BundleHref      string // the evidence bundle of the search (events, proofs, signed checkpoint); with export
	Statuses        []string
	Classifications []string
	// SaveQuery is the list's query as a saved view keeps it; with CSRF, the "Save view"
	// form posts it. "" (a refused search) hides the form.
	SaveQuery string
	CSRF      string
}

// ErrorFor returns the message of the refused field name, or "".
func (p ListProps) ErrorFor(field string) string {
	if p.Error != nil && p.Error.Field == field {
		return p.Error.Message
	}
	return ""
}

// RangeLabel is the active range as words.
func (p ListProps) RangeLabel() string {
	for _, r := range p.Ranges {
		if r.Key == p.Filter.Range {
			return "Last " + r.Label
		}
	}
	if p.Filter.Range == "query" {
		return "Set by created: in the search"
	}
	return "Custom range"
}

// SummaryProps is the view model of the list's summary: the count of the matches,
// their histogram and their facets.
type SummaryProps struct {
	Start         int   // the 1-based index of the page's first row
	Shown         int   // rows on the page
	Total         int64 // matches; an estimate unless TotalExact
	TotalExact    bool
	Histogram     Histogram
	Facets        []Facet
	FacetsSampled bool // the facets count the newest matches only
}

// CountText is "1–50 of 1,234" or "1–50 of about 12,400".
func (p SummaryProps) CountText() string {
	if p.Shown == 0 {
		return ""
	}
	end := p.Start + p.Shown - 1
	total := p.Total
	if int64(end) > total {
		total = int64(end)
	}
	about := ""
	if !p.TotalExact {
		about = "about "
		total = roundEstimate(total)
	}
	return fmt.Sprintf("%s–%s of %s%s", thousands(int64(p.Start)), thousands(int64(end)), about, thousands(total))
}

// roundEstimate keeps three significant digits of an estimate.
func roundEstimate(n int64) int64 {
	m := int64(1)
	for n/m >= 1000 {
		m *= 10
	}
	return n / m * m
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// BarHeight is a bar's height in the histogram's 0–100 coordinate space.
func (h Histogram) BarHeight(b Bar) float64 {
	if h.Max == 0 || b.Count == 0 {
		return 0
	}
	return 4 + 96*float64(b.Count)/float64(h.Max)
}

// DetailField is one labelled value on the detail page. TestID is set as
// the <dd>'s data-testid; Mono renders the value in a monospace font (ids,
// hashes).
type DetailField struct {
	Label string
	Value string
	// At, when set, is a time shown with components.Time instead of Value.
	At     *time.Time
	TestID string
	Mono   bool
}

// DetailProps is the view model of the event detail page. DetailsJSON is
// the event's details, already pretty-printed.
type DetailProps struct {
	ID          int64
	Title       string
	Fields      []DetailField
	DetailsJSON string
	BackHref    string // "" links back to /events
	FullHref    string // the event's own page (the side panel links to it)
	Integrity   IntegrityProps
}

// IntegrityProps is the view model of the event page's integrity card: where the event
// stands in the Merkle log, its latest verification and the Verify button.
type IntegrityProps struct {
	EventID      int64
	VerifyAction string // where the Verify form posts; "" hides the button (the viewer may not verify)
	CSRF         string
	// Log says where the event stands in the Merkle log, e.g. "Included in checkpoint 7".
	Log        string
	Checkpoint string // the checkpoint number, "" until one includes the event
	Last       *VerificationView
	// Fields is the commitment state of each committed field of a sha256-jcs-v2/-v3 event (none
	// for the first scheme).
	Fields []FieldStateView
}

// FieldStateView is one personal field of the integrity card: its name and commitment state.
type FieldStateView struct {
	Name   string // principalId, targetResourceId or details.<key>
	State  string // disclosed-ok, mismatch, erased or pseudonymized
	Label  string // the state in words
	Reason string // why, for a mismatch
}

// FieldStateVariant picks the badge colour for a field's commitment state.
func FieldStateVariant(state string) components.Variant {
	switch state {
	case "disclosed-ok":
		return components.Success
	case "mismatch":
		return components.Danger
	default:
		return components.Neutral
	}
}

// VerificationView is one recorded verification, formatted.
type VerificationView struct {
	Status   string // success, tampered or failure
	Reason   string
	Expected string
	Computed string
	When     time.Time
	Who      string
}

// VerificationVariant picks the alert colour for a verification status.
func VerificationVariant(status string) components.Variant {
	switch status {
	case "success":
		return components.Success
	case "tampered":
		return components.Danger
	default:
		return components.Warning
	}
}

// StatusVariant picks the badge colour for an event status.
func StatusVariant(status string) components.Variant {
	switch status {
	case "success":
		return components.Success
	case "failure":
		return components.Danger
	case "attempt":
		return components.Warning
	default:
		return components.Neutral
	}
}
