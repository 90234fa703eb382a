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
type OrgStore struct{ db *gorm.DB }

// NewOrgStore returns a store over db.
func NewOrgStore(db *gorm.DB) *OrgStore { return &OrgStore{db: db} }

// Create adds an organization. It returns KindInvalid for a bad id or name and KindConflict
// when the id is taken.
func (s *OrgStore) Create(ctx context.Context, id, name string) (*Organization, error) {
	if !orgIDPattern.MatchString(id) {
		return nil, Invalid("id", "must be 1-50 lower-case letters, digits, '-' or '_', starting with a letter or digit")
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 255 {
		return nil, Invalid("name", "must be 1-255 characters")
	}
	org := &Organization{ID: id, Name: name, RetentionDays: 90}
	err := s.db.WithContext(ctx).Create(org).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return nil, Conflict("id", "an organization with this id already exists")
	}
	if err != nil {
		return nil, fmt.Errorf("models: create organization: %w", err)
	}
	return org, nil
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
