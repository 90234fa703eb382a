// Package settings renders the organization settings area: the index, API keys, presets
// and dead letters.
package settings

import (
	"auditdb/views/components"
	"time"
)

// Section is one entry of the settings index.
type Section struct {
	Title       string
	Description string
	Href        string
	TestID      string
}

// IndexProps is the view model of the settings index.
type IndexProps struct {
	Sections []Section
}

// APIKeyRow is one key in the list, formatted.
type APIKeyRow struct {
	ID           int64
	Name         string
	Prefix       string // the first characters of the key, followed by an ellipsis
	Scope        string
	Created      time.Time
	CreatedBy    string
	LastUsed     *time.Time // nil when never used
	Revoked      *time.Time // nil while live
	RevokeAction string     // where the revoke form posts
}

// APIKeysProps is the view model of Settings → API keys.
type APIKeysProps struct {
	CSRF   string
	Keys   []APIKeyRow
	Scopes []string
	// NewKey is the key just created, shown this once; NewKeyName names it.
	NewKey     string
	NewKeyName string
	FormName   string
	FormScope  string
	Error      *components.FormError
	Flash      string // the confirmation of a change just made
}

// PresetRow is one preset in the list, formatted.
type PresetRow struct {
	ID             int64
	Name           string
	Description    string
	Action         string
	Classification string
	Required       string // comma-separated field names
	Rules          string // the validation rules in a few words
	Global         bool
	EditHref       string // "" when the viewer may not edit it
}

// PresetsProps is the view model of Settings → Presets.
type PresetsProps struct {
	Rows  []PresetRow
	Flash string // the confirmation of a change just made
}

// PresetForm is the create and edit form of a preset, values as typed.
type PresetForm struct {
	CSRF                 string
	Title                string
	Action               string // where the form posts
	Global               bool
	Name                 string
	Description          string
	EventAction          string
	DataClassification   string
	Required             map[string]bool
	DefaultValues        string
	MaxStringLength      string
	MaxCustomFieldDepth  string
	AllowedEventVersions string
	Fields               []string // the fields a preset may require
	Classifications      []string
	Error                *components.FormError
}

// DeadLetterRow is one dead letter in the list, formatted.
type DeadLetterRow struct {
	ID           int64
	Received     time.Time
	Action       string
	Events       int
	Reason       string
	Failures     int
	Replayed     *time.Time // nil until replayed
	ReplayAction string     // where the replay form posts
	Payload      string     // the kept events, pretty-printed (shortened when long)
}

// DeadLettersProps is the view model of Settings → Dead letters.
type DeadLettersProps struct {
	CSRF  string
	Rows  []DeadLetterRow
	Flash string // the confirmation of a change just made
}

// ChannelRow is one notification channel, formatted, with its delivery log.
type ChannelRow struct {
	ID           string
	Name         string
	Kind         string // webhook or email
	Target       string // the URL or the address
	MinSeverity  string
	Enabled      bool
	Created      time.Time
	CreatedBy    string
	TestAction   string // where the "send test" form posts
	ToggleAction string // where the enable/disable form posts
	Deliveries   []DeliveryRow
}

// DeliveryRow is one entry of a channel's delivery log, formatted.
type DeliveryRow struct {
	Created     time.Time
	Alert       string // the alert's title, or "Test notification"
	AlertHref   string // "" for a test
	Status      string // pending, delivered or failed
	Attempts    int
	LastAttempt *time.Time // nil before the first attempt
	NextAttempt *time.Time // nil unless pending
	Response    string     // the webhook's HTTP status, "" when none
	Error       string
}

// NotificationsProps is the view model of Settings → Notifications.
type NotificationsProps struct {
	CSRF     string
	Channels []ChannelRow
	// EmailEnabled is false while the server has no SMTP server configured.
	EmailEnabled bool
	// NewSecret is the signing secret of the webhook just created, shown this once.
	NewSecret        string
	NewSecretChannel string
	// TestQueued names the channel a test was just queued to.
	TestQueued string
	Form       ChannelForm
	Error      *components.FormError
}

// ChannelForm is the create form, values as typed.
type ChannelForm struct {
	Name        string
	Kind        string
	Target      string
	MinSeverity string
	Kinds       []string
	Severities  []string
}

// AlertRuleRow is one detection rule's form, values as shown or as typed.
type AlertRuleRow struct {
	Rule          string
	Name          string
	Description   string
	Enabled       bool
	Threshold     string
	WindowMinutes string
	Severity      string
	Customized    bool
	Action        string                // where the row's form posts
	Error         *components.FormError // the row's refused field, shown next to it
}

// AlertRulesProps is the view model of Settings → Alert rules.
type AlertRulesProps struct {
	CSRF          string
	Rules         []AlertRuleRow
	Severities    []string
	TimeZone      string
	TimeZoneError *components.FormError
	// AlertRetention is how many days resolved alerts are kept (as typed when refused).
	AlertRetention      string
	AlertRetentionError *components.FormError
	Saved               string // what was just saved, for the confirmation
}
