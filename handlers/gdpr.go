package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/models/gdpr"
	"auditdb/models/reports"
	"auditdb/views/components"
	gdprviews "auditdb/views/pages/gdpr"
)

// GDPRStore reads and changes an organization's data-subject requests and opens their
// exports.
type GDPRStore interface {
	List(ctx context.Context, org string) ([]gdpr.Request, error)
	Get(ctx context.Context, org, id string) (*gdpr.Request, error)
	History(ctx context.Context, org, id string) ([]gdpr.Step, error)
	Exports(ctx context.Context, org, id string) ([]gdpr.ExportFile, error)
	OpenExport(ctx context.Context, org, id, format string) (*gdpr.ExportFile, io.ReadCloser, error)
	Restricted(ctx context.Context, org, id string) (bool, error)
	Create(ctx context.Context, org string, in gdpr.Input, by models.Actor) (*gdpr.Request, error)
	Start(ctx context.Context, org, id string, by models.Actor) (*gdpr.Request, error)
	Assign(ctx context.Context, org, id string, user *int64, name string, by models.Actor) (*gdpr.Request, error)
	SetNotes(ctx context.Context, org, id, notes string, by models.Actor) (*gdpr.Request, error)
	Extend(ctx context.Context, org, id string, days int, reason string, by models.Actor) (*gdpr.Request, error)
	Reject(ctx context.Context, org, id, reason string, by models.Actor) (*gdpr.Request, error)
	Complete(ctx context.Context, org, id, detail string, by models.Actor) (*gdpr.Request, error)
	Lift(ctx context.Context, org, id string, by models.Actor) (*gdpr.Request, error)
}

// GDPROperations run a request's operations in the background and ask the erasure engine.
type GDPROperations interface {
	StartExport(ctx context.Context, org, id, format string, by models.Actor) (*gdpr.Request, error)
	RequestErasure(ctx context.Context, org, id string, by models.Actor) (*gdpr.Request, error)
	Approve(ctx context.Context, org, id string, by models.Actor) (*gdpr.Request, error)
	StartPseudonymization(ctx context.Context, org, id string, st gdpr.Strategy, by models.Actor) (*gdpr.Request, error)
	Rectify(ctx context.Context, org, id string, eventID int64, correction string, by models.Actor) (*gdpr.Request, error)
	Lookup(ctx context.Context, org, pseudonym, reason string, by models.Actor) (string, error)
	Holds(ctx context.Context, r *gdpr.Request) ([]gdpr.Hold, error)
	Count(ctx context.Context, r *gdpr.Request) (int64, error)
}

// GDPRPeople lists the members of an organization who hold audit.gdpr (the assignees).
type GDPRPeople interface {
	GDPRHolders(ctx context.Context, org string) ([]models.Member, error)
}

// GDPRDeps is what the GDPR pages and API need.
type GDPRDeps struct {
	Store  GDPRStore
	Ops    GDPROperations
	People GDPRPeople
	Links  *reports.Links
	Audit  Auditor
	Now    func() time.Time
}

const (
	doneGDPRFiled = "gdpr-filed"
	doneGDPRStep  = "gdpr-step"
)

func init() {
	doneMessages[doneGDPRFiled] = "Request %s filed; it is due in 30 days and recorded in the audit log (gdpr.request.create)."
	doneMessages[doneGDPRStep] = "Done: %s. The step is in the request's history."
}

var statusWords = map[string]string{
	gdpr.StatusReceived: "received", gdpr.StatusInProgress: "in progress", gdpr.StatusAwaitingApproval: "awaiting approval",
	gdpr.StatusCompleted: "completed", gdpr.StatusRejected: "rejected",
}

func days(d time.Duration) int { return int(d.Hours() / 24) }

