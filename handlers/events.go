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
	ListBefore(ctx context.Context, org string, f models.EventFilter, before models.Cursor, limit int) (models.EventPage, error)
	Get(ctx context.Context, org string, id int64) (*models.Event, error)
}

// EventSummarizer counts, buckets and facets the matches of an events query.
type EventSummarizer interface {
	ResolveFilter(ctx context.Context, org string, f models.EventFilter) (models.EventFilter, error)
	Count(ctx context.Context, org string, f models.EventFilter) (models.EventCount, error)
	Facets(ctx context.Context, org string, f models.EventFilter) (models.EventFacets, error)
	Histogram(ctx context.Context, org string, f models.EventFilter, width time.Duration) ([]models.HistogramBucket, error)
}

// Events list defaults.
const (
	EventsPageSize    = 50
	DefaultEventRange = 30 * 24 * time.Hour
	// futureSlack lets the default range include events stamped slightly ahead of our clock.
	futureSlack    = 5 * time.Minute
	formTimeLayout = "2006-01-02T15:04"
	// defaultRangeKey is the quick range of a list with no range given.
	defaultRangeKey = "30d"
	customRangeKey  = "custom"
)

// quickRanges are the ranges one click away, newest events first.
var quickRanges = []struct {
	Key, Label string
	D          time.Duration
}{
	{"15m", "15 min", 15 * time.Minute}, {"1h", "1 hour", time.Hour}, {"24h", "24 hours", 24 * time.Hour},
	{"7d", "7 days", 7 * 24 * time.Hour}, {"30d", "30 days", DefaultEventRange}, {"1y", "1 year", 365 * 24 * time.Hour},
}

// filterParams are the query parameters of the events list, in form order. The ones after
// "to" are the exact filters of the API (and of old console links); the console's form
// folds them into q.
var filterParams = []string{"q", "range", "from", "to", "action", "status", "principal", "resource_type", "resource_id",
	"classification", "correlation_id"}

// legacyQualifier maps an exact-filter parameter to the search qualifier the form shows it as.
var legacyQualifier = []struct{ param, qualifier string }{
	{"action", models.QualAction}, {"principal", models.QualActor}, {"resource_type", models.QualResource},
	{"status", models.QualStatus}, {"classification", models.QualClass}, {"correlation_id", models.QualCorrelation},
}

// ParseEventFilter reads the events list filter from query values: the search query q,
// the range (a quick range such as 24h, or custom with from and to) and the exact filters
// of the API. An absent range means the last 30 days; created: terms in q set it instead.
// It returns the filter, the values to show in the form (also on error) and a KindInvalid
// error naming the bad parameter.
func ParseEventFilter(q func(string) string, now time.Time) (models.EventFilter, eventviews.FilterValues, error) {
	fv := eventviews.FilterValues{Q: strings.TrimSpace(q("q")), Range: q("range"), From: q("from"), To: q("to")}
	f := models.EventFilter{
		Action: strings.TrimSpace(q("action")), Status: q("status"), PrincipalID: strings.TrimSpace(q("principal")),
		ResourceType: strings.TrimSpace(q("resource_type")), ResourceID: strings.TrimSpace(q("resource_id")),
		Classification: q("classification"), CorrelationID: strings.TrimSpace(q("correlation_id")),
	}
	// The form has one search box: exact filters of an old link show in it as qualifiers.
	for _, l := range legacyQualifier {
		if v := strings.TrimSpace(q(l.param)); v != "" {
			term := l.qualifier + ":" + models.QuoteQueryValue(v)
			if l.param == "resource_type" && f.ResourceID != "" {
				term = l.qualifier + ":" + models.QuoteQueryValue(v+"/"+f.ResourceID)
			}
			fv.Q = strings.TrimSpace(fv.Q + " " + term)
		}
	}
	if f.ResourceID != "" && f.ResourceType == "" {
		fv.Q = strings.TrimSpace(fv.Q + " " + models.QuoteQueryValue(f.ResourceID))
	}
	var err error
	if f.Query, err = models.ParseEventQuery(strings.TrimSpace(q("q"))); err != nil {
		return f, fv, err
	}
	if fv.Range == "" {
		fv.Range = defaultRangeKey
		if fv.From != "" || fv.To != "" {
			fv.Range = customRangeKey
		}
	}
	f.To = now.Add(futureSlack)
	switch fv.Range {
	case customRangeKey:
		f.From = now.Add(-DefaultEventRange)
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
		if !f.From.Before(f.To) {
			return f, fv, models.Invalid("to", "must be after from")
		}
	default:
		d, ok := quickRange(fv.Range)
		if !ok {
			return f, fv, models.Invalid("range", "must be one of 15m, 1h, 24h, 7d, 30d, 1y or custom")
		}
		f.From = now.Add(-d)
		fv.From, fv.To = "", ""
	}
	// created: in the query sets the range on the sides it names.
	if from, to := f.Query.Range(); !from.IsZero() || !to.IsZero() {
		fv.Range = "query"
		if !from.IsZero() {
			f.From = from
			if to.IsZero() {
				f.To = now.Add(futureSlack)
			}
		}
		if !to.IsZero() {
			f.To = to
			if from.IsZero() {
				f.From = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
			}
		}
		if !f.From.Before(f.To) {
			return f, fv, models.Invalid("q", "created: leaves an empty range")
		}
	}
	fv.RangeText = components.DateTime(f.From) + " – " + components.DateTime(f.To)
	return f, fv, f.Validate()
}

