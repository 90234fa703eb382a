package handlers

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/views/components"
	"auditdb/views/pages/savedviews"
)

// SavedViewStore keeps the events list's saved views (see models.SavedViewStore).
type SavedViewStore interface {
	List(ctx context.Context, org string, user int64) ([]models.SavedView, error)
	Get(ctx context.Context, org string, user, id int64) (*models.SavedView, error)
	Create(ctx context.Context, org string, in models.SavedViewInput, by models.Actor) (*models.SavedView, error)
	Update(ctx context.Context, org string, id int64, name string, shared bool, by models.Actor) (*models.SavedView, error)
	Delete(ctx context.Context, org string, id int64, by models.Actor) (*models.SavedView, error)
}

// SavedViewsPage lists the viewer's saved views and the organization's shared ones (GET
// /events/views).
func SavedViewsPage(views SavedViewStore, now func() time.Time) fiber.Handler {
	return func(c *fiber.Ctx) error {
		return renderSavedViews(c, views, now, fiber.StatusOK, nil, nil, 0, "")
	}
}

// SaveView saves the search the events list shows under a name (POST /events/views: name,
// shared, query = the list's URL query). A bad name or search, or a name the user already
// has, shows the form again with the message next to its field.
func SaveView(views SavedViewStore, now func() time.Time) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		if v.OrgID == "" {
			return models.Forbidden("you are not a member of any organization")
		}
		form := savedviews.SaveForm{Name: c.FormValue("name"), Shared: c.FormValue("shared") == "on", Query: c.FormValue("query")}
		// The name first (the form's first field), then the search.
		_, err := models.ValidSavedViewName(form.Name)
		var query string
		if err == nil {
			query, err = savedQuery(form.Query, now())
		}
		if err == nil {
			form.Query = query
		}
		form.Summary = viewSummary(form.Query)
		var saved *models.SavedView
		if err == nil {
			saved, err = views.Create(c.UserContext(), v.OrgID, models.SavedViewInput{Name: form.Name, Query: query, Shared: form.Shared}, ActorOf(c))
		}
		if fe := refusalOf(err); fe != nil {
			return renderSavedViews(c, views, now, render.StatusOf(err), &form, fe, 0, "")
		} else if err != nil {
			return err
		}
		return redirectDone(c, "/events/views", doneViewSaved, saved.Name)
	}
}

// OpenView opens a saved view: the events list with its search (GET /events/views/:id).
// Another organization's view, or another user's private one, is a 404.
func OpenView(views SavedViewStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id, err := pathID(c, "saved view")
		if err != nil {
			return err
		}
		view, err := views.Get(c.UserContext(), v.OrgID, v.User.ID, id)
		if err != nil {
			return err
		}
		return render.Redirect(c, viewHref(view.Query))
	}
}

// UpdateView renames a saved view and sets whether it is shared (POST /events/views/:id:
// name, shared); only its owner may. A refusal shows the list with the message in the
// view's form.
func UpdateView(views SavedViewStore, now func() time.Time) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id, err := pathID(c, "saved view")
		if err != nil {
			return err
		}
		name := c.FormValue("name")
		updated, err := views.Update(c.UserContext(), v.OrgID, id, name, c.FormValue("shared") == "on", ActorOf(c))
		if fe := refusalOf(err); fe != nil {
			return renderSavedViews(c, views, now, render.StatusOf(err), nil, fe, id, name)
		} else if err != nil {
			return err
		}
		return redirectDone(c, "/events/views", doneViewUpdated, updated.Name)
	}
}

// DeleteView deletes a saved view (POST /events/views/:id/delete, behind the confirmation
// step); only its owner may.
func DeleteView(views SavedViewStore, now func() time.Time) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id, err := pathID(c, "saved view")
		if err != nil {
			return err
		}
		gone, err := views.Delete(c.UserContext(), v.OrgID, id, ActorOf(c))
		if fe := refusalOf(err); fe != nil {
			return renderSavedViews(c, views, now, render.StatusOf(err), nil, fe, id, "")
		} else if err != nil {
			return err
		}
		return redirectDone(c, "/events/views", doneViewDeleted, gone.Name)
	}
}

