package web

import (
	"context"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/policy"
)

// Authorizer decides whether a subject may do an action on a resource in an organization.
// policy.Engine is the real one.
type Authorizer interface {
	Allowed(ctx context.Context, sub policy.Subject, org, resource, action string) (bool, error)
}

type needKind int

const (
	needPermission needKind = iota + 1
	needSession             // any signed-in user (the page itself shows only what the viewer may see)
	needSuperadmin          // superadmins only, whatever the policy says
)

// Need is what a route requires of the request's principal. The zero Need denies
// everything: a route that declares nothing is closed.
type Need struct {
	Resource, Action string
	kind             needKind
}

// Perm is a route's need for one (resource, action) of the permission vocabulary. It
// panics on a pair outside the vocabulary, so a typo in the URL map fails at startup (and
// in every test) instead of closing the route silently.
func Perm(resource, action string) Need {
	if err := models.ValidatePermission(models.Permission{Resource: resource, Action: action}); err != nil ||
		resource == models.AnyResource || action == models.AnyAction {
		panic(fmt.Sprintf("web: route needs %s:%s, which is not a concrete permission of the vocabulary", resource, action))
	}
	return Need{Resource: resource, Action: action, kind: needPermission}
}

// Need values for routes outside the permission vocabulary.
var (
	// SignedIn admits any signed-in user: sign-out, switching organization, the dashboard
	// (which shows only the figures the viewer may read) and one's own password.
	SignedIn = Need{kind: needSession}
	// SuperadminOnly admits superadmins only: managing organizations is above every
	// organization's roles, so no role can grant it (not even "*:*").
	SuperadminOnly = Need{kind: needSuperadmin}
)

func (n Need) String() string {
	switch n.kind {
	case needPermission:
		return n.Resource + ":" + n.Action
	case needSession:
		return "signed-in"
	case needSuperadmin:
		return "superadmin"
	}
	return "nothing (closed)"
}

// errDenied is the answer to a request its principal may not make: the 403 page in the
// console, a JSON 403 under /api/.
func errDenied(n Need) error {
	if n.kind == needSuperadmin {
		return models.Forbidden("only a superadmin may do this")
	}
	return models.Forbidden(fmt.Sprintf("your role does not allow this (it needs %s)", n))
}

// decide reports whether principal p meets need n.
func decide(ctx context.Context, authz Authorizer, p render.Principal, n Need) (bool, error) {
	switch n.kind {
	case needSession:
		return true, nil
	case needSuperadmin:
		return p.Subject.Superadmin, nil
	case needPermission:
		if p.Org == "" && !p.Subject.Superadmin {
			return false, nil
		}
		return authz.Allowed(ctx, p.Subject, p.Org, n.Resource, n.Action)
	}
	return false, nil
}

// authorize is the one enforcement middleware: every console and API route is registered
// with it and the need it declares. It denies when the request has no principal, the need
// is not met, or the decision cannot be made.
func authorize(authz Authorizer, n Need) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, ok := render.PrincipalOf(c)
		if !ok {
			return errDenied(n)
		}
		allowed, err := decide(c.UserContext(), authz, p, n)
		if err != nil {
			return models.Unavailable("cannot check your permissions right now", err)
		}
		if !allowed {
			return errDenied(n)
		}
		return c.Next()
	}
}