func quickRange(key string) (time.Duration, bool) {
	for _, r := range quickRanges {
		if r.Key == key {
			return r.D, true
		}
	}
	return 0, false
}

// parseFormTime accepts the datetime-local form (taken as UTC), a bare date, or RFC 3339.
func parseFormTime(s string) (time.Time, error) {
	return models.ParseQueryTime(s)
}

// ListEvents shows the current organization's events, newest first, for the search query
// and range, with keyset pages, a count, a histogram and facets; htmx requests get the
// results fragment alone. A bad query or range is shown next to its field, with no rows
// and (for htmx) without pushing the URL.
func ListEvents(events EventReader, summary EventSummarizer, now func() time.Time) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		if v.OrgID == "" {
			return models.Forbidden("you are not a member of any organization")
		}
		props := eventviews.ListProps{Statuses: models.EventStatuses, Classifications: models.DataClassifications,
			Ranges: rangeOptions(c)}
		filter, values, err := ParseEventFilter(func(k string) string { return c.Query(k) }, now())
		props.Filter = values
		var cur pageCursor
		if err == nil {
			cur, err = queryCursors(c, filter)
		}
		if err == nil {
			err = fillResults(c, v, events, summary, filter, cur, &props)
		}
		if err != nil {
			refusal := refusalOf(err)
			if refusal == nil {
				return err
			}
			props.Error = &eventviews.FieldError{Field: refusal.Field, Message: refusal.Message}
			props.Rows = nil
			c.Set("HX-Push-Url", "false")
			if render.IsHTMX(c) {
				return render.HTML(c, render.StatusOf(err), eventviews.ResultsFragment(props))
			}
			return render.HTML(c, render.StatusOf(err), eventviews.List(v.Shell("Events", "events"), props))
		}
		props.CSRF, props.SaveQuery = v.Session.CSRFToken(), filterQuery(c).Encode()
		if render.IsHTMX(c) {
			return render.HTML(c, fiber.StatusOK, eventviews.ResultsFragment(props))
		}
		return render.HTML(c, fiber.StatusOK, eventviews.List(v.Shell("Events", "events"), props))
	}
}

