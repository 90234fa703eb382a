package handlers

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
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

// dateTime formats a time for settings tables.
func dateTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// formError returns what a form shows for a KindInvalid or KindConflict error, nil for any
// other error (which goes to the error handler).
func formError(err error) *settings.FormError {
	var e *models.Error
	if errors.As(err, &e) && (e.Kind == models.KindInvalid || e.Kind == models.KindConflict) {
		return &settings.FormError{Field: e.Field, Message: e.Message}
	}
	return nil
}
