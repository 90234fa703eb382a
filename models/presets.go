package models

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"auditdb/models/eventjson"
)

// PresetRules are a preset's validation block (the validation column of audit_preset).
type PresetRules struct {
	MaxStringLength      int      `json:"maxStringLength"`
	RequiredFields       []string `json:"requiredFields,omitempty"`
	MaxCustomFieldDepth  int      `json:"maxCustomFieldDepth"`
	AllowedEventVersions []string `json:"allowedEventVersions"`
}

// DefaultRules apply to events that name no preset, and fill what a preset's block leaves
// out. Unlike the seed's presets they do not require a timestamp: it defaults to the time
// of receipt.
var DefaultRules = PresetRules{
	MaxStringLength:      10000,
	RequiredFields:       []string{"action", "status"},
	MaxCustomFieldDepth:  3,
	AllowedEventVersions: []string{"1.0", "1.1", "2.0"},
}

// withDefaults fills the zero members of r from DefaultRules.
func (r PresetRules) withDefaults() PresetRules {
	if r.MaxStringLength <= 0 {
		r.MaxStringLength = DefaultRules.MaxStringLength
	}
	if r.MaxCustomFieldDepth <= 0 {
		r.MaxCustomFieldDepth = DefaultRules.MaxCustomFieldDepth
	}
	if len(r.AllowedEventVersions) == 0 {
		r.AllowedEventVersions = DefaultRules.AllowedEventVersions
	}
	return r
}

// Preset is a row of audit_preset: defaults and validation for events that name it. Rows
// with OrganizationID "*" are global; an organization's own preset of the same name wins.
type Preset struct {
	ID                 int64          `gorm:"column:id;primaryKey"`
	Name               string         `gorm:"column:name"`
	Description        *string        `gorm:"column:description"`
	OrganizationID     string         `gorm:"column:organization_id"`
	Action             *string        `gorm:"column:action"`
	DataClassification *string        `gorm:"column:data_classification"`
	RequiredFields     []string       `gorm:"column:required_fields;serializer:json"`
	DefaultValues      map[string]any `gorm:"column:default_values;serializer:json"`
	Validation         PresetRules    `gorm:"column:validation;serializer:json"`
	CreatedAt          time.Time      `gorm:"column:created_at"`
	CreatedBy          *string        `gorm:"column:created_by"`
	UpdatedAt          time.Time      `gorm:"column:updated_at"`
	UpdatedBy          *string        `gorm:"column:updated_by"`
}

// TableName maps Preset to audit_preset.
func (Preset) TableName() string { return "audit_preset" }

// Global reports whether the preset applies to every organization.
func (p *Preset) Global() bool { return p.OrganizationID == GlobalOrg }

// Rules returns the preset's validation with the defaults filled in.
func (p *Preset) Rules() PresetRules { return p.Validation.withDefaults() }

// PresetFields are the event fields a preset may require; PresetDefaultFields those it may
// give a default value.
var (
	PresetFields = []string{"timestamp", "action", "status", "principalId", "targetResourceType", "targetResourceId",
		"outcomeDescription", "correlationId", "dataClassification", "retentionPolicy", "eventVersion", "ttl", "details"}
	PresetDefaultFields = []string{"action", "status", "principalId", "targetResourceType", "targetResourceId",
		"outcomeDescription", "correlationId", "dataClassification", "retentionPolicy", "eventVersion", "ttl", "details"}
)

// PresetInput is a preset as an administrator edits it.
type PresetInput struct {
	Name                 string
	Description          string
	Action               string
	DataClassification   string
	RequiredFields       []string
	DefaultValues        string // a JSON object; "" for none
	MaxStringLength      int
	MaxCustomFieldDepth  int
	AllowedEventVersions []string
}

var presetNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// validate checks in and returns the default values decoded. Errors are KindInvalid and
// name the form field (snake_case).
func (in *PresetInput) validate() (map[string]any, error) {
	in.Name = strings.TrimSpace(in.Name)
	in.Description = strings.TrimSpace(in.Description)
	in.Action = strings.TrimSpace(in.Action)
	if !presetNamePattern.MatchString(in.Name) {
		return nil, Invalid("name", "must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if utf8.RuneCountInString(in.Description) > 1000 || !utf8.ValidString(in.Description) {
		return nil, Invalid("description", "must be at most 1000 characters")
	}
	if utf8.RuneCountInString(in.Action) > 255 || !utf8.ValidString(in.Action) || strings.ContainsRune(in.Action, 0) {
		return nil, Invalid("action", "must be at most 255 characters")
	}
	if in.DataClassification != "" && !contains(DataClassifications, in.DataClassification) {
		return nil, Invalid("data_classification", "must be one of PUBLIC, INTERNAL, CONFIDENTIAL, PHI")
	}
	for _, f := range in.RequiredFields {
		if !contains(PresetFields, f) {
			return nil, Invalid("required_fields", fmt.Sprintf("%q is not an event field", f))
		}
	}
	if in.MaxStringLength < 1 || in.MaxStringLength > 100_000 {
		return nil, Invalid("max_string_length", "must be between 1 and 100000")
	}
	if in.MaxCustomFieldDepth < 1 || in.MaxCustomFieldDepth > eventjson.MaxDepth {
		return nil, Invalid("max_custom_field_depth", fmt.Sprintf("must be between 1 and %d", eventjson.MaxDepth))
	}
	if len(in.AllowedEventVersions) == 0 {
		return nil, Invalid("allowed_event_versions", "name at least one version")
	}
	for _, v := range in.AllowedEventVersions {
		if v == "" || len(v) > 20 || strings.ContainsAny(v, " \t\r\n,") {
			return nil, Invalid("allowed_event_versions", "versions are 1-20 characters without spaces or commas")
		}
	}
	defaults := map[string]any{}
	if raw := strings.TrimSpace(in.DefaultValues); raw != "" {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&defaults); err != nil || dec.More() {
			return nil, Invalid("default_values", "must be a JSON object such as {\"dataClassification\": \"PHI\"}")
		}
	}
	for k, v := range defaults {
		if !contains(PresetDefaultFields, k) {
			return nil, Invalid("default_values", fmt.Sprintf("%q is not a field a preset can default", k))
		}
		if k == "details" {
			raw, _ := json.Marshal(v)
			if _, ok := v.(map[string]any); !ok {
				return nil, Invalid("default_values", "details must be a JSON object")
			}
			if _, _, err := eventjson.MeasureDetails(raw); err != nil {
				return nil, Invalid("default_values", "details: "+err.Error())
			}
			continue
		}
		s, ok := v.(string)
		if !ok || strings.ContainsRune(s, 0) {
			return nil, Invalid("default_values", fmt.Sprintf("%s must be a string", k))
		}
	}
	return defaults, nil
}

// presetCacheTTL is how long an instance reuses a preset it resolved for ingest; an edit
// reaches the other instances within it.
const presetCacheTTL = 5 * time.Second

// PresetStore manages presets and resolves them for ingest.
type PresetStore struct {
	db    *gorm.DB
	trail *AuditTrail
	now   func() time.Time

	mu    sync.Mutex
	cache map[string]cachedPreset
}

type cachedPreset struct {
	p     *Preset // nil: no such preset
	until time.Time
}

// NewPresetStore returns a store over db whose changes are self-audited through trail (nil
// only where presets are just resolved).
func NewPresetStore(db *gorm.DB, trail *AuditTrail) *PresetStore {
	return &PresetStore{db: db, trail: trail, now: time.Now, cache: map[string]cachedPreset{}}
}

// List returns org's own presets and the global ones, own first, by name.
func (s *PresetStore) List(ctx context.Context, org string) ([]Preset, error) {
	var out []Preset
	err := s.db.WithContext(ctx).Where("organization_id IN ?", []string{org, GlobalOrg}).
		Order("organization_id = '*', name").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: list presets: %w", err)
	}
	return out, nil
}

// Get returns preset id when it is org's or global; otherwise KindNotFound.
func (s *PresetStore) Get(ctx context.Context, org string, id int64) (*Preset, error) {
	var p Preset
	err := s.db.WithContext(ctx).Where("id = ? AND organization_id IN ?", id, []string{org, GlobalOrg}).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, NotFound("preset")
	}
	if err != nil {
		return nil, fmt.Errorf("models: get preset: %w", err)
	}
	return &p, nil
}

// Create adds a preset to org ("*" for a global one). It returns KindInvalid naming the form
// field and KindConflict when org already has a preset of that name.
func (s *PresetStore) Create(ctx context.Context, org string, in PresetInput, by Actor) (*Preset, error) {
	defaults, err := in.validate()
	if err != nil {
		return nil, err
	}
	who := by.Principal()
	p := &Preset{OrganizationID: org, CreatedBy: &who, UpdatedBy: &who}
	in.apply(p, defaults)
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(p).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return Conflict("name", "a preset with this name already exists")
			}
			return fmt.Errorf("models: create preset: %w", err)
		}
		return s.audit(ctx, tx, org, p.Name, nil, presetSnapshot(p), by)
	})
	if err != nil {
		return nil, err
	}
	s.forget(org, p.Name)
	return p, nil
}

