package models

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// Event is one row of audit_log. Optional columns are pointers so that "absent" and
// "empty" stay different, which the integrity hash depends on.
type Event struct {
	ID                 int64           `gorm:"column:id;primaryKey"`
	Timestamp          time.Time       `gorm:"column:timestamp;primaryKey"`
	TTL                *string         `gorm:"column:ttl"`
	PrincipalID        *string         `gorm:"column:principal_id"`
	OrganizationID     string          `gorm:"column:organization_id"`
	Action             string          `gorm:"column:action"`
	TargetResourceType *string         `gorm:"column:target_resource_type"`
	TargetResourceID   *string         `gorm:"column:target_resource_id"`
	Status             string          `gorm:"column:status"`
	OutcomeDescription *string         `gorm:"column:outcome_description"`
	Hash               string          `gorm:"column:hash"`
	HashAlgorithm      string          `gorm:"column:hash_algorithm"`
	EventVersion       string          `gorm:"column:event_version"`
	CorrelationID      *string         `gorm:"column:correlation_id"`
	DataClassification string          `gorm:"column:data_classification"`
	RetentionPolicy    string          `gorm:"column:retention_policy"`
	ProcessingLatency  *int32          `gorm:"column:processing_latency"`
	ArchivedAt         *time.Time      `gorm:"column:archived_at"`
	Details            json.RawMessage `gorm:"column:details;type:jsonb"`
	SubjectSalt        []byte          `gorm:"column:subject_salt"`
	SubjectDigest      string          `gorm:"column:subject_digest"`
	Signature          string          `gorm:"column:signature"`
}

// TableName is the partitioned parent table.
func (Event) TableName() string { return "audit_log" }

// Statuses and classifications an event may carry.
var (
	EventStatuses       = []string{"attempt", "success", "failure"}
	DataClassifications = []string{"PUBLIC", "INTERNAL", "CONFIDENTIAL", "PHI"}
)

// MaxTextFilter is the longest free-text filter the events list accepts.
const MaxTextFilter = 200

// EventFilter narrows the events list. Zero values mean "any"; From and To are required
// and bound the scan so PostgreSQL prunes partitions.
type EventFilter struct {
	From, To       time.Time
	Action         string
	Status         string
	PrincipalID    string
	ResourceType   string
	ResourceID     string
	Classification string
	CorrelationID  string
	Text           string
}

// Validate returns a KindInvalid error naming the first bad field.
func (f EventFilter) Validate() error {
	if f.From.IsZero() || f.To.IsZero() {
		return Invalid("from", "a time range is required")
	}
	if !f.From.Before(f.To) {
		return Invalid("to", "must be after from")
	}
	if f.Status != "" && !contains(EventStatuses, f.Status) {
		return Invalid("status", "must be one of attempt, success, failure")
	}
	if f.Classification != "" && !contains(DataClassifications, f.Classification) {
		return Invalid("classification", "must be one of PUBLIC, INTERNAL, CONFIDENTIAL, PHI")
	}
	// A slice, not a map: the same input must always name the same first bad field.
	for _, c := range []struct{ field, v string }{
		{"action", f.Action}, {"principal", f.PrincipalID}, {"resource_type", f.ResourceType},
		{"resource_id", f.ResourceID}, {"correlation_id", f.CorrelationID}, {"q", f.Text},
	} {
		if !utf8.ValidString(c.v) || strings.ContainsRune(c.v, 0) {
			return Invalid(c.field, "must be valid text")
		}
		limit := 255
		if c.field == "q" {
			limit = MaxTextFilter
		}
		if utf8.RuneCountInString(c.v) > limit {
			return Invalid(c.field, fmt.Sprintf("must be at most %d characters", limit))
		}
	}
	return nil
}

// Matches reports whether ev passes f as the events list's SQL would select it (listSQL):
// timestamp in [From, To), every set field equal, and Text found in the outcome without
// regard to case. Archived events, which are no longer rows, are filtered with it.
func (f EventFilter) Matches(ev *Event) bool {
	if ev.Timestamp.Before(f.From) || !ev.Timestamp.Before(f.To) {
		return false
	}
	eqp := func(want string, got *string) bool { return want == "" || got != nil && *got == want }
	if f.Action != "" && ev.Action != f.Action || f.Status != "" && ev.Status != f.Status ||
		f.Classification != "" && ev.DataClassification != f.Classification {
		return false
	}
	if !eqp(f.PrincipalID, ev.PrincipalID) || !eqp(f.ResourceType, ev.TargetResourceType) ||
		!eqp(f.ResourceID, ev.TargetResourceID) || !eqp(f.CorrelationID, ev.CorrelationID) {
		return false
	}
	if f.Text != "" {
		return ev.OutcomeDescription != nil && strings.Contains(strings.ToLower(*ev.OutcomeDescription), strings.ToLower(f.Text))
	}
	return true
}

// Cursor marks a position in the newest-first events list: the last row of a page.
type Cursor struct {
	Timestamp time.Time
	ID        int64
}

