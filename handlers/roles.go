package handlers

import (
	"context"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	roleviews "auditdb/views/pages/roles"
)

// RoleStore is what the role editor needs from the role store.
type RoleStore interface {
	Set(ctx context.Context, org string) (models.RoleSet, error)
	Usage(ctx context.Context, org string) (map[string]int, error)
	HeldBy(ctx context.Context, org string, userID int64) ([]models.Permission, error)
	Create(ctx context.Context, org string, in models.RoleInput, by models.Actor) (*models.Role, error)
	Update(ctx context.Context, org, name string, in models.RoleInput, by models.Actor) (*models.Role, error)
	Delete(ctx context.Context, org, name string, by models.Actor) error
}

// RoleDeps are the role editor's dependencies.
type RoleDeps struct {
	Roles RoleStore
}

// roleHref is the page of role name.
func roleHref(name string) string { return "/roles/" + url.PathEscape(name) }

// holdings returns a predicate telling whether the viewer holds a permission in its
// current organization (a superadmin holds everything).
func holdings(ctx context.Context, roles RoleStore, v *render.Viewer) (func(models.Permission) bool, error) {
	if v.User.Superadmin {
		return func(models.Permission) bool { return true }, nil
	}
	held, err := roles.HeldBy(ctx, v.OrgID, v.User.ID)
	if err != nil {
		return nil, err
	}
	return func(p models.Permission) bool { return models.Covers(held, p) }, nil
}

// grantable reports whether every effective permission of role is held.
func grantable(set models.RoleSet, role string, holds func(models.Permission) bool) bool {
	for _, p := range set.Effective(role) {
		if !holds(p) {
			return false
		}
	}
	return true
}

// permGroups groups permissions by resource, keeping their order.
func permGroups(ps []models.Permission) []roleviews.PermGroup {
	var out []roleviews.PermGroup
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].Resource == p.Resource {
			out[n-1].Actions = append(out[n-1].Actions, p.Action)
			continue
		}
		out = append(out, roleviews.PermGroup{Resource: p.Resource, Actions: []string{p.Action}})
	}
	return out
}

func roleRow(v *render.Viewer, set models.RoleSet, usage map[string]int, r *models.Role) roleviews.Row {
	row := roleviews.Row{Name: r.Name, Href: roleHref(r.Name), Description: r.Description, Global: r.Global(),
		Inherits: r.Inherits, Effective: permGroups(set.Effective(r.Name)), Members: usage[r.Name]}
	if r.Global() {
		if v.Allowed("audit.roles", "create") {
			row.CopyHref = "/roles/new?copy=" + url.QueryEscape(r.Name)
		}
		return row
	}
	if v.Allowed("audit.roles", "update") {
		row.EditHref = roleHref(r.Name) + "/edit"
	}
	if v.Allowed("audit.roles", "delete") {
		row.DeleteHref = roleHref(r.Name) + "/delete"
	}
	return row
}

// ListRoles shows the organization's roles and the defaults, with their effective
// permissions and how many members hold each.
func ListRoles(d RoleDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		props, err := rolesList(c, d, v)
		if err != nil {
			return err
		}
		props.Flash = flash(c)
		return render.HTML(c, fiber.StatusOK, roleviews.List(v.Shell("Roles", "roles"), props))
	}
}

func rolesList(c *fiber.Ctx, d RoleDeps, v *render.Viewer) (roleviews.ListProps, error) {
	ctx := c.UserContext()
	set, err := d.Roles.Set(ctx, v.OrgID)
	if err != nil {
		return roleviews.ListProps{}, err
	}
	usage, err := d.Roles.Usage(ctx, v.OrgID)
	if err != nil {
		return roleviews.ListProps{}, err
	}
	props := roleviews.ListProps{CanCreate: v.Allowed("audit.roles", "create"), CSRF: v.Session.CSRFToken()}
	for _, r := range set.Sorted() {
		if r.Global() {
			props.Defaults = append(props.Defaults, roleRow(v, set, usage, r))
		} else {
			props.OrgRoles = append(props.OrgRoles, roleRow(v, set, usage, r))
		}
	}
	return props, nil
}

