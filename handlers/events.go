package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/models/merkle"
	"auditdb/views/components"
	eventviews "auditdb/views/pages/events"
)

// EventReader is what the events pages need from the event store.
type EventReader interface {
	List(ctx context.Context, org string, f models.EventFilter, after *models.Cursor, limit int) (models.EventPage, error)
	Get(ctx context.Context, org string, id int64) (*models.Event, error)
}

// Events list defaults.
const (
	EventsPageSize    = 50
	DefaultEventRange = 30 * 24 * time.Hour
	// futureSlack lets the default range include events stamped slightly ahead of our clock.
	futureSlack    = 5 * time.Minute
	formTimeLayout = "2006-01-02T15:04"
)

// filterParams are the query parameters of the events list, in form order.
var filterParams = []string{"from", "to", "action", "status", "principal", "resource_type", "resource_id",
	"classification", "correlation_id", "q"}

// ParseEventFilter reads the events list filter from query values. An absent range means
// the last 30 days. It returns a KindInvalid error naming the bad parameter.
func ParseEventFilter(q func(string) string, now time.Time) (models.EventFilter, eventviews.FilterValues, error) {
	fv := eventviews.FilterValues{
		From: q("from"), To: q("to"), Action: strings.TrimSpace(q("action")), Status: q("status"),
		Principal: strings.TrimSpace(q("principal")), ResourceType: strings.TrimSpace(q("resource_type")),
		ResourceID: strings.TrimSpace(q("resource_id")), Classification: q("classification"),
		CorrelationID: strings.TrimSpace(q("correlation_id")), Q: strings.TrimSpace(q("q")),
	}
	f := models.EventFilter{
		Action: fv.Action, Status: fv.Status, PrincipalID: fv.Principal, ResourceType: fv.ResourceType,
		ResourceID: fv.ResourceID, Classification: fv.Classification, CorrelationID: fv.CorrelationID, Text: fv.Q,
		To: now.Add(futureSlack), From: now.Add(-DefaultEventRange),
	}
	var err error
	if fv.From != "" {
		if f.From, err = parseFormTime(fv.From); err != nil {
			return f, fv, models.Invalid("from", "must be a date and time such as 2026-01-31T13:45 (UTC)")
		}
	}
	if fv.To != "" {
		if f.To, err = parseFormTime(fv.To); err != nil {
			return f, fv, models.Invalid("to", "must be a date and time such as 2026-01-31T13:45 (UTC)")
		}
	}
	return f, fv, f.Validate()
}

// parseFormTime accepts the datetime-local form (taken as UTC), a bare date, or RFC 3339.
func parseFormTime(s string) (time.Time, error) {
	for _, layout := range []string{formTimeLayout, "2006-01-02T15:04:05", "2006-01-02", time.RFC3339Nano} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			if t.Year() < 1970 || t.Year() > 9999 {
				break
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, models.Invalid("time", "unreadable")
}

// ListEvents shows the current organization's events, newest first, with filters and
// keyset pages; htmx requests get the results fragment alone.
func ListEvents(events EventReader, now func() time.Time) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		if v.OrgID == "" {
			return models.Forbidden("you are not a member of any organization")
		}
		filter, values, err := ParseEventFilter(func(k string) string { return c.Query(k) }, now())
		if err != nil {
			return err
		}
		after, err := queryCursor(c, filter)
		if err != nil {
			return err
		}
		page, err := events.List(c.UserContext(), v.OrgID, filter, after, EventsPageSize)
		if err != nil {
			return err
		}
		props := eventviews.ListProps{Filter: values, Statuses: models.EventStatuses,
			Classifications: models.DataClassifications, Rows: make([]eventviews.Row, 0, len(page.Events))}
		for i := range page.Events {
			props.Rows = append(props.Rows, EventRow(&page.Events[i]))
		}
		base := filterQuery(c)
		if page.Next != nil {
			props.NextHref = withParam("/events", base, "after", page.Next.String())
		}
		if after != nil {
			props.FirstHref = withParam("/events", base, "", "")
		}
		if v.Allowed("audit.events", "export") {
			props.BundleHref = withParam("/events/bundle", base, "", "")
		}
		if render.IsHTMX(c) {
			return render.HTML(c, fiber.StatusOK, eventviews.Results(props))
		}
		return render.HTML(c, fiber.StatusOK, eventviews.List(v.Shell("Events", "events"), props))
	}
}