// fillResults reads the page, count, histogram and facets of filter into props.
func fillResults(c *fiber.Ctx, v *render.Viewer, events EventReader, summary EventSummarizer, filter models.EventFilter,
	cur pageCursor, props *eventviews.ListProps) error {
	ctx := c.UserContext()
	pos := listPos(c)
	// Resolved once (action: terms, free text against the search sketches): a page read
	// backwards that falls back to the first page reads twice.
	filter, err := summary.ResolveFilter(ctx, v.OrgID, filter)
	if err != nil {
		return err
	}
	var page models.EventPage
	newer := cur.after != nil // whether newer rows exist above this page
	if cur.before != nil {
		page, err = events.ListBefore(ctx, v.OrgID, filter, *cur.before, EventsPageSize)
		newer = page.Prev != nil
		if err == nil && len(page.Events) == 0 {
			// Nothing newer than the cursor (the rows it followed are gone): the first page.
			cur.before = nil
			page, err = events.List(ctx, v.OrgID, filter, nil, EventsPageSize)
		}
		if !newer {
			pos = 0 // the top of the list, whatever the link said
		}
	} else {
		page, err = events.List(ctx, v.OrgID, filter, cur.after, EventsPageSize)
	}
	if err != nil {
		return err
	}
	base := filterQuery(c)
	here := listPlace(c, base, pos)
	if cur.before != nil && !newer {
		here = base // the page shown is the first page
	}
	props.Rows = make([]eventviews.Row, 0, len(page.Events))
	for i := range page.Events {
		row := EventRow(&page.Events[i])
		row.Href, row.InPanel = withParam(row.Href, here, "", ""), true
		row.PrincipalHref = refineHref(base, props.Filter.Q, models.QualActor, row.Principal)
		if row.Resource != "" && strings.Contains(row.Resource, "/") {
			row.ResourceHref = refineHref(base, props.Filter.Q, models.QualResource, row.Resource)
		}
		props.Rows = append(props.Rows, row)
	}
	if page.Next != nil {
		props.NextHref = withParam("/events", withPos(base, pos+len(page.Events)), "after", page.Next.String())
	}
	if newer && len(page.Events) > 0 {
		props.FirstHref = withParam("/events", base, "", "")
		first := page.Events[0]
		prev := models.Cursor{Timestamp: first.Timestamp, ID: first.ID}
		props.PrevHref = withParam("/events", withPos(base, max(pos-EventsPageSize, 0)), "before", prev.String())
	}
	props.Start = pos + 1
	if len(page.Events) == 0 {
		wider := url.Values{}
		for k, vs := range base {
			wider[k] = vs
		}
		wider.Del("from")
		wider.Del("to")
		wider.Set("range", "1y")
		if props.Filter.Range != "1y" {
			props.WidenHref = withParam("/events", wider, "", "")
		}
		return nil
	}
	// The count, histogram and facets come in a second request, so the rows never wait.
	sum := withPos(base, pos)
	sum.Set("shown", strconv.Itoa(len(page.Events)))
	props.SummaryHref = withParam("/events/summary", sum, "", "")
	if v.Allowed("audit.events", "export") {
		props.ExportCSV = withParam("/events/export.csv", base, "", "")
		props.ExportJSONL = withParam("/events/export.jsonl", base, "", "")
		props.BundleHref = withParam("/events/bundle", base, "", "")
	}
	return nil
}

