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

	// Ingest and read API: API-key authentication, JSON errors. The organization comes
	// from the key; each route names the scope it needs.
	app.Get("/api/v1/openapi.yaml", handlers.OpenAPI())
	ingest := handlers.Ingest{Builder: d.Builder, Sink: d.Writer, Answers: d.Answers, Now: d.Now}
	api := app.Group("/api/v1", requireAPIKey(d.APIKeys))
	api.Post("/events", requireScope(models.ScopeIngest), handlers.IngestEvent(ingest))
	api.Post("/events/batch", requireScope(models.ScopeIngest), handlers.IngestBatch(ingest))
	api.Get("/events", requireScope(models.ScopeRead), handlers.APIListEvents(d.Events, d.Now))
	api.Get("/events/:id", requireScope(models.ScopeRead), handlers.APIGetEvent(d.Events))
	api.Post("/events/:id/verify", requireScope(models.ScopeRead), handlers.APIVerifyEvent(d.Integrity))
	api.Get("/events/:id/proof", requireScope(models.ScopeRead), handlers.APIEventProof(d.Events, d.Merkle))
	api.Get("/checkpoints/latest", requireScope(models.ScopeRead), handlers.APILatestCheckpoint(d.Merkle))

	limits := handlers.LoginLimits{PerAccount: d.LoginPerAccount, PerAddress: d.LoginPerAddress}
	app.Get("/login", handlers.LoginPage())
	app.Post("/login", loginCSRF, handlers.Login(d.Users, d.Sessions, limits, d.Log))

	console := app.Group("", requireSession(d.Sessions, d.Users), sessionCSRF)
	console.Post("/logout", handlers.Logout(d.Sessions))
	console.Post("/session/org", handlers.SwitchOrg(d.Sessions))
	console.Get("/", handlers.Dashboard(d.Events, d.Now))
	console.Get("/events", handlers.ListEvents(d.Events, d.Now))
	console.Get("/events/:id", handlers.ShowEvent(d.Events, d.Integrity))
	console.Post("/events/:id/verify", handlers.VerifyEvent(d.Integrity, d.Integrity))

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

	// Settings: the organization's administrators only.
	settings := console.Group("/settings", requireOrgAdmin)
	settings.Get("", handlers.Settings())
	settings.Get("/apikeys", handlers.ListAPIKeys(d.APIKeys))
	settings.Post("/apikeys", handlers.CreateAPIKey(d.APIKeys))
	settings.Post("/apikeys/:id/revoke", handlers.RevokeAPIKey(d.APIKeys))
	settings.Get("/presets", handlers.ListPresets(d.Presets))
	settings.Get("/presets/new", handlers.NewPreset())
	settings.Post("/presets", handlers.CreatePreset(d.Presets))
	settings.Get("/presets/:id", handlers.EditPreset(d.Presets))
	settings.Post("/presets/:id", handlers.UpdatePreset(d.Presets))
	settings.Get("/dead-letters", handlers.ListDeadLetters(d.DeadLetters))
	settings.Post("/dead-letters/:id/replay", handlers.ReplayDeadLetter(d.Replayer))

	app.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound })
}
