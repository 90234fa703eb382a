// Package gdpr renders the GDPR requests pages: the list with its new-request form, a
// request's page that drives its steps, and the pseudonym lookup.
package gdpr

import (
	"time"

	"auditdb/views/components"
)

// Row is one request in the list (and the head of its page).
type Row struct {
	ID, Href     string
	Type         string
	Subject      string
	Status       string // the status's words
	StatusKey    string // received, in_progress, …
	Received     time.Time
	Due          string
	DueNote      string // "overdue by 3 days", "due in 2 days", ""
	Overdue      bool
	DueSoon      bool
	Assignee     string
	Running      bool
	RequestedBy  string
	Restricted   bool
	RejectReason string
}

// NewForm is the new-request form's values.
type NewForm struct {
	Type, PrincipalID, ResourceType, ResourceID, IdentityCheck, RequestedBy, ReceivedAt, Notes string
}

// IndexProps is /gdpr.
type IndexProps struct {
	CSRF      string
	Flash     string
	Error     *components.FormError
	CanCreate bool
	CanLookup bool
	Rows      []Row
	Overdue   int
	DueSoon   int
	Types     []components.Option
	Form      NewForm
}

// Pair is a labelled value.
type Pair struct{ Name, Value string }

// ExportRow is a stored export with its download link.
type ExportRow struct {
	Format, Name, Size, SHA256, Href, Events string
	Empty                                    bool
}

// StepRow is one step of the history.
type StepRow struct {
	At                  time.Time
	Actor, Step, Detail string
}

// DetailProps is a request's page.
type DetailProps struct {
	CSRF    string
	Flash   string
	Error   *components.FormError
	R       Row
	PollURL string
	Facts   []Pair
	Notes   string

	// The operation (export, erasure, pseudonymization) running or done.
	Running   bool
	Progress  string
	OpError   string
	Result    []Pair
	Pseudonym string
	Notice    string // e.g. the empty export's "the subject has no events"
	Holds     []string
	Events    string // how many events the subject has ("" when unknown)

	Exports []ExportRow
	History []StepRow

	// The steps this viewer may take now.
	ShowStart, ShowExport, ShowRequestErasure, ShowApprove, ShowPseudonymize           bool
	ShowComplete, ShowRectify, ShowLift, ShowExtend, ShowReject, ShowAssign, ShowNotes bool
	ApproveNote                                                                        string // why approval is someone else's
	Assignees                                                                          []components.Option
	AssigneeID                                                                         string
	Formats, Strategies                                                                []components.Option
}

// LookupProps is the pseudonym lookup.
type LookupProps struct {
	CSRF              string
	Error             *components.FormError
	Pseudonym, Reason string
	Original          string
	Found             bool
}
