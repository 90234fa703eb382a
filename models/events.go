package models

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
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
	// FieldCommitments holds, for a sha256-jcs-v2 or -v3 event, one salted digest per
	// committed field (see CheckFieldCommitments), or for a never-redacted v3 event the
	// compact form {"salt": event salt} they are derived from (EventFieldCommitments); NULL
	// for the first scheme.
	FieldCommitments json.RawMessage `gorm:"column:field_commitments;type:jsonb"`
}

// TableName is the partitioned parent table.
func (Event) TableName() string { return "audit_log" }

// Statuses and classifications an event may carry.
var (
	EventStatuses       = []string{"attempt", "success", "failure"}
	DataClassifications = []string{"PUBLIC", "INTERNAL", "CONFIDENTIAL", "PHI"}
)

// MaxTextFilter is the longest search (free text and qualifiers) the events list accepts.
const MaxTextFilter = 200

// MinFreeText is the shortest free-text word the events list searches for: shorter words
// have no trigram to look up in the search index, so they would read every row of the range.
const MinFreeText = 3

// SearchText is the expression free text is matched against: the action, principal,
// resource (Type/ID), outcome and correlation id, lower-cased. (It is not indexed: a
// trigram index on it cost batch ingest about 60 %.)
const SearchText = `lower(action || ' ' || coalesce(principal_id, '') || ' ' || coalesce(target_resource_type, '') || '/' || coalesce(target_resource_id, '') || ' ' || coalesce(outcome_description, '') || ' ' || coalesce(correlation_id, ''))`

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
	// Query is the parsed search box (qualifiers and free text), ANDed with the fields above.
	Query EventQuery
	// ExcludeRestricted leaves out the events of subjects under a GDPR restriction (see
	// NotRestrictedSQL): exports and reports set it, the events list does not.
	ExcludeRestricted bool
	// TextResolved says the free text was looked up in the search sketches (see
	// EventStore.ResolveFilter): TextNowhere then says no day of the range can hold a match,
	// and Within, when not empty, holds the only ranges of [From, To) that can.
	TextResolved bool
	TextNowhere  bool
	Within       []TimeRange
}

// NotRestrictedSQL is the condition on audit_log (unaliased) that leaves out the events of
// every subject under an active GDPR restriction of the event's organization: events whose
// principal, or whose target resource, is restricted.
const NotRestrictedSQL = `NOT EXISTS (SELECT 1 FROM gdpr_restrictions r WHERE r.organization_id = audit_log.organization_id
	AND r.lifted_at IS NULL AND (r.principal_id = audit_log.principal_id
	OR (r.resource_type = audit_log.target_resource_type AND r.resource_id = audit_log.target_resource_id)))`

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
		{"resource_id", f.ResourceID}, {"correlation_id", f.CorrelationID},
	} {
		if !utf8.ValidString(c.v) || strings.ContainsRune(c.v, 0) {
			return Invalid(c.field, "must be valid text")
		}
		if utf8.RuneCountInString(c.v) > 255 {
			return Invalid(c.field, "must be at most 255 characters")
		}
	}
	if len(f.Query.Terms) > MaxQueryTerms {
		return Invalid("q", fmt.Sprintf("must hold at most %d terms", MaxQueryTerms))
	}
	for _, t := range f.Query.Terms {
		if t.Field == "" && !t.Negate && utf8.RuneCountInString(t.Value) < MinFreeText {
			return Invalid("q", fmt.Sprintf("free text %q is too short to search for: give at least %d characters, or use a qualifier such as action: or actor:", t.Value, MinFreeText))
		}
		if !utf8.ValidString(t.Value) || strings.ContainsRune(t.Value, 0) || utf8.RuneCountInString(t.Value) > 255 {
			return Invalid("q", "holds a value that is not valid text of at most 255 characters")
		}
	}
	return nil
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

