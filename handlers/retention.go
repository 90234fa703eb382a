package handlers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/views/components"
	"auditdb/views/pages/retention"
)

// RetentionManager reads and changes retention policies, statutory floors and legal holds,
// and previews the next retention run.
type RetentionManager interface {
	Policies(ctx context.Context, org string) ([]models.PolicyWithCounts, error)
	Policy(ctx context.Context, org string, id int64) (*models.RetentionPolicyRecord, error)
	CreatePolicy(ctx context.Context, org string, in models.RetentionPolicyInput, by models.Actor) (*models.RetentionPolicyRecord, error)
	UpdatePolicy(ctx context.Context, org string, id int64, in models.RetentionPolicyInput, by models.Actor) (*models.RetentionPolicyRecord, error)
	DeletePolicy(ctx context.Context, org string, id int64, by models.Actor) (*models.RetentionPolicyRecord, error)
	Floors(ctx context.Context) ([]models.RetentionFloor, error)
	SetFloor(ctx context.Context, org, classification string, days int, reason string, by models.Actor) error
	RetentionPreview(ctx context.Context, org string, now time.Time) (*models.RetentionPreview, error)
	Holds(ctx context.Context, org string) ([]models.LegalHold, error)
	PlaceHold(ctx context.Context, org string, in models.LegalHoldInput, by models.Actor) (*models.LegalHold, error)
	ReleaseHold(ctx context.Context, org string, id int64, by models.Actor) (*models.LegalHold, error)
}

// RetentionDeps is what the retention pages need.
type RetentionDeps struct {
	Store RetentionManager
	Now   func() time.Time
}

// RetentionPage shows the policies, their meaning and counts, the statutory floors and the
// next run's preview.
func RetentionPage(d RetentionDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		return renderRetention(c, d, fiber.StatusOK, nil)
	}
}

func renderRetention(c *fiber.Ctx, d RetentionDeps, status int, floorErr *components.FormError) error {
	v := render.ViewerOf(c)
	ctx := c.UserContext()
	policies, err := d.Store.Policies(ctx, v.OrgID)
	if err != nil {
		return err
	}
	floors, err := d.Store.Floors(ctx)
	if err != nil {
		return err
	}
	preview, err := d.Store.RetentionPreview(ctx, v.OrgID, d.Now())
	if err != nil {
		return err
	}
	holds, err := d.Store.Holds(ctx, v.OrgID)
	if err != nil {
		return err
	}
	p := retention.IndexProps{CSRF: v.Session.CSRFToken(), Flash: flash(c), CanCreate: v.Allowed("audit.retention", "create"),
		CanSetFloor: v.User.Superadmin, FloorError: floorErr, Preview: previewView(preview)}
	for _, h := range holds {
		if h.Active() {
			p.ActiveHolds++
		}
	}
	mayEdit := v.Allowed("audit.retention", "update")
	for _, pol := range policies {
		row := retention.PolicyRow{ID: pol.ID, Name: pol.Name, Classification: pol.Classification, Description: pol.Description,
			RetentionDays: strconv.Itoa(pol.RetentionDays), ArchiveAfter: "—", Active: pol.Active, Global: pol.Global(),
			Overridden: pol.Overridden, ActiveEvents: count(pol.ActiveEvents), ArchivedEvents: count(pol.ArchivedEvents)}
		if pol.ArchiveAfterDays != nil {
			row.ArchiveAfter = strconv.Itoa(*pol.ArchiveAfterDays) + " days"
		}
		if pol.DeleteAfterDays != nil {
			row.DeleteAt = strconv.Itoa(*pol.DeleteAfterDays) + " days"
		} else {
			row.DeleteAt = strconv.Itoa(pol.RetentionDays) + " days (retention)"
		}
		if pol.FloorOverrideReason != nil {
			row.FloorOverride = *pol.FloorOverrideReason
		}
		if mayEdit && (!pol.Global() || v.User.Superadmin) {
			row.EditHref = "/retention/policies/" + strconv.FormatInt(pol.ID, 10)
		}
		p.Policies = append(p.Policies, row)
	}
	for _, f := range floors {
		row := retention.FloorRow{Classification: f.Classification, MinDays: "none"}
		if f.MinDays > 0 {
			row.MinDays = strconv.Itoa(f.MinDays) + " days"
		}
		if f.UpdatedBy != "" {
			at := f.UpdatedAt
			row.Updated, row.UpdatedBy = &at, f.UpdatedBy
		}
		p.Floors = append(p.Floors, row)
	}
	return render.HTML(c, status, retention.Index(v.Shell("Retention", "retention"), p))
}

