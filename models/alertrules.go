package models

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// The detection rules (alerts.rule and alert_rule.rule).
const (
	RuleFailedLogins       = "failed_logins"
	RuleUnauthorizedAccess = "unauthorized_access"
	RuleDataAccessVelocity = "data_access_velocity"
	RuleBulkOperations     = "bulk_operations"
	RuleOffHoursAccess     = "off_hours_access"
)

// Severities lists the alert severities lowest first: AlertSeverities reversed.
var Severities = func() []string {
	s := slices.Clone(AlertSeverities)
	slices.Reverse(s)
	return s
}()

// Limits of a rule's settings.
const (
	MaxRuleThreshold = 100_000
	MaxRuleWindow    = 24 * time.Hour
)

// AlertRule is one detection rule as an organization runs it: on or off, how many matching
// events within Window raise an alert, and the alert's severity.
type AlertRule struct {
	Rule        string
	Name        string // what the rule watches, for people
	Description string // which events it counts
	Enabled     bool
	Threshold   int
	Window      time.Duration
	Severity    string
	Customized  bool // the organization changed a default
}

// DefaultAlertRules are the rules every organization starts with (the seed's thresholds,
// windows and severities). The off-hours rule raises on any one event; its window only
// bounds how old an event may be when detection reads it and still raise.
var DefaultAlertRules = []AlertRule{
	{Rule: RuleFailedLogins, Name: "Failed sign-ins",
		Description: "Failed sign-ins (action contains auth.login.failure, status failure) of one principal, else of one address (details.ipAddress).",
		Enabled:     true, Threshold: 5, Window: 5 * time.Minute, Severity: "HIGH"},
	{Rule: RuleUnauthorizedAccess, Name: "Unauthorized access attempts",
		Description: "Failed events whose outcome says unauthorized, access denied or forbidden, per principal.",
		Enabled:     true, Threshold: 3, Window: 10 * time.Minute, Severity: "CRITICAL"},
	{Rule: RuleDataAccessVelocity, Name: "Data access velocity",
		Description: "Successful data reads (action contains data.read or fhir., or a target resource type is set) of one principal.",
		Enabled:     true, Threshold: 50, Window: time.Minute, Severity: "MEDIUM"},
	{Rule: RuleBulkOperations, Name: "Bulk operations",
		Description: "Exports, imports and bulk operations (action contains data.export, data.import or bulk), counted per organization.",
		Enabled:     true, Threshold: 100, Window: 5 * time.Minute, Severity: "MEDIUM"},
	{Rule: RuleOffHoursAccess, Name: "Data access off hours",
		Description: "Successful data access (action contains data. or fhir.) between 22:00 and 06:00 in the organization's time zone.",
		Enabled:     true, Threshold: 1, Window: time.Hour, Severity: "LOW"},
}

// DefaultAlertRule returns the defaults of rule, and false for an unknown rule.
func DefaultAlertRule(rule string) (AlertRule, bool) {
	for _, r := range DefaultAlertRules {
		if r.Rule == rule {
			return r, true
		}
	}
	return AlertRule{}, false
}

// AlertRuleInput is a change to one rule's settings.
type AlertRuleInput struct {
	Rule      string
	Enabled   bool
	Threshold int
	Window    time.Duration
	Severity  string
}

// Validate returns a KindInvalid error naming the first field that is out of range.
func (in AlertRuleInput) Validate() error {
	if _, ok := DefaultAlertRule(in.Rule); !ok {
		return Invalid("rule", fmt.Sprintf("unknown rule %q", in.Rule))
	}
	if in.Threshold <= 0 || in.Threshold > MaxRuleThreshold {
		return Invalid("threshold", fmt.Sprintf("must be from 1 to %d", MaxRuleThreshold))
	}
	if in.Window <= 0 || in.Window > MaxRuleWindow {
		return Invalid("window", "must be longer than zero and at most 24 hours")
	}
	if in.Window%time.Second != 0 {
		return Invalid("window", "must be a whole number of seconds")
	}
	if !slices.Contains(Severities, in.Severity) {
		return Invalid("severity", "must be one of "+strings.Join(Severities, ", "))
	}
	return nil
}