// EventPage is one page of the events list, with the cursor of the next (older) page when
// there is one, and, for a page read backwards (ListBefore), the cursor of the previous
// (newer) page when there is one.
type EventPage struct {
	Events []Event
	Next   *Cursor
	// Prev is set by ListBefore only: the page's first row, when newer rows exist. A page
	// read forwards has newer rows exactly when it was read after a cursor.
	Prev *Cursor
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
const fullColumns = listColumns + `, ttl, hash, signature, subject_digest, processing_latency, archived_at, details, field_commitments`

// ListSQL builds the keyset query of the events list and its arguments. It is exported so
// the benchmark can run the very same SQL bare.
func ListSQL(org string, f EventFilter, after *Cursor, limit int) (string, []any) {
	return listSQL(listColumns, org, f, after, limit)
}

func listSQL(columns, org string, f EventFilter, after *Cursor, limit int) (string, []any) {
	return keysetSQL(columns, org, f, after, false, limit)
}

// keysetSQL is the list's keyset query: newest first, older than cur; or, backwards, the
// oldest first of the rows newer than cur (the caller reverses them).
func keysetSQL(columns, org string, f EventFilter, cur *Cursor, backwards bool, limit int) (string, []any) {
	where, args := FilterSQL(org, f)
	var b strings.Builder
	b.WriteString("SELECT " + columns + " FROM audit_log WHERE " + where)
	cmp, order := "<", "DESC"
	if backwards {
		cmp, order = ">", "ASC"
	}
	if cur != nil {
		args = append(args, cur.Timestamp.UTC(), cur.ID)
		fmt.Fprintf(&b, ` AND ("timestamp", id) %s ($%d, $%d)`, cmp, len(args)-1, len(args))
	}
	args = append(args, limit)
	fmt.Fprintf(&b, ` ORDER BY "timestamp" %s, id %s LIMIT $%d`, order, order, len(args))
	return b.String(), args
}

// FilterSQL returns the condition on audit_log that selects org's events matching f (the
// events list's filter and search) and its arguments, numbered from $1. Callers append
// their own conditions with the next numbers; reports aggregate over it and the evidence
// bundle selects with it, so both take exactly what the list shows.
func FilterSQL(org string, f EventFilter) (string, []any) {
	var b strings.Builder
	args := []any{org, f.From.UTC(), f.To.UTC()}
	b.WriteString(`organization_id = $1 AND "timestamp" >= $2 AND "timestamp" < $3`)
	// add appends a condition whose %d verbs are the placeholders of vs, in order.
	add := func(cond string, vs ...any) {
		idx := make([]any, len(vs))
		for i, v := range vs {
			args = append(args, v)
			idx[i] = len(args)
		}
		fmt.Fprintf(&b, " AND "+cond, idx...)
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
	for _, t := range f.Query.Terms {
		queryTermSQL(t, add)
	}
	withinSQL(f.Within, add)
	if f.ExcludeRestricted {
		b.WriteString(" AND " + NotRestrictedSQL)
	}
	return b.String(), args
}

// PreferGenericPlan reports whether the list query of f runs with PostgreSQL's generic plan:
// when f holds free text. Planned for its values (a custom plan, the first five executions
// of a statement on a connection), PostgreSQL estimates that a word LIKE '%…%' over the
// search text matches a handful of rows, so it reads and sorts the whole range (parallel
// sequential scan, JIT): 1.8 – 2.1 s at 10,000,000 events for a word on every 150th event.
// The generic plan reads the range newest first through the (organization_id, timestamp)
// index and stops at the page's last row: 70 – 130 ms. Each pool connection ran its first
// five free-text searches on the custom plan, which was the server's tail that the bare
// SQL, on one warm connection, did not show.
//
// A search the sketches narrowed to a small part of its range (see narrowPlan) is the
// exception: planned for its values, PostgreSQL reads just those days (a bitmap scan per
// range) where the generic plan reads the whole span newest first, filtering out the days.
func PreferGenericPlan(f EventFilter) bool {
	if narrowPlan(f) {
		return false
	}
	for _, t := range f.Query.Terms {
		if t.Field == "" && !t.Negate {
			return true
		}
	}
	return false
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
	f, err := s.ResolveFilter(ctx, org, f)
	if err != nil || f.MatchesNothing() {
		return EventPage{}, err
	}
	query, args := listSQL(columns, org, f, after, limit+1)
	var rows []Event
	err = queryInTenantPlan(ctx, s.db, org, PreferGenericPlan(f), query, args, func(r pgx.Rows) error {
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

// ListBefore returns the page of up to limit events of org matching f that comes just
// before the cursor in the newest-first list (the "newer" page), newest first, with Prev set
// when still newer rows exist and Next (the page's last row) when it holds any. It returns a
// KindInvalid error for a bad filter. Near the top of the list the page may hold fewer than
// limit rows: it then ends where the cursor's page starts, as a page read forwards would.
func (s *EventStore) ListBefore(ctx context.Context, org string, f EventFilter, before Cursor, limit int) (EventPage, error) {
	if err := f.Validate(); err != nil {
		return EventPage{}, err
	}
	if limit <= 0 || limit > 500 {
		return EventPage{}, Invalid("limit", "must be between 1 and 500")
	}
	f, err := s.ResolveFilter(ctx, org, f)
	if err != nil || f.MatchesNothing() {
		return EventPage{}, err
	}
	query, args := keysetSQL(listColumns, org, f, &before, true, limit+1)
	var rows []Event
	err = queryInTenantPlan(ctx, s.db, org, PreferGenericPlan(f), query, args, func(r pgx.Rows) error {
		var err error
		rows, err = collectEvents(r, limit+1)
		return err
	})
	if err != nil {
		return EventPage{}, fmt.Errorf("models: list events before: %w", err)
	}
	var page EventPage
	if len(rows) > limit {
		rows = rows[:limit]
		page.Prev = &Cursor{Timestamp: rows[limit-1].Timestamp, ID: rows[limit-1].ID}
	}
	slices.Reverse(rows)
	page.Events = rows
	if len(rows) > 0 {
		last := rows[len(rows)-1]
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
		return emptyWhenNull{&e.SubjectDigest} // NULL for sha256-jcs-v2 events
	case "signature":
		return &e.Signature
	case "field_commitments":
		return &e.FieldCommitments
	}
	return nil
}

// queryTermSQL adds the condition of one search term. action: and actor: compare
// case-insensitively (a resolved action: term, see ResolveFilter, as an exact list through
// the action index); resource: compares case-insensitively too, correlation: exactly.
func queryTermSQL(t QueryTerm, add func(cond string, vs ...any)) {
	// match compares a lower-cased column with the term's value, exactly or as a prefix;
	// a NULL column never matches, and never matches a negation either.
	match := func(col string, v string, prefix bool) {
		cond, arg := "lower("+col+") = $%d", strings.ToLower(v)
		if prefix {
			cond, arg = "lower("+col+`) LIKE $%d ESCAPE '\'`, escapeLike(strings.ToLower(v))+"%"
		}
		addMaybeNot(add, t.Negate, cond, arg)
	}
	switch t.Field {
	case QualAction:
		if t.Resolved && !t.Negate {
			// Equality of text is leakproof, so under row-level security it is an index
			// condition of audit_log_org_action_exact_ts_idx; lower() and LIKE are not.
			add("action = ANY($%d)", t.Values)
			return
		}
		match("action", t.Value, t.Prefix)
	case QualActor:
		match("principal_id", t.Value, t.Prefix)
	case QualResource:
		typ, id, hasID := t.ResourceParts()
		if !hasID {
			match("target_resource_type", typ, t.Prefix)
			return
		}
		if t.Negate { // not (this type and this id)
			if t.Prefix {
				add(`NOT coalesce(lower(target_resource_type) = $%d AND lower(target_resource_id) LIKE $%d ESCAPE '\', false)`,
					strings.ToLower(typ), escapeLike(strings.ToLower(id))+"%")
			} else {
				add(`NOT coalesce(lower(target_resource_type) = $%d AND lower(target_resource_id) = $%d, false)`,
					strings.ToLower(typ), strings.ToLower(id))
			}
			return
		}
		match("target_resource_type", typ, false)
		if id != "" {
			match("target_resource_id", id, t.Prefix)
		}
	case QualStatus:
		addMaybeNot(add, t.Negate, "status = $%d", t.Value)
	case QualClass:
		addMaybeNot(add, t.Negate, "data_classification = $%d", t.Value)
	case QualCorrelation:
		if t.Prefix {
			addMaybeNot(add, t.Negate, `correlation_id LIKE $%d ESCAPE '\'`, escapeLike(t.Value)+"%")
		} else {
			addMaybeNot(add, t.Negate, "correlation_id = $%d", t.Value)
		}
	case QualCreated:
		if !t.From.IsZero() {
			add(`"timestamp" >= $%d`, t.From.UTC())
		}
		if !t.To.IsZero() {
			add(`"timestamp" < $%d`, t.To.UTC())
		}
	case "":
		addMaybeNot(add, t.Negate, SearchText+` LIKE $%d ESCAPE '\'`, "%"+escapeLike(strings.ToLower(t.Value))+"%")
	}
}

// addMaybeNot adds cond, or its negation where a NULL column counts as "not matching", so
// that -actor:x keeps the events without a principal. The plain form stays bare so that
// PostgreSQL can use the expression indexes.
func addMaybeNot(add func(string, ...any), negate bool, cond string, arg any) {
	if negate {
		cond = "NOT coalesce(" + cond + ", false)"
	}
	add(cond, arg)
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

// emptyWhenNull scans a nullable text column into a string, NULL as "".
type emptyWhenNull struct{ p *string }

// Scan implements sql.Scanner.
func (n emptyWhenNull) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*n.p = ""
	case string:
		*n.p = v
	case []byte:
		*n.p = string(v)
	default:
		return fmt.Errorf("models: cannot scan %T into a string", src)
	}
	return nil
}