// count formats a number of events with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func previewView(p *models.RetentionPreview) retention.Preview {
	months := func(ms []string) string {
		if len(ms) == 0 {
			return ""
		}
		return " of " + strings.Join(ms, ", ")
	}
	out := retention.Preview{At: p.At, Archive: count(p.Archive), ArchiveMonths: months(p.ArchiveMonths),
		Delete: count(p.Delete), DeleteMonths: months(p.DeleteMonths), Kept: count(p.KeptByHolds),
		Nothing: p.Archive == 0 && p.Delete == 0 && p.KeptByHolds == 0}
	for _, h := range p.ByHold {
		out.ByHold = append(out.ByHold, retention.HoldKeepRow{Name: h.Name, Events: count(h.Events)})
	}
	return out
}

// SetRetentionFloor sets a classification's statutory floor (superadmins); a lowered floor
// without a reason shows the page again with the refusal.
func SetRetentionFloor(d RetentionDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		class := c.FormValue("classification")
		days, err := strconv.Atoi(strings.TrimSpace(c.FormValue("min_days")))
		if err != nil {
			err = models.Invalid("min_days", "must be a whole number of days (0: no floor)")
		} else {
			err = d.Store.SetFloor(c.UserContext(), v.OrgID, class, days, c.FormValue("reason"), ActorOf(c))
		}
		if fe := refusalOf(err); fe != nil {
			return renderRetention(c, d, render.StatusOf(err), fe)
		} else if err != nil {
			return err
		}
		return redirectDone(c, "/retention", doneRetentionFloorSet, class)
	}
}

// NewRetentionPolicy shows the empty policy form.
func NewRetentionPolicy(d RetentionDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		f := retention.PolicyForm{Title: "New retention policy", Action: "/retention/policies", Classification: "INTERNAL", Active: true}
		return renderPolicyForm(c, d, fiber.StatusOK, f)
	}
}

// CreateRetentionPolicy adds a policy of the organization's own.
func CreateRetentionPolicy(d RetentionDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		f := policyFormOf(c)
		f.Title, f.Action = "New retention policy", "/retention/policies"
		in, err := policyInputOf(f)
		if err == nil {
			_, err = d.Store.CreatePolicy(c.UserContext(), v.OrgID, in, ActorOf(c))
		}
		if fe := refusalOf(err); fe != nil {
			f.Error = fe
			return renderPolicyFormStatus(c, d, err, f)
		} else if err != nil {
			return err
		}
		return redirectDone(c, "/retention", doneRetentionPolicySaved, in.Name)
	}
}

// EditRetentionPolicy shows a policy's form: the organization's own, or a global one for
// superadmins; another organization's policy is 404.
func EditRetentionPolicy(d RetentionDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id, err := pathID(c, "retention policy")
		if err != nil {
			return err
		}
		p, err := d.Store.Policy(c.UserContext(), v.OrgID, id)
		if err != nil {
			return err
		}
		if p.Global() && !v.User.Superadmin {
			return models.Forbidden("global policies apply to every organization; only a superadmin may change them")
		}
		f := retention.PolicyForm{Name: p.Name, Classification: p.Classification, RetentionDays: strconv.Itoa(p.RetentionDays),
			ArchiveAfterDays: optDays(p.ArchiveAfterDays), DeleteAfterDays: optDays(p.DeleteAfterDays), Description: p.Description,
			Active: p.Active, Global: p.Global()}
		if p.FloorOverrideReason != nil {
			f.FloorOverrideReason = *p.FloorOverrideReason
		}
		editTarget(v, &f, id)
		return renderPolicyForm(c, d, fiber.StatusOK, f)
	}
}

// UpdateRetentionPolicy saves a policy's form.
func UpdateRetentionPolicy(d RetentionDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id, err := pathID(c, "retention policy")
		if err != nil {
			return err
		}
		existing, err := d.Store.Policy(c.UserContext(), v.OrgID, id)
		if err != nil {
			return err
		}
		f := policyFormOf(c)
		f.Global = existing.Global()
		editTarget(v, &f, id)
		in, err := policyInputOf(f)
		if err == nil {
			_, err = d.Store.UpdatePolicy(c.UserContext(), v.OrgID, id, in, ActorOf(c))
		}
		if fe := refusalOf(err); fe != nil {
			f.Error = fe
			return renderPolicyFormStatus(c, d, err, f)
		} else if err != nil {
			return err
		}
		return redirectDone(c, "/retention", doneRetentionPolicySaved, in.Name)
	}
}

