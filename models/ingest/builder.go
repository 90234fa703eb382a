// Package ingest is the write path of audit events: the builder that checks and seals what
// services post, the group-commit writer (one binary COPY and one leaf-queue INSERT per batch),
// Idempotency-Key answers and the dead letters the database refused.
package ingest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"auditdb/models"
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
	Resolve(ctx context.Context, org, name string) (*models.Preset, error)
}

// Builder turns decoded input into sealed events ready for the writer: it applies the
// named preset's defaults, checks every field against the preset's (or the default)
// rules, resolves the retention policy and seals the result.
type Builder struct {
	presets  presetResolver
	policies *RetentionCatalog
	sealer   *models.Sealer
}

// NewBuilder returns a builder over the preset store, the retention policies and the
// sealer.
func NewBuilder(presets presetResolver, policies *RetentionCatalog, sealer *models.Sealer) *Builder {
	return &Builder{presets: presets, policies: policies, sealer: sealer}
}

// BuildOne builds the event of a single-event request. Bad input is KindInvalid naming the
// camelCase field; an organizationId other than org is KindForbidden.
func (b *Builder) BuildOne(ctx context.Context, org string, in eventjson.Input, received time.Time) (models.Event, error) {
	return b.build(ctx, org, in, received)
}

// BuildBatch builds every event of a batch, or none: the first bad event's error is
// returned wrapped with its index (see IndexOf).
func (b *Builder) BuildBatch(ctx context.Context, org string, ins []eventjson.Input, received time.Time) ([]models.Event, error) {
	out := make([]models.Event, len(ins))
	for i := range ins {
		ev, err := b.build(ctx, org, ins[i], received)
		if err != nil {
			return nil, models.AtIndex(i, err)
		}
		out[i] = ev
	}
	return out, nil
}

func (b *Builder) build(ctx context.Context, org string, in eventjson.Input, received time.Time) (models.Event, error) {
	if in.OrganizationID != nil && *in.OrganizationID != org {
		return models.Event{}, &models.Error{Kind: models.KindForbidden, Field: "organizationId",
			Message: "names another organization; leave it out or send the API key's own"}
	}
	rules := models.DefaultRules
	var preset *models.Preset
	if in.Preset != nil {
		p, err := b.presets.Resolve(ctx, org, *in.Preset)
		if err != nil {
			return models.Event{}, err
		}
		preset, rules = p, p.Rules()
		applyPreset(&in, p)
	}
	if err := checkRequired(&in, preset, rules); err != nil {
		return models.Event{}, err
	}
	if err := checkLengths(&in, rules); err != nil {
		return models.Event{}, err
	}

	ev := models.Event{OrganizationID: org, Action: *in.Action, Status: *in.Status, PrincipalID: in.PrincipalID,
		TargetResourceType: in.TargetResourceType, TargetResourceID: in.TargetResourceID,
		OutcomeDescription: in.OutcomeDescription, CorrelationID: in.CorrelationID, TTL: in.TTL,
		DataClassification: "INTERNAL", EventVersion: "1.0", Details: in.Details}
	if !slices.Contains(models.EventStatuses, ev.Status) {
		return models.Event{}, models.Invalid("status", "must be one of attempt, success, failure")
	}
	if in.DataClassification != nil {
		ev.DataClassification = *in.DataClassification
		if !slices.Contains(models.DataClassifications, ev.DataClassification) {
			return models.Event{}, models.Invalid("dataClassification", "must be one of PUBLIC, INTERNAL, CONFIDENTIAL, PHI")
		}
	}
	if in.EventVersion != nil {
		ev.EventVersion = *in.EventVersion
	}
	if !slices.Contains(rules.AllowedEventVersions, ev.EventVersion) {
		return models.Event{}, models.Invalid("eventVersion", fmt.Sprintf("must be one of %v", rules.AllowedEventVersions))
	}

	ev.Timestamp = received
	if in.Timestamp != nil {
		t, err := eventjson.ParseTimestamp(*in.Timestamp)
		if err != nil {
			return models.Event{}, models.Invalid("timestamp", "must be an RFC 3339 date and time, such as 2026-01-31T13:45:00Z")
		}
		if t.Year() < 1970 {
			return models.Event{}, models.Invalid("timestamp", "must be after 1970")
		}
		if t.After(received.Add(MaxFutureSkew)) {
			return models.Event{}, models.Invalid("timestamp", "is more than 5 minutes in the future")
		}
		ev.Timestamp = t
	}
	ev.Timestamp = ev.Timestamp.UTC()

	policy, err := b.policies.resolve(ctx, org, in.RetentionPolicy, ev.DataClassification)
	if err != nil {
		return models.Event{}, err
	}
	ev.RetentionPolicy = policy.Name
	if ev.Timestamp.Before(received.AddDate(0, 0, -policy.RetentionDays)) {
		return models.Event{}, models.Invalid("timestamp", fmt.Sprintf("is older than the %d days retention policy %s keeps events",
			policy.RetentionDays, policy.Name))
	}
	if err := b.sealer.Seal(&ev); err != nil {
		return models.Event{}, err
	}
	return ev, nil
}

