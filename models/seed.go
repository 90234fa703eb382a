package models

import (
	"context"
	"encoding/json"
	"fmt"

	"gorm.io/gorm"
)

// GlobalOrg is the organization_id of rows that apply to every organization (default roles,
// global presets).
const GlobalOrg = "*"

// Permission is one (resource, action) pair of a role; "*" and "audit.*" are wildcards.
type Permission struct {
	Resource string `json:"resource"`
	Action   string `json:"action"`
}

// RetentionPolicy is a row of audit_retention_policy.
type RetentionPolicy struct {
	Name             string
	Classification   string
	RetentionDays    int
	ArchiveAfterDays int
	Description      string
}

// DefaultRetentionPolicies are the seed's four policies.
var DefaultRetentionPolicies = []RetentionPolicy{
	{"standard", "INTERNAL", 2555, 365, "Internal operational events: 7 years, archived after 1 year"},
	{"phi_extended", "PHI", 2555, 365, "Protected health information access (HIPAA): 7 years, archived after 1 year"},
	{"minimal", "PUBLIC", 90, 30, "Public, low-value events: 90 days, archived after 30 days"},
	{"confidential", "CONFIDENTIAL", 1825, 365, "Confidential business events: 5 years, archived after 1 year"},
}

// DefaultRole is a role every organization has.
type DefaultRole struct {
	Name        string
	Description string
	Permissions []Permission
	Inherits    []string
}

func perms(resource string, actions ...string) []Permission {
	out := make([]Permission, len(actions))
	for i, a := range actions {
		out[i] = Permission{resource, a}
	}
	return out
}

func join(lists ...[]Permission) []Permission {
	var out []Permission
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// DefaultRoles are the seed's roles: member, admin, and owner (which inherits admin). They
// are stored under GlobalOrg and apply to every organization; the owner's permissions use
// the role editor's vocabulary (see Resources) rather than the seed's invite/remove/billing.
var DefaultRoles = []DefaultRole{
	{"org:member", "Reads and records audit events; reads reports, presets and metrics",
		join(perms("audit.events", "read", "create"), perms("audit.reports", "read"),
			perms("audit.presets", "read"), perms("audit.metrics", "read")), nil},
	{"org:admin", "Manages audit events, reports, presets and alerts",
		join(perms("audit.events", "read", "create", "update", "delete", "export", "verify", "pseudonymize"),
			perms("audit.reports", "create", "read", "update", "delete"),
			perms("audit.presets", "create", "read", "update", "delete"),
			perms("audit.metrics", "read"),
			perms("audit.alerts", "read", "acknowledge", "resolve", "update")), nil},
	{"org:owner", "Everything an admin may do, plus organization settings, members, roles, API keys, retention and GDPR",
		join(perms("organization.settings", "read", "update"),
			perms("organization.members", "read", "create", "update", "delete"),
			perms("audit.roles", "read", "create", "update", "delete"),
			perms("audit.apikeys", "read", "create", "delete"),
			perms("audit.alerts", "update"),
			perms("audit.retention", "read", "create", "update", "delete"),
			perms("audit.gdpr", "read", "create", "update", "export", "pseudonymize", "delete", "reidentify")), []string{"org:admin"}},
}

// DefaultPreset is an audit preset every organization can use.
type DefaultPreset struct {
	Name, Description, Action, Classification string
	RequiredFields                            []string
	DefaultValues                             map[string]any
}

// DefaultValidation is the seed's preset validation block.
var DefaultValidation = map[string]any{
	"maxStringLength":      10000,
	"requiredFields":       []string{"timestamp", "action", "status"},
	"maxCustomFieldDepth":  3,
	"allowedEventVersions": []string{"1.0", "1.1", "2.0"},
}

// DefaultPresets are global presets for common healthcare audit events.
var DefaultPresets = []DefaultPreset{
	{"authentication", "Sign-in attempts and their outcome", "auth.login.success", "INTERNAL",
		[]string{"principalId", "status"}, map[string]any{"dataClassification": "INTERNAL"}},
	{"phi-access", "Reads of protected health information", "patient.record.read", "PHI",
		[]string{"principalId", "targetResourceType", "targetResourceId"},
		map[string]any{"dataClassification": "PHI", "retentionPolicy": "phi_extended"}},
	{"data-export", "Exports of data out of the system", "data.export", "CONFIDENTIAL",
		[]string{"principalId", "outcomeDescription"}, map[string]any{"dataClassification": "CONFIDENTIAL"}},
	{"system", "System and configuration events", "system.config.change", "INTERNAL",
		[]string{}, map[string]any{"dataClassification": "INTERNAL", "retentionPolicy": "standard"}},
}

// SeedDefaults inserts the default retention policies, roles and presets. It is idempotent:
// existing rows (possibly edited by an administrator) are left as they are.
func SeedDefaults(ctx context.Context, db *gorm.DB) error {
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, p := range DefaultRetentionPolicies {
			err := tx.Exec(`INSERT INTO audit_retention_policy
				(policy_name, retention_days, archive_after_days, data_classification, description, is_active, created_by)
				VALUES (?, ?, ?, ?, ?, true, 'system') ON CONFLICT (organization_id, policy_name) DO NOTHING`,
				p.Name, p.RetentionDays, p.ArchiveAfterDays, p.Classification, p.Description).Error
			if err != nil {
				return fmt.Errorf("models: seed retention policy %s: %w", p.Name, err)
			}
		}
		for _, r := range DefaultRoles {
			ps, _ := json.Marshal(r.Permissions)
			inh, _ := json.Marshal(append([]string{}, r.Inherits...))
			err := tx.Exec(`INSERT INTO organization_role (organization_id, name, description, permissions, inherits)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT (organization_id, name) DO NOTHING`,
				GlobalOrg, r.Name, r.Description, string(ps), string(inh)).Error
			if err != nil {
				return fmt.Errorf("models: seed role %s: %w", r.Name, err)
			}
		}
		validation, _ := json.Marshal(DefaultValidation)
		for _, p := range DefaultPresets {
			req, _ := json.Marshal(p.RequiredFields)
			defs, _ := json.Marshal(p.DefaultValues)
			err := tx.Exec(`INSERT INTO audit_preset (name, description, organization_id, action, data_classification,
				required_fields, default_values, validation, created_by, updated_by)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'system', 'system') ON CONFLICT (organization_id, name) DO NOTHING`,
				p.Name, p.Description, GlobalOrg, p.Action, p.Classification, string(req), string(defs), string(validation)).Error
			if err != nil {
				return fmt.Errorf("models: seed preset %s: %w", p.Name, err)
			}
		}
		return nil
	})
}
