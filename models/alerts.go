package models

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// Alert severities and types used here (the alerts table's CHECK constraints list all).
const (
	SeverityCritical = "CRITICAL"
	AlertCompliance  = "COMPLIANCE"
)

// Alert vocabularies, in the order the console lists them.
var (
	AlertSeverities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW"}
	AlertTypes      = []string{"SECURITY", "COMPLIANCE", "PERFORMANCE", "SYSTEM"}
	// AlertStates partition the alerts: active (neither acknowledged nor resolved),
	// acknowledged (but not resolved) and resolved.
	AlertStates = []string{"active", "acknowledged", "resolved"}
)

// Alert states.
const (
	AlertStateActive       = "active"
	AlertStateAcknowledged = "acknowledged"
	AlertStateResolved     = "resolved"
)

// MaxResolutionNotes is the longest resolution note accepted.
const MaxResolutionNotes = 2000

// MaxAcknowledgeMany is the most alerts acknowledged in one request.
const MaxAcknowledgeMany = 100

// NewAlert is an alert to raise for one organization.
type NewAlert struct {
	Org         string
	Severity    string
	Type        string
	Title       string
	Description string
	Source      string
	Metadata    any // marshalled to JSON
	// Rule is the detection rule that raised it ("" for other sources), Principal the
	// principal (or other group key) it concerns, EventIDs the events that triggered it.
	Rule      string
	Principal string
	EventIDs  []int64
}

// AlertStore raises, lists, acknowledges and resolves one organization's alerts. Reads run
// in a tenant transaction: besides filtering by organization, row-level security confines
// them to it.
type AlertStore struct {
	db    *gorm.DB
	audit *AuditTrail
	now   func() time.Time
}

// NewAlertStore returns a store over db. Acknowledging and resolving need the audit trail
// (WithAudit).
func NewAlertStore(db *gorm.DB) *AlertStore { return &AlertStore{db: db, now: time.Now} }

// WithAudit makes the store record acknowledgements and resolutions through trail, in the
// same transaction as the change. It returns the store.
func (s *AlertStore) WithAudit(trail *AuditTrail) *AlertStore {
	s.audit = trail
	return s
}

// Raise inserts an alert and returns its id. It returns an error when the row cannot be
// written (an unknown severity or type violates the table's checks).
func (s *AlertStore) Raise(ctx context.Context, a NewAlert) (string, error) {
	return s.raiseTx(s.db.WithContext(ctx), a, "")
}

// raiseTx is Raise inside tx, with an optional correlation id (what the alert is about, for
// sources that raise one alert per subject).
func (s *AlertStore) raiseTx(tx *gorm.DB, a NewAlert, correlationID string) (string, error) {
	meta, err := json.Marshal(a.Metadata)
	if err != nil {
		return "", fmt.Errorf("models: alert metadata: %w", err)
	}
	id := "alert_" + RandomToken(12)
	now := time.Now().UTC()
	ids := a.EventIDs
	if ids == nil {
		ids = []int64{}
	}
	err = tx.Exec(`INSERT INTO alerts (id, organization_id, severity, type, title, description, source,
		metadata, rule, principal, event_ids, correlation_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, ''), NULLIF(?, ''), ?, NULLIF(?, ''), ?, ?)`,
		id, a.Org, a.Severity, a.Type, Truncate(a.Title, 500), a.Description, Truncate(a.Source, 100), string(meta),
		Truncate(a.Rule, 50), Truncate(a.Principal, 255), pq64(ids), Truncate(correlationID, 255), now, now).Error
	if err != nil {
		return "", fmt.Errorf("models: raise alert: %w", err)
	}
	return id, nil
}

// pq64 is ids as a PostgreSQL bigint[] literal.
func pq64(ids []int64) string {
	b := make([]byte, 0, 2+len(ids)*8)
	b = append(b, '{')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, '}'))
}