// DeleteRetentionPolicy deletes a policy; refused (the form again) when it is the only
// active policy of a classification events use.
func DeleteRetentionPolicy(d RetentionDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id, err := pathID(c, "retention policy")
		if err != nil {
			return err
		}
		p, err := d.Store.DeletePolicy(c.UserContext(), v.OrgID, id, ActorOf(c))
		if fe := refusalOf(err); fe != nil {
			existing, gerr := d.Store.Policy(c.UserContext(), v.OrgID, id)
			if gerr != nil {
				return gerr
			}
			f := retention.PolicyForm{Name: existing.Name, Classification: existing.Classification,
				RetentionDays: strconv.Itoa(existing.RetentionDays), ArchiveAfterDays: optDays(existing.ArchiveAfterDays),
				DeleteAfterDays: optDays(existing.DeleteAfterDays), Description: existing.Description, Active: existing.Active,
				Global: existing.Global(), Error: fe}
			editTarget(v, &f, id)
			return renderPolicyFormStatus(c, d, err, f)
		} else if err != nil {
			return err
		}
		return redirectDone(c, "/retention", doneRetentionPolicyDeleted, p.Name)
	}
}

func editTarget(v *render.Viewer, f *retention.PolicyForm, id int64) {
	f.Title = "Edit retention policy " + f.Name
	f.Action = "/retention/policies/" + strconv.FormatInt(id, 10)
	if v.Allowed("audit.retention", "delete") && (!f.Global || v.User.Superadmin) {
		f.DeleteAction = f.Action + "/delete"
	}
}

func optDays(p *int) string {
	if p == nil {
		return ""
	}
	return strconv.Itoa(*p)
}

// policyFormOf reads the posted policy form as typed.
func policyFormOf(c *fiber.Ctx) retention.PolicyForm {
	return retention.PolicyForm{Name: strings.TrimSpace(c.FormValue("name")), Classification: c.FormValue("classification"),
		RetentionDays: c.FormValue("retention_days"), ArchiveAfterDays: c.FormValue("archive_after_days"),
		DeleteAfterDays: c.FormValue("delete_after_days"), Description: c.FormValue("description"),
		FloorOverrideReason: c.FormValue("floor_override_reason"), Active: c.FormValue("active") == "on"}
}

// policyInputOf converts the typed form; a number that is not one is KindInvalid naming
// its field.
func policyInputOf(f retention.PolicyForm) (models.RetentionPolicyInput, error) {
	in := models.RetentionPolicyInput{Name: f.Name, Classification: f.Classification, Description: strings.TrimSpace(f.Description),
		Active: f.Active, FloorOverrideReason: strings.TrimSpace(f.FloorOverrideReason)}
	days, err := strconv.Atoi(strings.TrimSpace(f.RetentionDays))
	if err != nil {
		return in, models.Invalid("retention_days", "must be a whole number of days")
	}
	in.RetentionDays = days
	opt := func(field, s string) (*int, error) {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, models.Invalid(field, "must be a whole number of days, or empty")
		}
		return &n, nil
	}
	if in.ArchiveAfterDays, err = opt("archive_after_days", f.ArchiveAfterDays); err != nil {
		return in, err
	}
	if in.DeleteAfterDays, err = opt("delete_after_days", f.DeleteAfterDays); err != nil {
		return in, err
	}
	return in, nil
}

func renderPolicyFormStatus(c *fiber.Ctx, d RetentionDeps, refused error, f retention.PolicyForm) error {
	return renderPolicyForm(c, d, render.StatusOf(refused), f)
}

func renderPolicyForm(c *fiber.Ctx, d RetentionDeps, status int, f retention.PolicyForm) error {
	v := render.ViewerOf(c)
	floors, err := d.Store.Floors(c.UserContext())
	if err != nil {
		return err
	}
	var hint []string
	for _, fl := range floors {
		if fl.MinDays > 0 {
			hint = append(hint, fmt.Sprintf("%s at least %d days", fl.Classification, fl.MinDays))
		}
	}
	if len(hint) > 0 {
		f.FloorHint = "Statutory floors: " + strings.Join(hint, "; ") + "."
	}
	f.CSRF, f.Classifications = v.Session.CSRFToken(), models.DataClassifications
	return render.HTML(c, status, retention.PolicyEdit(v.Shell(f.Title, "retention"), f))
}