func gdprRow(r *gdpr.Request, now time.Time) gdprviews.Row {
	row := gdprviews.Row{ID: r.ID, Href: "/gdpr/requests/" + r.ID, Type: gdpr.TypeTitles[r.Type], Subject: r.Subject.Describe(),
		Status: statusWords[r.Status], StatusKey: r.Status, Received: r.ReceivedAt,
		Due: r.DueAt.UTC().Format("2006-01-02"), Overdue: r.Overdue(now), DueSoon: r.DueThisWeek(now), Assignee: "—",
		Running: r.Operation == gdpr.OpRunning, RequestedBy: r.RequestedBy, RejectReason: r.RejectionReason}
	switch {
	case row.Overdue:
		row.DueNote = "overdue by " + components.Plural(int64(max(days(now.Sub(r.DueAt)), 1)), "day")
	case row.DueSoon:
		row.DueNote = "due in " + components.Plural(int64(days(r.DueAt.Sub(now))), "day")
	}
	if r.AssigneeName != "" {
		row.Assignee = r.AssigneeName
	}
	return row
}

func typeOptions() []components.Option {
	var out []components.Option
	for _, t := range gdpr.Types {
		out = append(out, components.Option{Value: t, Label: gdpr.TypeTitles[t]})
	}
	return out
}

// GDPRPage shows /gdpr: the requests (overdue and due-this-week highlighted) and the form
// that files one.
func GDPRPage(d GDPRDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		return renderGDPR(c, d, fiber.StatusOK, nil, gdprviews.NewForm{Type: gdpr.TypeAccess})
	}
}

func renderGDPR(c *fiber.Ctx, d GDPRDeps, status int, refusal *components.FormError, form gdprviews.NewForm) error {
	v := render.ViewerOf(c)
	list, err := d.Store.List(c.UserContext(), v.OrgID)
	if err != nil {
		return err
	}
	now := d.Now()
	p := gdprviews.IndexProps{CSRF: v.Session.CSRFToken(), Flash: flash(c), Error: refusal, Form: form, Types: typeOptions(),
		CanCreate: v.Allowed("audit.gdpr", "create"), CanLookup: v.Allowed("audit.gdpr", "reidentify")}
	for i := range list {
		row := gdprRow(&list[i], now)
		if row.Overdue {
			p.Overdue++
		} else if row.DueSoon {
			p.DueSoon++
		}
		p.Rows = append(p.Rows, row)
	}
	return render.HTML(c, status, gdprviews.Index(v.Shell("GDPR", "gdpr"), p))
}

// CreateGDPRRequest files a request from the form and redirects to its page.
func CreateGDPRRequest(d GDPRDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		form := gdprviews.NewForm{Type: c.FormValue("type"), PrincipalID: strings.TrimSpace(c.FormValue("principal_id")),
			ResourceType: strings.TrimSpace(c.FormValue("resource_type")), ResourceID: strings.TrimSpace(c.FormValue("resource_id")),
			IdentityCheck: c.FormValue("identity_check"), RequestedBy: c.FormValue("requested_by"),
			ReceivedAt: c.FormValue("received_at"), Notes: c.FormValue("notes")}
		received, err := parseDay("received_at", form.ReceivedAt)
		if err == nil && strings.TrimSpace(form.ReceivedAt) != "" {
			received, err = checkReceivedAt(&received, d.Now())
		}
		if err == nil {
			_, err = d.Store.Create(c.UserContext(), v.OrgID, inputOf(form, received), ActorOf(c))
		}
		if err != nil {
			if r := refusalOf(err); r != nil {
				return renderGDPR(c, d, render.StatusOf(err), r, form)
			}
			return err
		}
		return redirectDone(c, "/gdpr", doneGDPRFiled, gdpr.TypeTitles[form.Type])
	}
}

// inputOf copies the form's values out of Fiber's buffers into a request.
func inputOf(f gdprviews.NewForm, received time.Time) gdpr.Input {
	return gdpr.Input{Type: strings.Clone(f.Type), Subject: gdpr.Subject{PrincipalID: strings.Clone(f.PrincipalID),
		ResourceType: strings.Clone(f.ResourceType), ResourceID: strings.Clone(f.ResourceID)},
		IdentityCheck: strings.Clone(f.IdentityCheck), RequestedBy: strings.Clone(f.RequestedBy), ReceivedAt: received,
		Notes: strings.Clone(f.Notes)}
}