// String encodes the cursor for a URL.
func (c Cursor) String() string {
	raw := strconv.FormatInt(c.Timestamp.UnixMicro(), 10) + "." + strconv.FormatInt(c.ID, 10)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseCursor decodes a cursor made by Cursor.String; it returns a KindInvalid error for
// anything else.
func ParseCursor(s string) (Cursor, error) {
	bad := Invalid("after", "is not a valid page cursor")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, bad
	}
	ts, id, ok := strings.Cut(string(raw), ".")
	if !ok {
		return Cursor{}, bad
	}
	micros, err1 := strconv.ParseInt(ts, 10, 64)
	n, err2 := strconv.ParseInt(id, 10, 64)
	if err1 != nil || err2 != nil || n <= 0 {
		return Cursor{}, bad
	}
	return Cursor{Timestamp: time.UnixMicro(micros).UTC(), ID: n}, nil
}

// EventPage is one page of the events list, with the cursor of the next page when there is
// one.
type EventPage struct {
	Events []Event
	Next   *Cursor
}

// EventStore reads and writes one organization's audit events. Reads run in a tenant
// transaction (queryInTenant): besides filtering by organization, row-level security
// confines them to it.
type EventStore struct {
	db *gorm.DB
}

// NewEventStore returns a store over db.
func NewEventStore(db *gorm.DB) *EventStore { return &EventStore{db: db} }

// listColumns are the columns the list shows; details and integrity columns stay out.
const listColumns = `id, "timestamp", principal_id, organization_id, action, target_resource_type,
	target_resource_id, status, outcome_description, correlation_id, data_classification,
	retention_policy, event_version, hash_algorithm`

// fullColumns are every column but the subject salt, for the API.
const fullColumns = listColumns + `, ttl, hash, signature, subject_digest, processing_latency, archived_at, details`

// ListSQL builds the keyset query of the events list and its arguments. It is exported so
// the benchmark can run the very same SQL bare.
func ListSQL(org string, f EventFilter, after *Cursor, limit int) (string, []any) {
	return listSQL(listColumns, org, f, after, limit)
}

func listSQL(columns, org string, f EventFilter, after *Cursor, limit int) (string, []any) {
	where, args := FilterSQL(org, f)
	var b strings.Builder
	b.WriteString("SELECT " + columns + " FROM audit_log\n\tWHERE " + where)
	if after != nil {
		args = append(args, after.Timestamp.UTC(), after.ID)
		fmt.Fprintf(&b, ` AND ("timestamp", id) < ($%d, $%d)`, len(args)-1, len(args))
	}
	args = append(args, limit)
	fmt.Fprintf(&b, ` ORDER BY "timestamp" DESC, id DESC LIMIT $%d`, len(args))
	return b.String(), args
}

// FilterSQL returns the condition on audit_log that selects org's events matching f (the
// events list's filter) and its arguments, numbered from $1. Callers append their own
// conditions with the next numbers; reports aggregate over it and the evidence bundle
// selects with it, so both take exactly what the list shows.
func FilterSQL(org string, f EventFilter) (string, []any) {
	var b strings.Builder
	args := []any{org, f.From.UTC(), f.To.UTC()}
	b.WriteString(`organization_id = $1 AND "timestamp" >= $2 AND "timestamp" < $3`)
	add := func(cond string, v any) {
		args = append(args, v)
		fmt.Fprintf(&b, " AND "+cond, len(args))
	}
	if f.Action != "" {
		add("action = $%d", f.Action)
	}
	if f.Status != "" {
		add("status = $%d", f.Status)
	}
	if f.PrincipalID != "" {
		add("principal_id = $%d", f.PrincipalID)
	}
	if f.ResourceType != "" {
		add("target_resource_type = $%d", f.ResourceType)
	}
	if f.ResourceID != "" {
		add("target_resource_id = $%d", f.ResourceID)
	}
	if f.Classification != "" {
		add("data_classification = $%d", f.Classification)
	}
	if f.CorrelationID != "" {
		add("correlation_id = $%d", f.CorrelationID)
	}
	if f.Text != "" {
		add(`outcome_description ILIKE $%d ESCAPE '\'`, "%"+escapeLike(f.Text)+"%")
	}
	return b.String(), args
}

// List returns up to limit events of org matching f, newest first, starting after the
// cursor. It returns a KindInvalid error for a bad filter.
func (s *EventStore) List(ctx context.Context, org string, f EventFilter, after *Cursor, limit int) (EventPage, error) {
	return s.list(ctx, listColumns, org, f, after, limit)
}

// ListFull is List with every column but the subject salt (details and integrity fields
// included), for the API.
func (s *EventStore) ListFull(ctx context.Context, org string, f EventFilter, after *Cursor, limit int) (EventPage, error) {
	return s.list(ctx, fullColumns, org, f, after, limit)
}

