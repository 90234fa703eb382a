// Package events renders the audit-event list (with its htmx-swappable
// results fragment) and the single-event detail page.
package events

import "auditdb/views/components"

// FilterValues are the list filters as the user typed them. From and To use
// the datetime-local form "2006-01-02T15:04" (UTC). The query parameter
// names are from, to, action, status, principal, resource_type,
// resource_id, classification, correlation_id and q.
type FilterValues struct {
	From           string
	To             string
	Action         string
	Status         string
	Principal      string
	ResourceType   string
	ResourceID     string
	Classification string
	CorrelationID  string
	Q              string
}

// IsZero reports whether no filter is set.
func (f FilterValues) IsZero() bool {
	return f == FilterValues{}
}

// Row is one event in the list, every field already formatted for display.
type Row struct {
	ID             int64
	Href           string // link to the event's detail page
	Time           string
	Action         string
	Status         string // attempt, success or failure
	Principal      string
	Resource       string // e.g. "Patient/123", or "" when the event has none
	Classification string
	Outcome        string
}

// ListProps is the view model of the event list and of its results fragment.
type ListProps struct {
	Filter          FilterValues
	Rows            []Row
	NextHref        string // "" when there is no older page
	FirstHref       string // "" when already on the newest page
	BundleHref      string // the evidence bundle of the filter; "" without the export permission
	Statuses        []string
	Classifications []string
}

// DetailField is one labelled value on the detail page. TestID is set as
// the <dd>'s data-testid; Mono renders the value in a monospace font (ids,
// hashes).
type DetailField struct {
	Label  string
	Value  string
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
}

// VerificationView is one recorded verification, formatted.
type VerificationView struct {
	Status   string // success, tampered or failure
	Reason   string
	Expected string
	Computed string
	When     string
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