// Update replaces preset id of org ("*" edits a global one). It returns KindNotFound when
// org has no such preset, else as Create.
func (s *PresetStore) Update(ctx context.Context, org string, id int64, in PresetInput, by Actor) (*Preset, error) {
	defaults, err := in.validate()
	if err != nil {
		return nil, err
	}
	var p Preset
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Where("id = ? AND organization_id = ?", id, org).Take(&p).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return NotFound("preset")
		}
		if err != nil {
			return fmt.Errorf("models: get preset: %w", err)
		}
		before := presetSnapshot(&p)
		oldName := p.Name
		in.apply(&p, defaults)
		who := by.Principal()
		p.UpdatedBy, p.UpdatedAt = &who, s.now().UTC()
		if err := tx.Save(&p).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return Conflict("name", "a preset with this name already exists")
			}
			return fmt.Errorf("models: update preset: %w", err)
		}
		s.forget(org, oldName)
		return s.audit(ctx, tx, org, p.Name, before, presetSnapshot(&p), by)
	})
	if err != nil {
		return nil, err
	}
	s.forget(org, p.Name)
	return &p, nil
}

// audit records a preset change inside tx: an organization's change is a self-audit event
// (and a config_change_event row); a global preset belongs to no organization's log, so
// its change is only a config_change_event row.
func (s *PresetStore) audit(ctx context.Context, tx *gorm.DB, org, name string, before, after any, by Actor) error {
	if org == GlobalOrg {
		return recordConfigChange(tx, org, "audit_preset."+name, before, after, by.Principal())
	}
	return s.trail.RecordTx(ctx, tx, PresetChanged(by, org, name, before, after))
}

// Resolve returns the preset named name for org's events: org's own, else the global one.
// It returns KindInvalid (field preset) when there is none. Results are cached for
// presetCacheTTL.
func (s *PresetStore) Resolve(ctx context.Context, org, name string) (*Preset, error) {
	key := org + "\x00" + name
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[key]
	s.mu.Unlock()
	if !ok || !now.Before(c.until) {
		var rows []Preset
		err := s.db.WithContext(ctx).Where("name = ? AND organization_id IN ?", name, []string{org, GlobalOrg}).
			Order("organization_id = '*'").Limit(1).Find(&rows).Error
		if err != nil {
			return nil, Unavailable("cannot read presets", err)
		}
		c = cachedPreset{until: now.Add(presetCacheTTL)}
		if len(rows) == 1 {
			c.p = &rows[0]
		}
		s.mu.Lock()
		if len(s.cache) > 10_000 {
			clear(s.cache)
		}
		s.cache[key] = c
		s.mu.Unlock()
	}
	if c.p == nil {
		return nil, Invalid("preset", fmt.Sprintf("there is no preset named %q", name))
	}
	return c.p, nil
}

// forget drops cached resolutions of name; a global preset affects every organization.
func (s *PresetStore) forget(org, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.cache {
		if k == org+"\x00"+name || (org == GlobalOrg && strings.HasSuffix(k, "\x00"+name)) {
			delete(s.cache, k)
		}
	}
}

func (in *PresetInput) apply(p *Preset, defaults map[string]any) {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	p.Name, p.Description, p.Action, p.DataClassification = in.Name, opt(in.Description), opt(in.Action), opt(in.DataClassification)
	p.RequiredFields = append([]string{}, in.RequiredFields...)
	slices.Sort(p.RequiredFields)
	p.RequiredFields = slices.Compact(p.RequiredFields)
	p.DefaultValues = defaults
	p.Validation = PresetRules{MaxStringLength: in.MaxStringLength, MaxCustomFieldDepth: in.MaxCustomFieldDepth,
		AllowedEventVersions: append([]string{}, in.AllowedEventVersions...)}
}

func presetSnapshot(p *Preset) map[string]any {
	return map[string]any{"name": p.Name, "description": p.Description, "action": p.Action,
		"dataClassification": p.DataClassification, "requiredFields": p.RequiredFields,
		"defaultValues": p.DefaultValues, "validation": p.Validation}
}

// DefaultString returns the preset's default for a string field, if it has one.
func (p *Preset) DefaultString(field string) *string {
	switch field {
	case "action":
		if p.Action != nil {
			return p.Action
		}
	case "dataClassification":
		if p.DataClassification != nil {
			return p.DataClassification
		}
	}
	if s, ok := p.DefaultValues[field].(string); ok {
		return &s
	}
	return nil
}

// DefaultDetails returns the preset's default details object as JSON, or nil.
func (p *Preset) DefaultDetails() []byte {
	v, ok := p.DefaultValues["details"]
	if !ok {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil
	}
	return bytes.TrimSpace(buf.Bytes())
}