// AlertRuleStore reads and changes an organization's detection rules and its time zone.
type AlertRuleStore struct {
	db    *gorm.DB
	trail *AuditTrail
	now   func() time.Time
}

// NewAlertRuleStore returns a store over db; changes are self-audited through trail.
func NewAlertRuleStore(db *gorm.DB, trail *AuditTrail) *AlertRuleStore {
	return &AlertRuleStore{db: db, trail: trail, now: time.Now}
}

type alertRuleRow struct {
	Rule          string
	Enabled       bool
	Threshold     int
	WindowSeconds int
	Severity      string
}

// List returns org's rules in the order of DefaultAlertRules: the defaults with the
// organization's changes applied. It returns an error when the database cannot be read.
func (s *AlertRuleStore) List(ctx context.Context, org string) ([]AlertRule, error) {
	return listAlertRules(s.db.WithContext(ctx), org)
}

func listAlertRules(tx *gorm.DB, org string) ([]AlertRule, error) {
	var rows []alertRuleRow
	if err := tx.Raw(`SELECT rule, enabled, threshold, window_seconds, severity FROM alert_rule WHERE organization_id = ?`,
		org).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("models: list alert rules: %w", err)
	}
	out := slices.Clone(DefaultAlertRules)
	for i := range out {
		for _, r := range rows {
			if r.Rule == out[i].Rule {
				out[i].Enabled, out[i].Threshold, out[i].Severity = r.Enabled, r.Threshold, r.Severity
				out[i].Window = time.Duration(r.WindowSeconds) * time.Second
				out[i].Customized = true
			}
		}
	}
	return out, nil
}

// snapshot is what the change log records of a rule's settings.
func (r AlertRule) snapshot() map[string]any {
	return map[string]any{"enabled": r.Enabled, "threshold": r.Threshold, "window_seconds": int(r.Window / time.Second),
		"severity": r.Severity}
}

// Update changes one of org's rules, self-audited (settings.update on alert_rule.<rule>,
// also written to config_change_event). It returns KindInvalid naming the field for bad
// input (nothing is written), and the rule as it now runs.
func (s *AlertRuleStore) Update(ctx context.Context, org string, in AlertRuleInput, by Actor) (*AlertRule, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if err := s.trail.prepare(ctx); err != nil {
		return nil, err
	}
	var after AlertRule
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Serialize changes of the organization's rules so "previous" is what was replaced.
		if err := tx.Exec(`SELECT 1 FROM organizations WHERE id = ? FOR UPDATE`, org).Error; err != nil {
			return fmt.Errorf("models: lock organization: %w", err)
		}
		rules, err := listAlertRules(tx, org)
		if err != nil {
			return err
		}
		var before AlertRule
		for _, r := range rules {
			if r.Rule == in.Rule {
				before = r
			}
		}
		after = before
		after.Enabled, after.Threshold, after.Window, after.Severity, after.Customized = in.Enabled, in.Threshold, in.Window, in.Severity, true
		err = tx.Exec(`INSERT INTO alert_rule (organization_id, rule, enabled, threshold, window_seconds, severity, updated_at, updated_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (organization_id, rule) DO UPDATE SET enabled = EXCLUDED.enabled, threshold = EXCLUDED.threshold,
				window_seconds = EXCLUDED.window_seconds, severity = EXCLUDED.severity, updated_at = EXCLUDED.updated_at,
				updated_by = EXCLUDED.updated_by`,
			org, in.Rule, in.Enabled, in.Threshold, int(in.Window/time.Second), in.Severity, s.now().UTC(), by.Principal()).Error
		if err != nil {
			return fmt.Errorf("models: save alert rule: %w", err)
		}
		return s.trail.RecordTx(ctx, tx, SettingChanged(by, org, "alert_rule."+in.Rule, before.snapshot(), after.snapshot()))
	})
	if err != nil {
		return nil, err
	}
	return &after, nil
}

