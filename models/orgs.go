package models

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Organization is a tenant.
type Organization struct {
	ID            string    `gorm:"column:id;primaryKey"`
	Name          string    `gorm:"column:name"`
	RetentionDays int       `gorm:"column:retention_days"`
	CreatedAt     time.Time `gorm:"column:created_at"`
	UpdatedAt     time.Time `gorm:"column:updated_at"`
}

// TableName maps Organization to organizations.
func (Organization) TableName() string { return "organizations" }

var orgIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,49}$`)

// OrgStore manages organizations.
type OrgStore struct {
	db    *gorm.DB
	trail *AuditTrail // nil: CreateBy is unavailable
	// Refresh is run after every committed change (see PolicyRefresh).
	Refresh PolicyRefresh
}

// NewOrgStore returns a store over db.
func NewOrgStore(db *gorm.DB) *OrgStore { return &OrgStore{db: db} }

// NewAuditedOrgStore returns a store over db whose CreateBy audits to trail.
func NewAuditedOrgStore(db *gorm.DB, trail *AuditTrail) *OrgStore {
	return &OrgStore{db: db, trail: trail}
}

// Create adds an organization. It returns KindInvalid for a bad id or name and KindConflict
// when the id is taken.
func (s *OrgStore) Create(ctx context.Context, id, name string) (*Organization, error) {
	org, err := createOrg(ctx, s.db, id, name)
	if err := s.Refresh.done(ctx, err); err != nil {
		return nil, err
	}
	return org, nil
}

func createOrg(ctx context.Context, tx *gorm.DB, id, name string) (*Organization, error) {
	if !orgIDPattern.MatchString(id) {
		return nil, Invalid("id", "must be 1-50 lower-case letters, digits, '-' or '_', starting with a letter or digit")
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 255 {
		return nil, Invalid("name", "must be 1-255 characters")
	}
	if HasFormatChar(name) {
		return nil, FormatCharError("name", name)
	}
	org := &Organization{ID: id, Name: name, RetentionDays: 90}
	err := tx.WithContext(ctx).Create(org).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return nil, Conflict("id", "an organization with this id already exists")
	}
	if err != nil {
		return nil, fmt.Errorf("models: create organization: %w", err)
	}
	return org, nil
}

// CreateBy adds an organization like Create and writes organization.create to the new
// organization's audit log in the same transaction, with by as the principal.
func (s *OrgStore) CreateBy(ctx context.Context, id, name string, by Actor) (*Organization, error) {
	if err := s.trail.prepare(ctx); err != nil {
		return nil, err
	}
	var org *Organization
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		org, err = createOrgTx(ctx, tx, s.trail, id, name, by)
		return err
	})
	if err := s.Refresh.done(ctx, err); err != nil {
		return nil, err
	}
	return org, nil
}

// CreateWithOwner adds an organization like CreateBy and, when owner.Email is not empty,
// makes that account its first owner, all in one transaction: either both are written
// or neither is. A new email gets an account with a one-time password (returned once in
// the AddedMember); an existing account is attached directly, without an invitation.
// That is acceptable here because only superadmins (or the program) create organizations
// and an organization without an owner is unusable; everyone else invites. owner.Role
// defaults to OwnerRole. The AddedMember is nil when no owner was given. It returns what
// CreateBy and MemberStore.Add return (KindInvalid, KindConflict naming the field,
// KindForbidden for an actor that is not unrestricted).
func (s *OrgStore) CreateWithOwner(ctx context.Context, id, name string, owner NewMember, by Actor) (*Organization, *AddedMember, error) {
	if owner.Email != "" {
		if owner.Role == "" {
			owner.Role = OwnerRole
		}
		if err := checkNewMember(owner, by); err != nil {
			return nil, nil, ownerError(err)
		}
	}
	if err := s.trail.prepare(ctx); err != nil {
		return nil, nil, err
	}
	var (
		org   *Organization
		added *AddedMember
	)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if org, err = createOrgTx(ctx, tx, s.trail, id, name, by); err != nil {
			return err
		}
		if owner.Email == "" {
			return nil
		}
		added, err = addMember(ctx, tx, s.trail, org.ID, owner, by)
		return ownerError(err)
	})
	if err := s.Refresh.done(ctx, err); err != nil {
		return nil, nil, err
	}
	return org, added, nil
}

// ownerError names the owner field in a refusal about the owner's email, which the
// organizations form calls "owner".
func ownerError(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Field == "email" {
		c := *e
		c.Field = "owner"
		return &c
	}
	return err
}

// createOrgTx creates the organization in tx and writes organization.create to its audit
// log in the same transaction.
func createOrgTx(ctx context.Context, tx *gorm.DB, trail *AuditTrail, id, name string, by Actor) (*Organization, error) {
	org, err := createOrg(ctx, tx, id, name)
	if err != nil {
		return nil, err
	}
	err = trail.RecordTx(ctx, tx, AuditEntry{Org: org.ID, Action: ActionOrgCreate, Actor: by,
		TargetType: "organization", TargetID: org.ID, Outcome: "organization " + org.Name + " created",
		Change: &ConfigChange{Field: "organization", New: map[string]any{"id": org.ID, "name": org.Name}}})
	if err != nil {
		return nil, err
	}
	return org, nil
}

// OrgSummary is an organization with its member and owner counts.
type OrgSummary struct {
	ID, Name      string
	Members       int
	Owners        int
	CreatedAt     time.Time
	RetentionDays int
}

// Summaries returns every organization by name with its member and owner counts (for
// superadmins).
func (s *OrgStore) Summaries(ctx context.Context) ([]OrgSummary, error) {
	var out []OrgSummary
	err := s.db.WithContext(ctx).Raw(`SELECT o.id, o.name, o.created_at, o.retention_days,
			count(m.user_id) AS members, count(m.user_id) FILTER (WHERE m.role = ?) AS owners
		FROM organizations o LEFT JOIN memberships m ON m.organization_id = o.id
		GROUP BY o.id ORDER BY o.name, o.id`, OwnerRole).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: list organizations: %w", err)
	}
	return out, nil
}

// Get returns organization id, or a KindNotFound error.
func (s *OrgStore) Get(ctx context.Context, id string) (*Organization, error) {
	var org Organization
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&org).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, NotFound("organization")
	}
	if err != nil {
		return nil, fmt.Errorf("models: get organization: %w", err)
	}
	return &org, nil
}

// All returns every organization by name (for superadmins).
func (s *OrgStore) All(ctx context.Context) ([]Organization, error) {
	var orgs []Organization
	if err := s.db.WithContext(ctx).Order("name, id").Find(&orgs).Error; err != nil {
		return nil, fmt.Errorf("models: list organizations: %w", err)
	}
	return orgs, nil
}
