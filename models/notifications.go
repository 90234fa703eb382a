package models

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Notification channel kinds.
const (
	ChannelWebhook = "webhook"
	ChannelEmail   = "email"
)

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// NotificationChannel is a row of notification_channels: where an organization's alerts
// are sent. The webhook secret is never read back after creation.
type NotificationChannel struct {
	ID             string    `gorm:"column:id;primaryKey"`
	OrganizationID string    `gorm:"column:organization_id"`
	Name           string    `gorm:"column:name"`
	Kind           string    `gorm:"column:kind"`
	Target         string    `gorm:"column:target"`
	MinSeverity    string    `gorm:"column:min_severity"`
	Enabled        bool      `gorm:"column:enabled"`
	CreatedAt      time.Time `gorm:"column:created_at"`
	CreatedBy      string    `gorm:"column:created_by"`
	UpdatedAt      time.Time `gorm:"column:updated_at"`
}

// TableName maps NotificationChannel to notification_channels.
func (NotificationChannel) TableName() string { return "notification_channels" }

// ChannelInput is a channel as typed in the form.
type ChannelInput struct {
	Name        string
	Kind        string
	Target      string // the webhook URL or the email address
	MinSeverity string
}

// ErrEmailDisabled refuses an email channel while no SMTP server is configured.
var ErrEmailDisabled = Invalid("kind", "email channels are disabled: the server has no SMTP server configured (AUDITDB_SMTP_URL and AUDITDB_SMTP_FROM)")

// ChannelStore creates and lists an organization's notification channels.
type ChannelStore struct {
	db       *gorm.DB
	trail    *AuditTrail
	resolver Resolver
	smtp     *SMTPConfig
	now      func() time.Time
}

// NewChannelStore returns a store over db; changes are self-audited through trail. smtp
// nil disables email channels; resolver nil uses the system's DNS.
func NewChannelStore(db *gorm.DB, trail *AuditTrail, resolver Resolver, smtp *SMTPConfig) *ChannelStore {
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	return &ChannelStore{db: db, trail: trail, resolver: resolver, smtp: smtp, now: time.Now}
}

// EmailEnabled reports whether email channels may be created (an SMTP server is set).
func (s *ChannelStore) EmailEnabled() bool { return s.smtp != nil }

// Create validates in and makes a channel for org. For a webhook it returns the signing
// secret, to be shown this once. It returns KindInvalid naming the field at fault
// (including a webhook URL that could reach a private address, and an email channel while
// SMTP is not configured) and KindConflict for a name already used; nothing is written
// then. The creation is self-audited (never the secret).
func (s *ChannelStore) Create(ctx context.Context, org string, in ChannelInput, by Actor) (*NotificationChannel, string, error) {
	name := strings.TrimSpace(in.Name)
	if name == "" || utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return nil, "", Invalid("name", "must be 1-100 characters, without NUL")
	}
	if HasFormatChar(name) {
		return nil, "", FormatCharError("name", name)
	}
	if !slices.Contains(Severities, in.MinSeverity) {
		return nil, "", Invalid("min_severity", "must be LOW, MEDIUM, HIGH or CRITICAL")
	}
	target := strings.TrimSpace(in.Target)
	var secret string
	switch in.Kind {
	case ChannelWebhook:
		u, err := CheckWebhookURL(ctx, s.resolver, target)
		if err != nil {
			return nil, "", err
		}
		target, secret = u.String(), "whsec_"+RandomToken(32)
	case ChannelEmail:
		if s.smtp == nil {
			return nil, "", ErrEmailDisabled
		}
		if !ValidEmail(target) {
			return nil, "", Invalid("target", "must be a plain email address such as oncall@example.com")
		}
	default:
		return nil, "", Invalid("kind", "must be webhook or email")
	}
	now := s.now().UTC()
	c := &NotificationChannel{ID: "nch_" + RandomToken(12), OrganizationID: org, Name: name, Kind: in.Kind,
		Target: target, MinSeverity: in.MinSeverity, Enabled: true, CreatedAt: now, CreatedBy: by.Principal(), UpdatedAt: now}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Exec(`INSERT INTO notification_channels (id, organization_id, name, kind, target, secret, min_severity,
			enabled, created_at, created_by, updated_at) VALUES (?, ?, ?, ?, ?, NULLIF(?, ''), ?, true, ?, ?, ?)`,
			c.ID, org, c.Name, c.Kind, c.Target, secret, c.MinSeverity, now, c.CreatedBy, now).Error
		switch {
		case errors.Is(err, gorm.ErrDuplicatedKey):
			return Conflict("name", "a channel named "+name+" already exists")
		case errors.Is(err, gorm.ErrForeignKeyViolated):
			return NotFound("organization")
		case err != nil:
			return fmt.Errorf("models: create notification channel: %w", err)
		}
		return s.trail.RecordTx(ctx, tx, NotificationChannelChanged(by, org, c.ID, c.Name, nil, c.view()))
	})
	if err != nil {
		return nil, "", err
	}
	return c, secret, nil
}

// view is what the self-audit records of a channel (never its secret).
func (c *NotificationChannel) view() map[string]any {
	return map[string]any{"name": c.Name, "kind": c.Kind, "target": c.Target, "minSeverity": c.MinSeverity, "enabled": c.Enabled}
}

// List returns org's channels by name.
func (s *ChannelStore) List(ctx context.Context, org string) ([]NotificationChannel, error) {
	var out []NotificationChannel
	if err := s.db.WithContext(ctx).Where("organization_id = ?", org).Order("name, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("models: list notification channels: %w", err)
	}
	return out, nil
}

// Get returns org's channel id; another organization's is KindNotFound.
func (s *ChannelStore) Get(ctx context.Context, org, id string) (*NotificationChannel, error) {
	var c NotificationChannel
	err := s.db.WithContext(ctx).Where("organization_id = ? AND id = ?", org, id).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, NotFound("notification channel")
	}
	if err != nil {
		return nil, fmt.Errorf("models: get notification channel: %w", err)
	}
	return &c, nil
}

// SetEnabled turns org's channel id on or off (self-audited when it changes); another
// organization's channel is KindNotFound.
func (s *ChannelStore) SetEnabled(ctx context.Context, org, id string, enabled bool, by Actor) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var c NotificationChannel
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("organization_id = ? AND id = ?", org, id).Take(&c).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return NotFound("notification channel")
		}
		if err != nil {
			return fmt.Errorf("models: notification channel: %w", err)
		}
		if c.Enabled == enabled {
			return nil
		}
		before := c.view()
		c.Enabled = enabled
		if err := tx.Exec(`UPDATE notification_channels SET enabled = ?, updated_at = ? WHERE organization_id = ? AND id = ?`,
			enabled, s.now().UTC(), org, id).Error; err != nil {
			return fmt.Errorf("models: update notification channel: %w", err)
		}
		return s.trail.RecordTx(ctx, tx, NotificationChannelChanged(by, org, c.ID, c.Name, before, c.view()))
	})
}
