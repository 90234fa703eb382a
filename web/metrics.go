package web

import (
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"auditdb/models/metrics"
)

// MetricsPath is where Prometheus scrapes.
const MetricsPath = "/metrics"

// MetricsHandler serves every series of prometheus.DefaultGatherer (ours, the Go runtime's
// and the process's) in the Prometheus exposition format, for a listener of its own.
func MetricsHandler() http.Handler { return promhttp.Handler() }

// instrument times every request and counts it by route pattern, method and status class,
// and counts 429 and 503 answers. An error is answered here, through the application's
// error handler, so the status recorded is the one sent.
func instrument(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	status := c.Response().StatusCode()
	route := routeLabel(c)
	metrics.HTTPDuration.WithLabelValues(route, methodLabel(c.Method()), metrics.StatusClass(status)).Observe(time.Since(start).Seconds())
	if status == fiber.StatusTooManyRequests || status == fiber.StatusServiceUnavailable {
		metrics.HTTPOverload.WithLabelValues(route, statusText(status)).Inc()
	}
	return nil
}

func statusText(status int) string {
	if status == fiber.StatusTooManyRequests {
		return "429"
	}
	return "503"
}

// routeLabel is the pattern of the route that answered (/events/:id), never the raw path,
// so the series stay few. A request answered by middleware mounted on a prefix before any
// route (a redirect to the sign-in page, a not-found answer, static files) is labelled by
// that prefix and a star: "/*", "/static/*", "/api/*".
func routeLabel(c *fiber.Ctx) string {
	r := c.Route()
	if r == nil {
		return "/*"
	}
	if len(r.Params) == 0 && !strings.EqualFold(strings.TrimSuffix(c.Path(), "/"), strings.TrimSuffix(r.Path, "/")) {
		return strings.TrimSuffix(r.Path, "/") + "/*"
	}
	return r.Path
}

// methodLabel is the request's method as a constant string: Fiber's method string lives
// in a buffer reused by the next request, and a label must outlive it.
func methodLabel(m string) string {
	for _, known := range []string{fiber.MethodGet, fiber.MethodPost, fiber.MethodHead, fiber.MethodPut,
		fiber.MethodDelete, fiber.MethodPatch, fiber.MethodOptions} {
		if m == known {
			return known
		}
	}
	return "other"
}

// loopbackOnly admits only clients on this machine: the TCP peer must be a loopback
// address, unless it is a trusted proxy, in which case the client it forwarded for (the
// address forwardedClient settled on) must be. A loopback peer that is not trusted but sent
// forwarding headers is a proxy on this machine forwarding someone else: refused. Everyone
// else gets 403.
func loopbackOnly(trusted proxies) fiber.Handler {
	return func(c *fiber.Ctx) error {
		peer, ok := netip.AddrFromSlice(c.Context().RemoteIP())
		if !ok {
			return fiber.NewError(fiber.StatusForbidden, "metrics are served to this machine only")
		}
		peer = peer.Unmap()
		client := peer
		if trusted.trusts(peer) {
			a, err := netip.ParseAddr(c.Get(fiber.HeaderXForwardedFor))
			if err != nil {
				return fiber.NewError(fiber.StatusForbidden, "metrics are served to this machine only")
			}
			client = a.Unmap()
		} else if forwarded, _ := c.Locals(forwardedUntrusted{}).(bool); forwarded {
			return fiber.NewError(fiber.StatusForbidden, "metrics are served to this machine only; "+
				"a proxy that forwards to this server must be listed in AUDITDB_TRUSTED_PROXIES")
		}
		if !client.IsLoopback() {
			return fiber.NewError(fiber.StatusForbidden, "metrics are served to this machine only")
		}
		return c.Next()
	}
}

// metricsRoute serves /metrics on the main listener to loopback clients, or answers 404
// for it when the metrics are served elsewhere or not at all.
func metricsRoute(app *fiber.App, mode MetricsMode, trusted proxies) {
	if mode != MetricsLoopback {
		app.Get(MetricsPath, func(*fiber.Ctx) error { return fiber.ErrNotFound })
		return
	}
	app.Get(MetricsPath, loopbackOnly(trusted), adaptor.HTTPHandler(MetricsHandler()))
}
