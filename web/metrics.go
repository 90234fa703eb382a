package web

import (
	"maps"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"auditdb/models/metrics"
)

// MetricsPath is where Prometheus scrapes.
const MetricsPath = "/metrics"

// MetricsHandler serves every series of prometheus.DefaultGatherer (ours, the Go runtime's
// and the process's) in the Prometheus exposition format, for a listener of its own.
func MetricsHandler() http.Handler { return promhttp.Handler() }

// timing is the first middleware of every request: it reports how long the server spent
// on the request (routing, handler, rendering) in a Server-Timing header, for browsers'
// developer tools and the benchmarks, and, when record is set, times the request into
// the Prometheus histogram by route pattern, method and status class and counts 429 and
// 503 answers. When recording, an error is answered here, through the application's
// error handler, so the status recorded is the one sent.
//
// It runs on every request, ingest's included, so the metrics add little to it (see
// BenchmarkInstrument and `auditdb bench metrics`): one clock reading pair serves both
// purposes, and the histogram's series of a route, method and status class is looked up
// once and kept (seriesMap), so a request costs a map read keyed by the route's pointer
// instead of hashing three label strings, and allocates nothing.
func timing(record bool) fiber.Handler {
	var kept seriesMap
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		if record && err != nil {
			if herr := c.App().ErrorHandler(c, err); herr != nil {
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
			err = nil
		}
		took := time.Since(start)
		c.Set("Server-Timing", serverTimingValue(took))
		if !record {
			return err
		}
		status := c.Response().StatusCode()
		key := seriesKey{route: c.Route(), method: methodIndex(c.Method())}
		key.star = key.route == nil || starred(c, key.route)
		rs := kept.get(c, key)
		rs.observer(status).Observe(took.Seconds())
		if status == fiber.StatusTooManyRequests || status == fiber.StatusServiceUnavailable {
			metrics.HTTPOverload.WithLabelValues(rs.label, statusText(status)).Inc()
		}
		return nil
	}
}

// serverTimingValue is the Server-Timing header's value for a request that took d:
// "app;dur=" and the milliseconds with three decimals.
func serverTimingValue(d time.Duration) string {
	var b [32]byte
	out := append(b[:0], "app;dur="...)
	out = strconv.AppendFloat(out, float64(d.Microseconds())/1000, 'f', 3, 64)
	return string(out)
}

// seriesKey names a request's series: the route that answered (nil: none), whether it is
// labelled by its prefix and a star (see routeLabel), and the method.
type seriesKey struct {
	route  *fiber.Route
	star   bool
	method uint8
}

// seriesMap keeps the routeSeries by key: read without a lock (a map of comparable
// pointer-sized keys hashes far cheaper than sync.Map's interface keys), copied on the
// rare write (once per route, method and prefix form the server answers).
type seriesMap struct {
	mu sync.Mutex
	m  atomic.Pointer[map[seriesKey]*routeSeries]
}

func (sm *seriesMap) get(c *fiber.Ctx, k seriesKey) *routeSeries {
	if m := sm.m.Load(); m != nil {
		if s, ok := (*m)[k]; ok {
			return s
		}
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	old := sm.m.Load()
	if old != nil {
		if s, ok := (*old)[k]; ok {
			return s
		}
	}
	next := map[seriesKey]*routeSeries{}
	if old != nil {
		next = maps.Clone(*old)
	}
	s := newRouteSeries(c, k)
	next[k] = s
	sm.m.Store(&next)
	return s
}

// routeSeries are the histogram's series of one route and method, one per status class,
// each created on first use (a class never answered has no series).
type routeSeries struct {
	label, method string
	classes       [6]atomic.Pointer[observer]
}

type observer struct{ prometheus.Observer }

func newRouteSeries(c *fiber.Ctx, k seriesKey) *routeSeries {
	return &routeSeries{label: routeLabel(c), method: knownMethods[k.method]}
}

// statusClasses are the classes' labels by index (see classIndex).
var statusClasses = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func classIndex(status int) int {
	if k := status / 100; k >= 1 && k <= 5 {
		return k
	}
	return 0
}

func (s *routeSeries) observer(status int) prometheus.Observer {
	k := classIndex(status)
	if o := s.classes[k].Load(); o != nil {
		return o.Observer
	}
	o := &observer{metrics.HTTPDuration.WithLabelValues(s.label, s.method, statusClasses[k])}
	s.classes[k].CompareAndSwap(nil, o)
	return o.Observer
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
	if starred(c, r) {
		return strings.TrimSuffix(r.Path, "/") + "/*"
	}
	return r.Path
}

// starred reports whether r answered for more than its own path: a middleware's prefix.
func starred(c *fiber.Ctx, r *fiber.Route) bool {
	return len(r.Params) == 0 && !strings.EqualFold(strings.TrimSuffix(c.Path(), "/"), strings.TrimSuffix(r.Path, "/"))
}

// knownMethods are the method labels by index (see methodIndex): constant strings, since
// Fiber's method string lives in a buffer reused by the next request and a label must
// outlive it.
var knownMethods = [...]string{"other", fiber.MethodGet, fiber.MethodPost, fiber.MethodHead, fiber.MethodPut,
	fiber.MethodDelete, fiber.MethodPatch, fiber.MethodOptions}

func methodIndex(m string) uint8 {
	for i := 1; i < len(knownMethods); i++ {
		if m == knownMethods[i] {
			return uint8(i)
		}
	}
	return 0
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
