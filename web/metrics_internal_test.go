package web

import (
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// BenchmarkInstrument is a request through a minimal application with and without the
// metrics middleware, driven through the application's handler without a network: the
// difference is what instrumentation adds to each request.
// go test ./web -run '^$' -bench Instrument -count 6
func BenchmarkInstrument(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			app := fiber.New(fiber.Config{DisableStartupMessage: true})
			if on {
				app.Use(instrument)
			}
			app.Post("/api/v1/events/:id", func(c *fiber.Ctx) error { return c.SendStatus(fiber.StatusCreated) })
			h := app.Handler()
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			for b.Loop() {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.Header.SetMethod(fiber.MethodPost)
				ctx.Request.SetRequestURI("/api/v1/events/42")
				h(&ctx)
				if ctx.Response.StatusCode() != fiber.StatusCreated {
					b.Fatalf("status %d", ctx.Response.StatusCode())
				}
			}
		})
	}
}

// TestRouteLabel: the label is the route's pattern, or a middleware's prefix and a star.
func TestRouteLabel(t *testing.T) {
	app := fiber.New()
	var got string
	record := func(c *fiber.Ctx) error {
		err := c.Next()
		got = routeLabel(c)
		return err
	}
	app.Use(record)
	app.Get("/events/:id", func(c *fiber.Ctx) error { return c.SendStatus(200) })
	app.Get("/login", func(c *fiber.Ctx) error { return c.SendStatus(200) })
	app.Use("/static", func(c *fiber.Ctx) error { return c.SendStatus(200) })
	app.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound })
	for path, want := range map[string]string{
		"/events/123":       "/events/:id",
		"/login":            "/login",
		"/LOGIN/":           "/login",
		"/static/css/a.css": "/static/*",
		"/no/such/98765":    "/*",
	} {
		resp, err := app.Test(httptest.NewRequest("GET", path, nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got != want {
			t.Errorf("%s: label %q, want %q", path, got, want)
		}
	}
}
