package models

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Self-audit actions of legal holds.
const (
	ActionLegalHoldPlace   = "retention.hold.place"
	ActionLegalHoldRelease = "retention.hold.release"
)

// The scopes of a legal hold (legal_holds.scope).
const (
	HoldScopeOrganization = "organization"
	HoldScopePrincipal    = "principal"
	HoldScopeResource     = "resource"
	HoldScopeCorrelation  = "correlation"
	HoldScopeTimeRange    = "time_range"
)

// HoldScopes lists the scopes a hold may have.
var HoldScopes = []string{HoldScopeOrganization, HoldScopePrincipal, HoldScopeResource, HoldScopeCorrelation, HoldScopeTimeRange}

// holdMatches returns the SQL condition "hold h covers event e": its scope matches and,
// when the hold has a time range, the event's timestamp lies within it (both ends
// included).
func holdMatches(h, e string) (string, []any) {
	return `((` + h + `.scope IN ('organization', 'time_range')
		OR (` + h + `.scope = 'principal' AND ` + e + `.principal_id = ` + h + `.principal_id)
		OR (` + h + `.scope = 'resource' AND ` + e + `.target_resource_type = ` + h + `.resource_type AND ` + e + `.target_resource_id = ` + h + `.resource_id)
		OR (` + h + `.scope = 'correlation' AND ` + e + `.correlation_id = ` + h + `.correlation_id))
		AND (` + h + `.from_time IS NULL OR ` + e + `."timestamp" >= ` + h + `.from_time)
		AND (` + h + `.to_time IS NULL OR ` + e + `."timestamp" <= ` + h + `.to_time))`, nil
}

// HeldPredicate returns the SQL condition (and its arguments) "the event of alias e is
// under an active (unreleased) legal hold of org". Such an event is never deleted, from
// audit_log or from an archive; archiving alone is allowed.
func HeldPredicate(e, org string) (string, []any) {
	match, args := holdMatches("lh", e)
	return `EXISTS (SELECT 1 FROM legal_holds lh WHERE lh.organization_id = ? AND lh.organization_id = ` + e + `.organization_id
		AND lh.released_at IS NULL AND ` + match + `)`, append([]any{org}, args...)
}

// LegalHold is a row of legal_holds.
type LegalHold struct {
	ID             int64
	OrganizationID string
	Name           string
	Reason         string
	Scope          string
	PrincipalID    *string
	ResourceType   *string
	ResourceID     *string
	CorrelationID  *string
	FromTime       *time.Time
	ToTime         *time.Time
	PlacedBy       string
	PlacedAt       time.Time
	ReleasedBy     *string
	ReleasedAt     *time.Time
}

// Active reports whether the hold has not been released.
func (h LegalHold) Active() bool { return h.ReleasedAt == nil }