// ShowGDPRRequest shows a request's page; its htmx poll gets the panel alone.
func ShowGDPRRequest(d GDPRDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		return renderGDPRRequest(c, d, strings.Clone(c.Params("id")), fiber.StatusOK, nil)
	}
}

func exportHref(d GDPRDeps, org, id, format string) string {
	return "/gdpr/requests/" + id + "/exports/" + format + "?" + d.Links.Query(org, id, format, gdpr.ExportLinkTTL)
}

func renderGDPRRequest(c *fiber.Ctx, d GDPRDeps, id string, status int, refusal *components.FormError) error {
	v := render.ViewerOf(c)
	ctx, org := c.UserContext(), v.OrgID
	r, err := d.Store.Get(ctx, org, id)
	if err != nil {
		return err
	}
	now := d.Now()
	p := gdprviews.DetailProps{CSRF: v.Session.CSRFToken(), Flash: flash(c), Error: refusal, R: gdprRow(r, now),
		PollURL: "/gdpr/requests/" + r.ID, Notes: r.Notes, Running: r.Operation == gdpr.OpRunning, Pseudonym: r.Pseudonym}
	p.Facts = []gdprviews.Pair{{Name: "Type", Value: gdpr.TypeTitles[r.Type]}, {Name: "Requested by", Value: r.RequestedBy},
		{Name: "Identity checked by", Value: r.IdentityCheck}, {Name: "Received", Value: components.DateTime(r.ReceivedAt)},
		{Name: "Filed by", Value: r.FiledBy}, {Name: "Assignee", Value: p.R.Assignee}}
	if r.ExtensionDays > 0 {
		p.Facts = append(p.Facts, gdprviews.Pair{Name: "Extended", Value: fmt.Sprintf("by %d days: %s", r.ExtensionDays, r.ExtensionReason)})
	}
	if r.Strategy != "" {
		p.Facts = append(p.Facts, gdprviews.Pair{Name: "Strategy", Value: string(r.Strategy)})
	}
	if r.SubmittedBy != "" {
		p.Facts = append(p.Facts, gdprviews.Pair{Name: "Erasure requested by", Value: r.SubmittedBy})
	}
	if r.ApprovedBy != "" {
		p.Facts = append(p.Facts, gdprviews.Pair{Name: "Approved by", Value: r.ApprovedBy + " at " + components.DateTime(*r.ApprovedAt)})
	}
	if r.RejectionReason != "" {
		p.Facts = append(p.Facts, gdprviews.Pair{Name: "Rejected because", Value: r.RejectionReason})
	}
	if r.Notes != "" {
		p.Facts = append(p.Facts, gdprviews.Pair{Name: "Notes", Value: r.Notes})
	}
	if p.Running {
		p.Progress = count(r.Progress.Done) + " events"
		if r.Progress.Total > 0 {
			p.Progress = fmt.Sprintf("%s of %s events", count(r.Progress.Done), count(r.Progress.Total))
		}
		if r.Progress.Phase != "" {
			p.Progress += " (" + r.Progress.Phase + ")"
		}
	}
	if r.Operation == gdpr.OpFailed {
		p.OpError = r.Error
	}
	if res := r.Result; res != nil {
		p.Result = []gdprviews.Pair{{Name: "Events found", Value: count(res.Matched)}, {Name: "Deleted", Value: count(res.Deleted)},
			{Name: "Kept pseudonymized", Value: count(res.Pseudonymized)}, {Name: "Archived deleted", Value: count(res.ArchivedDeleted)},
			{Name: "Archived pseudonymized", Value: count(res.ArchivedPseudonymized)}, {Name: "Archives rewritten", Value: count(res.ArchivesRewritten)},
			{Name: "Free text naming the subject pseudonymized", Value: count(res.MentionsRedacted)},
			{Name: "Events still naming the subject", Value: count(res.MentionsLeft)}}
		if left := gdpr.MentionsLeftText(*res); left != "" {
			p.Result = append(p.Result, gdprviews.Pair{Name: "Left naming the subject", Value: left})
		}
	}
	exports, err := d.Store.Exports(ctx, org, r.ID)
	if err != nil {
		return err
	}
	for _, f := range exports {
		if !f.Complete {
			continue
		}
		p.Exports = append(p.Exports, gdprviews.ExportRow{Format: f.Format, Name: f.Name, Size: byteSize(f.Size), SHA256: f.SHA256,
			Events: components.Plural(f.Events, "event"), Empty: f.Events == 0, Href: exportHref(d, org, r.ID, f.Format)})
		if f.Events == 0 {
			p.Notice = "The subject has no events in this organization: the export is empty, which answers the request."
		}
	}
	if render.IsHTMX(c) && c.Get("HX-Target") == "request-panel" {
		return render.HTML(c, fiber.StatusOK, gdprviews.Panel(p))
	}
	history, err := d.Store.History(ctx, org, r.ID)
	if err != nil {
		return err
	}
	for _, h := range history {
		p.History = append(p.History, gdprviews.StepRow{At: h.At, Actor: h.Actor, Step: h.Step, Detail: h.Detail})
	}
	if err := gdprSteps(c, d, r, &p); err != nil {
		return err
	}
	return render.HTML(c, status, gdprviews.Detail(v.Shell("GDPR request", "gdpr"), p))
}

