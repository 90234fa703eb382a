// Package web assembles the Fiber application: the URL map (routes.go), middleware,
// the error handler and static assets.
package web

import (
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/compress"
	"github.com/gofiber/fiber/v2/middleware/requestid"

	"auditdb/static"
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
	// The first middleware times every request: Server-Timing always, the Prometheus
	// histogram unless the metrics are off.
	app.Use(timing(s.Metrics != MetricsOff))
	app.Use(forwardedClient(s.TrustedProxies))
	app.Use(requestid.New())
	app.Use(recoverPanics)
	app.Use(securityHeaders)
	// Pages, fragments, CSS, JavaScript and JSON go out compressed (brotli or gzip, as the
	// client accepts); bodies already compressed or not compressible (images, archives)
	// are left as they are by the compressor itself.
	app.Use(compress.New(compress.Config{Level: compress.LevelBestSpeed, Next: ingestRequest}))
	app.Use(decodeConsoleBody(bodyLimit))
	a, err := loadAssets(static.FS)
	if err != nil {
		// The tree is embedded in the binary: reading it fails only on a broken build.
		panic("web: static files: " + err.Error())
	}
	app.Use(viewContext(a))
	routes(app, s, a)
	return app
}

// ingestRequest reports whether the request posts events: its answer is a small receipt,
// and the ingest path keeps every microsecond (see `auditdb bench ingest`), so it is sent
// uncompressed.
func ingestRequest(c *fiber.Ctx) bool {
	if c.Method() != fiber.MethodPost {
		return false
	}
	p := c.Path()
	return strings.EqualFold(p, apiPrefix+"/events") || strings.EqualFold(p, apiPrefix+"/events/batch")
}
