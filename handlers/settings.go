package handlers

import (
	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/views/pages/settings"
)

// Settings shows the settings areas the viewer may use.
func Settings() fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		var p settings.IndexProps
		for _, s := range []struct {
			section          settings.Section
			resource, action string
		}{
			{settings.Section{Title: "API keys", Description: "Keys services use to post and read events.", Href: "/settings/apikeys", TestID: "settings-apikeys"}, "audit.apikeys", "read"},
			{settings.Section{Title: "Presets", Description: "Defaults and validation rules for events.", Href: "/settings/presets", TestID: "settings-presets"}, "audit.presets", "read"},
			{settings.Section{Title: "Notifications", Description: "Webhooks and email addresses alerts are sent to.", Href: "/settings/notifications", TestID: "settings-notifications"}, "audit.alerts", "update"},
			{settings.Section{Title: "Alert rules", Description: "Detection rules, their thresholds and windows, and the time zone for off hours.", Href: "/settings/alert-rules", TestID: "settings-alert-rules"}, "audit.alerts", "update"},
			{settings.Section{Title: "Dead letters", Description: "Accepted events the database refused, to replay.", Href: "/settings/dead-letters", TestID: "settings-dead-letters"}, "audit.events", "read"},
		} {
			if v.Allowed(s.resource, s.action) {
				p.Sections = append(p.Sections, s.section)
			}
		}
		return render.HTML(c, fiber.StatusOK, settings.Index(v.Shell("Settings", "settings"), p))
	}
}
