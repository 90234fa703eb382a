// Package alerts renders the alerts list (with its htmx-swappable results fragment and
// rows) and the single-alert page with its timeline.
package alerts

import (
	"strconv"
	"time"
)

// FilterValues are the list filters as the user typed them. From and To use the
// datetime-local form "2006-01-02T15:04" (UTC). The query parameter names are severity,
// type, source, state, from, to and q.
type FilterValues struct {
	Severity string
	Type     string
	Source   string
	State    string
	From     string
	To       string
	Q        string
}

// IsZero reports whether no filter is set.
func (f FilterValues) IsZero() bool { return f == FilterValues{} }

// Row is one alert in the list, every field formatted for display.
type Row struct {
	ID          string
	Href        string
	Time        time.Time // raised at
	Severity    string
	Type        string
	Source      string
	Title       string
	Description string
	State       string // active, acknowledged or resolved
	// AcknowledgeAction and ResolveAction are where the inline forms post; "" hides them
	// (the viewer may not, or the alert is past that state).
	AcknowledgeAction string
	ResolveAction     string
	CSRF              string
	Return            string // the list URL to come back to after a plain form post
	// NotesError is the reason a resolve from this row was refused, shown next to its
	// notes field; Notes is what was typed.
	NotesError string
	Notes      string
	// Selectable shows the checkbox for acknowledging several at once.
	Selectable bool
}

// ListProps is the view model of the alerts list and of its results fragment.
type ListProps struct {
	Filter     FilterValues
	Rows       []Row
	NextHref   string // "" when there is no further page
	FirstHref  string // "" when already on the first page
	Severities []string
	Types      []string
	States     []string
	Flash      string
	CSRF       string
	// BulkAction is where "Acknowledge selected" posts; "" hides it.
	BulkAction string
	Return     string
}

// TimelineEntry is one step of an alert's life.
type TimelineEntry struct {
	Kind   string // raised, acknowledged, resolved or notification
	Title  string
	Time   time.Time
	Detail string
	TestID string
}

// EventLink is one triggering event, summarized.
type EventLink struct {
	ID        string
	Href      string
	Time      time.Time
	Action    string
	Status    string
	Principal string
}

// DetailField is one labelled value of the alert.
type DetailField struct {
	Label  string
	Value  string
	TestID string
	Mono   bool
}

// DetailProps is the view model of the alert page.
type DetailProps struct {
	Row      Row
	Fields   []DetailField
	Timeline []TimelineEntry
	Events   []EventLink
	// MissingEvents counts triggering events that could not be shown (deleted by retention).
	MissingEvents int
	Metadata      string // pretty-printed JSON, "" when there is none
	Flash         string
	// ShowDeliveries is set when notifications are wired; Deliveries may still be empty.
	ShowDeliveries bool
}

func hasNotifications(entries []TimelineEntry) bool {
	for _, e := range entries {
		if e.Kind == "notification" {
			return true
		}
	}
	return false
}

func missingText(n int) string {
	if n == 1 {
		return "1 more triggering event is no longer stored (retention)."
	}
	return strconv.Itoa(n) + " more triggering events are no longer stored (retention)."
}