// filterQuery returns the request's non-empty filter parameters (not the cursor).
func filterQuery(c *fiber.Ctx) url.Values {
	vals := url.Values{}
	for _, k := range filterParams {
		if s := c.Query(k); s != "" {
			vals.Set(k, s)
		}
	}
	return vals
}

func withParam(path string, base url.Values, key, value string) string {
	vals := url.Values{}
	for k, v := range base {
		vals[k] = v
	}
	if key != "" {
		vals.Set(key, value)
	}
	if len(vals) == 0 {
		return path
	}
	return path + "?" + vals.Encode()
}

// EventRow shapes an event for the list table.
func EventRow(ev *models.Event) eventviews.Row {
	resource := deref(ev.TargetResourceType)
	if id := deref(ev.TargetResourceID); id != "" {
		if resource != "" {
			resource += "/"
		}
		resource += id
	}
	return eventviews.Row{
		ID: ev.ID, Href: "/events/" + strconv.FormatInt(ev.ID, 10),
		Time:   components.Timestamp(ev.Timestamp),
		Action: ev.Action, Status: ev.Status, Principal: deref(ev.PrincipalID), Resource: resource,
		Classification: ev.DataClassification, Outcome: deref(ev.OutcomeDescription),
	}
}

// IntegrityReader tells where an event stands in the Merkle log and how it was last
// verified.
type IntegrityReader interface {
	Position(ctx context.Context, org string, id int64) (merkle.LogPosition, error)
	LastCheck(ctx context.Context, org string, id int64) (*merkle.CheckRecord, error)
}

// ShowEvent shows every field of one event of the current organization, with its place in
// the Merkle log, its latest verification and a Verify button. A malformed id or another
// organization's event is a 404.
func ShowEvent(events EventReader, integrity IntegrityReader) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id, err := consoleEventID(c, v)
		if err != nil {
			return err
		}
		ev, err := events.Get(c.UserContext(), v.OrgID, id)
		if err != nil {
			return err
		}
		props := eventDetail(ev)
		if props.Integrity, err = integrityCard(c, v, integrity, id); err != nil {
			return err
		}
		return render.HTML(c, fiber.StatusOK, eventviews.Detail(v.Shell("Event "+strconv.FormatInt(id, 10), "events"), props))
	}
}

// VerifyEvent verifies one event from its page (POST /events/{id}/verify) and records who
// asked. htmx gets the integrity card again; a plain form post is sent back to the page,
// which shows the new result.
func VerifyEvent(verifier EventVerifier, integrity IntegrityReader) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id, err := consoleEventID(c, v)
		if err != nil {
			return err
		}
		if _, err := verifier.VerifyEvent(c.UserContext(), v.OrgID, id, v.User.Email); err != nil {
			return err
		}
		if !render.IsHTMX(c) {
			return render.Redirect(c, "/events/"+strconv.FormatInt(id, 10))
		}
		card, err := integrityCard(c, v, integrity, id)
		if err != nil {
			return err
		}
		return render.HTML(c, fiber.StatusOK, eventviews.IntegrityCard(card))
	}
}

func consoleEventID(c *fiber.Ctx, v *render.Viewer) (int64, error) {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil || id <= 0 || v.OrgID == "" {
		return 0, models.NotFound("event")
	}
	return id, nil
}

// integrityCard shapes the integrity card of event id.
func integrityCard(c *fiber.Ctx, v *render.Viewer, integrity IntegrityReader, id int64) (eventviews.IntegrityProps, error) {
	ctx := c.UserContext()
	p := eventviews.IntegrityProps{EventID: id, CSRF: v.Session.CSRFToken()}
	if v.Allowed("audit.events", "verify") {
		p.VerifyAction = "/events/" + strconv.FormatInt(id, 10) + "/verify"
	}
	pos, err := integrity.Position(ctx, v.OrgID, id)
	if err != nil {
		return p, err
	}
	switch {
	case pos.Checkpoint != nil:
		p.Checkpoint = strconv.FormatInt(*pos.Checkpoint, 10)
		p.Log = fmt.Sprintf("Included in checkpoint %d (leaf %d of the Merkle log).", *pos.Checkpoint, *pos.LeafIndex)
	case pos.LeafIndex != nil:
		p.Log = fmt.Sprintf("In the Merkle log as leaf %d; the next checkpoint will include it.", *pos.LeafIndex)
	default:
		p.Log = "Not in the Merkle log yet; the sequencer appends new events within seconds."
	}
	last, err := integrity.LastCheck(ctx, v.OrgID, id)
	if err != nil || last == nil {
		return p, err
	}
	var details struct {
		Reason string `json:"reason"`
	}
	json.Unmarshal(last.Details, &details)
	p.Last = &eventviews.VerificationView{Status: last.Status, Reason: details.Reason, Expected: deref(last.Expected),
		Computed: deref(last.Computed), When: components.Timestamp(last.VerifiedAt), Who: deref(last.VerifiedBy)}
	if p.Last.Computed == "" {
		p.Last.Computed = "—"
	}
	return p, nil
}

