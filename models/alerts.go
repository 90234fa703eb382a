package models

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
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
	// Rule is the detection rule that raised it ("" for other sources), Principal the
	// principal (or other group key) it concerns, EventIDs the events that triggered it.
	Rule      string
	Principal string
	EventIDs  []int64
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
	ids := a.EventIDs
	if ids == nil {
		ids = []int64{}
	}
	err = s.db.WithContext(ctx).Exec(`INSERT INTO alerts (id, organization_id, severity, type, title, description, source,
		metadata, rule, principal, event_ids, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, ''), NULLIF(?, ''), ?, ?, ?)`,
		id, a.Org, a.Severity, a.Type, Truncate(a.Title, 500), a.Description, Truncate(a.Source, 100), string(meta),
		Truncate(a.Rule, 50), Truncate(a.Principal, 255), pq64(ids), now, now).Error
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