// gdprSteps decides which steps the viewer may take now, and fills what they show (the
// dry-run count and the holds of an erasure, the assignees).
func gdprSteps(c *fiber.Ctx, d GDPRDeps, r *gdpr.Request, p *gdprviews.DetailProps) error {
	v := render.ViewerOf(c)
	ctx := c.UserContext()
	update, export := v.Allowed("audit.gdpr", "update"), v.Allowed("audit.gdpr", "export")
	erase, pseudo := v.Allowed("audit.gdpr", "delete"), v.Allowed("audit.gdpr", "pseudonymize")
	open, idle := r.Open(), r.Operation != gdpr.OpRunning
	working := (r.Status == gdpr.StatusReceived || r.Status == gdpr.StatusInProgress) && idle
	p.ShowStart = update && r.Status == gdpr.StatusReceived
	p.ShowExport = export && working && (r.Type == gdpr.TypeAccess || r.Type == gdpr.TypeRestriction || r.Type == gdpr.TypeRectification)
	p.ShowComplete = update && working && (r.Type == gdpr.TypeAccess || r.Type == gdpr.TypeRestriction)
	p.ShowRectify = update && working && r.Type == gdpr.TypeRectification
	p.ShowPseudonymize = pseudo && working && r.Type == gdpr.TypePseudonymization
	p.ShowAssign, p.ShowExtend = update && open, update && open && r.ExtensionDays == 0
	p.ShowReject, p.ShowNotes = update && open && idle, update
	for _, f := range gdpr.Formats {
		p.Formats = append(p.Formats, components.Option{Value: f, Label: strings.ToUpper(f)})
	}
	for _, s := range gdpr.Strategies {
		p.Strategies = append(p.Strategies, components.Option{Value: string(s), Label: string(s)})
	}
	if r.Type == gdpr.TypeRestriction && r.Status == gdpr.StatusCompleted {
		on, err := d.Store.Restricted(ctx, r.Org, r.ID)
		if err != nil {
			return err
		}
		p.ShowLift = update && on
		if on {
			p.Notice = "Restricted: exports and reports leave this subject's events out until the restriction is lifted."
		}
	}
	if r.Type == gdpr.TypeErasure && open {
		if n, err := d.Ops.Count(ctx, r); err == nil {
			p.Events = count(n)
		} else if !errors.Is(err, gdpr.ErrNoEngine) {
			return err
		}
		holds, err := d.Ops.Holds(ctx, r)
		if err != nil && !errors.Is(err, gdpr.ErrNoEngine) {
			return err
		}
		for _, h := range holds {
			p.Holds = append(p.Holds, fmt.Sprintf("%s (#%d)", h.Name, h.ID))
		}
		p.ShowRequestErasure = erase && r.Status == gdpr.StatusInProgress && idle && len(holds) == 0
		if r.Status == gdpr.StatusAwaitingApproval && erase {
			own := (r.SubmittedByUser != nil && *r.SubmittedByUser == v.User.ID) || r.FiledBy == v.User.Email
			p.ShowApprove = !own && len(holds) == 0
			if own {
				p.ApproveNote = "You requested this erasure: another holder of audit.gdpr must approve it."
			}
		}
	}
	if p.ShowAssign {
		people, err := d.People.GDPRHolders(ctx, r.Org)
		if err != nil {
			return err
		}
		for _, m := range people {
			label := m.Email
			if m.Name != "" {
				label = m.Name + " (" + m.Email + ")"
			}
			p.Assignees = append(p.Assignees, components.Option{Value: strconv.FormatInt(m.UserID, 10), Label: label})
		}
		if r.AssigneeID != nil {
			p.AssigneeID = strconv.FormatInt(*r.AssigneeID, 10)
		}
	}
	return nil
}

