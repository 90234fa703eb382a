package models

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Actor is who makes a change: a console user, or the program itself. It becomes the
// principal of the self-audit event.
type Actor struct {
	UserID     int64
	Email      string
	Superadmin bool
	// System names a change made by the program rather than a person (for example
	// "casbin-api"); such an actor is trusted like a superadmin.
	System    string
	IP        string
	UserAgent string
}

// SystemActor returns the actor of changes made by the program itself under name.
func SystemActor(name string) Actor { return Actor{System: name} }

// Principal returns how the actor appears in principal_id: the user's email,
// "user:<id>" when the email is unknown, or "system:<name>".
func (a Actor) Principal() string {
	switch {
	case a.System != "":
		return "system:" + a.System
	case a.Email != "":
		return a.Email
	}
	return "user:" + strconv.FormatInt(a.UserID, 10)
}

// unrestricted reports whether the actor may grant anything (superadmin or the system).
func (a Actor) unrestricted() bool { return a.Superadmin || a.System != "" }

// AuditEntry is one self-audit event: something done in the console, written to the
// audit_log of the organization concerned.
type AuditEntry struct {
	Org        string
	Action     string // e.g. auth.login.success, role.update, member.add
	Status     string // success (the default), failure or attempt
	Actor      Actor
	TargetType string
	TargetID   string
	Outcome    string
	Details    map[string]any
	// Change, when set, is also written to config_change_event (settings changes).
	Change *ConfigChange
}

// ConfigChange is a settings change: the field and its previous and new values (any
// JSON-encodable value; nil for "none").
type ConfigChange struct {
	Field    string
	Previous any
	New      any
	Reason   string
}

// Self-audit actions written by the console.
const (
	ActionLoginSuccess     = "auth.login.success"
	ActionLoginFailure     = "auth.login.failure"
	ActionLogout           = "auth.logout"
	ActionPasswordChange   = "auth.password.change"
	ActionTimeZoneChange   = "user.time_zone.change"
	ActionRoleCreate       = "role.create"
	ActionRoleUpdate       = "role.update"
	ActionRoleDelete       = "role.delete"
	ActionMemberAdd        = "member.add"
	ActionMemberUpdate     = "member.update"
	ActionMemberRemove     = "member.remove"
	ActionOrgCreate        = "organization.create"
	ActionAPIKeyCreate     = "apikey.create"
	ActionAPIKeyRevoke     = "apikey.revoke"
	ActionPresetCreate     = "preset.create"
	ActionPresetUpdate     = "preset.update"
	ActionPresetDelete     = "preset.delete"
	ActionSettingsUpdate   = "settings.update"
	ActionDeadLetterReplay = "deadletter.replay"
	ActionAlertAcknowledge = "alert.acknowledge"
	ActionAlertResolve     = "alert.resolve"
	ActionDataExport       = "data.export"
)

// AuditTrail writes self-audit events sealed like any other event (subject digest, hash,
// signature), so they show up in the events browser and verify like the rest. Each event
// is inserted through the tenant role, so row-level security checks it lands in the
// organization it names.
type AuditTrail struct {
	db     *gorm.DB
	sealer *Sealer
	parts  *PartitionManager
	now    func() time.Time
}

// NewAuditTrail returns a trail writing to db, sealing with sealer.
func NewAuditTrail(db *gorm.DB, sealer *Sealer, parts *PartitionManager) *AuditTrail {
	return &AuditTrail{db: db, sealer: sealer, parts: parts, now: time.Now}
}

// Record writes entries in one transaction: all of them or none. It returns an error when
// an entry is incomplete or the database refuses it.
func (a *AuditTrail) Record(ctx context.Context, entries ...AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := a.prepare(ctx); err != nil {
		return err
	}
	return a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return a.write(ctx, tx, entries)
	})
}

// RecordTx writes entries inside the caller's transaction tx, so a change and its audit
// event commit or roll back together. tx is back on the connecting role afterwards.
func (a *AuditTrail) RecordTx(ctx context.Context, tx *gorm.DB, entries ...AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := a.prepare(ctx); err != nil {
		return err
	}
	return a.write(ctx, tx, entries)
}

// prepare makes sure this month's partition exists; it runs outside the caller's
// transaction (DDL on the shared pool).
func (a *AuditTrail) prepare(ctx context.Context) error {
	if a == nil || a.sealer == nil {
		return fmt.Errorf("models: the audit trail has no signing key")
	}
	return a.parts.EnsureFor(ctx, "audit_log", a.now())
}