// ShowRole shows one role the organization sees (its own or a default). Another
// organization's role is a 404.
func ShowRole(d RoleDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		ctx := c.UserContext()
		set, err := d.Roles.Set(ctx, v.OrgID)
		if err != nil {
			return err
		}
		r, ok := set[c.Params("name")]
		if !ok {
			return models.NotFound("role")
		}
		usage, err := d.Roles.Usage(ctx, v.OrgID)
		if err != nil {
			return err
		}
		props := roleviews.DetailProps{Row: roleRow(v, set, usage, r), Own: permGroups(models.SortPermissions(append([]models.Permission(nil), r.Permissions...))),
			CSRF: v.Session.CSRFToken(), ListHref: "/roles"}
		return render.HTML(c, fiber.StatusOK, roleviews.Detail(v.Shell("Role "+r.Name, "roles"), props))
	}
}

// roleForm builds the form's view model for the given values.
func roleForm(ctx context.Context, d RoleDeps, v *render.Viewer, set models.RoleSet, name string, in models.RoleInput) (roleviews.FormProps, error) {
	holds, err := holdings(ctx, d.Roles, v)
	if err != nil {
		return roleviews.FormProps{}, err
	}
	checked := map[models.Permission]bool{}
	for _, p := range in.Permissions {
		checked[p] = true
	}
	m := roleviews.Matrix{Actions: append([]string{models.AnyAction}, models.Actions...)}
	addRow := func(resource, label string, wildcard bool) {
		row := roleviews.MatrixRow{Resource: resource, Label: label, Wildcard: wildcard}
		meaningful := models.MeaningfulActions(resource)
		for _, a := range m.Actions {
			p := models.Permission{Resource: resource, Action: a}
			row.Cells = append(row.Cells, roleviews.Cell{Value: p.String(), Checked: checked[p], Grantable: holds(p),
				Applicable: a == models.AnyAction || contains(meaningful, a)})
		}
		m.Rows = append(m.Rows, row)
	}
	labels := map[string]string{models.AnyResource: "everything", "audit.*": "every audit resource", "organization.*": "every organization resource"}
	for _, w := range models.WildcardResources {
		addRow(w, labels[w], true)
	}
	for _, r := range models.Resources {
		addRow(r.Resource, "", false)
	}
	props := roleviews.FormProps{Name: name, Description: in.Description, Matrix: m, CancelHref: "/roles", CSRF: v.Session.CSRFToken()}
	for _, r := range set.Sorted() {
		if r.Name == name && name != "" {
			continue
		}
		props.Inherits = append(props.Inherits, roleviews.InheritOption{Name: r.Name, Global: r.Global(), Selected: contains(in.Inherits, r.Name)})
	}
	return props, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// formValues returns every value of a urlencoded form field, copied out of Fiber's buffers.
func formValues(c *fiber.Ctx, key string) []string {
	var out []string
	for _, b := range c.Request().PostArgs().PeekMulti(key) {
		out = append(out, string(b))
	}
	return out
}

// parseRoleForm reads the role form. It returns a KindInvalid error for a permission that
// is not "resource:action".
func parseRoleForm(c *fiber.Ctx) (models.RoleInput, error) {
	in := models.RoleInput{Name: strings.TrimSpace(c.FormValue("name")), Description: c.FormValue("description"),
		Inherits: formValues(c, "inherits")}
	for _, s := range formValues(c, "perm") {
		p, err := models.ParsePermission(s)
		if err != nil {
			return in, err
		}
		in.Permissions = append(in.Permissions, p)
	}
	return in, nil
}

// NewRole shows an empty role form, or one prefilled from ?copy=<role> (typically a
// default role the organization wants to adjust).
func NewRole(d RoleDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		ctx := c.UserContext()
		set, err := d.Roles.Set(ctx, v.OrgID)
		if err != nil {
			return err
		}
		var in models.RoleInput
		copied := ""
		if from := c.Query("copy"); from != "" {
			r, ok := set[from]
			if !ok {
				return models.NotFound("role")
			}
			in = models.RoleInput{Description: r.Description, Permissions: r.Permissions, Inherits: r.Inherits}
			copied = r.Name
		}
		props, err := roleForm(ctx, d, v, set, "", in)
		if err != nil {
			return err
		}
		props.Action, props.CopiedFrom = "/roles", copied
		return render.HTML(c, fiber.StatusOK, roleviews.Form(v.Shell("New role", "roles"), props))
	}
}

