package models

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"auditdb/models/eventjson"
)

// Ingest limits.
const (
	// MaxBatchArray is the most events a JSON array batch may hold.
	MaxBatchArray = 1000
	// MaxBatchNDJSON is the most events an NDJSON batch may hold.
	MaxBatchNDJSON = 10_000
	// MaxFutureSkew is how far past the time of receipt an event's timestamp may lie.
	MaxFutureSkew = 5 * time.Minute
)

// columnLimits are the character limits of audit_log's varchar columns; a preset's
// maxStringLength applies on top.
var columnLimits = map[string]int{
	"action": 255, "principalId": 255, "targetResourceType": 255, "targetResourceId": 255,
	"correlationId": 255, "ttl": 255, "eventVersion": 20,
}

// presetResolver finds the preset an event names.
type presetResolver interface {
	Resolve(ctx context.Context, org, name string) (*Preset, error)
}

// EventBuilder turns decoded input into sealed events ready for the writer: it applies the
// named preset's defaults, checks every field against the preset's (or the default)
// rules, resolves the retention policy and seals the result.
type EventBuilder struct {
	presets  presetResolver
	policies *PolicyCatalog
	sealer   *Sealer
}

// NewEventBuilder returns a builder over the preset store, the retention policies and the
// sealer.
func NewEventBuilder(presets presetResolver, policies *PolicyCatalog, sealer *Sealer) *EventBuilder {
	return &EventBuilder{presets: presets, policies: policies, sealer: sealer}
}

// BuildOne builds the event of a single-event request. Bad input is KindInvalid naming the
// camelCase field; an organizationId other than org is KindForbidden.
func (b *EventBuilder) BuildOne(ctx context.Context, org string, in eventjson.Input, received time.Time) (Event, error) {
	return b.build(ctx, org, in, received)
}

// BuildBatch builds every event of a batch, or none: the first bad event's error is
// returned wrapped with its index (see IndexOf).
func (b *EventBuilder) BuildBatch(ctx context.Context, org string, ins []eventjson.Input, received time.Time) ([]Event, error) {
	out := make([]Event, len(ins))
	for i := range ins {
		ev, err := b.build(ctx, org, ins[i], received)
		if err != nil {
			return nil, AtIndex(i, err)
		}
		out[i] = ev
	}
	return out, nil
}