// EventsSummary answers the list's second request (GET /events/summary?…&pos=&shown=):
// the count of the matches ("1–50 of about 12,400"), their histogram over the range and
// their facets. It is the Summary component the list page loads into its results.
func EventsSummary(summary EventSummarizer, now func() time.Time) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		if v.OrgID == "" {
			return models.Forbidden("you are not a member of any organization")
		}
		filter, values, err := ParseEventFilter(func(k string) string { return c.Query(k) }, now())
		if err != nil {
			return err
		}
		ctx := c.UserContext()
		base := filterQuery(c)
		props := eventviews.SummaryProps{Start: listPos(c) + 1}
		if props.Start < 1 {
			props.Start = 1
		}
		if n, err := strconv.Atoi(c.Query("shown")); err == nil && n >= 0 && n <= EventsPageSize {
			props.Shown = n
		}
		if c.Query("pos") != "" {
			if n, err := strconv.Atoi(c.Query("pos")); err == nil && n >= 0 && n <= 1_000_000_000 {
				props.Start = n + 1
			}
		}
		// Resolved once here (its action: terms into exact actions, its free text against the
		// search sketches); the three reads below then skip their own resolution.
		filter, err = summary.ResolveFilter(ctx, v.OrgID, filter)
		if err != nil {
			return err
		}
		count, err := summary.Count(ctx, v.OrgID, filter)
		if err != nil {
			return err
		}
		props.Total, props.TotalExact = count.N, count.Exact
		width := models.HistogramWidth(filter.To.Sub(filter.From))
		buckets, err := summary.Histogram(ctx, v.OrgID, filter, width)
		if err != nil {
			return err
		}
		props.Histogram = histogramView(base, buckets, width, filter.To)
		facets, err := summary.Facets(ctx, v.OrgID, filter)
		if err != nil {
			return err
		}
		props.Facets = facetViews(base, values.Q, facets)
		props.FacetsSampled = facets.Sampled
		return render.HTML(c, fiber.StatusOK, eventviews.Summary(props))
	}
}

// listPos reads ?pos=, the index of the page's first row (for "51–100 of …"); anything
// unreadable is 0, as it only labels the page.
func listPos(c *fiber.Ctx) int {
	n, err := strconv.Atoi(c.Query("pos"))
	if err != nil || n < 0 || n > 1_000_000_000 || (c.Query("after") == "" && c.Query("before") == "") {
		return 0
	}
	return n
}

// listPlace is the query of the list page being shown: filters, cursor and position, for
// links that come back to it (the event page's back link).
func listPlace(c *fiber.Ctx, base url.Values, pos int) url.Values {
	vals := url.Values{}
	for k, v := range base {
		vals[k] = v
	}
	for _, k := range []string{"after", "before"} {
		if a := c.Query(k); a != "" {
			vals.Set(k, a)
			vals.Set("pos", strconv.Itoa(pos))
		}
	}
	return vals
}

// rangeOptions are the quick-range links, each keeping the rest of the query.
func rangeOptions(c *fiber.Ctx) []eventviews.RangeOption {
	base := filterQuery(c)
	base.Del("from")
	base.Del("to")
	out := make([]eventviews.RangeOption, 0, len(quickRanges))
	for _, r := range quickRanges {
		vals := url.Values{}
		for k, v := range base {
			vals[k] = v
		}
		if r.Key == defaultRangeKey {
			vals.Del("range")
		} else {
			vals.Set("range", r.Key)
		}
		out = append(out, eventviews.RangeOption{Key: r.Key, Label: r.Label, Href: withParam("/events", vals, "", "")})
	}
	return out
}

// refineHref is the list with term field:value added to the query q.
func refineHref(base url.Values, q, field, value string) string {
	if value == "" {
		return ""
	}
	term := field + ":" + models.QuoteQueryValue(value)
	if strings.Contains(" "+q+" ", " "+term+" ") {
		return ""
	}
	vals := url.Values{}
	for k, v := range base {
		vals[k] = v
	}
	vals.Set("q", strings.TrimSpace(q+" "+term))
	vals.Del("pos")
	return withParam("/events", vals, "", "")
}

// withPos returns base with the list position (the index of a page's first row) set.
func withPos(base url.Values, pos int) url.Values {
	vals := url.Values{}
	for k, v := range base {
		vals[k] = v
	}
	vals.Set("pos", strconv.Itoa(pos))
	return vals
}