// Alert is one row of alerts.
type Alert struct {
	ID              string
	Org             string
	Severity        string
	Type            string
	Title           string
	Description     string
	Source          string
	CorrelationID   string
	Rule            string
	Principal       string
	Metadata        json.RawMessage
	EventIDs        []int64
	Acknowledged    bool
	AcknowledgedAt  *time.Time
	AcknowledgedBy  string
	Resolved        bool
	ResolvedAt      *time.Time
	ResolvedBy      string
	ResolutionNotes string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// State is the alert's state: active, acknowledged or resolved.
func (a *Alert) State() string {
	switch {
	case a.Resolved:
		return AlertStateResolved
	case a.Acknowledged:
		return AlertStateAcknowledged
	}
	return AlertStateActive
}

// AlertDelivery is one notification of an alert sent (or being sent) over one channel, as
// the alert's timeline shows it.
type AlertDelivery struct {
	Channel       string // the channel's name
	Kind          string // webhook or email
	Status        string // pending, delivered or failed
	Attempts      int
	LastAttemptAt *time.Time
	DeliveredAt   *time.Time
	LastError     string
}

// SeverityRank orders severities: CRITICAL 4, HIGH 3, MEDIUM 2, LOW 1, anything else 0. It
// matches the SQL function alert_severity_rank.
func SeverityRank(severity string) int {
	switch severity {
	case "CRITICAL":
		return 4
	case "HIGH":
		return 3
	case "MEDIUM":
		return 2
	case "LOW":
		return 1
	}
	return 0
}

// AlertFilter narrows the alerts list. Zero values mean "any".
type AlertFilter struct {
	Severity string
	Type     string
	Source   string
	State    string // active, acknowledged or resolved
	From, To time.Time
	Text     string // over title and description
}

// Validate returns a KindInvalid error naming the first bad field.
func (f AlertFilter) Validate() error {
	if f.Severity != "" && !contains(AlertSeverities, f.Severity) {
		return Invalid("severity", "must be one of CRITICAL, HIGH, MEDIUM, LOW")
	}
	if f.Type != "" && !contains(AlertTypes, f.Type) {
		return Invalid("type", "must be one of SECURITY, COMPLIANCE, PERFORMANCE, SYSTEM")
	}
	if f.State != "" && !contains(AlertStates, f.State) {
		return Invalid("state", "must be one of active, acknowledged, resolved")
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return Invalid("to", "must be after from")
	}
	for _, c := range []struct {
		field, v string
		limit    int
	}{{"source", f.Source, 100}, {"q", f.Text, MaxTextFilter}} {
		if !utf8.ValidString(c.v) || strings.ContainsRune(c.v, 0) {
			return Invalid(c.field, "must be valid text")
		}
		if utf8.RuneCountInString(c.v) > c.limit {
			return Invalid(c.field, fmt.Sprintf("must be at most %d characters", c.limit))
		}
	}
	return nil
}

// fingerprint identifies the filter a cursor was made for.
func (f AlertFilter) fingerprint() string {
	var from, to int64
	if !f.From.IsZero() {
		from = f.From.UnixMicro()
	}
	if !f.To.IsZero() {
		to = f.To.UnixMicro()
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%q|%q|%q|%q|%d|%d|%q", f.Severity, f.Type, f.Source, f.State, from, to, f.Text)))
	return hex.EncodeToString(sum[:6])
}

// AlertCursor marks a position in the alerts list: the last row of a page, and the filter
// the page was listed with (a cursor only continues the list it came from).
type AlertCursor struct {
	Rank      int
	CreatedAt time.Time
	ID        string
	filter    string
}

// String encodes the cursor for a URL.
func (c AlertCursor) String() string {
	raw := strconv.Itoa(c.Rank) + "." + strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "." + c.filter + "." + c.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseAlertCursor decodes a cursor made by AlertCursor.String for a list filtered by f.
// It returns a KindInvalid error naming "after" for anything unreadable and for a cursor
// made for another filter.
func ParseAlertCursor(s string, f AlertFilter) (*AlertCursor, error) {
	bad := Invalid("after", "is not a valid page cursor")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	parts := strings.SplitN(string(raw), ".", 4)
	if len(parts) != 4 {
		return nil, bad
	}
	rank, err1 := strconv.Atoi(parts[0])
	micros, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil || rank < 0 || rank > 4 || parts[3] == "" || len(parts[3]) > 255 {
		return nil, bad
	}
	if parts[2] != f.fingerprint() {
		return nil, Invalid("after", "is a page cursor of another filter; start from the first page")
	}
	return &AlertCursor{Rank: rank, CreatedAt: time.UnixMicro(micros).UTC(), ID: parts[3], filter: parts[2]}, nil
}

// AlertPage is one page of the alerts list, with the cursor of the next page when there
// is one.
type AlertPage struct {
	Alerts []Alert
	Next   *AlertCursor
}

// AlertStats are the counts of one organization's alerts.
type AlertStats struct {
	Total, Active, Acknowledged, Resolved int64
	BySeverity                            map[string]int64
	ByType                                map[string]int64
}

const alertColumns = `id, organization_id, severity, type, title, coalesce(description, ''), coalesce(source, ''),
	coalesce(correlation_id, ''), coalesce(rule, ''), coalesce(principal, ''), metadata, event_ids,
	acknowledged, acknowledged_at, coalesce(acknowledged_by, ''), resolved, resolved_at, coalesce(resolved_by, ''),
	coalesce(resolution_notes, ''), created_at, updated_at`

func scanAlert(r pgx.Row, a *Alert) error {
	var meta []byte
	err := r.Scan(&a.ID, &a.Org, &a.Severity, &a.Type, &a.Title, &a.Description, &a.Source, &a.CorrelationID,
		&a.Rule, &a.Principal, &meta, &a.EventIDs, &a.Acknowledged, &a.AcknowledgedAt, &a.AcknowledgedBy,
		&a.Resolved, &a.ResolvedAt, &a.ResolvedBy, &a.ResolutionNotes, &a.CreatedAt, &a.UpdatedAt)
	if err != nil {
		return err
	}
	if len(meta) > 0 && string(meta) != "null" {
		a.Metadata = json.RawMessage(meta)
	}
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return nil
}

// alertListSQL builds the keyset query of the alerts list: CRITICAL first, then newest.
// The order matches alerts_org_rank_idx.
func alertListSQL(org string, f AlertFilter, after *AlertCursor, limit int) (string, []any) {
	var b strings.Builder
	args := []any{org}
	b.WriteString("SELECT " + alertColumns + " FROM alerts WHERE organization_id = $1")
	add := func(cond string, v any) {
		args = append(args, v)
		b.WriteString(" AND " + strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	if f.Severity != "" {
		add("severity = $?", f.Severity)
	}
	if f.Type != "" {
		add("type = $?", f.Type)
	}
	if f.Source != "" {
		add("source = $?", f.Source)
	}
	switch f.State {
	case AlertStateActive:
		b.WriteString(" AND NOT acknowledged AND NOT resolved")
	case AlertStateAcknowledged:
		b.WriteString(" AND acknowledged AND NOT resolved")
	case AlertStateResolved:
		b.WriteString(" AND resolved")
	}
	if !f.From.IsZero() {
		add("created_at >= $?", f.From.UTC())
	}
	if !f.To.IsZero() {
		add("created_at < $?", f.To.UTC())
	}
	if f.Text != "" {
		add(`(title ILIKE $? ESCAPE '\' OR description ILIKE $? ESCAPE '\')`, "%"+escapeLike(f.Text)+"%")
	}
	if after != nil {
		args = append(args, after.Rank, after.CreatedAt.UTC(), after.ID)
		n := len(args)
		fmt.Fprintf(&b, " AND (alert_severity_rank(severity), created_at, id) < ($%d::smallint, $%d, $%d)", n-2, n-1, n)
	}
	args = append(args, limit)
	fmt.Fprintf(&b, " ORDER BY alert_severity_rank(severity) DESC, created_at DESC, id DESC LIMIT $%d", len(args))
	return b.String(), args
}

// List returns up to limit alerts of org matching f, CRITICAL first then newest, starting
// after the cursor. It returns a KindInvalid error for a bad filter or limit.
func (s *AlertStore) List(ctx context.Context, org string, f AlertFilter, after *AlertCursor, limit int) (AlertPage, error) {
	if err := f.Validate(); err != nil {
		return AlertPage{}, err
	}
	if limit <= 0 || limit > 500 {
		return AlertPage{}, Invalid("limit", "must be between 1 and 500")
	}
	if after != nil && after.filter != f.fingerprint() {
		return AlertPage{}, Invalid("after", "is a page cursor of another filter; start from the first page")
	}
	query, args := alertListSQL(org, f, after, limit+1)
	var rows []Alert
	err := queryInTenant(ctx, s.db, org, query, args, func(r pgx.Rows) error {
		defer r.Close()
		for r.Next() {
			var a Alert
			if err := scanAlert(r, &a); err != nil {
				return err
			}
			rows = append(rows, a)
		}
		return r.Err()
	})
	if err != nil {
		return AlertPage{}, fmt.Errorf("models: list alerts: %w", err)
	}
	page := AlertPage{Alerts: rows}
	if len(rows) > limit {
		page.Alerts = rows[:limit]
		last := page.Alerts[limit-1]
		page.Next = &AlertCursor{Rank: SeverityRank(last.Severity), CreatedAt: last.CreatedAt, ID: last.ID, filter: f.fingerprint()}
	}
	return page, nil
}

// Get returns alert id of org. It returns a KindNotFound error when the alert does not
// exist or belongs to another organization.
func (s *AlertStore) Get(ctx context.Context, org, id string) (*Alert, error) {
	var found *Alert
	err := queryInTenant(ctx, s.db, org, "SELECT "+alertColumns+" FROM alerts WHERE organization_id = $1 AND id = $2",
		[]any{org, id}, func(r pgx.Rows) error {
			defer r.Close()
			if r.Next() {
				found = &Alert{}
				if err := scanAlert(r, found); err != nil {
					return err
				}
			}
			return r.Err()
		})
	if err != nil {
		return nil, fmt.Errorf("models: get alert: %w", err)
	}
	if found == nil {
		return nil, NotFound("alert")
	}
	return found, nil
}

// Stats returns the counts of org's alerts by state, severity and type.
func (s *AlertStore) Stats(ctx context.Context, org string) (AlertStats, error) {
	st := AlertStats{BySeverity: map[string]int64{}, ByType: map[string]int64{}}
	err := queryInTenant(ctx, s.db, org, `SELECT severity, type, acknowledged, resolved, count(*) FROM alerts
		WHERE organization_id = $1 GROUP BY severity, type, acknowledged, resolved`, []any{org}, func(r pgx.Rows) error {
		defer r.Close()
		for r.Next() {
			var sev, typ string
			var ack, res bool
			var n int64
			if err := r.Scan(&sev, &typ, &ack, &res, &n); err != nil {
				return err
			}
			st.Total += n
			st.BySeverity[sev] += n
			st.ByType[typ] += n
			switch {
			case res:
				st.Resolved += n
			case ack:
				st.Acknowledged += n
			default:
				st.Active += n
			}
		}
		return r.Err()
	})
	if err != nil {
		return AlertStats{}, fmt.Errorf("models: alert statistics: %w", err)
	}
	return st, nil
}

// ActiveCount returns how many of org's alerts are active (neither acknowledged nor
// resolved); it reads the partial index alerts_org_active_idx.
func (s *AlertStore) ActiveCount(ctx context.Context, org string) (int64, error) {
	var n int64
	err := queryInTenant(ctx, s.db, org, `SELECT count(*) FROM alerts WHERE organization_id = $1 AND NOT acknowledged AND NOT resolved`,
		[]any{org}, func(r pgx.Rows) error {
			defer r.Close()
			if r.Next() {
				if err := r.Scan(&n); err != nil {
					return err
				}
			}
			return r.Err()
		})
	if err != nil {
		return 0, fmt.Errorf("models: count active alerts: %w", err)
	}
	return n, nil
}

// errUnchanged ends a transaction that had nothing to do.
var errUnchanged = errors.New("unchanged")

// Acknowledge marks alert id of org acknowledged by who, now, and records alert.acknowledge
// in the audit log in the same transaction. Acknowledging an alert already acknowledged (or
// resolved) changes nothing and reports changed=false. It returns a KindNotFound error when
// the alert does not exist or belongs to another organization.
func (s *AlertStore) Acknowledge(ctx context.Context, org, id string, who Actor) (changed bool, err error) {
	n, err := s.AcknowledgeMany(ctx, org, []string{id}, who)
	return n == 1, err
}

// AcknowledgeMany acknowledges the alerts ids of org in one transaction and returns how many
// changed (alerts already acknowledged are left as they are). Every id must be an alert of
// org: otherwise nothing changes and the error is KindNotFound. It returns a KindInvalid
// error naming "ids" for an empty or too long list.
func (s *AlertStore) AcknowledgeMany(ctx context.Context, org string, ids []string, who Actor) (int, error) {
	ids = uniqueStrings(ids)
	if len(ids) == 0 {
		return 0, Invalid("ids", "select at least one alert")
	}
	if len(ids) > MaxAcknowledgeMany {
		return 0, Invalid("ids", fmt.Sprintf("at most %d alerts at once", MaxAcknowledgeMany))
	}
	if s.audit == nil {
		return 0, fmt.Errorf("models: the alert store has no audit trail")
	}
	var changed []Alert
	err := InTenant(ctx, s.db, org, func(tx *gorm.DB) error {
		var found int64
		if err := tx.Raw(`SELECT count(*) FROM alerts WHERE organization_id = ? AND id IN ?`, org, ids).Scan(&found).Error; err != nil {
			return err
		}
		if found != int64(len(ids)) {
			return NotFound("alert")
		}
		now := s.now().UTC()
		var rows []struct{ ID, Title string }
		err := tx.Raw(`UPDATE alerts SET acknowledged = true, acknowledged_at = ?, acknowledged_by = ?, updated_at = ?
			WHERE organization_id = ? AND id IN ? AND NOT acknowledged RETURNING id, title`,
			now, who.Principal(), now, org, ids).Scan(&rows).Error
		if err != nil {
			return err
		}
		entries := make([]AuditEntry, 0, len(rows))
		for _, r := range rows {
			changed = append(changed, Alert{ID: r.ID, Title: r.Title})
			entries = append(entries, AlertAcknowledged(who, org, r.ID, r.Title))
		}
		return s.audit.RecordTx(ctx, tx, entries...)
	})
	if err != nil {
		if KindOf(err) != KindInternal {
			return 0, err
		}
		return 0, fmt.Errorf("models: acknowledge alerts: %w", err)
	}
	return len(changed), nil
}

// ValidateResolutionNotes returns a KindInvalid error naming "notes" unless notes (trimmed)
// has 1 to MaxResolutionNotes characters.
func ValidateResolutionNotes(notes string) error {
	notes = strings.TrimSpace(notes)
	switch {
	case notes == "":
		return Invalid("notes", "say how the alert was resolved")
	case !utf8.ValidString(notes) || strings.ContainsRune(notes, 0):
		return Invalid("notes", "must be valid text")
	case utf8.RuneCountInString(notes) > MaxResolutionNotes:
		return Invalid("notes", fmt.Sprintf("must be at most %d characters", MaxResolutionNotes))
	}
	return nil
}

// Resolve marks alert id of org resolved by who, now, with notes (required, 1–2000
// characters), and acknowledged if it was not; it records alert.resolve in the audit log in
// the same transaction. Resolving an alert already resolved changes nothing and reports
// changed=false. It returns a KindInvalid error naming "notes" for missing or overlong
// notes and a KindNotFound error when the alert does not exist or belongs to another
// organization.
func (s *AlertStore) Resolve(ctx context.Context, org, id string, who Actor, notes string) (changed bool, err error) {
	if err := ValidateResolutionNotes(notes); err != nil {
		return false, err
	}
	notes = strings.TrimSpace(notes)
	if s.audit == nil {
		return false, fmt.Errorf("models: the alert store has no audit trail")
	}
	err = InTenant(ctx, s.db, org, func(tx *gorm.DB) error {
		var title []string
		if err := tx.Raw(`SELECT title FROM alerts WHERE organization_id = ? AND id = ? FOR UPDATE`, org, id).Scan(&title).Error; err != nil {
			return err
		}
		if len(title) == 0 {
			return NotFound("alert")
		}
		now, by := s.now().UTC(), who.Principal()
		res := tx.Exec(`UPDATE alerts SET resolved = true, resolved_at = ?, resolved_by = ?, resolution_notes = ?,
			acknowledged = true, acknowledged_at = coalesce(acknowledged_at, ?), acknowledged_by = coalesce(acknowledged_by, ?),
			updated_at = ? WHERE organization_id = ? AND id = ? AND NOT resolved`, now, by, notes, now, by, now, org, id)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return errUnchanged
		}
		return s.audit.RecordTx(ctx, tx, AlertResolved(who, org, id, title[0], notes))
	})
	switch {
	case errors.Is(err, errUnchanged):
		return false, nil
	case err != nil && KindOf(err) != KindInternal:
		return false, err
	case err != nil:
		return false, fmt.Errorf("models: resolve alert: %w", err)
	}
	return true, nil
}

// PurgeResolved deletes, in every organization, the resolved alerts older than that
// organization's retention (organizations.retention_days), and returns how many.
func (s *AlertStore) PurgeResolved(ctx context.Context) (int64, error) {
	res := s.db.WithContext(ctx).Exec(`DELETE FROM alerts a USING organizations o
		WHERE a.organization_id = o.id AND a.resolved AND a.resolved_at < ?::timestamptz - make_interval(days => o.retention_days)`,
		s.now().UTC())
	if res.Error != nil {
		return 0, fmt.Errorf("models: purge resolved alerts: %w", res.Error)
	}
	return res.RowsAffected, nil
}

func uniqueStrings(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