func (b *EventBuilder) build(ctx context.Context, org string, in eventjson.Input, received time.Time) (Event, error) {
	if in.OrganizationID != nil && *in.OrganizationID != org {
		return Event{}, &Error{Kind: KindForbidden, Field: "organizationId",
			Message: "names another organization; leave it out or send the API key's own"}
	}
	rules := DefaultRules
	var preset *Preset
	if in.Preset != nil {
		p, err := b.presets.Resolve(ctx, org, *in.Preset)
		if err != nil {
			return Event{}, err
		}
		preset, rules = p, p.Rules()
		applyPreset(&in, p)
	}
	if err := checkRequired(&in, preset, rules); err != nil {
		return Event{}, err
	}
	if err := checkLengths(&in, rules); err != nil {
		return Event{}, err
	}

	ev := Event{OrganizationID: org, Action: *in.Action, Status: *in.Status, PrincipalID: in.PrincipalID,
		TargetResourceType: in.TargetResourceType, TargetResourceID: in.TargetResourceID,
		OutcomeDescription: in.OutcomeDescription, CorrelationID: in.CorrelationID, TTL: in.TTL,
		DataClassification: "INTERNAL", EventVersion: "1.0", Details: in.Details}
	if !contains(EventStatuses, ev.Status) {
		return Event{}, Invalid("status", "must be one of attempt, success, failure")
	}
	if in.DataClassification != nil {
		ev.DataClassification = *in.DataClassification
		if !contains(DataClassifications, ev.DataClassification) {
			return Event{}, Invalid("dataClassification", "must be one of PUBLIC, INTERNAL, CONFIDENTIAL, PHI")
		}
	}
	if in.EventVersion != nil {
		ev.EventVersion = *in.EventVersion
	}
	if !slices.Contains(rules.AllowedEventVersions, ev.EventVersion) {
		return Event{}, Invalid("eventVersion", fmt.Sprintf("must be one of %v", rules.AllowedEventVersions))
	}

	ev.Timestamp = received
	if in.Timestamp != nil {
		t, err := eventjson.ParseTimestamp(*in.Timestamp)
		if err != nil {
			return Event{}, Invalid("timestamp", "must be an RFC 3339 date and time, such as 2026-01-31T13:45:00Z")
		}
		if t.Year() < 1970 {
			return Event{}, Invalid("timestamp", "must be after 1970")
		}
		if t.After(received.Add(MaxFutureSkew)) {
			return Event{}, Invalid("timestamp", "is more than 5 minutes in the future")
		}
		ev.Timestamp = t
	}
	ev.Timestamp = ev.Timestamp.UTC()

	policy, err := b.policies.resolve(ctx, in.RetentionPolicy, ev.DataClassification)
	if err != nil {
		return Event{}, err
	}
	ev.RetentionPolicy = policy.Name
	if ev.Timestamp.Before(received.AddDate(0, 0, -policy.RetentionDays)) {
		return Event{}, Invalid("timestamp", fmt.Sprintf("is older than the %d days retention policy %s keeps events",
			policy.RetentionDays, policy.Name))
	}
	if err := b.sealer.Seal(&ev); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// applyPreset fills the members the event left out from the preset's defaults.
func applyPreset(in *eventjson.Input, p *Preset) {
	for _, f := range PresetDefaultFields {
		if f == "details" {
			if in.Details == nil {
				if raw := p.defaultDetails(); raw != nil {
					if depth, longest, err := eventjson.MeasureDetails(raw); err == nil {
						in.Details, in.DetailsDepth, in.DetailsLongestString = raw, depth, longest
					}
				}
			}
			continue
		}
		if target := in.Field(f); target != nil && *target == nil {
			*target = p.defaultString(f)
		}
	}
}

// checkRequired demands action and status always, and whatever the preset requires.
func checkRequired(in *eventjson.Input, p *Preset, rules PresetRules) error {
	required := []string{"action", "status"}
	by := ""
	if p != nil {
		required = append(append(required, rules.RequiredFields...), p.RequiredFields...)
		by = fmt.Sprintf(" by preset %q", p.Name)
	}
	for _, f := range required {
		present := false
		if f == "details" {
			present = in.Details != nil
		} else if target := in.Field(f); target != nil {
			present = *target != nil
		}
		if !present {
			return Invalid(f, "is required"+by)
		}
	}
	return nil
}

// checkLengths applies the column limits and the rules' maxStringLength and depth.
func checkLengths(in *eventjson.Input, rules PresetRules) error {
	for _, f := range eventjson.Fields {
		target := in.Field(f)
		if target == nil || *target == nil {
			continue
		}
		n := utf8.RuneCountInString(**target)
		limit := rules.MaxStringLength
		if c, ok := columnLimits[f]; ok && c < limit {
			limit = c
		}
		if n > limit {
			return Invalid(f, fmt.Sprintf("must be at most %d characters", limit))
		}
		if n == 0 && (f == "action" || f == "status") {
			return Invalid(f, "must not be empty")
		}
	}
	if in.Details != nil {
		if in.DetailsDepth > rules.MaxCustomFieldDepth {
			return Invalid("details", fmt.Sprintf("nests %d levels deep; at most %d allowed", in.DetailsDepth, rules.MaxCustomFieldDepth))
		}
		if in.DetailsLongestString > rules.MaxStringLength {
			return Invalid("details", fmt.Sprintf("holds a string longer than %d characters", rules.MaxStringLength))
		}
	}
	return nil
}

// ActivePolicy is an active retention policy as ingest needs it.
type ActivePolicy struct {
	Name           string
	Classification string
	RetentionDays  int
}

// policyCacheTTL is how long the active policies are reused before being read again.
const policyCacheTTL = 30 * time.Second

// PolicyCatalog answers which retention policies are active, read from
// audit_retention_policy at most every policyCacheTTL.
type PolicyCatalog struct {
	db  *gorm.DB
	now func() time.Time

	mu      sync.Mutex
	until   time.Time
	byName  map[string]ActivePolicy
	byClass map[string]ActivePolicy
}

// NewPolicyCatalog returns a catalog over db.
func NewPolicyCatalog(db *gorm.DB) *PolicyCatalog { return &PolicyCatalog{db: db, now: time.Now} }

// resolve returns the named active policy, or when name is nil the default for the data
// classification (the oldest active policy of that classification, else "standard").
func (c *PolicyCatalog) resolve(ctx context.Context, name *string, classification string) (ActivePolicy, error) {
	byName, byClass, err := c.load(ctx)
	if err != nil {
		return ActivePolicy{}, err
	}
	if name != nil {
		p, ok := byName[*name]
		if !ok {
			return ActivePolicy{}, Invalid("retentionPolicy", fmt.Sprintf("%q is not an active retention policy", *name))
		}
		return p, nil
	}
	if p, ok := byClass[classification]; ok {
		return p, nil
	}
	if p, ok := byName["standard"]; ok {
		return p, nil
	}
	return ActivePolicy{}, Invalid("retentionPolicy", "is required: no active policy covers "+classification+" data")
}

func (c *PolicyCatalog) load(ctx context.Context) (map[string]ActivePolicy, map[string]ActivePolicy, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.byName != nil && now.Before(c.until) {
		return c.byName, c.byClass, nil
	}
	var rows []ActivePolicy
	err := c.db.WithContext(ctx).Raw(`SELECT policy_name AS name, data_classification AS classification, retention_days
		FROM audit_retention_policy WHERE is_active ORDER BY id`).Scan(&rows).Error
	if err != nil {
		return nil, nil, Unavailable("cannot read retention policies", err)
	}
	c.byName, c.byClass = map[string]ActivePolicy{}, map[string]ActivePolicy{}
	for _, r := range rows {
		c.byName[r.Name] = r
		if _, ok := c.byClass[r.Classification]; !ok {
			c.byClass[r.Classification] = r
		}
	}
	c.until = now.Add(policyCacheTTL)
	return c.byName, c.byClass, nil
}
