// Package roles renders the role editor: the list of an organization's roles and the
// defaults, one role's page, and the create/edit form with its permission matrix.
package roles

import (
	"strings"

	"auditdb/views/components"
)

// PermGroup is one resource and the actions held on it, for showing permissions compactly.
type PermGroup struct {
	Resource string
	Actions  []string
}

// Row is one role in the list.
type Row struct {
	Name        string
	Href        string // the role's page
	Description string
	Global      bool // a default shared by every organization (read-only)
	Inherits    []string
	Effective   []PermGroup // own and inherited permissions
	Members     int         // members of this organization holding it
	EditHref    string      // "" when the viewer may not edit it
	CopyHref    string      // "" when the viewer may not create roles
	DeleteHref  string      // form action; "" when the viewer may not delete it
}

// ListProps is the view model of the roles list.
type ListProps struct {
	OrgRoles  []Row
	Defaults  []Row
	CanCreate bool
	Flash     string
	Error     *components.FormError // why a deletion was refused
	CSRF      string
}

// Cell is one checkbox of the permission matrix.
type Cell struct {
	Value      string // "resource:action"
	Applicable bool   // the pair means something; otherwise no checkbox
	Checked    bool
	Grantable  bool // the editor holds it and so may grant it
}

// MatrixRow is one resource (or resource pattern) of the matrix.
type MatrixRow struct {
	Resource string
	Label    string
	Wildcard bool
	Cells    []Cell // one per Matrix.Actions
}

// Matrix is the resources × actions grid of the role form.
type Matrix struct {
	Actions []string // column headings; "*" first
	Rows    []MatrixRow
}

// InheritOption is one role the edited role may inherit.
type InheritOption struct {
	Name     string
	Global   bool
	Selected bool
}

// FormProps is the view model of the create and edit form.
type FormProps struct {
	Editing     bool   // false: creating
	Action      string // form action
	Name        string
	Description string
	CopiedFrom  string
	Matrix      Matrix
	Inherits    []InheritOption
	Effective   []PermGroup // of the saved role, when editing
	Error       *components.FormError
	CancelHref  string
	CSRF        string
}

// DetailProps is the view model of one role's page.
type DetailProps struct {
	Row
	Own      []PermGroup
	CanEdit  bool
	CSRF     string
	ListHref string
}

// CellTestID is the data-testid of a matrix checkbox: "perm-" + resource + "-" + action,
// with "*" spelled "all".
func CellTestID(value string) string {
	return "perm-" + strings.NewReplacer("*", "all", ":", "-").Replace(value)
}

// ActionLabel spells the "*" column.
func ActionLabel(a string) string {
	if a == "*" {
		return "all"
	}
	return a
}
