package web

import (
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"auditdb/handlers"
	"auditdb/models"
	"auditdb/static"
)

// routes is the whole URL map of the console and API.
func routes(app *fiber.App, d Deps) {
	app.Use("/static", filesystem.New(filesystem.Config{Root: http.FS(static.FS), MaxAge: 3600}))
	app.Get("/healthz", handlers.Health(models.Pinger(d.DB)))

	limits := handlers.LoginLimits{PerAccount: d.LoginPerAccount, PerAddress: d.LoginPerAddress}
	app.Get("/login", handlers.LoginPage())
	app.Post("/login", loginCSRF, handlers.Login(d.Users, d.Sessions, limits, d.Log))

	console := app.Group("", requireSession(d.Sessions, d.Users), sessionCSRF)
	console.Post("/logout", handlers.Logout(d.Sessions))
	console.Post("/session/org", handlers.SwitchOrg(d.Sessions))
	console.Get("/", handlers.Dashboard(d.Events, d.Now))
	console.Get("/events", handlers.ListEvents(d.Events, d.Now))
	console.Get("/events/:id", handlers.ShowEvent(d.Events))

	console.Get("/alerts", handlers.NotBuilt("alerts", "Alerts",
		"Security and compliance alerts raised from the event stream, to acknowledge and resolve."))
	console.Get("/reports", handlers.NotBuilt("reports", "Reports",
		"HIPAA, GDPR and integrity reports as CSV or PDF, on demand or on a schedule."))
	console.Get("/retention", handlers.NotBuilt("retention", "Retention",
		"Retention policies per data classification, archival and legal holds."))
	console.Get("/gdpr", handlers.NotBuilt("gdpr", "GDPR",
		"Subject access exports, pseudonymization and erasure requests."))
	console.Get("/roles", handlers.NotBuilt("roles", "Roles",
		"Organization roles and their permissions, edited in forms."))
	console.Get("/settings", handlers.NotBuilt("settings", "Settings",
		"Organization settings, API keys and dead letters."))

	app.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound })
}