// histogramView shapes buckets as bars whose links narrow the range to the bucket.
func histogramView(base url.Values, buckets []models.HistogramBucket, width time.Duration, end time.Time) eventviews.Histogram {
	h := eventviews.Histogram{}
	for _, b := range buckets {
		if b.Count > h.Max {
			h.Max = b.Count
		}
	}
	for _, b := range buckets {
		to := b.Start.Add(width)
		if to.After(end) {
			to = end
		}
		vals := url.Values{}
		for k, v := range base {
			vals[k] = v
		}
		vals.Set("range", customRangeKey)
		vals.Set("from", b.Start.UTC().Format(formTimeLayout))
		vals.Set("to", to.UTC().Add(time.Minute-time.Nanosecond).Truncate(time.Minute).Format(formTimeLayout))
		vals.Del("pos")
		h.Bars = append(h.Bars, eventviews.Bar{Count: b.Count, Href: withParam("/events", vals, "", ""),
			Label: fmt.Sprintf("%s: %d events", components.DateTime(b.Start), b.Count)})
	}
	if len(buckets) > 0 {
		h.FromText, h.ToText = components.DateTime(buckets[0].Start), components.DateTime(end)
	}
	return h
}

// facetViews shapes the facets, each value a link that adds it to the query.
func facetViews(base url.Values, q string, f models.EventFacets) []eventviews.Facet {
	mk := func(title, field string, values []models.FacetValue) eventviews.Facet {
		out := eventviews.Facet{Title: title, TestID: "facet-" + field}
		for _, v := range values {
			out.Values = append(out.Values, eventviews.FacetValue{Value: v.Value, Count: v.Count,
				Href: refineHref(base, q, field, v.Value)})
		}
		return out
	}
	return []eventviews.Facet{
		mk("Status", models.QualStatus, f.Status),
		mk("Action", models.QualAction, f.Action),
		mk("Classification", models.QualClass, f.Classification),
		mk("Principal", models.QualActor, f.Principal),
	}
}

// filterQuery returns the request's non-empty filter parameters (not the cursor), the exact
// filters folded into q as the form shows them.
func filterQuery(c *fiber.Ctx) url.Values {
	return filterValues(func(k string) string { return c.Query(k) })
}

// filterValues is filterQuery over any source of parameters.
func filterValues(get func(string) string) url.Values {
	vals := url.Values{}
	for _, k := range filterParams {
		if s := strings.TrimSpace(get(k)); s != "" {
			vals.Set(k, s)
		}
	}
	_, fv, _ := ParseEventFilter(get, time.Now())
	for _, l := range legacyQualifier {
		vals.Del(l.param)
	}
	vals.Del("resource_id")
	if fv.Q != "" {
		vals.Set("q", fv.Q)
	}
	if vals.Get("range") == defaultRangeKey {
		vals.Del("range")
	}
	if r := vals.Get("range"); r != "" && r != customRangeKey {
		vals.Del("from")
		vals.Del("to")
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
		Time:   ev.Timestamp,
		Action: ev.Action, Status: ev.Status, Principal: deref(ev.PrincipalID), Resource: resource,
		Classification: ev.DataClassification, Outcome: deref(ev.OutcomeDescription),
	}
}

// IntegrityReader tells where an event stands in the Merkle log and how it was last
// verified.
type IntegrityReader interface {
	Position(ctx context.Context, org string, id int64) (merkle.LogPosition, error)
	LastCheck(ctx context.Context, org string, id int64) (*merkle.CheckRecord, error)
	// CheckFields checks a per-field (sha256-jcs-v2/-v3) event's committed fields with the server key
	// (redaction MACs included); no query.
	CheckFields(ev *models.Event) ([]models.FieldCheck, error)
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
		props.BackHref = backToList(c, id)
		props.FullHref = "/events/" + strconv.FormatInt(id, 10)
		if q := string(c.Request().URI().QueryString()); q != "" {
			props.FullHref += "?" + q
		}
		if render.IsHTMX(c) && c.Get("HX-Target") == "event-panel" {
			return render.HTML(c, fiber.StatusOK, eventviews.Panel(props))
		}
		// Checking the commitments needs no query: do it for every view of the page, with the
		// server key, so that a forged redaction shows as a mismatch here too.
		fields, _ := integrity.CheckFields(ev) // unreadable commitments: Verify says so
		if props.Integrity, err = integrityCard(c, v, integrity, id, fields); err != nil {
			return err
		}
		return render.HTML(c, fiber.StatusOK, eventviews.Detail(v.Shell("Event "+strconv.FormatInt(id, 10), "events"), props))
	}
}

