package handlers

import (
	"context"
	"strings"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	memberviews "auditdb/views/pages/members"
	orgviews "auditdb/views/pages/orgs"
)

// OrgStore is what the organizations page needs.
type OrgStore interface {
	Summaries(ctx context.Context) ([]models.OrgSummary, error)
	CreateWithOwner(ctx context.Context, id, name string, owner models.NewMember, by models.Actor) (*models.Organization, *models.AddedMember, error)
}

func orgsPage(ctx context.Context, orgs OrgStore, v *render.Viewer) (orgviews.Props, error) {
	list, err := orgs.Summaries(ctx)
	if err != nil {
		return orgviews.Props{}, err
	}
	props := orgviews.Props{CSRF: v.Session.CSRFToken()}
	for _, o := range list {
		props.Rows = append(props.Rows, orgviews.Row{ID: o.ID, Name: o.Name, Members: o.Members, Owners: o.Owners,
			Created: o.CreatedAt})
	}
	return props, nil
}

// ListOrgs shows every organization (superadmins only; the route says so).
func ListOrgs(orgs OrgStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		props, err := orgsPage(c.UserContext(), orgs, v)
		if err != nil {
			return err
		}
		return render.HTML(c, fiber.StatusOK, orgviews.Page(v.Shell("Organizations", "orgs"), props))
	}
}

// CreateOrg creates an organization and, when an email is given, makes that account its
// first owner, in one change: a refused owner leaves no organization behind. A new account
// gets a one-time password, shown once on this response (rendered, not redirected to, so
// it never lands in a URL).
func CreateOrg(orgs OrgStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		ctx := c.UserContext()
		form := orgviews.Form{ID: strings.TrimSpace(c.FormValue("id")), Name: c.FormValue("name"), OwnerEmail: strings.TrimSpace(c.FormValue("owner"))}
		org, added, err := orgs.CreateWithOwner(ctx, form.ID, form.Name, models.NewMember{Email: form.OwnerEmail, Role: models.OwnerRole}, ActorOf(c))
		if err != nil {
			if refusalOf(err) == nil {
				return err
			}
			props, perr := orgsPage(ctx, orgs, v)
			if perr != nil {
				return perr
			}
			props.Error, props.Form = refusalOf(err), form
			return refuse(c, err, orgviews.Page(v.Shell("Organizations", "orgs"), props))
		}
		props, err := orgsPage(ctx, orgs, v)
		if err != nil {
			return err
		}
		props.Flash = "Organization " + org.Name + " created."
		if added != nil && added.NewUser {
			props.Created = &memberviews.Created{Email: added.Email, Password: added.OneTimePassword}
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return render.HTML(c, fiber.StatusOK, orgviews.Page(v.Shell("Organizations", "orgs"), props))
	}
}
