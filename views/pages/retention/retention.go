// Package retention renders the retention area: the policies with their statutory floors
// and the next run's preview, the policy form, legal holds and the partitions page.
package retention

import (
	"strconv"
	"time"

	"auditdb/views/components"
	"auditdb/views/pages/events"
)

// PolicyRow is one policy in the list, formatted.
type PolicyRow struct {
	ID             int64
	Name           string
	Classification string
	Description    string
	RetentionDays  string
	ArchiveAfter   string // "—" when the policy never archives
	DeleteAt       string // the deletion day and where it comes from
	Active         bool
	Global         bool
	Overridden     bool   // a global policy the organization's own policy of its classification replaces
	FloorOverride  string // the reason a policy is kept below its floor, "" when it is not
	ActiveEvents   string
	ArchivedEvents string
	EditHref       string // "" when the viewer may not change it
}

// FloorRow is the statutory floor of one classification.
type FloorRow struct {
	Classification string
	MinDays        string     // "none" when 0
	Updated        *time.Time // nil when never set
	UpdatedBy      string
}

// HoldKeepRow is what one legal hold keeps from the next run's deletion.
type HoldKeepRow struct {
	Name   string
	Events string
}

// Preview is the next run's preview, formatted.
type Preview struct {
	At            time.Time
	Archive       string
	ArchiveMonths string
	Delete        string
	DeleteMonths  string
	Kept          string
	ByHold        []HoldKeepRow
	Nothing       bool // nothing is due
}

// IndexProps is the view model of /retention.
type IndexProps struct {
	CSRF           string
	Flash          string
	Policies       []PolicyRow
	Floors         []FloorRow
	CanCreate      bool
	CanSetFloor    bool // superadmins
	FloorError     *components.FormError
	Preview        Preview
	ActiveHolds    int
	CanManageHolds bool
}

// PolicyForm is the form to create or edit a policy, as typed.
type PolicyForm struct {
	Title               string
	Action              string
	DeleteAction        string // "" when the viewer may not delete it (or it is new)
	CSRF                string
	Name                string
	Classification      string
	RetentionDays       string
	ArchiveAfterDays    string
	DeleteAfterDays     string
	Description         string
	FloorOverrideReason string
	Active              bool
	Global              bool
	Classifications     []string
	FloorHint           string // the floors, in words
	Error               *components.FormError
}

// HoldRow is one legal hold, formatted.
type HoldRow struct {
	ID            int64
	Name          string
	Reason        string
	Covers        string
	Placed        time.Time
	PlacedBy      string
	Released      *time.Time // nil while active
	ReleasedBy    string
	ReleaseAction string // "" when released or the viewer may not release it
}

// HoldForm is the form to place a hold, as typed.
type HoldForm struct {
	Name          string
	Reason        string
	Scope         string
	PrincipalID   string
	ResourceType  string
	ResourceID    string
	CorrelationID string
	From          string
	To            string
}

// HoldsProps is the view model of /retention/holds.
type HoldsProps struct {
	Superadmin bool
	CSRF       string
	Flash      string
	Holds      []HoldRow
	CanChange  bool
	Form       HoldForm
	Scopes     []components.Option
	Error      *components.FormError
}

func itoa(n int) string { return strconv.Itoa(n) }

// floorOptions are the classifications of the floors table.
func floorOptions(fs []FloorRow) []components.Option {
	out := make([]components.Option, len(fs))
	for i, f := range fs {
		out[i] = components.Option{Value: f.Classification, Label: f.Classification}
	}
	return out
}

// PartitionRow is one partition, formatted.
type PartitionRow struct {
	Name      string
	Range     string
	Rows      string
	TableSize string
	IndexSize string
	State     string // future, current, past or empty
}

// PartitionAction is the dry run of an action with its confirmation form.
type PartitionAction struct {
	Title   string
	Summary string   // what will happen
	Names   []string // the partitions concerned
	Count   string   // what to type to confirm
	Post    string
	Button  string
	Empty   string // what to say when nothing is concerned
}

// PartitionsProps is the view model of /retention/partitions.
type PartitionsProps struct {
	CSRF    string
	Flash   string
	Rows    []PartitionRow
	Preview *PartitionAction
	Error   *components.FormError
}

func stateVariant(state string) components.Variant {
	switch state {
	case "current":
		return components.Success
	case "future":
		return components.Info
	case "empty":
		return components.Warning
	}
	return components.Neutral
}

// ArchiveRow is one archive's metadata, formatted.
type ArchiveRow struct {
	ID             string
	Href           string // its page; "" for a deleted archive
	Policy         string
	Month          string // YYYY-MM
	Part           string
	First, Last    *time.Time // the first and last event times; nil when empty
	Count          string
	IDRange        string
	LeafRange      string
	OriginalSize   string
	CompressedSize string
	Ratio          string // e.g. "9.4×"
	SHA256Original string
	SHA256Stored   string
	Retrieved      string     // how many times
	LastRetrieval  *time.Time // nil when never
	Deleted        *time.Time // when its content was deleted, nil while it holds events
}

// ArchivesProps is the view model of /retention/archives.
type ArchivesProps struct {
	Superadmin bool
	Rows       []ArchiveRow
}

// ArchiveProps is the view model of an archive's page and of its results fragment.
type ArchiveProps struct {
	Superadmin      bool
	Archive         ArchiveRow
	Path            string // the page's path, where the filter form and page links go
	DownloadZst     string // the .jsonl.zst download; "" when the archive cannot be read
	DownloadJSON    string // the .json download
	Filter          events.FilterValues
	Statuses        []string
	Classifications []string
	Rows            []events.Row
	NextHref        string // "" on the last page
	FirstHref       string // "" on the first page
	// Corrupt, when set, says which check the archive failed; no event is shown.
	Corrupt string
}

// rangeText is an archive's first to last event time as plain text (a page description).
func rangeText(r ArchiveRow) string {
	if r.First == nil || r.Last == nil {
		return "—"
	}
	return components.Timestamp(*r.First) + " – " + components.Timestamp(*r.Last)
}
