// Package savedviews renders the events explorer's saved views: the list of a user's own
// and the organization's shared views, with rename, share and delete, and the form that
// saves the current search.
package savedviews

import (
	"time"

	"auditdb/views/components"
)

// Row is one saved view as the list shows it.
type Row struct {
	ID       int64
	Name     string
	Owner    string // the owner's email; "" for the viewer's own views
	Shared   bool
	OpenHref string // the events list with the view's search
	Summary  string // the search in words, e.g. "status:failure · last 7 days"
	Updated  time.Time
	// UpdateAction and DeleteAction are where the rename and delete forms post; "" when
	// the viewer may not change the view (another user's shared view).
	UpdateAction, DeleteAction string
	// EditName and Error are a refused rename: the name as typed and why.
	EditName string
	Error    *components.FormError
}

// SaveForm is the form that saves the current search.
type SaveForm struct {
	Name    string
	Shared  bool
	Query   string // the list's URL query, sent back as it is
	Summary string // the same in words
}

// Props is the view model of the saved views page.
type Props struct {
	CSRF  string
	Flash string
	Rows  []Row
	// Save is the save form, shown when the page was opened to save a search or a save
	// was refused (SaveError).
	Save      *SaveForm
	SaveError *components.FormError
	// TopError is a refused change of a view the list offers no form for.
	TopError *components.FormError
}

// ErrorFor returns the message of a refused save for field, or "".
func (p Props) ErrorFor(field string) string {
	if p.SaveError != nil && p.SaveError.Field == field {
		return p.SaveError.Message
	}
	return ""
}

func editName(r Row) string {
	if r.Error != nil {
		return r.EditName
	}
	return r.Name
}

func errorOf(e *components.FormError, field string) string {
	if e != nil && e.Field == field {
		return e.Message
	}
	return ""
}

func deleteConsequence(r Row) string {
	if r.Shared {
		return "The view goes for everyone in the organization it is shared with. The events are not touched."
	}
	return "The view goes; the events it shows are not touched."
}
