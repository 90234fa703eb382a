package models

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// Limits of a retention policy's days.
const (
	MaxRetentionDays = 36500 // one hundred years
)

// Self-audit actions of the retention area.
const (
	ActionRetentionPolicyCreate = "retention.policy.create"
	ActionRetentionPolicyUpdate = "retention.policy.update"
	ActionRetentionPolicyDelete = "retention.policy.delete"
	ActionRetentionFloorUpdate  = "retention.floor.update"
	ActionRetentionFloorBypass  = "retention.floor.override"
)

// The selection rules of retention (which policy governs an event, when it is due, what a
// legal hold keeps) are defined once, in retention_rules.go, for the run, the preview and the
// page's counts.

// RetentionPolicyRecord is a row of audit_retention_policy: a global policy (Organization
// GlobalOrg) or an organization's own.
type RetentionPolicyRecord struct {
	ID                  int64
	OrganizationID      string
	Name                string `gorm:"column:policy_name"`
	Classification      string `gorm:"column:data_classification"`
	RetentionDays       int
	ArchiveAfterDays    *int
	DeleteAfterDays     *int
	Description         string
	Active              bool `gorm:"column:is_active"`
	FloorOverrideReason *string
	CreatedBy           *string
	UpdatedBy           *string
	UpdatedAt           time.Time
}

// Global reports whether the policy applies to every organization.
func (p RetentionPolicyRecord) Global() bool { return p.OrganizationID == GlobalOrg }

func (p RetentionPolicyRecord) snapshot() map[string]any {
	return map[string]any{"name": p.Name, "classification": p.Classification, "retention_days": p.RetentionDays,
		"archive_after_days": p.ArchiveAfterDays, "delete_after_days": p.DeleteAfterDays,
		"description": p.Description, "active": p.Active, "floor_override_reason": p.FloorOverrideReason}
}

// RetentionPolicyInput is a policy as typed in the form.
type RetentionPolicyInput struct {
	Name                string
	Classification      string
	RetentionDays       int
	ArchiveAfterDays    *int
	DeleteAfterDays     *int
	Description         string
	Active              bool
	FloorOverrideReason string
}

var policyNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,49}$`)

// Validate returns a KindInvalid error naming the first field that is out of range; the
// statutory floor is checked by the store.
func (in RetentionPolicyInput) Validate() error {
	if !policyNamePattern.MatchString(in.Name) {
		return Invalid("name", "must be 1 to 50 lower-case letters, digits, '_', '-' or '.', starting with a letter or digit")
	}
	if !slices.Contains(DataClassifications, in.Classification) {
		return Invalid("classification", "must be one of "+strings.Join(DataClassifications, ", "))
	}
	if in.RetentionDays <= 0 || in.RetentionDays > MaxRetentionDays {
		return Invalid("retention_days", fmt.Sprintf("must be from 1 to %d days", MaxRetentionDays))
	}
	deletion := in.RetentionDays
	if in.DeleteAfterDays != nil {
		d := *in.DeleteAfterDays
		if d < in.RetentionDays {
			return Invalid("delete_after_days", fmt.Sprintf("must not be below retention_days (%d): an event is kept at least that long", in.RetentionDays))
		}
		if d > MaxRetentionDays {
			return Invalid("delete_after_days", fmt.Sprintf("must be at most %d days", MaxRetentionDays))
		}
		deletion = d
	}
	if in.ArchiveAfterDays != nil {
		a := *in.ArchiveAfterDays
		if a < 0 {
			return Invalid("archive_after_days", "must not be negative")
		}
		if a >= deletion {
			return Invalid("archive_after_days", fmt.Sprintf("must be before the deletion day (%d): an event is archived before it is deleted", deletion))
		}
	}
	if len(in.Description) > 2000 {
		return Invalid("description", "must be at most 2000 characters")
	}
	if len(in.FloorOverrideReason) > 1000 {
		return Invalid("floor_override_reason", "must be at most 1000 characters")
	}
	return nil
}

// RetentionFloor is the statutory minimum retention of a data classification (0: none).
type RetentionFloor struct {
	Classification string
	MinDays        int
	UpdatedBy      string
	UpdatedAt      time.Time
}

// PolicyWithCounts is a policy with how many of the organization's events it keeps in
// audit_log (exact count) and in archives.
type PolicyWithCounts struct {
	RetentionPolicyRecord
	ActiveEvents   int64
	ArchivedEvents int64
	// Overridden is set on a global policy when the organization has an active policy of
	// its own for the same classification.
	Overridden bool
}

// RetentionPolicyStore reads and changes retention policies, statutory floors and legal
// holds, and previews the next retention run.
type RetentionPolicyStore struct {
	db    *gorm.DB
	trail *AuditTrail
	now   func() time.Time
}

// NewRetentionPolicyStore returns a store over db; changes are self-audited through trail.
func NewRetentionPolicyStore(db *gorm.DB, trail *AuditTrail) *RetentionPolicyStore {
	return &RetentionPolicyStore{db: db, trail: trail, now: time.Now}
}

const policyColumns = `id, organization_id, policy_name, data_classification, retention_days, archive_after_days,
	delete_after_days, coalesce(description, '') AS description, is_active, floor_override_reason, created_by, updated_by, updated_at`

// Policies returns the global policies and org's own, globals first, each by name, with
// the organization's event counts. Active counts are exact (audit_log of org grouped by
// retention_policy, over the organization's index).
func (s *RetentionPolicyStore) Policies(ctx context.Context, org string) ([]PolicyWithCounts, error) {
	db := s.db.WithContext(ctx)
	var rows []RetentionPolicyRecord
	if err := db.Raw(`SELECT `+policyColumns+` FROM audit_retention_policy WHERE organization_id IN (?, '*')
		ORDER BY organization_id = '*' DESC, policy_name`, org).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("models: list retention policies: %w", err)
	}
	// An event counts under the policy governing it, by the retention rules; an archived
	// event under the policy its archive was written for.
	rules, err := loadRetentionRules(ctx, s.db, org, s.now())
	if err != nil {
		return nil, err
	}
	type count struct {
		Policy, Classification string
		N                      int64
	}
	var active, archived []count
	if err := db.Raw(`SELECT retention_policy AS policy, data_classification AS classification, count(*) AS n
		FROM audit_log WHERE organization_id = ? GROUP BY 1, 2`, org).Scan(&active).Error; err != nil {
		return nil, fmt.Errorf("models: count events by policy: %w", err)
	}
	if err := db.Raw(`SELECT a.policy, count(*) AS n FROM archived_events e JOIN archive_storage a ON a.id = e.archive_id
		WHERE e.organization_id = ? GROUP BY 1`, org).Scan(&archived).Error; err != nil {
		return nil, fmt.Errorf("models: count archived events by policy: %w", err)
	}
	byID := map[int64]int{}
	out := make([]PolicyWithCounts, len(rows))
	for i, r := range rows {
		byID[r.ID] = i
		out[i] = PolicyWithCounts{RetentionPolicyRecord: r, Overridden: r.Global() && rules.classOwner[r.Classification] != nil}
	}
	for _, c := range active {
		if p := rules.governing(c.Policy, c.Classification); p != nil {
			out[byID[p.ID]].ActiveEvents += c.N
		}
	}
	for _, c := range archived {
		p := rules.own[c.Policy]
		if p == nil {
			p = rules.global[c.Policy]
		}
		if p != nil {
			out[byID[p.ID]].ArchivedEvents += c.N
		}
	}
	return out, nil
}

// Policy returns policy id as org sees it (its own or a global one). It returns
// KindNotFound for another organization's policy or an unknown id.
func (s *RetentionPolicyStore) Policy(ctx context.Context, org string, id int64) (*RetentionPolicyRecord, error) {
	return policyOf(s.db.WithContext(ctx), org, id, false)
}

func policyOf(tx *gorm.DB, org string, id int64, lock bool) (*RetentionPolicyRecord, error) {
	q := `SELECT ` + policyColumns + ` FROM audit_retention_policy WHERE id = ? AND organization_id IN (?, '*')`
	if lock {
		q += ` FOR UPDATE`
	}
	var rows []RetentionPolicyRecord
	if err := tx.Raw(q, id, org).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("models: read retention policy: %w", err)
	}
	if len(rows) == 0 {
		return nil, NotFound("retention policy")
	}
	return &rows[0], nil
}

// Floors returns the statutory floor of every classification (0 where none is set).
func (s *RetentionPolicyStore) Floors(ctx context.Context) ([]RetentionFloor, error) {
	return floors(s.db.WithContext(ctx))
}

func floors(tx *gorm.DB) ([]RetentionFloor, error) {
	var rows []RetentionFloor
	if err := tx.Raw(`SELECT data_classification AS classification, min_days, updated_by, updated_at FROM retention_floors`).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("models: read retention floors: %w", err)
	}
	out := make([]RetentionFloor, len(DataClassifications))
	for i, c := range DataClassifications {
		out[i] = RetentionFloor{Classification: c}
		for _, r := range rows {
			if r.Classification == c {
				out[i] = r
			}
		}
	}
	return out, nil
}

func floorOf(tx *gorm.DB, classification string) (int, error) {
	var days []int
	if err := tx.Raw(`SELECT min_days FROM retention_floors WHERE data_classification = ?`, classification).Scan(&days).Error; err != nil {
		return 0, fmt.Errorf("models: read retention floor: %w", err)
	}
	if len(days) == 0 {
		return 0, nil
	}
	return days[0], nil
}

// SetFloor sets the statutory floor of classification to days (0: none); only superadmins
// may. Lowering a floor needs a reason. The change is self-audited in org's log and written
// to config_change_event.
func (s *RetentionPolicyStore) SetFloor(ctx context.Context, org, classification string, days int, reason string, by Actor) error {
	if !by.unrestricted() {
		return Forbidden("only a superadmin may set statutory floors")
	}
	if !slices.Contains(DataClassifications, classification) {
		return Invalid("classification", "must be one of "+strings.Join(DataClassifications, ", "))
	}
	if days < 0 || days > MaxRetentionDays {
		return Invalid("min_days", fmt.Sprintf("must be from 0 (no floor) to %d days", MaxRetentionDays))
	}
	reason = strings.TrimSpace(reason)
	if err := s.trail.prepare(ctx); err != nil {
		return err
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`LOCK TABLE retention_floors IN SHARE ROW EXCLUSIVE MODE`).Error; err != nil {
			return fmt.Errorf("models: lock retention floors: %w", err)
		}
		prev, err := floorOf(tx, classification)
		if err != nil {
			return err
		}
		if prev == days {
			return nil
		}
		if days < prev && reason == "" {
			return Invalid("reason", fmt.Sprintf("lowering the %s floor from %d to %d days needs a reason", classification, prev, days))
		}
		err = tx.Exec(`INSERT INTO retention_floors (data_classification, min_days, updated_by, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (data_classification) DO UPDATE SET min_days = EXCLUDED.min_days, updated_by = EXCLUDED.updated_by,
				updated_at = EXCLUDED.updated_at`, classification, days, by.Principal(), s.now().UTC()).Error
		if err != nil {
			return fmt.Errorf("models: save retention floor: %w", err)
		}
		field := "retention_floor." + classification
		return s.trail.RecordTx(ctx, tx, AuditEntry{Org: org, Action: ActionRetentionFloorUpdate, Actor: by,
			TargetType: "retention_floor", TargetID: classification,
			Outcome: fmt.Sprintf("statutory floor of %s set from %d to %d days", classification, prev, days),
			Details: map[string]any{"previous": prev, "new": days, "reason": reason},
			Change:  &ConfigChange{Field: field, Previous: prev, New: days, Reason: reason}})
	})
}

// checkFloor refuses in when its retention is below its classification's floor and no
// override reason is given; it reports whether the floor is overridden.
func checkFloor(tx *gorm.DB, in RetentionPolicyInput) (bool, error) {
	floor, err := floorOf(tx, in.Classification)
	if err != nil {
		return false, err
	}
	if in.RetentionDays >= floor {
		return false, nil
	}
	if strings.TrimSpace(in.FloorOverrideReason) == "" {
		return false, Invalid("floor_override_reason", fmt.Sprintf(
			"retention_days %d is below the statutory floor of %d days for %s data; raise it, or give the reason for the override",
			in.RetentionDays, floor, in.Classification))
	}
	return true, nil
}

// policyEntry is the self-audit entry of a policy change; a floor overridden adds its own
// entry.
func policyEntries(org, action, verb string, before, after *RetentionPolicyRecord, overridden bool, by Actor) []AuditEntry {
	var prev, next any
	p := after
	if before != nil {
		prev = before.snapshot()
	}
	if after != nil {
		next = after.snapshot()
	} else {
		p = before
	}
	field := "retention_policy." + p.Name
	if p.Global() {
		field = "retention_policy.*." + p.Name
	}
	out := []AuditEntry{{Org: org, Action: action, Actor: by, TargetType: "retention_policy", TargetID: strconv.FormatInt(p.ID, 10),
		Outcome: "retention policy " + p.Name + " " + verb, Details: map[string]any{"policy": p.Name, "global": p.Global()},
		Change: &ConfigChange{Field: field, Previous: prev, New: next}}}
	if overridden && after != nil && after.FloorOverrideReason != nil {
		out = append(out, AuditEntry{Org: org, Action: ActionRetentionFloorBypass, Actor: by, TargetType: "retention_policy",
			TargetID: strconv.FormatInt(p.ID, 10),
			Outcome:  "retention policy " + p.Name + " kept below the statutory floor of " + p.Classification,
			Details:  map[string]any{"policy": p.Name, "retention_days": p.RetentionDays, "reason": *after.FloorOverrideReason}})
	}
	return out
}

func isUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505"
}

func nilIfEmpty(s string) *string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	return &s
}

// CreatePolicy adds a policy of org's own. It returns KindInvalid naming the field for bad
// input or a retention below the floor without an override reason, KindConflict for a
// name org already uses; nothing is written then.
func (s *RetentionPolicyStore) CreatePolicy(ctx context.Context, org string, in RetentionPolicyInput, by Actor) (*RetentionPolicyRecord, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if err := s.trail.prepare(ctx); err != nil {
		return nil, err
	}
	var created *RetentionPolicyRecord
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		overridden, err := checkFloor(tx, in)
		if err != nil {
			return err
		}
		reason := (*string)(nil)
		if overridden {
			reason = nilIfEmpty(in.FloorOverrideReason)
		}
		var id int64
		err = tx.Raw(`INSERT INTO audit_retention_policy (organization_id, policy_name, data_classification, retention_days,
			archive_after_days, delete_after_days, description, is_active, floor_override_reason, created_by, updated_by, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (organization_id, policy_name) DO NOTHING RETURNING id`,
			org, in.Name, in.Classification, in.RetentionDays, in.ArchiveAfterDays, in.DeleteAfterDays, in.Description, in.Active,
			reason, by.Principal(), by.Principal(), s.now().UTC(), s.now().UTC()).Scan(&id).Error
		if err != nil {
			return fmt.Errorf("models: create retention policy: %w", err)
		}
		if id == 0 {
			return Conflict("name", fmt.Sprintf("the organization already has a policy named %q", in.Name))
		}
		if created, err = policyOf(tx, org, id, false); err != nil {
			return err
		}
		return s.trail.RecordTx(ctx, tx, policyEntries(org, ActionRetentionPolicyCreate, "created", nil, created, overridden, by)...)
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}

// UpdatePolicy changes policy id as seen by org: its own, or a global one (superadmins
// only). Besides the refusals of CreatePolicy, it returns KindNotFound for another
// organization's policy, KindForbidden for a global policy changed by an organization user,
// and KindConflict when deactivating the only active policy of a classification events use.
func (s *RetentionPolicyStore) UpdatePolicy(ctx context.Context, org string, id int64, in RetentionPolicyInput, by Actor) (*RetentionPolicyRecord, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if err := s.trail.prepare(ctx); err != nil {
		return nil, err
	}
	var after *RetentionPolicyRecord
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		before, err := policyOf(tx, org, id, true)
		if err != nil {
			return err
		}
		if before.Global() && !by.unrestricted() {
			return Forbidden("global policies apply to every organization; only a superadmin may change them")
		}
		overridden, err := checkFloor(tx, in)
		if err != nil {
			return err
		}
		if in.Name != before.Name {
			if err := refuseRenameInUse(tx, before); err != nil {
				return err
			}
		}
		if before.Active && (!in.Active || in.Classification != before.Classification) {
			if err := s.checkLastActive(tx, org, before, "active"); err != nil {
				return err
			}
		}
		reason := (*string)(nil)
		if overridden {
			reason = nilIfEmpty(in.FloorOverrideReason)
		}
		err = tx.Exec(`UPDATE audit_retention_policy SET policy_name = ?, data_classification = ?, retention_days = ?,
			archive_after_days = ?, delete_after_days = ?, description = ?, is_active = ?, floor_override_reason = ?,
			updated_by = ?, updated_at = ? WHERE id = ?`,
			in.Name, in.Classification, in.RetentionDays, in.ArchiveAfterDays, in.DeleteAfterDays, in.Description, in.Active,
			reason, by.Principal(), s.now().UTC(), id).Error
		if isUniqueViolation(err) {
			return Conflict("name", fmt.Sprintf("a policy named %q already exists", in.Name))
		} else if err != nil {
			return fmt.Errorf("models: update retention policy: %w", err)
		}
		if after, err = policyOf(tx, org, id, false); err != nil {
			return err
		}
		return s.trail.RecordTx(ctx, tx, policyEntries(org, ActionRetentionPolicyUpdate, "updated", before, after, overridden, by)...)
	})
	if err != nil {
		return nil, err
	}
	return after, nil
}

// DeletePolicy removes policy id as seen by org, with the refusals of UpdatePolicy for
// another organization's policy, a global one and the last active policy of a
// classification events use.
func (s *RetentionPolicyStore) DeletePolicy(ctx context.Context, org string, id int64, by Actor) (*RetentionPolicyRecord, error) {
	if err := s.trail.prepare(ctx); err != nil {
		return nil, err
	}
	var before *RetentionPolicyRecord
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if before, err = policyOf(tx, org, id, true); err != nil {
			return err
		}
		if before.Global() && !by.unrestricted() {
			return Forbidden("global policies apply to every organization; only a superadmin may delete them")
		}
		if before.Active {
			if err := s.checkLastActive(tx, org, before, "policy"); err != nil {
				return err
			}
		}
		if err := tx.Exec(`DELETE FROM audit_retention_policy WHERE id = ?`, id).Error; err != nil {
			return fmt.Errorf("models: delete retention policy: %w", err)
		}
		return s.trail.RecordTx(ctx, tx, policyEntries(org, ActionRetentionPolicyDelete, "deleted", before, nil, false, by)...)
	})
	if err != nil {
		return nil, err
	}
	return before, nil
}

// refuseRenameInUse refuses renaming p while events name it: they would lose the policy
// that governs them.
func refuseRenameInUse(tx *gorm.DB, p *RetentionPolicyRecord) error {
	q, args := `SELECT EXISTS (SELECT 1 FROM audit_log WHERE organization_id = ? AND retention_policy = ?)`, []any{p.OrganizationID, p.Name}
	if p.Global() {
		q, args = `SELECT EXISTS (SELECT 1 FROM audit_log WHERE retention_policy = ?)`, []any{p.Name}
	}
	var used bool
	if err := tx.Raw(q, args...).Scan(&used).Error; err != nil {
		return fmt.Errorf("models: look for events of a policy: %w", err)
	}
	if used {
		return Conflict("name", fmt.Sprintf("events name policy %s, so it keeps its name; create a policy with the new name instead", p.Name))
	}
	return nil
}

// checkLastActive refuses taking p out of service when no other active policy covers its
// classification for the organizations it serves and events of that classification exist
// (for a global policy: in any organization without a policy of its own).
func (s *RetentionPolicyStore) checkLastActive(tx *gorm.DB, org string, p *RetentionPolicyRecord, field string) error {
	var others int64
	if err := tx.Raw(`SELECT count(*) FROM audit_retention_policy WHERE is_active AND id <> ? AND data_classification = ?
		AND organization_id IN (?, '*')`, p.ID, p.Classification, p.OrganizationID).Scan(&others).Error; err != nil {
		return fmt.Errorf("models: count retention policies: %w", err)
	}
	if others > 0 {
		return nil
	}
	var events int64
	var err error
	if p.Global() {
		err = tx.Raw(`SELECT count(*) FROM audit_log e WHERE e.data_classification = ? AND NOT EXISTS (
			SELECT 1 FROM audit_retention_policy o WHERE o.organization_id = e.organization_id AND o.is_active
			AND o.data_classification = e.data_classification)`, p.Classification).Scan(&events).Error
	} else {
		err = tx.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND data_classification = ?`,
			p.OrganizationID, p.Classification).Scan(&events).Error
	}
	if err != nil {
		return fmt.Errorf("models: count events of a classification: %w", err)
	}
	if events == 0 {
		return nil
	}
	return Conflict(field, fmt.Sprintf("%s is the only active policy for %s data, which %d events use; activate another %s policy first",
		p.Name, p.Classification, events, p.Classification))
}