func eventDetail(ev *models.Event) eventviews.DetailProps {
	opt := func(p *string) string {
		if p == nil {
			return "—"
		}
		return *p
	}
	latency := "—"
	if ev.ProcessingLatency != nil {
		latency = strconv.Itoa(int(*ev.ProcessingLatency)) + " ms"
	}
	archived := "—"
	if ev.ArchivedAt != nil {
		archived = ev.ArchivedAt.UTC().Format(time.RFC3339)
	}
	fields := []eventviews.DetailField{
		{Label: "ID", Value: strconv.FormatInt(ev.ID, 10), TestID: "field-id", Mono: true},
		{Label: "Timestamp", Value: ev.Timestamp.UTC().Format(models.TimestampLayout), TestID: "field-timestamp", Mono: true},
		{Label: "Action", Value: ev.Action, TestID: "field-action", Mono: true},
		{Label: "Status", Value: ev.Status, TestID: "field-status"},
		{Label: "Principal", Value: opt(ev.PrincipalID), TestID: "field-principal", Mono: true},
		{Label: "Organization", Value: ev.OrganizationID, TestID: "field-organization", Mono: true},
		{Label: "Resource type", Value: opt(ev.TargetResourceType), TestID: "field-resource-type"},
		{Label: "Resource id", Value: opt(ev.TargetResourceID), TestID: "field-resource-id", Mono: true},
		{Label: "Outcome", Value: opt(ev.OutcomeDescription), TestID: "field-outcome"},
		{Label: "Correlation id", Value: opt(ev.CorrelationID), TestID: "field-correlation-id", Mono: true},
		{Label: "Data classification", Value: ev.DataClassification, TestID: "field-classification"},
		{Label: "Retention policy", Value: ev.RetentionPolicy, TestID: "field-retention-policy"},
		{Label: "Event version", Value: ev.EventVersion, TestID: "field-event-version"},
		{Label: "TTL", Value: opt(ev.TTL), TestID: "field-ttl"},
		{Label: "Processing latency", Value: latency, TestID: "field-latency"},
		{Label: "Archived at", Value: archived, TestID: "field-archived-at"},
		{Label: "Hash algorithm", Value: ev.HashAlgorithm, TestID: "field-hash-algorithm", Mono: true},
		{Label: "Hash", Value: ev.Hash, TestID: "field-hash", Mono: true},
		{Label: "Subject digest", Value: ev.SubjectDigest, TestID: "field-subject-digest", Mono: true},
		{Label: "Signature", Value: ev.Signature, TestID: "field-signature", Mono: true},
	}
	return eventviews.DetailProps{ID: ev.ID, Title: ev.Action, Fields: fields, DetailsJSON: prettyJSON(ev.Details),
		BackHref: "/events"}
}

func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "{}"
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// queryCursor reads the optional keyset cursor ?after= of a list filtered by f; it returns
// nil for the first page and a KindInvalid error naming "after" for anything unreadable or
// outside f's range: a cursor is the last row of a page, so it is never after the range's
// end, and never long before its start (the default range moves with the clock, so a
// cursor of a page shown some time ago may fall a little before it).
func queryCursor(c *fiber.Ctx, f models.EventFilter) (*models.Cursor, error) {
	raw := c.Query("after")
	if raw == "" {
		return nil, nil
	}
	cur, err := models.ParseCursor(raw)
	if err != nil {
		return nil, err
	}
	if cur.Timestamp.After(f.To) || cur.Timestamp.Before(f.From.Add(-DefaultEventRange)) {
		return nil, models.Invalid("after", "is a page cursor outside the listed time range; start from the first page")
	}
	return &cur, nil
}
