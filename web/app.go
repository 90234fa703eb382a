// Package web assembles the Fiber application: the URL map (routes.go), middleware,
// the error handler and static assets.
package web

import (
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/requestid"
)

// New returns the console and API application over s, which NewServices built (so it
// has the signing key, the authorizer and the ingest parts: the console never runs
// unaudited or unguarded).
func New(s *Services) *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:                 "auditdb",
		ErrorHandler:            errorHandler(s.Log, s.Errors),
		DisableStartupMessage:   true,
		BodyLimit:               bodyLimit,
		ReadTimeout:             30 * time.Second,
		WriteTimeout:            60 * time.Second,
		IdleTimeout:             2 * time.Minute,
		EnableTrustedProxyCheck: true,
		TrustedProxies:          proxies(s.TrustedProxies).fiberList(),
		ProxyHeader:             fiber.HeaderXForwardedFor,
	})
	if s.Metrics != MetricsOff {
		app.Use(instrument)
	}
	app.Use(forwardedClient(s.TrustedProxies))
	app.Use(serverTiming)
	app.Use(requestid.New())
	app.Use(recoverPanics)
	app.Use(securityHeaders)
	app.Use(decodeConsoleBody(bodyLimit))
	routes(app, s)
	return app
}