// applyPreset fills the members the event left out from the preset's defaults.
func applyPreset(in *eventjson.Input, p *models.Preset) {
	for _, f := range models.PresetDefaultFields {
		if f == "details" {
			if in.Details == nil {
				if raw := p.DefaultDetails(); raw != nil {
					if depth, longest, err := eventjson.MeasureDetails(raw); err == nil {
						in.Details, in.DetailsDepth, in.DetailsLongestString = raw, depth, longest
					}
				}
			}
			continue
		}
		if target := in.Field(f); target != nil && *target == nil {
			*target = p.DefaultString(f)
		}
	}
}

// checkRequired demands action and status always, and whatever the preset requires.
func checkRequired(in *eventjson.Input, p *models.Preset, rules models.PresetRules) error {
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
			return models.Invalid(f, "is required"+by)
		}
	}
	return nil
}

// checkLengths applies the column limits and the rules' maxStringLength and depth.
func checkLengths(in *eventjson.Input, rules models.PresetRules) error {
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
			return models.Invalid(f, fmt.Sprintf("must be at most %d characters", limit))
		}
		if n == 0 && (f == "action" || f == "status") {
			return models.Invalid(f, "must not be empty")
		}
	}
	if in.Details != nil {
		if in.DetailsDepth > rules.MaxCustomFieldDepth {
			return models.Invalid("details", fmt.Sprintf("nests %d levels deep; at most %d allowed", in.DetailsDepth, rules.MaxCustomFieldDepth))
		}
		if in.DetailsLongestString > rules.MaxStringLength {
			return models.Invalid("details", fmt.Sprintf("holds a string longer than %d characters", rules.MaxStringLength))
		}
	}
	return nil
}

// ActiveRetention is an active retention policy as ingest needs it.
type ActiveRetention struct {
	Name           string
	Classification string
	RetentionDays  int
}

// policyCacheTTL is how long the active policies are reused before being read again.
const policyCacheTTL = 30 * time.Second

// RetentionCatalog answers which retention policies are active for an organization, read
// from audit_retention_policy at most every policyCacheTTL. An organization's own policy
// wins over the global one ('*') of the same name or classification, as presets do.
type RetentionCatalog struct {
	db  *gorm.DB
	now func() time.Time

	mu     sync.Mutex
	until  time.Time
	scopes map[string]*retentionScope // by organization_id, '*' for the global policies
}

// retentionScope is the active policies of one owner (an organization or '*').
type retentionScope struct {
	byName  map[string]ActiveRetention
	byClass map[string]ActiveRetention
}

// NewRetentionCatalog returns a catalog over db.
func NewRetentionCatalog(db *gorm.DB) *RetentionCatalog {
	return &RetentionCatalog{db: db, now: time.Now}
}

// resolve returns the named active policy of org (its own, else the global one), or when
// name is nil the default for the data classification: org's oldest active policy of that
// classification, else the oldest global one, else "standard".
func (c *RetentionCatalog) resolve(ctx context.Context, org string, name *string, classification string) (ActiveRetention, error) {
	scopes, err := c.load(ctx)
	if err != nil {
		return ActiveRetention{}, err
	}
	own, global := scopes[org], scopes[models.GlobalOrg]
	lookup := func(pick func(*retentionScope) map[string]ActiveRetention, key string) (ActiveRetention, bool) {
		for _, s := range []*retentionScope{own, global} {
			if s == nil {
				continue
			}
			if p, ok := pick(s)[key]; ok {
				return p, true
			}
		}
		return ActiveRetention{}, false
	}
	names := func(s *retentionScope) map[string]ActiveRetention { return s.byName }
	classes := func(s *retentionScope) map[string]ActiveRetention { return s.byClass }
	if name != nil {
		p, ok := lookup(names, *name)
		if !ok {
			return ActiveRetention{}, models.Invalid("retentionPolicy", fmt.Sprintf("%q is not an active retention policy", *name))
		}
		return p, nil
	}
	if p, ok := lookup(classes, classification); ok {
		return p, nil
	}
	if p, ok := lookup(names, "standard"); ok {
		return p, nil
	}
	return ActiveRetention{}, models.Invalid("retentionPolicy", "is required: no active policy covers "+classification+" data")
}

type catalogRow struct {
	OrganizationID string
	ActiveRetention
}

func (c *RetentionCatalog) load(ctx context.Context) (map[string]*retentionScope, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.scopes != nil && now.Before(c.until) {
		return c.scopes, nil
	}
	var rows []catalogRow
	err := c.db.WithContext(ctx).Raw(`SELECT organization_id, policy_name AS name, data_classification AS classification, retention_days
		FROM audit_retention_policy WHERE is_active ORDER BY id`).Scan(&rows).Error
	if err != nil {
		return nil, models.Unavailable("cannot read retention policies", err)
	}
	scopes := map[string]*retentionScope{}
	for _, r := range rows {
		s := scopes[r.OrganizationID]
		if s == nil {
			s = &retentionScope{byName: map[string]ActiveRetention{}, byClass: map[string]ActiveRetention{}}
			scopes[r.OrganizationID] = s
		}
		s.byName[r.Name] = r.ActiveRetention
		if _, ok := s.byClass[r.Classification]; !ok {
			s.byClass[r.Classification] = r.ActiveRetention
		}
	}
	c.scopes, c.until = scopes, now.Add(policyCacheTTL)
	return scopes, nil
}
