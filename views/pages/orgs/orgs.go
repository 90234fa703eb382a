// Package orgs renders the superadmin's organizations page: every organization with its
// member and owner counts, and the form that creates one (with an optional first owner).
package orgs

import (
	"auditdb/views/components"
	"auditdb/views/pages/members"
	"time"
)

// Row is one organization.
type Row struct {
	ID, Name string
	Members  int
	Owners   int
	Created  time.Time
}

// Props is the view model of the organizations page.
type Props struct {
	Rows    []Row
	Flash   string
	Error   *components.FormError
	Created *members.Created
	Form    Form
	CSRF    string
}

// Form holds what was typed into the create form.
type Form struct {
	ID, Name, OwnerEmail string
}