// Describe says in words what the hold covers.
func (h LegalHold) Describe() string {
	val := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	var s string
	switch h.Scope {
	case HoldScopeOrganization:
		s = "every event of the organization"
	case HoldScopePrincipal:
		s = "events of principal " + val(h.PrincipalID)
	case HoldScopeResource:
		s = "events on " + val(h.ResourceType) + " " + val(h.ResourceID)
	case HoldScopeCorrelation:
		s = "events of correlation id " + val(h.CorrelationID)
	case HoldScopeTimeRange:
		s = "every event"
	}
	if h.FromTime != nil {
		s += " from " + h.FromTime.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	if h.ToTime != nil {
		s += " to " + h.ToTime.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return s
}

// LegalHoldInput is a hold as typed in the form.
type LegalHoldInput struct {
	Name, Reason, Scope                                  string
	PrincipalID, ResourceType, ResourceID, CorrelationID string
	From, To                                             *time.Time
}

// Validate returns a KindInvalid error naming the first field that is missing or wrong:
// a hold names its scope's value, and a range ends after it starts.
func (in *LegalHoldInput) Validate() error {
	in.Name, in.Reason = strings.TrimSpace(in.Name), strings.TrimSpace(in.Reason)
	in.PrincipalID, in.CorrelationID = strings.TrimSpace(in.PrincipalID), strings.TrimSpace(in.CorrelationID)
	in.ResourceType, in.ResourceID = strings.TrimSpace(in.ResourceType), strings.TrimSpace(in.ResourceID)
	if in.Name == "" || len(in.Name) > 200 {
		return Invalid("name", "must be 1 to 200 characters")
	}
	if HasFormatChar(in.Name) {
		return FormatCharError("name", in.Name)
	}
	if in.Reason == "" {
		return Invalid("reason", "is required: say why the events must be kept (matter, request, authority)")
	}
	if len(in.Reason) > 5000 {
		return Invalid("reason", "must be at most 5000 characters")
	}
	for _, v := range []struct{ field, value string }{{"principal_id", in.PrincipalID}, {"resource_type", in.ResourceType},
		{"resource_id", in.ResourceID}, {"correlation_id", in.CorrelationID}} {
		if len(v.value) > 255 {
			return Invalid(v.field, "must be at most 255 characters")
		}
	}
	switch in.Scope {
	case HoldScopeOrganization:
	case HoldScopePrincipal:
		if in.PrincipalID == "" {
			return Invalid("principal_id", "is required for a hold on a principal")
		}
	case HoldScopeResource:
		if in.ResourceType == "" {
			return Invalid("resource_type", "is required for a hold on a target resource")
		}
		if in.ResourceID == "" {
			return Invalid("resource_id", "is required for a hold on a target resource")
		}
	case HoldScopeCorrelation:
		if in.CorrelationID == "" {
			return Invalid("correlation_id", "is required for a hold on a correlation id")
		}
	case HoldScopeTimeRange:
		if in.From == nil {
			return Invalid("from", "is required for a hold on a time range")
		}
		if in.To == nil {
			return Invalid("to", "is required for a hold on a time range")
		}
	default:
		return Invalid("scope", "must be one of "+strings.Join(HoldScopes, ", "))
	}
	if in.From != nil && in.To != nil && in.To.Before(*in.From) {
		return Invalid("to", "must not precede the start of the range")
	}
	return nil
}

const holdColumns = `id, organization_id, name, reason, scope, principal_id, resource_type, resource_id, correlation_id,
	from_time, to_time, placed_by, placed_at, released_by, released_at`

// Holds returns org's legal holds, active ones first, newest first.
func (s *RetentionPolicyStore) Holds(ctx context.Context, org string) ([]LegalHold, error) {
	var rows []LegalHold
	if err := s.db.WithContext(ctx).Raw(`SELECT `+holdColumns+` FROM legal_holds WHERE organization_id = ?
		ORDER BY released_at IS NOT NULL, placed_at DESC, id DESC`, org).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("models: list legal holds: %w", err)
	}
	return rows, nil
}

func holdOf(tx *gorm.DB, org string, id int64, lock bool) (*LegalHold, error) {
	q := `SELECT ` + holdColumns + ` FROM legal_holds WHERE id = ? AND organization_id = ?`
	if lock {
		q += ` FOR UPDATE`
	}
	var rows []LegalHold
	if err := tx.Raw(q, id, org).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("models: read legal hold: %w", err)
	}
	if len(rows) == 0 {
		return nil, NotFound("legal hold")
	}
	return &rows[0], nil
}

func (h LegalHold) details() map[string]any {
	d := map[string]any{"name": h.Name, "reason": h.Reason, "scope": h.Scope, "covers": h.Describe()}
	return d
}