// TimeZone returns org's time zone name (UTC unless changed). It returns KindNotFound for
// an unknown organization.
func (s *AlertRuleStore) TimeZone(ctx context.Context, org string) (string, error) {
	var tz []string
	if err := s.db.WithContext(ctx).Raw(`SELECT time_zone FROM organizations WHERE id = ?`, org).Scan(&tz).Error; err != nil {
		return "", fmt.Errorf("models: read time zone: %w", err)
	}
	if len(tz) == 0 {
		return "", NotFound("organization")
	}
	return tz[0], nil
}

// SetTimeZone changes org's time zone, self-audited (settings.update on time_zone, also
// written to config_change_event). It returns KindInvalid (field time_zone) for a name
// that is not an IANA time zone; nothing is written then.
func (s *AlertRuleStore) SetTimeZone(ctx context.Context, org, name string, by Actor) error {
	if _, err := ValidTimeZone(name); err != nil {
		return err
	}
	if err := s.trail.prepare(ctx); err != nil {
		return err
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var prev []string
		if err := tx.Raw(`SELECT time_zone FROM organizations WHERE id = ? FOR UPDATE`, org).Scan(&prev).Error; err != nil {
			return fmt.Errorf("models: read time zone: %w", err)
		}
		if len(prev) == 0 {
			return NotFound("organization")
		}
		if prev[0] == name {
			return nil
		}
		if err := tx.Exec(`UPDATE organizations SET time_zone = ?, updated_at = ? WHERE id = ?`, name, s.now().UTC(), org).Error; err != nil {
			return fmt.Errorf("models: save time zone: %w", err)
		}
		return s.trail.RecordTx(ctx, tx, SettingChanged(by, org, "time_zone", prev[0], name))
	})
}

// Limits of the alert retention setting (days a resolved alert is kept).
const (
	MinAlertRetentionDays = 1
	MaxAlertRetentionDays = 3650
)

// AlertRetention returns how many days org keeps resolved alerts (organizations.retention_days,
// 90 unless changed). It returns KindNotFound for an unknown organization.
func (s *AlertRuleStore) AlertRetention(ctx context.Context, org string) (int, error) {
	var days []int
	if err := s.db.WithContext(ctx).Raw(`SELECT retention_days FROM organizations WHERE id = ?`, org).Scan(&days).Error; err != nil {
		return 0, fmt.Errorf("models: read alert retention: %w", err)
	}
	if len(days) == 0 {
		return 0, NotFound("organization")
	}
	return days[0], nil
}

// SetAlertRetention changes how many days org keeps resolved alerts before the daily job
// deletes them, self-audited (settings.update on retention_days, also written to
// config_change_event). It returns KindInvalid (field retention_days) outside 1–3650.
func (s *AlertRuleStore) SetAlertRetention(ctx context.Context, org string, days int, by Actor) error {
	if days < MinAlertRetentionDays || days > MaxAlertRetentionDays {
		return Invalid("retention_days", fmt.Sprintf("must be a whole number of days from %d to %d", MinAlertRetentionDays, MaxAlertRetentionDays))
	}
	if err := s.trail.prepare(ctx); err != nil {
		return err
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var prev []int
		if err := tx.Raw(`SELECT retention_days FROM organizations WHERE id = ? FOR UPDATE`, org).Scan(&prev).Error; err != nil {
			return fmt.Errorf("models: read alert retention: %w", err)
		}
		if len(prev) == 0 {
			return NotFound("organization")
		}
		if prev[0] == days {
			return nil
		}
		if err := tx.Exec(`UPDATE organizations SET retention_days = ?, updated_at = ? WHERE id = ?`, days, s.now().UTC(), org).Error; err != nil {
			return fmt.Errorf("models: save alert retention: %w", err)
		}
		return s.trail.RecordTx(ctx, tx, SettingChanged(by, org, "retention_days", prev[0], days))
	})
}
