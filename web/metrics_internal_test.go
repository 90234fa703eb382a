package web

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/valyala/fasthttp"

	"auditdb/models/metrics"
)

// BenchmarkInstrument is a request through a minimal application with the server's first
// middleware recording metrics (on) and not (off), driven through the application's
// handler without a network: the difference is what instrumentation adds to each request.
// "before" is the instrumentation as it was until 2026-11-30 (a middleware of its own,
// three label strings hashed per request, Server-Timing's own clock readings), kept here
// so that its cost is measured in the same run as the current one.
// go test ./web -run '^$' -bench Instrument -count 8 -benchtime 300000x
func BenchmarkInstrument(b *testing.B) {
	for _, mode := range []string{"off", "on", "before"} {
		b.Run(mode, func(b *testing.B) {
			app := fiber.New(fiber.Config{DisableStartupMessage: true})
			switch mode {
			case "off":
				app.Use(timing(false))
			case "on":
				app.Use(timing(true))
			case "before":
				app.Use(instrumentBefore, serverTimingBefore)
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

// instrumentBefore and serverTimingBefore are the earlier middleware, for the benchmark.
func instrumentBefore(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	status := c.Response().StatusCode()
	route := routeLabel(c)
	metrics.HTTPDuration.WithLabelValues(route, knownMethods[methodIndex(c.Method())], metrics.StatusClass(status)).
		Observe(time.Since(start).Seconds())
	return nil
}

func serverTimingBefore(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	c.Set("Server-Timing", "app;dur="+strconv.FormatFloat(float64(time.Since(start).Microseconds())/1000, 'f', 3, 64))
	return err
}

// TestTimingRecordsEachClassOnce: the kept series are the histogram's own (a request
// counted through them shows under its route, method and class), an error is counted
// with the status the error handler sent, and Server-Timing is set either way.
func TestTimingRecordsEachClassOnce(t *testing.T) {
	for _, record := range []bool{true, false} {
		app := fiber.New(fiber.Config{DisableStartupMessage: true})
		app.Use(timing(record))
		app.Get("/timing-probe/:id", func(c *fiber.Ctx) error {
			if c.Params("id") == "missing" {
				return fiber.ErrNotFound
			}
			return c.SendStatus(fiber.StatusOK)
		})
		count := func(class string) uint64 {
			m := &dto.Metric{}
			if err := metrics.HTTPDuration.WithLabelValues("/timing-probe/:id", "GET", class).(prometheus.Histogram).Write(m); err != nil {
				t.Fatal(err)
			}
			return m.GetHistogram().GetSampleCount()
		}
		ok0, nf0 := count("2xx"), count("4xx")
		for _, path := range []string{"/timing-probe/1", "/timing-probe/2", "/timing-probe/missing"} {
			resp, err := app.Test(httptest.NewRequest("GET", path, nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if !strings.HasPrefix(resp.Header.Get("Server-Timing"), "app;dur=") {
				t.Errorf("record=%v %s: Server-Timing %q", record, path, resp.Header.Get("Server-Timing"))
			}
		}
		want2, want4 := uint64(2), uint64(1)
		if !record {
			want2, want4 = 0, 0
		}
		if got := count("2xx") - ok0; got != want2 {
			t.Errorf("record=%v: %d 2xx requests counted, want %d", record, got, want2)
		}
		if got := count("4xx") - nf0; got != want4 {
			t.Errorf("record=%v: %d 4xx requests counted, want %d", record, got, want4)
		}
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