// LegalHoldsPage lists the organization's legal holds with the form to place one.
func LegalHoldsPage(d RetentionDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		return renderHolds(c, d, fiber.StatusOK, retention.HoldForm{Scope: models.HoldScopePrincipal}, nil)
	}
}

// PlaceLegalHold places a hold; bad input shows the form again as typed.
func PlaceLegalHold(d RetentionDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		f := retention.HoldForm{Name: c.FormValue("name"), Reason: c.FormValue("reason"), Scope: c.FormValue("scope"),
			PrincipalID: c.FormValue("principal_id"), ResourceType: c.FormValue("resource_type"), ResourceID: c.FormValue("resource_id"),
			CorrelationID: c.FormValue("correlation_id"), From: c.FormValue("from"), To: c.FormValue("to")}
		in := models.LegalHoldInput{Name: f.Name, Reason: f.Reason, Scope: f.Scope, PrincipalID: f.PrincipalID,
			ResourceType: f.ResourceType, ResourceID: f.ResourceID, CorrelationID: f.CorrelationID}
		var err error
		if in.From, err = holdTime("from", f.From); err == nil {
			in.To, err = holdTime("to", f.To)
		}
		var h *models.LegalHold
		if err == nil {
			h, err = d.Store.PlaceHold(c.UserContext(), v.OrgID, in, ActorOf(c))
		}
		if fe := refusalOf(err); fe != nil {
			return renderHolds(c, d, render.StatusOf(err), f, fe)
		} else if err != nil {
			return err
		}
		return redirectDone(c, "/retention/holds", doneLegalHoldPlaced, h.Name)
	}
}

// ReleaseLegalHold releases a hold; a released one answers 409 with the list.
func ReleaseLegalHold(d RetentionDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id, err := pathID(c, "legal hold")
		if err != nil {
			return err
		}
		h, err := d.Store.ReleaseHold(c.UserContext(), v.OrgID, id, ActorOf(c))
		if fe := refusalOf(err); fe != nil {
			return renderHolds(c, d, render.StatusOf(err), retention.HoldForm{Scope: models.HoldScopePrincipal}, fe)
		} else if err != nil {
			return err
		}
		return redirectDone(c, "/retention/holds", doneLegalHoldReleased, h.Name)
	}
}

// holdTime reads a datetime-local value typed in UTC; empty is none.
func holdTime(field, s string) (*time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			t = t.UTC()
			return &t, nil
		}
	}
	return nil, models.Invalid(field, "must be a date and time in UTC, such as 2026-01-31T13:45")
}

func renderHolds(c *fiber.Ctx, d RetentionDeps, status int, f retention.HoldForm, fe *components.FormError) error {
	v := render.ViewerOf(c)
	holds, err := d.Store.Holds(c.UserContext(), v.OrgID)
	if err != nil {
		return err
	}
	canChange := v.Allowed("audit.retention", "update")
	p := retention.HoldsProps{Superadmin: v.User.Superadmin, CSRF: v.Session.CSRFToken(), Flash: flash(c), CanChange: canChange, Form: f, Error: fe}
	if fe != nil {
		p.Flash = ""
	}
	for _, s := range models.HoldScopes {
		p.Scopes = append(p.Scopes, components.Option{Value: s, Label: strings.ReplaceAll(s, "_", " ")})
	}
	for _, h := range holds {
		row := retention.HoldRow{ID: h.ID, Name: h.Name, Reason: h.Reason, Covers: h.Describe(),
			Placed: h.PlacedAt, PlacedBy: h.PlacedBy}
		if h.ReleasedAt != nil {
			row.Released, row.ReleasedBy = h.ReleasedAt, deref(h.ReleasedBy)
		} else if canChange {
			row.ReleaseAction = "/retention/holds/" + strconv.FormatInt(h.ID, 10) + "/release"
		}
		p.Holds = append(p.Holds, row)
	}
	return render.HTML(c, status, retention.Holds(v.Shell("Legal holds", "retention"), p))
}
