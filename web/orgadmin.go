package web

import (
	"github.com/gofiber/fiber/v2"

	"auditdb/models"
	"auditdb/web/render"
)

// requireOrgAdmin admits administrators and owners of the current organization, and
// superadmins, to the organization's settings (API keys, presets, dead letters). It stands
// in until the Casbin enforcement, which declares (resource, action) per route, replaces it.
func requireOrgAdmin(c *fiber.Ctx) error {
	v := render.ViewerOf(c)
	if v == nil || v.OrgID == "" {
		return models.Forbidden("you are not a member of any organization")
	}
	if v.User.Superadmin || v.Role == "org:admin" || v.Role == "org:owner" {
		return c.Next()
	}
	return models.Forbidden("only the organization's administrators may change its settings")
}
