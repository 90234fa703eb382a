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
// 503. The detail says how far behind the pipelines are: the sequencer's lag (the age in
// seconds of the oldest write waiting for the Merkle log, the figure the performance
// page charts and /metrics exports), and detection's leaves not read yet, organizations
// behind and largest lag in seconds (no organization names). A nil source is left out.
func Health(ping func(context.Context) error, sequencerLag func(context.Context) (time.Duration, error),
	detection DetectionOverviewer) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
		defer cancel()
		if err := ping(ctx); err != nil {
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "down", "database": "unreachable"})
		}
		out := fiber.Map{"status": "ok", "database": "ok"}
		if sequencerLag != nil {
			if lag, err := sequencerLag(ctx); err != nil {
				out["sequencer"] = fiber.Map{"status": "unknown"}
			} else {
				out["sequencer"] = fiber.Map{"status": "ok", "lag_seconds": lag.Seconds()}
			}
		}
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

// Readiness is what /readyz checks. Ping and Schema must pass; Redis may fail (the
// application then runs degraded on in-process state). A nil check is skipped.
type Readiness struct {
	Ping   func(context.Context) error
	Schema func(context.Context) error
	Redis  func(context.Context) error
}

// readyComponent is one component of the /readyz answer.
type readyComponent struct {
	State   string `json:"state"`
	Message string `json:"message,omitempty"`
}

// Ready answers 200 {"status":"ready"} when the database answers and holds this build's
// newest migration, 200 {"status":"degraded"} when Redis does not answer besides, and 503
// {"status":"not ready"} otherwise, with each component's state; each check has two
// seconds. /healthz stays the liveness probe.
func Ready(r Readiness) fiber.Handler {
	return func(c *fiber.Ctx) error {
		check := func(f func(context.Context) error) error {
			ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
			defer cancel()
			return f(ctx)
		}
		components := map[string]readyComponent{}
		ready, degraded := true, false
		if err := check(r.Ping); err != nil {
			ready = false
			components["database"] = readyComponent{State: "down", Message: "the database does not answer"}
		} else {
			components["database"] = readyComponent{State: "ok"}
			if r.Schema != nil {
				if err := check(r.Schema); err != nil {
					ready = false
					components["migrations"] = readyComponent{State: "behind",
						Message: "the database lacks this build's newest migration (or its history cannot be read); run auditdb migrate"}
				} else {
					components["migrations"] = readyComponent{State: "ok"}
				}
			}
		}
		if r.Redis != nil {
			if err := check(r.Redis); err != nil {
				degraded = true
				components["redis"] = readyComponent{State: "down", Message: "Redis does not answer; running on in-process state"}
			} else {
				components["redis"] = readyComponent{State: "ok"}
			}
		}
		status, code := "ready", fiber.StatusOK
		switch {
		case !ready:
			status, code = "not ready", fiber.StatusServiceUnavailable
		case degraded:
			status = "degraded"
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.Status(code).JSON(fiber.Map{"status": status, "components": components})
	}
}
