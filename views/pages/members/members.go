// Package members renders an organization's members page: who holds which role, inviting a
// member by email and changing or ending a membership.
package members

import (
	"auditdb/views/components"
	"time"
)

// Row is one member.
type Row struct {
	UserID             int64
	Email              string
	Name               string
	Role               string
	Since              time.Time
	MustChangePassword bool
	RoleAction         string // form action to change the role; "" when the viewer may not
	RemoveAction       string // form action to remove; "" when the viewer may not
}

// Created is a new user just added, with its one-time password.
type Created struct {
	Email    string
	Password string
}

// Props is the view model of the members page.
type Props struct {
	OrgName string
	Rows    []Row
	// Roles are the roles the viewer may give (it holds all of their permissions).
	Roles   []components.Option
	CanAdd  bool
	Flash   string
	Error   *components.FormError
	Created *Created
	// EmailInvitations reports whether invitations are emailed with a link.
	EmailInvitations bool
	Form             AddForm // the add form's values after a refusal
	CSRF             string
}

// AddForm holds what was typed into the add form.
type AddForm struct {
	Email, Name, Role string
}
