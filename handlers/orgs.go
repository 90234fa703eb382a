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
	CreateBy(ctx context.Context, id, name string, by models.Actor) (*models.Organization, error)
}

// MemberAdder adds a member to an organization.
type MemberAdder interface {
	Add(ctx context.Context, org string, in models.NewMember, by models.Actor) (*models.AddedMember, error)
}

func orgsPage(ctx context.Context, orgs OrgStore, v *render.Viewer) (orgviews.Props, error) {
	list, err := orgs.Summaries(ctx)
	if err != nil {
		return orgviews.Props{}, err
	}
	props := orgviews.Props{CSRF: v.Session.CSRFToken()}
	for _, o := range list {
		props.Rows = append(props.Rows, orgviews.Row{ID: o.ID, Name: o.Name, Members: o.Members, Owners: o.Owners,
			Created: o.CreatedAt.UTC().Format("2006-01-02")})
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

// CreateOrg creates an organization and, when an email is given, makes that user its
// first owner (a new user gets a one-time password, shown once on this response).
func CreateOrg(orgs OrgStore, members MemberAdder) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		ctx := c.UserContext()
		form := orgviews.Form{ID: strings.TrimSpace(c.FormValue("id")), Name: c.FormValue("name"), OwnerEmail: strings.TrimSpace(c.FormValue("owner"))}
		refuse := func(refused error, keepForm bool) error {
			props, err := orgsPage(ctx, orgs, v)
			if err != nil {
				return err
			}
			props.Error = models.MessageOf(refused)
			if keepForm {
				props.Form = form
			}
			return render.HTML(c, render.StatusOf(refused), orgviews.Page(v.Shell("Organizations", "orgs"), props))
		}
		org, err := orgs.CreateBy(ctx, form.ID, form.Name, ActorOf(c))
		if err != nil {
			if !refusal(err) {
				return err
			}
			return refuse(err, true)
		}
		var created *memberviews.Created
		if form.OwnerEmail != "" {
			added, err := members.Add(ctx, org.ID, models.NewMember{Email: form.OwnerEmail, Role: models.OwnerRole}, ActorOf(c))
			if err != nil {
				if !refusal(err) {
					return err
				}
				return refuse(models.Invalid("owner", "organization "+org.ID+" was created, but its owner was not added: "+models.MessageOf(err)), false)
			}
			if added.NewUser {
				created = &memberviews.Created{Email: added.Email, Password: added.OneTimePassword}
			}
		}
		props, err := orgsPage(ctx, orgs, v)
		if err != nil {
			return err
		}
		props.Flash, props.Created = "Organization "+org.Name+" created.", created
		c.Set(fiber.HeaderCacheControl, "no-store")
		return render.HTML(c, fiber.StatusOK, orgviews.Page(v.Shell("Organizations", "orgs"), props))
	}
}
