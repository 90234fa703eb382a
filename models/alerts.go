package models

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Alert severities and types used here (the alerts table's CHECK constraints list all).
const (
	SeverityCritical = "CRITICAL"
	AlertCompliance  = "COMPLIANCE"
)

// NewAlert is an alert to raise for one organization.
type NewAlert struct {
	Org         string
	Severity    string
	Type        string
	Title       string
	Description string
	Source      string
	Metadata    any // marshalled to JSON
}

// AlertStore raises alerts. (Listing, acknowledging and resolving them belong to the
// alerts area of the console.)
type AlertStore struct{ db *gorm.DB }

// NewAlertStore returns a store over db.
func NewAlertStore(db *gorm.DB) *AlertStore { return &AlertStore{db: db} }

// Raise inserts an alert and returns its id. It returns an error when the row cannot be
// written (an unknown severity or type violates the table's checks).
func (s *AlertStore) Raise(ctx context.Context, a NewAlert) (string, error) {
	meta, err := json.Marshal(a.Metadata)
	if err != nil {
		return "", fmt.Errorf("models: alert metadata: %w", err)
	}
	id := "alert_" + RandomToken(12)
	now := time.Now().UTC()
	err = s.db.WithContext(ctx).Exec(`INSERT INTO alerts (id, organization_id, severity, type, title, description, source,
		metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, a.Org, a.Severity, a.Type, Truncate(a.Title, 500), a.Description, Truncate(a.Source, 100), string(meta), now, now).Error
	if err != nil {
		return "", fmt.Errorf("models: raise alert: %w", err)
	}
	return id, nil
}