// gdprStep is a step's handler: it acts on the request and returns what the confirmation
// says, or an error (a refusal is shown on the request's page).
func gdprStep(d GDPRDeps, act func(c *fiber.Ctx, org, id string, by models.Actor) (string, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id := strings.Clone(c.Params("id"))
		done, err := act(c, v.OrgID, id, ActorOf(c))
		if err != nil {
			if models.KindOf(err) == models.KindNotFound {
				return err
			}
			if r := refusalOf(err); r != nil {
				return renderGDPRRequest(c, d, id, render.StatusOf(err), r)
			}
			return err
		}
		return redirectDone(c, "/gdpr/requests/"+id, doneGDPRStep, done)
	}
}

// StartGDPRRequest moves a received request into progress.
func StartGDPRRequest(d GDPRDeps) fiber.Handler {
	return gdprStep(d, func(c *fiber.Ctx, org, id string, by models.Actor) (string, error) {
		_, err := d.Store.Start(c.UserContext(), org, id, by)
		return "work started", err
	})
}

// AssignGDPRRequest sets the assignee: a member of the organization holding audit.gdpr.
func AssignGDPRRequest(d GDPRDeps) fiber.Handler {
	return gdprStep(d, func(c *fiber.Ctx, org, id string, by models.Actor) (string, error) {
		raw := strings.TrimSpace(c.FormValue("assignee"))
		if raw == "" {
			_, err := d.Store.Assign(c.UserContext(), org, id, nil, "", by)
			return "unassigned", err
		}
		uid, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return "", models.Invalid("assignee", "choose a member who holds audit.gdpr")
		}
		people, err := d.People.GDPRHolders(c.UserContext(), org)
		if err != nil {
			return "", err
		}
		for _, m := range people {
			if m.UserID == uid {
				_, err := d.Store.Assign(c.UserContext(), org, id, &uid, m.Email, by)
				return "assigned to " + m.Email, err
			}
		}
		return "", models.Invalid("assignee", "choose a member of this organization who holds audit.gdpr")
	})
}

// SetGDPRNotes saves a request's notes.
func SetGDPRNotes(d GDPRDeps) fiber.Handler {
	return gdprStep(d, func(c *fiber.Ctx, org, id string, by models.Actor) (string, error) {
		_, err := d.Store.SetNotes(c.UserContext(), org, id, strings.Clone(c.FormValue("notes")), by)
		return "notes saved", err
	})
}

// ExtendGDPRRequest extends the due date once, by at most 60 days, with a reason.
func ExtendGDPRRequest(d GDPRDeps) fiber.Handler {
	return gdprStep(d, func(c *fiber.Ctx, org, id string, by models.Actor) (string, error) {
		n, err := strconv.Atoi(strings.TrimSpace(c.FormValue("days")))
		if err != nil {
			return "", models.Invalid("days", "give the extension in whole days, 1 to 60")
		}
		_, err = d.Store.Extend(c.UserContext(), org, id, n, strings.Clone(c.FormValue("reason")), by)
		return "due date extended", err
	})
}

