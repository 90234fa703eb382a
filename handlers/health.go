package handlers

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Health answers 200 when ping (the database's SELECT 1) succeeds within two seconds, else
// 503.
func Health(ping func(context.Context) error) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
		defer cancel()
		if err := ping(ctx); err != nil {
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "down", "database": "unreachable"})
		}
		return c.JSON(fiber.Map{"status": "ok", "database": "ok"})
	}
}
