package handlers

import (
	"context"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/views/components"
	memberviews "auditdb/views/pages/members"
)

// MemberStore is what the members page needs from the member store.
type MemberStore interface {
	List(ctx context.Context, org string) ([]models.Member, error)
	Invite(ctx context.Context, org string, in models.NewMember, by models.Actor) (*models.Invited, error)
	SetRole(ctx context.Context, org string, userID int64, role string, by models.Actor) error
	Remove(ctx context.Context, org string, userID int64, by models.Actor) error
}

// MemberDeps are the members page's dependencies.
type MemberDeps struct {
	Members MemberStore
	Roles   RoleStore
	// EmailInvitations reports whether invitations are emailed with a single-use link.
	EmailInvitations bool
}

// membersPage builds the page for the viewer's organization.
func membersPage(ctx context.Context, d MemberDeps, v *render.Viewer) (memberviews.Props, error) {
	list, err := d.Members.List(ctx, v.OrgID)
	if err != nil {
		return memberviews.Props{}, err
	}
	set, err := d.Roles.Set(ctx, v.OrgID)
	if err != nil {
		return memberviews.Props{}, err
	}
	holds, err := holdings(ctx, d.Roles, v)
	if err != nil {
		return memberviews.Props{}, err
	}
	props := memberviews.Props{OrgName: v.OrgName, CanAdd: v.Allowed("organization.members", "create"),
		CSRF: v.Session.CSRFToken(), Form: memberviews.AddForm{Role: "org:member"}, EmailInvitations: d.EmailInvitations}
	for _, r := range set.Sorted() {
		if grantable(set, r.Name, holds) {
			props.Roles = append(props.Roles, components.Option{Value: r.Name, Label: r.Name})
		}
	}
	canUpdate, canRemove := v.Allowed("organization.members", "update"), v.Allowed("organization.members", "delete")
	for _, m := range list {
		row := memberviews.Row{UserID: m.UserID, Email: m.Email, Name: m.Name, Role: m.Role,
			Since: m.Since, MustChangePassword: m.MustChangePassword}
		base := "/members/" + strconv.FormatInt(m.UserID, 10)
		// Only members whose role the viewer could have given may be changed or removed by it.
		mine := grantable(set, m.Role, holds)
		if canUpdate && mine {
			row.RoleAction = base + "/role"
		}
		if canRemove && mine {
			row.RemoveAction = base + "/delete"
		}
		props.Rows = append(props.Rows, row)
	}
	return props, nil
}

// ListMembers shows the organization's members, the add form and, per member, the role
// and removal controls the viewer may use.
func ListMembers(d MemberDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		props, err := membersPage(c.UserContext(), d, v)
		if err != nil {
			return err
		}
		props.Flash = flash(c)
		return render.HTML(c, fiber.StatusOK, memberviews.Page(v.Shell("Members", "members"), props))
	}
}

// renderMembersRefusal shows the members page with the reason a change was refused.
func renderMembersRefusal(c *fiber.Ctx, d MemberDeps, v *render.Viewer, form memberviews.AddForm, refused error) error {
	props, err := membersPage(c.UserContext(), d, v)
	if err != nil {
		return err
	}
	props.Error = refusalOf(refused)
	if form.Email != "" {
		props.Form = form
	}
	return refuse(c, refused, memberviews.Page(v.Shell("Members", "members"), props))
}

// AddMember invites an email to the organization. It creates no account and shows no code
// or password: the account of that email becomes a member only when its owner, signed in,
// accepts. The answer is the same page whether or not the email has an account.
func AddMember(d MemberDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		ctx := c.UserContext()
		form := memberviews.AddForm{Email: strings.TrimSpace(c.FormValue("email")), Name: c.FormValue("name"), Role: c.FormValue("role")}
		invited, err := d.Members.Invite(ctx, v.OrgID, models.NewMember{Email: form.Email, Name: form.Name, Role: form.Role}, ActorOf(c))
		if err != nil {
			if refusalOf(err) == nil {
				return err
			}
			return renderMembersRefusal(c, d, v, form, err)
		}
		props, err := membersPage(ctx, d, v)
		if err != nil {
			return err
		}
		props.Flash = "Invitation recorded for " + invited.Email + " as " + invited.Role + ": they accept it after signing in"
		if invited.Emailed {
			props.Flash += "; a link was emailed to them"
		}
		props.Flash += ". They appear here once they accept."
		return render.HTML(c, fiber.StatusOK, memberviews.Page(v.Shell("Members", "members"), props))
	}
}

// InvitationAnswerer is what the invitation forms need from the member store.
type InvitationAnswerer interface {
	AcceptInvitation(ctx context.Context, id int64, by models.Actor) (string, error)
	DeclineInvitation(ctx context.Context, id int64, by models.Actor) error
}

// OrgSwitcher changes a session's current organization.
type OrgSwitcher interface {
	SetOrg(ctx context.Context, token, org string) error
}

// AcceptInvitation makes the signed-in account a member as its invitation says, and
// switches the session to that organization. Another account's invitation is a 404; an
// expired one a 409.
func AcceptInvitation(members InvitationAnswerer, sessions OrgSwitcher) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		ctx := c.UserContext()
		id, err := pathID(c, "invitation")
		if err != nil {
			return err
		}
		org, err := members.AcceptInvitation(ctx, id, ActorOf(c))
		if err != nil {
			return err
		}
		if err := sessions.SetOrg(ctx, v.Token, org); err != nil {
			return err
		}
		return render.Redirect(c, "/")
	}
}

// DeclineInvitation refuses the signed-in account's invitation.
func DeclineInvitation(members InvitationAnswerer) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := pathID(c, "invitation")
		if err != nil {
			return err
		}
		if err := members.DeclineInvitation(c.UserContext(), id, ActorOf(c)); err != nil {
			return err
		}
		return render.Redirect(c, "/")
	}
}

// SetMemberRole gives a member of the organization another role. A user who is not a
// member of the viewer's organization is a 404.
func SetMemberRole(d MemberDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		ctx := c.UserContext()
		id, err := pathID(c, "member")
		if err != nil {
			return err
		}
		if err := d.Members.SetRole(ctx, v.OrgID, id, c.FormValue("role"), ActorOf(c)); err != nil {
			if refusalOf(err) == nil {
				return err
			}
			return renderMembersRefusal(c, d, v, memberviews.AddForm{}, err)
		}
		return redirectDone(c, "/members", doneMemberRoleChanged, "")
	}
}

// RemoveMember ends a membership of the organization (the user itself stays).
func RemoveMember(d MemberDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		ctx := c.UserContext()
		id, err := pathID(c, "member")
		if err != nil {
			return err
		}
		if err := d.Members.Remove(ctx, v.OrgID, id, ActorOf(c)); err != nil {
			if refusalOf(err) == nil {
				return err
			}
			return renderMembersRefusal(c, d, v, memberviews.AddForm{}, err)
		}
		return redirectDone(c, "/members", doneMemberRemoved, "")
	}
}