// RejectGDPRRequest closes a request with a reason.
func RejectGDPRRequest(d GDPRDeps) fiber.Handler {
	return gdprStep(d, func(c *fiber.Ctx, org, id string, by models.Actor) (string, error) {
		_, err := d.Store.Reject(c.UserContext(), org, id, strings.Clone(c.FormValue("reason")), by)
		return "request rejected", err
	})
}

// ExportGDPRRequest starts the export of the subject's events in the chosen format.
func ExportGDPRRequest(d GDPRDeps) fiber.Handler {
	return gdprStep(d, func(c *fiber.Ctx, org, id string, by models.Actor) (string, error) {
		_, err := d.Ops.StartExport(c.UserContext(), org, id, strings.Clone(c.FormValue("format")), by)
		return "export started", err
	})
}

// CompleteGDPRRequest completes an access request (its export made) or applies a
// restriction.
func CompleteGDPRRequest(d GDPRDeps) fiber.Handler {
	return gdprStep(d, func(c *fiber.Ctx, org, id string, by models.Actor) (string, error) {
		_, err := d.Store.Complete(c.UserContext(), org, id, "request answered", by)
		return "request completed", err
	})
}

// LiftGDPRRestriction lifts a restriction.
func LiftGDPRRestriction(d GDPRDeps) fiber.Handler {
	return gdprStep(d, func(c *fiber.Ctx, org, id string, by models.Actor) (string, error) {
		_, err := d.Store.Lift(c.UserContext(), org, id, by)
		return "restriction lifted", err
	})
}

// RectifyGDPRRequest records a rectification as not applicable to an immutable log,
// optionally appending a correcting event linked to the original.
func RectifyGDPRRequest(d GDPRDeps) fiber.Handler {
	return gdprStep(d, func(c *fiber.Ctx, org, id string, by models.Actor) (string, error) {
		var eventID int64
		if s := strings.TrimSpace(c.FormValue("event_id")); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return "", models.Invalid("event_id", "must be an event id (a positive number)")
			}
			eventID = n
		}
		_, err := d.Ops.Rectify(c.UserContext(), org, id, eventID, strings.Clone(c.FormValue("correction")), by)
		return "rectification recorded", err
	})
}

// RequestGDPRErasure asks for another holder's approval of an erasure.
func RequestGDPRErasure(d GDPRDeps) fiber.Handler {
	return gdprStep(d, func(c *fiber.Ctx, org, id string, by models.Actor) (string, error) {
		_, err := d.Ops.RequestErasure(c.UserContext(), org, id, by)
		return "erasure requested; waiting for approval", err
	})
}

// ApproveGDPRErasure approves an erasure (not one's own, not twice) and runs it.
func ApproveGDPRErasure(d GDPRDeps) fiber.Handler {
	return gdprStep(d, func(c *fiber.Ctx, org, id string, by models.Actor) (string, error) {
		_, err := d.Ops.Approve(c.UserContext(), org, id, by)
		return "erasure approved and running", err
	})
}

// PseudonymizeGDPRRequest starts a pseudonymization with the chosen strategy.
func PseudonymizeGDPRRequest(d GDPRDeps) fiber.Handler {
	return gdprStep(d, func(c *fiber.Ctx, org, id string, by models.Actor) (string, error) {
		_, err := d.Ops.StartPseudonymization(c.UserContext(), org, id, gdpr.Strategy(strings.Clone(c.FormValue("strategy"))), by)
		return "pseudonymization started", err
	})
}

// GDPRLookupPage shows the pseudonym lookup form.
func GDPRLookupPage() fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		return render.HTML(c, fiber.StatusOK, gdprviews.Lookup(v.Shell("Pseudonym lookup", "gdpr"), gdprviews.LookupProps{CSRF: v.Session.CSRFToken()}))
	}
}