// CreateRole saves a new role from the form; a refusal shows the form again with the
// reason and the values as submitted.
func CreateRole(d RoleDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		ctx := c.UserContext()
		in, err := parseRoleForm(c)
		if err == nil {
			var r *models.Role
			if r, err = d.Roles.Create(ctx, v.OrgID, in, ActorOf(c)); err == nil {
				return redirectDone(c, "/roles", doneRoleCreated, r.Name)
			}
		}
		if refusalOf(err) == nil {
			return err
		}
		return renderRoleRefusal(c, d, v, in, "/roles", false, err)
	}
}

func renderRoleRefusal(c *fiber.Ctx, d RoleDeps, v *render.Viewer, in models.RoleInput, action string, editing bool, refused error) error {
	ctx := c.UserContext()
	set, err := d.Roles.Set(ctx, v.OrgID)
	if err != nil {
		return err
	}
	props, err := roleForm(ctx, d, v, set, in.Name, in)
	if err != nil {
		return err
	}
	props.Action, props.Editing = action, editing
	props.Error = refusalOf(refused)
	if editing {
		props.Effective = permGroups(set.Effective(in.Name))
	}
	title := "New role"
	if editing {
		title = "Edit role " + in.Name
	}
	return refuse(c, refused, roleviews.Form(v.Shell(title, "roles"), props))
}

// orgRole returns the organization's own role name, a KindForbidden error for a default
// and a KindNotFound error otherwise (another organization's role included).
func orgRole(set models.RoleSet, name string) (*models.Role, error) {
	r, ok := set[name]
	if !ok {
		return nil, models.NotFound("role")
	}
	if r.Global() {
		return nil, models.Forbidden("default roles are shared by every organization and cannot be edited; copy one instead")
	}
	return r, nil
}

// EditRole shows the form for one of the organization's own roles, with its effective
// permissions as saved.
func EditRole(d RoleDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		ctx := c.UserContext()
		set, err := d.Roles.Set(ctx, v.OrgID)
		if err != nil {
			return err
		}
		r, err := orgRole(set, c.Params("name"))
		if err != nil {
			return err
		}
		props, err := roleForm(ctx, d, v, set, r.Name, models.RoleInput{Description: r.Description, Permissions: r.Permissions, Inherits: r.Inherits})
		if err != nil {
			return err
		}
		props.Editing, props.Action, props.Effective = true, roleHref(r.Name), permGroups(set.Effective(r.Name))
		return render.HTML(c, fiber.StatusOK, roleviews.Form(v.Shell("Edit role "+r.Name, "roles"), props))
	}
}

// UpdateRole saves the edit form of one of the organization's own roles.
func UpdateRole(d RoleDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		ctx := c.UserContext()
		name := strings.Clone(c.Params("name"))
		in, err := parseRoleForm(c)
		in.Name = name
		if err == nil {
			if _, err = d.Roles.Update(ctx, v.OrgID, name, in, ActorOf(c)); err == nil {
				return redirectDone(c, "/roles", doneRoleSaved, name)
			}
		}
		if refusalOf(err) == nil {
			return err
		}
		return renderRoleRefusal(c, d, v, in, roleHref(name), true, err)
	}
}

// DeleteRole deletes one of the organization's own roles; a role still held or inherited
// stays, and the list says why.
func DeleteRole(d RoleDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		ctx := c.UserContext()
		name := strings.Clone(c.Params("name"))
		err := d.Roles.Delete(ctx, v.OrgID, name, ActorOf(c))
		if err == nil {
			return redirectDone(c, "/roles", doneRoleDeleted, name)
		}
		// Only a conflict (still held or inherited) is shown on the list; a default role
		// (forbidden) or another organization's (not found) goes to the error page.
		if models.KindOf(err) != models.KindConflict {
			return err
		}
		props, lerr := rolesList(c, d, v)
		if lerr != nil {
			return lerr
		}
		props.Error = refusalOf(err)
		return refuse(c, err, roleviews.List(v.Shell("Roles", "roles"), props))
	}
}
