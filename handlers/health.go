package handlers

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/models"
)

// DetectionOverviewer reports detection's progress over every organization.
type DetectionOverviewer interface {
	Overview(ctx context.Context) (models.DetectionOverview, error)
}

// Health answers 200 when ping (the database's SELECT 1) succeeds within two seconds, else
// 503. The detail says how far behind detection is: leaves not read yet, organizations
// behind, and the largest lag in seconds (no organization names).
func Health(ping func(context.Context) error, detection DetectionOverviewer) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
		defer cancel()
		if err := ping(ctx); err != nil {
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "down", "database": "unreachable"})
		}
		out := fiber.Map{"status": "ok", "database": "ok"}
		if detection != nil {
			if o, err := detection.Overview(ctx); err != nil {
				out["detection"] = fiber.Map{"status": "unknown"}
			} else {
				out["detection"] = fiber.Map{"status": "ok", "pending_events": o.Pending, "organizations_behind": o.OrgsBehind,
					"lag_seconds": o.MaxLag.Seconds()}
			}
		}
		return c.JSON(out)
	}
}