// GDPRLookup looks a pseudonym up for a stated reason (400 without one); the engine
// records the lookup.
func GDPRLookup(d GDPRDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		p := gdprviews.LookupProps{CSRF: v.Session.CSRFToken(), Pseudonym: strings.Clone(c.FormValue("pseudonym")),
			Reason: strings.Clone(c.FormValue("reason"))}
		original, err := d.Ops.Lookup(c.UserContext(), v.OrgID, p.Pseudonym, p.Reason, ActorOf(c))
		status := fiber.StatusOK
		switch {
		case err == nil:
			p.Original, p.Found = original, true
		case models.KindOf(err) == models.KindNotFound:
			status, p.Error = fiber.StatusNotFound, &components.FormError{Field: "pseudonym", Message: "no such pseudonym in this organization"}
		case refusalOf(err) != nil:
			status, p.Error = render.StatusOf(err), refusalOf(err)
		default:
			return err
		}
		return render.HTML(c, status, gdprviews.Lookup(v.Shell("Pseudonym lookup", "gdpr"), p))
	}
}

// DownloadGDPRExport serves an export through its signed link, self-audited as
// gdpr.data.export: a changed link or another organization's is 404, an expired one 410.
func DownloadGDPRExport(d GDPRDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		org := v.OrgID
		id, format := strings.Clone(c.Params("id")), strings.Clone(c.Params("format"))
		exp, sig := linkQuery(c)
		if err := d.Links.Check(org, id, format, exp, sig); err != nil {
			if errors.Is(err, reports.ErrLinkExpired) {
				return fiber.NewError(fiber.StatusGone, "this download link has expired: open the request again for a fresh link")
			}
			return models.NotFound("GDPR export")
		}
		ctx := context.WithoutCancel(c.UserContext())
		f, rc, err := d.Store.OpenExport(ctx, org, id, format)
		if err != nil {
			return err
		}
		err = d.Audit.Record(ctx, models.AuditEntry{Org: org, Action: gdpr.ActionDataExport, Actor: ActorOf(c),
			TargetType: "gdpr_request", TargetID: id, Outcome: "GDPR export downloaded",
			Details: map[string]any{"request": id, "format": format, "events": f.Events, "size": f.Size, "sha256": f.SHA256}})
		if err != nil {
			rc.Close()
			return err
		}
		c.Set(fiber.HeaderContentType, f.ContentType)
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+url.PathEscape(f.Name)+`"`)
		c.Set("X-Content-SHA256", f.SHA256)
		c.Set(fiber.HeaderCacheControl, "no-store")
		c.Response().SetBodyStream(rc, int(f.Size))
		return nil
	}
}

// apiGDPRRequest is POST /api/v1/gdpr/requests's body.
type apiGDPRRequest struct {
	Type          string     `json:"type"`
	PrincipalID   string     `json:"principal_id"`
	ResourceType  string     `json:"resource_type"`
	ResourceID    string     `json:"resource_id"`
	IdentityCheck string     `json:"identity_check"`
	RequestedBy   string     `json:"requested_by"`
	ReceivedAt    *time.Time `json:"received_at"`
	Notes         string     `json:"notes"`
}

// checkReceivedAt refuses a given received_at before 2000 or in the future; a time the
// client set is never replaced (the zero time of year 1 included), only an absent one is now.
func checkReceivedAt(t *time.Time, now time.Time) (time.Time, error) {
	if t == nil {
		return time.Time{}, nil
	}
	if t.Before(time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)) {
		return time.Time{}, models.Invalid("received_at", "must be on or after 2000-01-01")
	}
	if t.After(now.Add(time.Minute)) {
		return time.Time{}, models.Invalid("received_at", "must not be in the future")
	}
	return *t, nil
}