func (s *EventStore) list(ctx context.Context, columns, org string, f EventFilter, after *Cursor, limit int) (EventPage, error) {
	if err := f.Validate(); err != nil {
		return EventPage{}, err
	}
	if limit <= 0 || limit > 500 {
		return EventPage{}, Invalid("limit", "must be between 1 and 500")
	}
	query, args := listSQL(columns, org, f, after, limit+1)
	var rows []Event
	err := queryInTenant(ctx, s.db, org, query, args, func(r pgx.Rows) error {
		var err error
		rows, err = collectEvents(r, limit+1)
		return err
	})
	if err != nil {
		return EventPage{}, fmt.Errorf("models: list events: %w", err)
	}
	page := EventPage{Events: rows}
	if len(rows) > limit {
		page.Events = rows[:limit]
		last := page.Events[limit-1]
		page.Next = &Cursor{Timestamp: last.Timestamp, ID: last.ID}
	}
	return page, nil
}

// Get returns event id of org. It returns a KindNotFound error when the event does not
// exist or belongs to another organization.
func (s *EventStore) Get(ctx context.Context, org string, id int64) (*Event, error) {
	var evs []Event
	err := queryInTenant(ctx, s.db, org, `SELECT * FROM audit_log WHERE organization_id = $1 AND id = $2`,
		[]any{org, id}, func(r pgx.Rows) error {
			var err error
			evs, err = collectEvents(r, 1)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("models: get event: %w", err)
	}
	if len(evs) == 0 {
		return nil, NotFound("event")
	}
	return &evs[0], nil
}

// collectEvents reads every row of r into events. The columns are matched to fields once
// per query, not per row: this runs for every page of the events list.
func collectEvents(r pgx.Rows, capacity int) ([]Event, error) {
	defer r.Close()
	var ev Event
	targets := make([]any, 0, 24)
	for _, fd := range r.FieldDescriptions() {
		t := ev.column(fd.Name)
		if t == nil {
			return nil, fmt.Errorf("models: audit_log column %q has no Event field", fd.Name)
		}
		targets = append(targets, t)
	}
	out := make([]Event, 0, capacity)
	for r.Next() {
		ev = Event{} // fresh pointer fields for every row; the targets still point into ev
		if err := r.Scan(targets...); err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, r.Err()
}

// column returns a pointer to the field that holds audit_log's column name, or nil.
func (e *Event) column(name string) any {
	switch name {
	case "id":
		return &e.ID
	case "timestamp":
		return &e.Timestamp
	case "ttl":
		return &e.TTL
	case "principal_id":
		return &e.PrincipalID
	case "organization_id":
		return &e.OrganizationID
	case "action":
		return &e.Action
	case "target_resource_type":
		return &e.TargetResourceType
	case "target_resource_id":
		return &e.TargetResourceID
	case "status":
		return &e.Status
	case "outcome_description":
		return &e.OutcomeDescription
	case "hash":
		return &e.Hash
	case "hash_algorithm":
		return &e.HashAlgorithm
	case "event_version":
		return &e.EventVersion
	case "correlation_id":
		return &e.CorrelationID
	case "data_classification":
		return &e.DataClassification
	case "retention_policy":
		return &e.RetentionPolicy
	case "processing_latency":
		return &e.ProcessingLatency
	case "archived_at":
		return &e.ArchivedAt
	case "details":
		return &e.Details
	case "subject_salt":
		return &e.SubjectSalt
	case "subject_digest":
		return &e.SubjectDigest
	case "signature":
		return &e.Signature
	}
	return nil
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// EventStats are the dashboard's counts for one organization.
type EventStats struct {
	Last24h, Failures24h, Last30d int64
}

// Stats counts org's events of the last 24 hours and 30 days, and the failures among the
// former, reading only the partitions of the last 30 days.
func (s *EventStore) Stats(ctx context.Context, org string, now time.Time) (EventStats, error) {
	var st EventStats
	err := queryInTenant(ctx, s.db, org, `
		SELECT count(*) FILTER (WHERE "timestamp" >= $2),
		       count(*) FILTER (WHERE "timestamp" >= $2 AND status = 'failure'),
		       count(*)
		FROM audit_log WHERE organization_id = $1 AND "timestamp" >= $3 AND "timestamp" <= $4`,
		[]any{org, now.Add(-24 * time.Hour), now.AddDate(0, 0, -30), now.Add(5 * time.Minute)},
		func(r pgx.Rows) error {
			_, err := pgx.ForEachRow(r, []any{&st.Last24h, &st.Failures24h, &st.Last30d}, func() error { return nil })
			return err
		})
	if err != nil {
		return st, fmt.Errorf("models: event stats: %w", err)
	}
	return st, nil
}

// MaxEventsByID is the most events ByIDs reads at once.
const MaxEventsByID = 100

// ByIDs returns the events of org among ids (the list's columns, newest first); ids of
// another organization's events or of no event are left out. It reads at most
// MaxEventsByID ids and ignores the rest.
func (s *EventStore) ByIDs(ctx context.Context, org string, ids []int64) ([]Event, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > MaxEventsByID {
		ids = ids[:MaxEventsByID]
	}
	var rows []Event
	err := queryInTenant(ctx, s.db, org, `SELECT `+listColumns+` FROM audit_log WHERE organization_id = $1 AND id = ANY($2)
		ORDER BY "timestamp" DESC, id DESC`, []any{org, ids}, func(r pgx.Rows) error {
		var err error
		rows, err = collectEvents(r, len(ids))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("models: events by id: %w", err)
	}
	return rows, nil
}