const auditInsert = `INSERT INTO audit_log ("timestamp", principal_id, organization_id, action,
	target_resource_type, target_resource_id, status, outcome_description, hash, hash_algorithm, event_version,
	data_classification, retention_policy, details, subject_salt, subject_digest, signature, field_commitments)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, ''), ?, ?::jsonb) RETURNING id`

const configChangeInsert = `INSERT INTO config_change_event
	(organization_id, "timestamp", field, previous_value, new_value, changed_by, reason, environment)
	VALUES (?, ?, ?, ?, ?, ?, ?, 'console')`

func (a *AuditTrail) write(ctx context.Context, tx *gorm.DB, entries []AuditEntry) error {
	for i := range entries {
		ev, err := a.event(&entries[i])
		if err != nil {
			return err
		}
		if err := enterTenant(tx, ev.OrganizationID); err != nil {
			return err
		}
		err = tx.Raw(auditInsert, ev.Timestamp, ev.PrincipalID, ev.OrganizationID, ev.Action,
			ev.TargetResourceType, ev.TargetResourceID, ev.Status, ev.OutcomeDescription, ev.Hash, ev.HashAlgorithm,
			ev.EventVersion, ev.DataClassification, ev.RetentionPolicy, string(ev.Details), ev.SubjectSalt,
			ev.SubjectDigest, ev.Signature, nullJSON(ev.FieldCommitments)).Scan(&ev.ID).Error
		if err != nil {
			return fmt.Errorf("models: write audit event %s: %w", ev.Action, err)
		}
		// Like every event, it goes into the organization's Merkle log.
		err = tx.Exec(leafQueueInsert+"(?, ARRAY[?::bigint], ARRAY[?::timestamptz], ARRAY[?::text])",
			ev.OrganizationID, ev.ID, ev.Timestamp, ev.Hash).Error
		if err != nil {
			return fmt.Errorf("models: queue audit event %s for the log: %w", ev.Action, err)
		}
		if c := entries[i].Change; c != nil {
			prev, err1 := jsonValue(c.Previous)
			next, err2 := jsonValue(c.New)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("models: encode settings change of %s", c.Field)
			}
			var reason *string
			if c.Reason != "" {
				reason = &c.Reason
			}
			err = tx.Exec(configChangeInsert, ev.OrganizationID, ev.Timestamp, c.Field, prev, next, *ev.PrincipalID, reason).Error
			if err != nil {
				return fmt.Errorf("models: write settings change of %s: %w", c.Field, err)
			}
		}
	}
	return leaveTenant(tx)
}

// jsonValue encodes v for a jsonb column; nil stays SQL NULL.
func jsonValue(v any) (*string, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

// event builds and seals the audit_log row of e.
func (a *AuditTrail) event(e *AuditEntry) (*Event, error) {
	if e.Org == "" || e.Org == GlobalOrg || e.Action == "" {
		return nil, fmt.Errorf("models: audit entry needs an organization and an action (got %q, %q)", e.Org, e.Action)
	}
	status := e.Status
	if status == "" {
		status = "success"
	}
	details := map[string]any{"source": "console"}
	for k, v := range e.Details {
		details[k] = v
	}
	if e.Actor.UserID != 0 {
		details["userId"] = e.Actor.UserID
	}
	if e.Actor.IP != "" {
		details["ip"] = e.Actor.IP
	}
	if e.Actor.UserAgent != "" {
		details["userAgent"] = e.Actor.UserAgent
	}
	raw, err := json.Marshal(details)
	if err != nil {
		return nil, fmt.Errorf("models: encode audit details: %w", err)
	}
	principal := e.Actor.Principal()
	ev := &Event{
		Timestamp: a.now().UTC(), PrincipalID: &principal, OrganizationID: e.Org, Action: e.Action, Status: status,
		TargetResourceType: optional(e.TargetType), TargetResourceID: optional(e.TargetID),
		OutcomeDescription: optional(e.Outcome), EventVersion: "1.0", DataClassification: "INTERNAL",
		RetentionPolicy: "standard", Details: raw,
	}
	if err := a.sealer.Seal(ev); err != nil {
		return nil, err
	}
	return ev, nil
}

func optional(s string) *string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	return &s
}