// backToList is the list the event page was opened from: its search, range and page, as
// the link's query carries them, scrolled to the event's row.
func backToList(c *fiber.Ctx, id int64) string {
	vals := url.Values{}
	for _, k := range append(filterParams, "after", "before", "pos") {
		if s := strings.TrimSpace(c.Query(k)); s != "" {
			vals.Set(k, s)
		}
	}
	return withParam("/events", vals, "", "") + "#event-" + strconv.FormatInt(id, 10)
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
		check, err := verifier.VerifyEvent(c.UserContext(), v.OrgID, id, v.User.Email)
		if err != nil {
			return err
		}
		if !render.IsHTMX(c) {
			return render.Redirect(c, "/events/"+strconv.FormatInt(id, 10))
		}
		card, err := integrityCard(c, v, integrity, id, check.Fields)
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

// integrityCard shapes the integrity card of event id, with the commitment state of its
// personal fields (nil for a sha256-jcs-v1 event).
func integrityCard(c *fiber.Ctx, v *render.Viewer, integrity IntegrityReader, id int64, fields []models.FieldCheck) (eventviews.IntegrityProps, error) {
	ctx := c.UserContext()
	p := eventviews.IntegrityProps{EventID: id, CSRF: v.Session.CSRFToken(), Fields: fieldStates(fields)}
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
		Computed: deref(last.Computed), When: last.VerifiedAt, Who: deref(last.VerifiedBy)}
	if p.Last.Computed == "" {
		p.Last.Computed = "—"
	}
	return p, nil
}

// fieldStateLabels say each commitment state in words.
var fieldStateLabels = map[string]string{
	models.FieldDisclosedOK:   "matches its digest",
	models.FieldMismatch:      "does not match its commitment",
	models.FieldErased:        "erased (digest kept)",
	models.FieldPseudonymized: "pseudonymized (digest kept)",
}

func fieldStates(fields []models.FieldCheck) []eventviews.FieldStateView {
	out := make([]eventviews.FieldStateView, 0, len(fields))
	for _, f := range fields {
		out = append(out, eventviews.FieldStateView{Name: f.Name, State: f.State, Label: fieldStateLabels[f.State], Reason: f.Reason + f.Note})
	}
	return out
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
	ts := ev.Timestamp
	fields := []eventviews.DetailField{
		{Label: "ID", Value: strconv.FormatInt(ev.ID, 10), TestID: "field-id", Mono: true},
		{Label: "Timestamp", At: &ts, TestID: "field-timestamp", Mono: true},
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
		{Label: "Archived at", At: ev.ArchivedAt, TestID: "field-archived-at"},
		{Label: "Hash algorithm", Value: ev.HashAlgorithm, TestID: "field-hash-algorithm", Mono: true},
		{Label: "Hash", Value: ev.Hash, TestID: "field-hash", Mono: true},
		{Label: "Subject digest", Value: orDash(ev.SubjectDigest), TestID: "field-subject-digest", Mono: true},
		{Label: "Signature", Value: ev.Signature, TestID: "field-signature", Mono: true},
	}
	return eventviews.DetailProps{ID: ev.ID, Title: ev.Action, Fields: fields, DetailsJSON: prettyJSON(ev.Details),
		BackHref: "/events"}
}

// orDash is s, or "—" when empty (a sha256-jcs-v2/-v3 event has no subject digest).
func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
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

// queryCursor reads the API's optional cursor ?after= of a list filtered by f (see
// queryCursors); it returns nil for the first page.
func queryCursor(c *fiber.Ctx, f models.EventFilter) (*models.Cursor, error) {
	raw := c.Query("after")
	if raw == "" {
		return nil, nil
	}
	return cursorIn(raw, "after", f)
}

