// Package settings renders the organization settings area: the index, API keys, presets
// and dead letters.
package settings

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

// FormError is a form's error message and the field it concerns ("" for the form).
type FormError struct {
	Field   string
	Message string
}

// APIKeyRow is one key in the list, formatted.
type APIKeyRow struct {
	ID           int64
	Name         string
	Prefix       string // the first characters of the key, followed by an ellipsis
	Scope        string
	Created      string // date and author
	LastUsed     string // "never" when unused
	Revoked      string // "" while live
	RevokeAction string // where the revoke form posts
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
	Error      *FormError
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
	Saved string // the name of the preset just saved, for the confirmation
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
	Error                *FormError
}

// DeadLetterRow is one dead letter in the list, formatted.
type DeadLetterRow struct {
	ID           int64
	Received     string
	Action       string
	Events       int
	Reason       string
	Failures     int
	Replayed     string // "" until replayed
	ReplayAction string // where the replay form posts
	Payload      string // the kept events, pretty-printed (shortened when long)
}

// DeadLettersProps is the view model of Settings → Dead letters.
type DeadLettersProps struct {
	CSRF     string
	Rows     []DeadLetterRow
	Replayed string // the id of the letter just replayed, for the confirmation
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
	Action        string     // where the row's form posts
	Error         *FormError // the row's refused field, shown next to it
}

// AlertRulesProps is the view model of Settings → Alert rules.
type AlertRulesProps struct {
	CSRF          string
	Rules         []AlertRuleRow
	Severities    []string
	TimeZone      string
	TimeZoneError *FormError
	Saved         string // what was just saved, for the confirmation
}