// APIKeyCreated is the self-audit entry of a new API key of org (never the key itself).
func APIKeyCreated(by Actor, org, keyID, keyName string) AuditEntry {
	return AuditEntry{Org: org, Action: ActionAPIKeyCreate, Actor: by, TargetType: "apikey", TargetID: keyID,
		Outcome: "API key " + keyName + " created", Details: map[string]any{"name": keyName}}
}

// APIKeyRevoked is the self-audit entry of a revoked API key of org.
func APIKeyRevoked(by Actor, org, keyID, keyName string) AuditEntry {
	return AuditEntry{Org: org, Action: ActionAPIKeyRevoke, Actor: by, TargetType: "apikey", TargetID: keyID,
		Outcome: "API key " + keyName + " revoked", Details: map[string]any{"name": keyName}}
}

// PresetChanged is the self-audit entry of a preset created (previous nil), updated, or
// deleted (next nil) in org; the definitions also go to config_change_event.
func PresetChanged(by Actor, org, name string, previous, next any) AuditEntry {
	action, verb := ActionPresetUpdate, "updated"
	switch {
	case previous == nil:
		action, verb = ActionPresetCreate, "created"
	case next == nil:
		action, verb = ActionPresetDelete, "deleted"
	}
	return AuditEntry{Org: org, Action: action, Actor: by, TargetType: "preset", TargetID: name,
		Outcome: "preset " + name + " " + verb,
		Change:  &ConfigChange{Field: "audit_preset." + name, Previous: previous, New: next}}
}

// SettingChanged is the self-audit entry of an organization setting changed from previous
// to next; it is also written to config_change_event.
func SettingChanged(by Actor, org, field string, previous, next any) AuditEntry {
	return AuditEntry{Org: org, Action: ActionSettingsUpdate, Actor: by, TargetType: "setting", TargetID: field,
		Outcome: "setting " + field + " changed", Change: &ConfigChange{Field: field, Previous: previous, New: next}}
}

// AlertAcknowledged is the self-audit entry of alert id (titled title) of org acknowledged.
func AlertAcknowledged(by Actor, org, id, title string) AuditEntry {
	return AuditEntry{Org: org, Action: ActionAlertAcknowledge, Actor: by, TargetType: "alert", TargetID: id,
		Outcome: "alert " + Truncate(title, 200) + " acknowledged"}
}

// AlertResolved is the self-audit entry of alert id (titled title) of org resolved with
// notes.
func AlertResolved(by Actor, org, id, title, notes string) AuditEntry {
	return AuditEntry{Org: org, Action: ActionAlertResolve, Actor: by, TargetType: "alert", TargetID: id,
		Outcome: "alert " + Truncate(title, 200) + " resolved", Details: map[string]any{"notes": notes}}
}

// Self-audit actions of notification channels.
const (
	ActionNotificationChannelCreate = "notification.channel.create"
	ActionNotificationChannelUpdate = "notification.channel.update"
	ActionNotificationChannelTest   = "notification.channel.test"
)

// NotificationChannelChanged is the self-audit entry of a notification channel created
// (previous nil) or changed in org; the definitions also go to config_change_event.
func NotificationChannelChanged(by Actor, org, id, name string, previous, next any) AuditEntry {
	action, verb := ActionNotificationChannelUpdate, "updated"
	if previous == nil {
		action, verb = ActionNotificationChannelCreate, "created"
	}
	return AuditEntry{Org: org, Action: action, Actor: by, TargetType: "notification_channel", TargetID: id,
		Outcome: "notification channel " + name + " " + verb,
		Change:  &ConfigChange{Field: "notification_channel." + id, Previous: previous, New: next}}
}

// NotificationTestSent is the self-audit entry of a test delivery queued to a channel.
func NotificationTestSent(by Actor, org, id, name string) AuditEntry {
	return AuditEntry{Org: org, Action: ActionNotificationChannelTest, Actor: by, TargetType: "notification_channel",
		TargetID: id, Outcome: "test notification queued to " + name}
}

// nullJSON is raw as a query argument: its text, or NULL when empty.
func nullJSON(raw []byte) any {
	if len(raw) == 0 {
		return nil
	}
	return string(raw)
}

// Sealer returns the sealer the trail signs with: the server's signing key.
func (a *AuditTrail) Sealer() *Sealer { return a.sealer }
