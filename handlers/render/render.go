// Package render holds what handlers and the web layer share about answering a request:
// rendering templ components as a full page or an htmx fragment, redirects that work for
// both, and the signed-in viewer carried on the request.
package render

import (
	"errors"
	"net/url"
	"strings"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"auditdb/models"
	"auditdb/models/session"
	"auditdb/policy"
	"auditdb/views/layout"
)

// StatusOf maps the error vocabulary to HTTP statuses: the one place that does, shared by
// the error handler and the forms that answer a refusal with themselves.
func StatusOf(err error) int {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	switch models.KindOf(err) {
	case models.KindInvalid:
		return fiber.StatusBadRequest
	case models.KindNotFound:
		return fiber.StatusNotFound
	case models.KindForbidden:
		return fiber.StatusForbidden
	case models.KindConflict:
		return fiber.StatusConflict
	case models.KindUnavailable:
		return fiber.StatusServiceUnavailable
	case models.KindUnauthorized:
		return fiber.StatusUnauthorized
	case models.KindTooMany:
		return fiber.StatusTooManyRequests
	case models.KindTooLarge:
		return fiber.StatusRequestEntityTooLarge
	}
	return fiber.StatusInternalServerError
}

// IsHTMX reports whether the request came from htmx (and wants a fragment). History
// restores ask for the full page.
func IsHTMX(c *fiber.Ctx) bool {
	return c.Get("HX-Request") == "true" && c.Get("HX-History-Restore-Request") != "true"
}

// HTML renders comp with status. It always sends Vary: HX-Request, since the same URL
// answers with a page or a fragment.
func HTML(c *fiber.Ctx, status int, comp templ.Component) error {
	// Straight into the response body, which is a buffer until the handler returns.
	c.Response().ResetBody()
	if err := comp.Render(c.UserContext(), c.Response().BodyWriter()); err != nil {
		c.Response().ResetBody()
		return err
	}
	c.Vary("HX-Request")
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Status(status)
	return nil
}

// Redirect sends the browser to target: HX-Redirect for htmx requests, 303 See Other
// otherwise (so a POST becomes a GET).
func Redirect(c *fiber.Ctx, target string) error {
	if c.Get("HX-Request") == "true" {
		c.Set("HX-Redirect", target)
		return c.SendStatus(fiber.StatusNoContent)
	}
	return c.Redirect(target, fiber.StatusSeeOther)
}

// LocalPath returns p when it is a path on this site (for ?next=), else "/".
func LocalPath(p string) string {
	if p == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return p
}

// Viewer is the signed-in user of a console request, with the current organization.
type Viewer struct {
	User    *models.User
	Session *session.Session
	Token   string // the session token, for switching organization and logout
	OrgID   string // "" when the user belongs to no organization
	OrgName string
	Role    string
	Orgs    []models.OrgAccess
	// Can reports whether the viewer may do action on resource in the current
	// organization; nil denies everything.
	Can func(resource, action string) bool
	// ShowNav reports whether a navigation entry leads somewhere the viewer may go; nil
	// shows every entry.
	ShowNav func(item layout.NavItem) bool
	// NavCount, when set, returns the count shown beside a navigation entry (0 for none);
	// it is asked only for the entries shown, once per full page.
	NavCount func(key string) int64
}

// Allowed reports whether the viewer may do action on resource in the current
// organization.
func (v *Viewer) Allowed(resource, action string) bool {
	return v != nil && v.Can != nil && v.Can(resource, action)
}

const (
	viewerKey    = "auditdb.viewer"
	principalKey = "auditdb.principal"
)

// Principal is who a request acts as, and in which organization, for authorization: the
// console's signed-in user, or whoever an API credential names.
type Principal struct {
	Subject policy.Subject
	Org     string
}

// SetPrincipal attaches p to the request; the authorization middleware reads it.
func SetPrincipal(c *fiber.Ctx, p Principal) { c.Locals(principalKey, p) }

// PrincipalOf returns the request's principal, and false on requests without one.
func PrincipalOf(c *fiber.Ctx) (Principal, bool) {
	p, ok := c.Locals(principalKey).(Principal)
	return p, ok
}

// SetViewer attaches v to the request.
func SetViewer(c *fiber.Ctx, v *Viewer) { c.Locals(viewerKey, v) }

// ViewerOf returns the request's viewer, or nil on public routes.
func ViewerOf(c *fiber.Ctx) *Viewer {
	v, _ := c.Locals(viewerKey).(*Viewer)
	return v
}

// Shell returns the layout model for a page titled title in nav area active.
func (v *Viewer) Shell(title, active string) layout.Shell {
	s := layout.Shell{Title: title, Active: active, UserEmail: v.User.Email, Superadmin: v.User.Superadmin,
		OrgID: v.OrgID, OrgName: v.OrgName, CSRF: v.Session.CSRFToken(), Nav: []layout.NavItem{}}
	for _, item := range layout.NavItems {
		if v.ShowNav == nil || v.ShowNav(item) {
			if v.NavCount != nil {
				item.Count = v.NavCount(item.Key)
			}
			s.Nav = append(s.Nav, item)
		}
	}
	for _, o := range v.Orgs {
		s.Orgs = append(s.Orgs, layout.OrgOption{ID: o.ID, Name: o.Name})
	}
	return s
}

const apiKeyKey = "auditdb.apikey"

// SetAPIKey attaches the API key that authenticated the request.
func SetAPIKey(c *fiber.Ctx, k *models.APIKey) { c.Locals(apiKeyKey, k) }

// APIKeyOf returns the request's API key, or nil outside the API.
func APIKeyOf(c *fiber.Ctx) *models.APIKey {
	k, _ := c.Locals(apiKeyKey).(*models.APIKey)
	return k
}