// renderSavedViews renders the page; save is the save form to show again (nil for none),
// fe a refusal, of the save form or (rowID > 0) of that view's form, typed its name as
// editName.
func renderSavedViews(c *fiber.Ctx, views SavedViewStore, now func() time.Time, status int, save *savedviews.SaveForm,
	fe *components.FormError, rowID int64, editName string) error {
	v := render.ViewerOf(c)
	if v.OrgID == "" {
		return models.Forbidden("you are not a member of any organization")
	}
	list, err := views.List(c.UserContext(), v.OrgID, v.User.ID)
	if err != nil {
		return err
	}
	p := savedviews.Props{CSRF: v.Session.CSRFToken(), Flash: flash(c), Save: save}
	if fe != nil {
		p.Flash = ""
	}
	if save != nil {
		p.SaveError = fe
	}
	rowShown := false
	for _, view := range list {
		r := savedviews.Row{ID: view.ID, Name: view.Name, Shared: view.Shared, OpenHref: "/events/views/" + strconv.FormatInt(view.ID, 10),
			Summary: viewSummary(view.Query), Updated: view.UpdatedAt}
		if view.UserID == v.User.ID {
			r.UpdateAction = "/events/views/" + strconv.FormatInt(view.ID, 10)
			r.DeleteAction = r.UpdateAction + "/delete"
		} else {
			r.Owner = view.OwnerEmail
		}
		if rowID == view.ID && save == nil && fe != nil && r.UpdateAction != "" {
			r.Error, r.EditName, rowShown = fe, editName, true
		}
		p.Rows = append(p.Rows, r)
	}
	if fe != nil && save == nil && !rowShown {
		// A refusal about a view the list offers no form for (another user's): above the list.
		p.TopError = fe
	}
	return render.HTML(c, status, savedviews.Page(v.Shell("Saved views", "events"), p))
}

// savedQuery checks and normalizes the list query a view saves: only the list's search and
// range parameters, as the list's own links write them. A query the list would refuse is
// a KindInvalid error naming "query" that says why.
func savedQuery(raw string, now time.Time) (string, error) {
	if len(raw) > models.MaxSavedViewQuery {
		return "", models.Invalid("query", "is longer than a saved view holds; shorten the search")
	}
	parsed, err := url.ParseQuery(strings.TrimPrefix(raw, "?"))
	if err != nil {
		return "", models.Invalid("query", "is not an events list address; save the view from the events list")
	}
	if _, _, err := ParseEventFilter(parsed.Get, now); err != nil {
		if fe := refusalOf(err); fe != nil {
			return "", models.Invalid("query", "is refused by the list: "+fe.Field+" "+fe.Message)
		}
		return "", err
	}
	return filterValues(parsed.Get).Encode(), nil
}

// viewHref is the events list with a saved view's query.
func viewHref(query string) string {
	if query == "" {
		return "/events"
	}
	return "/events?" + query
}

// viewSummary writes a saved query in words: its search and its range.
func viewSummary(query string) string {
	vals, _ := url.ParseQuery(query)
	var parts []string
	if q := vals.Get("q"); q != "" {
		parts = append(parts, q)
	}
	switch r := vals.Get("range"); {
	case r == "custom":
		parts = append(parts, "from "+rangeEnd(vals.Get("from"))+" to "+rangeEnd(vals.Get("to"))+" UTC")
	case r != "":
		label := r
		for _, qr := range quickRanges {
			if qr.Key == r {
				label = qr.Label
			}
		}
		parts = append(parts, "last "+label)
	default:
		parts = append(parts, "last 30 days")
	}
	return strings.Join(parts, " · ")
}

// rangeEnd is a range end of a saved search as people read it, or "—" when open.
func rangeEnd(s string) string {
	if s == "" {
		return "—"
	}
	return strings.Replace(s, "T", " ", 1)
}