// cursorIn parses the cursor raw of parameter name and checks it against f's range.
func cursorIn(raw, name string, f models.EventFilter) (*models.Cursor, error) {
	cur, err := models.ParseCursor(raw)
	if err != nil {
		return nil, models.Invalid(name, "is not a valid page cursor")
	}
	if cur.Timestamp.After(f.To) || cur.Timestamp.Before(f.From.Add(-DefaultEventRange)) {
		return nil, models.Invalid(name, "is a page cursor outside the listed time range; start from the first page")
	}
	return &cur, nil
}

// pageCursor is where a list page starts: after a row (the older page, ?after=), before
// one (the newer page, ?before=), or neither (the first page).
type pageCursor struct {
	after, before *models.Cursor
}

// queryCursors reads the optional keyset cursors ?after= and ?before= of a list filtered
// by f (at most one of them). It returns a KindInvalid error naming the parameter for
// anything unreadable or outside f's range: a cursor is a row of a page, so it is never
// after the range's end, and never long before its start (the default range moves with the
// clock, so a cursor of a page shown some time ago may fall a little before it).
func queryCursors(c *fiber.Ctx, f models.EventFilter) (pageCursor, error) {
	var pc pageCursor
	if c.Query("after") != "" && c.Query("before") != "" {
		return pc, models.Invalid("before", "cannot be given with after; follow one page link at a time")
	}
	for _, k := range []string{"after", "before"} {
		raw := c.Query(k)
		if raw == "" {
			continue
		}
		cur, err := cursorIn(raw, k, f)
		if err != nil {
			return pc, err
		}
		if k == "after" {
			pc.after = cur
		} else {
			pc.before = cur
		}
	}
	return pc, nil
}

// EventSuggester finds values of a search qualifier among an organization's events.
type EventSuggester interface {
	Suggest(ctx context.Context, org, qualifier, prefix string, now time.Time, limit int) ([]string, error)
}

// suggestLimit is how many suggestions the search box offers.
const suggestLimit = 8

// SuggestEvents answers the search box's suggestions as the user types (GET
// /events/suggest?q=…): the query with its last term completed from the organization's
// real actions, principals and resource types (any case), statuses and classifications,
// or the qualifiers whose names start with it.
func SuggestEvents(events EventSuggester, now func() time.Time) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		if v.OrgID == "" {
			return models.Forbidden("you are not a member of any organization")
		}
		q := c.Query("q")
		if len(q) > models.MaxTextFilter*4 {
			q = ""
		}
		head, last := q, ""
		if i := strings.LastIndexAny(q, " \t"); i >= 0 {
			head, last = q[:i+1], q[i+1:]
		} else {
			head, last = "", q
		}
		neg := ""
		if strings.HasPrefix(last, "-") {
			neg, last = "-", last[1:]
		}
		var out []string
		field, value, hasQual := strings.Cut(last, ":")
		field = strings.ToLower(field)
		value = strings.Trim(value, `"`)
		switch {
		case !hasQual:
			for _, name := range models.QueryQualifiers {
				if last != "" && strings.HasPrefix(name, strings.ToLower(last)) {
					out = append(out, head+neg+name+":")
				}
			}
		case field == models.QualStatus || field == models.QualClass:
			list := models.EventStatuses
			if field == models.QualClass {
				list = models.DataClassifications
			}
			for _, s := range list {
				if strings.HasPrefix(strings.ToLower(s), strings.ToLower(value)) {
					out = append(out, head+neg+field+":"+s)
				}
			}
		case field == models.QualAction || field == models.QualActor || field == models.QualResource:
			values, err := events.Suggest(c.UserContext(), v.OrgID, field, strings.TrimSuffix(value, "*"), now(), suggestLimit)
			if err != nil {
				return err
			}
			for _, s := range values {
				out = append(out, head+neg+field+":"+models.QuoteQueryValue(s))
			}
		}
		return render.HTML(c, fiber.StatusOK, eventviews.Suggestions(out))
	}
}