// LockHoldsSQL takes the transaction-scoped advisory lock of organization $1's legal holds.
// PlaceHold takes it before it inserts a hold, and every batch that deletes or rewrites
// events under a check of the holds (the erasure engine's) takes it before that check: a
// hold is then either committed before the batch checks, or placed after the batch has
// committed, never in between. Retention's batches, which read in a REPEATABLE READ snapshot
// that a SELECT taking this lock would fix before it waited, lock the legal_holds table in
// SHARE mode instead (retentionRules.recheck), which PlaceHold's insert waits for in the same way.
const LockHoldsSQL = `SELECT pg_advisory_xact_lock(hashtextextended('auditdb.legal_holds:' || $1::text, 0))`

// PlaceHold places a legal hold on org's events, self-audited. It returns KindInvalid
// naming the field for a hold without its scope's value or a range ending before it
// starts; nothing is written then.
func (s *RetentionPolicyStore) PlaceHold(ctx context.Context, org string, in LegalHoldInput, by Actor) (*LegalHold, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if err := s.trail.prepare(ctx); err != nil {
		return nil, err
	}
	scoped := func(scope, v string) *string {
		if in.Scope != scope {
			return nil
		}
		return &v
	}
	var placed *LegalHold
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// After any erasure batch of org in flight: that batch commits first, the next one
		// sees this hold (see LockHoldsSQL).
		if err := tx.Exec(strings.Replace(LockHoldsSQL, "$1", "?", 1), org).Error; err != nil {
			return fmt.Errorf("models: lock legal holds: %w", err)
		}
		var id int64
		err := tx.Raw(`INSERT INTO legal_holds (organization_id, name, reason, scope, principal_id, resource_type, resource_id,
			correlation_id, from_time, to_time, placed_by, placed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			org, in.Name, in.Reason, in.Scope, scoped(HoldScopePrincipal, in.PrincipalID), scoped(HoldScopeResource, in.ResourceType),
			scoped(HoldScopeResource, in.ResourceID), scoped(HoldScopeCorrelation, in.CorrelationID), in.From, in.To,
			by.Principal(), s.now().UTC()).Scan(&id).Error
		if err != nil {
			return fmt.Errorf("models: place legal hold: %w", err)
		}
		if placed, err = holdOf(tx, org, id, false); err != nil {
			return err
		}
		return s.trail.RecordTx(ctx, tx, AuditEntry{Org: org, Action: ActionLegalHoldPlace, Actor: by, TargetType: "legal_hold",
			TargetID: strconv.FormatInt(id, 10), Outcome: "legal hold " + Truncate(in.Name, 200) + " placed on " + placed.Describe(),
			Details: placed.details()})
	})
	if err != nil {
		return nil, err
	}
	return placed, nil
}

// ReleaseHold releases org's hold id, self-audited: the events it kept are deleted by the
// next run when due and no other hold keeps them. It returns KindNotFound for another
// organization's hold and KindConflict for a hold already released.
func (s *RetentionPolicyStore) ReleaseHold(ctx context.Context, org string, id int64, by Actor) (*LegalHold, error) {
	if err := s.trail.prepare(ctx); err != nil {
		return nil, err
	}
	var released *LegalHold
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		h, err := holdOf(tx, org, id, true)
		if err != nil {
			return err
		}
		if !h.Active() {
			return Conflict("hold", fmt.Sprintf("legal hold %s was already released by %s on %s", h.Name, deref(h.ReleasedBy),
				h.ReleasedAt.UTC().Format("2006-01-02 15:04:05 UTC")))
		}
		if err := tx.Exec(`UPDATE legal_holds SET released_by = ?, released_at = ? WHERE id = ?`, by.Principal(), s.now().UTC(), id).Error; err != nil {
			return fmt.Errorf("models: release legal hold: %w", err)
		}
		if released, err = holdOf(tx, org, id, false); err != nil {
			return err
		}
		return s.trail.RecordTx(ctx, tx, AuditEntry{Org: org, Action: ActionLegalHoldRelease, Actor: by, TargetType: "legal_hold",
			TargetID: strconv.FormatInt(id, 10), Outcome: "legal hold " + Truncate(h.Name, 200) + " released",
			Details: released.details()})
	})
	if err != nil {
		return nil, err
	}
	return released, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