// apiGDPRRequestState is a request in the API.
type apiGDPRRequestState struct {
	ID              string       `json:"id"`
	Type            string       `json:"type"`
	Status          string       `json:"status"`
	PrincipalID     string       `json:"principal_id,omitempty"`
	ResourceType    string       `json:"resource_type,omitempty"`
	ResourceID      string       `json:"resource_id,omitempty"`
	RequestedBy     string       `json:"requested_by"`
	ReceivedAt      time.Time    `json:"received_at"`
	DueAt           time.Time    `json:"due_at"`
	Overdue         bool         `json:"overdue"`
	RejectionReason string       `json:"rejection_reason,omitempty"`
	Operation       string       `json:"operation"`
	Progress        apiProgress  `json:"progress"`
	Result          *gdpr.Result `json:"result,omitempty"`
	Pseudonym       string       `json:"pseudonym,omitempty"`
	CreatedAt       time.Time    `json:"created_at"`
	UpdatedAt       time.Time    `json:"updated_at"`
}

type apiProgress struct {
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
	Phase string `json:"phase"`
}

func newAPIGDPRRequest(r *gdpr.Request, now time.Time) apiGDPRRequestState {
	return apiGDPRRequestState{ID: r.ID, Type: r.Type, Status: r.Status, PrincipalID: r.Subject.PrincipalID,
		ResourceType: r.Subject.ResourceType, ResourceID: r.Subject.ResourceID, RequestedBy: r.RequestedBy,
		ReceivedAt: r.ReceivedAt.UTC(), DueAt: r.DueAt.UTC(), Overdue: r.Overdue(now), RejectionReason: r.RejectionReason,
		Operation: r.Operation, Progress: apiProgress{Done: r.Progress.Done, Total: r.Progress.Total, Phase: r.Progress.Phase},
		Result: r.Result, Pseudonym: r.Pseudonym, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// decodeStrict reads body as exactly one JSON object into v: a member given twice, a
// string that is not valid text (see checkStrictJSON), an unknown field, a value of the
// wrong type or anything after the object is a KindInvalid error naming the field.
func decodeStrict(body []byte, v any) error {
	if err := checkStrictJSON(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return models.Invalid(strings.Trim(name, `"`), "is not a field of this request")
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return models.Invalid(te.Field, "must be a JSON "+te.Type.String())
		}
		var pe *time.ParseError
		if errors.As(err, &pe) {
			return models.Invalid("received_at", "must be an RFC 3339 time")
		}
		return models.Invalid("body", "must be one JSON object: "+err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return models.Invalid("body", "must hold one JSON object and nothing after it")
	}
	return nil
}

// APICreateGDPRRequest files a request (a privacy portal's key of scope gdpr) and answers
// 201 with it.
func APICreateGDPRRequest(d GDPRDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if mediaType(c) != fiber.MIMEApplicationJSON {
			return fiber.NewError(fiber.StatusUnsupportedMediaType, "Content-Type must be application/json")
		}
		org := render.APIKeyOf(c).OrganizationID
		var req apiGDPRRequest
		if err := decodeStrict(c.Body(), &req); err != nil {
			return err
		}
		received, err := checkReceivedAt(req.ReceivedAt, d.Now())
		if err != nil {
			return err
		}
		r, err := d.Store.Create(c.UserContext(), org, gdpr.Input{Type: req.Type, Subject: gdpr.Subject{PrincipalID: req.PrincipalID,
			ResourceType: req.ResourceType, ResourceID: req.ResourceID}, IdentityCheck: req.IdentityCheck, RequestedBy: req.RequestedBy,
			ReceivedAt: received, Notes: req.Notes}, apiActor(c))
		if err != nil {
			return err
		}
		c.Location("/api/v1/gdpr/requests/" + r.ID)
		return c.Status(fiber.StatusCreated).JSON(newAPIGDPRRequest(r, d.Now()))
	}
}

// APIGetGDPRRequest answers a request's status, due date and progress.
func APIGetGDPRRequest(d GDPRDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		org := render.APIKeyOf(c).OrganizationID
		r, err := d.Store.Get(c.UserContext(), org, c.Params("id"))
		if err != nil {
			return err
		}
		return c.JSON(newAPIGDPRRequest(r, d.Now()))
	}
}