// RetentionPreview is what the next retention run of an organization would do at a given
// instant, by the selection rules above.
type RetentionPreview struct {
	At            time.Time
	Archive       int64    // events that would move to the archive (and stay there)
	ArchiveMonths []string // the months (YYYY-MM) of those events, oldest first
	Delete        int64    // events that would be deleted
	DeleteMonths  []string
	KeptByHolds   int64 // events due for deletion that active legal holds keep
	// ByHold is how many due events each active hold keeps (an event may be kept by several).
	ByHold []HoldKeeps
}

// HoldKeeps is how many events due for deletion one legal hold keeps.
type HoldKeeps struct {
	HoldID int64
	Name   string
	Events int64
}

// RetentionPreview computes what a retention run at now would archive, delete and keep
// because of legal holds in org's audit_log: the run's own plan (the same rules and queries),
// so the preview and the run agree.
func (s *RetentionPolicyStore) RetentionPreview(ctx context.Context, org string, now time.Time) (*RetentionPreview, error) {
	rules, err := loadRetentionRules(ctx, s.db, org, now)
	if err != nil {
		return nil, err
	}
	plan, err := rules.plan(ctx, s.db)
	if err != nil {
		return nil, err
	}
	p := &RetentionPreview{At: now.UTC()}
	archive, del := map[string]bool{}, map[string]bool{}
	for _, r := range plan {
		p.Archive += r.Archive
		p.Delete += r.Delete
		p.KeptByHolds += r.Kept
		month := r.Month.Format("2006-01")
		if r.Archive > 0 && !archive[month] {
			archive[month] = true
			p.ArchiveMonths = append(p.ArchiveMonths, month)
		}
		if r.Delete > 0 && !del[month] {
			del[month] = true
			p.DeleteMonths = append(p.DeleteMonths, month)
		}
	}
	sort.Strings(p.ArchiveMonths)
	sort.Strings(p.DeleteMonths)
	if p.KeptByHolds == 0 {
		return p, nil
	}
	if p.ByHold, err = rules.heldByHold(ctx, s.db); err != nil {
		return nil, err
	}
	return p, nil
}
