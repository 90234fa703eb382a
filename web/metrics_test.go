package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"auditdb/migrations"
	"auditdb/models"
	"auditdb/models/pgtest"
	"auditdb/models/querycache"
	"auditdb/web"
	"auditdb/web/webtest"
)

// scrape fetches base/metrics from this process (a loopback peer) and parses it with the
// Prometheus text parser.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return families
}

// series returns the metrics of family name whose labels include want.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	var out []*dto.Metric
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if got[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, m)
		}
	}
	return out
}

// value is the sum over the matching series: counter, gauge or untyped value, or a
// histogram's sample count.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	for _, m := range series(fams, name, want) {
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum
}

func postEvents(t *testing.T, url, key, body string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestMetricsExposition: after some requests and an ingest, /metrics parses with the
// Prometheus text parser and holds every named series with plausible values. The counters
// are the process's, shared with other tests, so the test compares a scrape before with
// one after.
func TestMetricsExposition(t *testing.T) {
	env := webtest.New(t)
	base := env.Serve()
	org := env.Org("metrics")
	key := env.APIKey(org, models.ScopeIngest)
	before := scrape(t, base)

	single := `{"action":"metrics.test","status":"success"}`
	batch := `[{"action":"metrics.a","status":"success"},{"action":"metrics.b","status":"failure"}]`
	if s := postEvents(t, base+"/api/v1/events", key, single); s != http.StatusCreated {
		t.Fatalf("single event: %d", s)
	}
	if s := postEvents(t, base+"/api/v1/events/batch", key, batch); s != http.StatusCreated {
		t.Fatalf("batch: %d", s)
	}
	for range 3 {
		if resp, err := http.Get(base + "/login"); err != nil {
			t.Fatal(err)
		} else {
			resp.Body.Close()
		}
	}
	unknown, _ := http.NewRequest("GET", base+"/api/v1/no/such/12345", nil)
	unknown.Header.Set("Authorization", "Bearer "+key)
	if resp, err := http.DefaultClient.Do(unknown); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown API path: %d", resp.StatusCode)
	}
	// The per-address sign-in limit (20 failures) turns the client away with 429.
	statuses := failSignIns(t, base, 22, func(int) string { return "" })
	if statuses[len(statuses)-1] != http.StatusTooManyRequests {
		t.Fatalf("the 22nd failed sign-in answered %d, want 429", statuses[len(statuses)-1])
	}
	// One answer read twice through this server's query cache: a miss, then a hit.
	for range 2 {
		if _, err := querycache.Get(context.Background(), env.Services.QueryCache, org, "metrics-probe",
			func(context.Context) (int, error) { return 1, nil }); err != nil {
			t.Fatal(err)
		}
	}
	after := scrape(t, base)

	delta := func(name string, labels map[string]string) float64 {
		return value(after, name, labels) - value(before, name, labels)
	}
	const dur = "auditdb_http_request_duration_seconds"
	if after[dur].GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("%s is %v, want a histogram", dur, after[dur].GetType())
	}
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"route": "/api/v1/events", "method": "POST", "code": "2xx"}, 1},
		{map[string]string{"route": "/api/v1/events/batch", "method": "POST", "code": "2xx"}, 1},
		{map[string]string{"route": "/login", "method": "GET", "code": "2xx"}, 4}, // 3 + failSignIns' form
		{map[string]string{"route": "/api/*", "method": "GET", "code": "4xx"}, 1},
		{map[string]string{"route": "/login", "method": "POST"}, 22},
		{map[string]string{"route": "/login", "method": "POST", "code": "4xx"}, 22},
	} {
		if got := delta(dur, c.labels); got != c.want {
			t.Errorf("%s%v grew by %v, want %v", dur, c.labels, got, c.want)
		}
	}
	// Route labels are patterns, never raw paths.
	for _, m := range after[dur].Metric {
		for _, l := range m.Label {
			if l.GetName() == "route" && strings.Contains(l.GetValue(), "12345") {
				t.Errorf("a raw path became a route label: %q", l.GetValue())
			}
		}
	}
	if got := delta("auditdb_http_overload_responses_total", map[string]string{"route": "/login", "code": "429"}); got < 1 {
		t.Errorf("429 answers counted: %v, want at least 1", got)
	}
	// Other tests of this package may ingest at the same time: at least ours were counted.
	if got := delta("auditdb_ingest_events_total", nil); got < 3 {
		t.Errorf("auditdb_ingest_events_total grew by %v, want at least 3", got)
	}
	if got := delta("auditdb_ingest_bytes_total", nil); got < float64(len(single)+len(batch)) {
		t.Errorf("auditdb_ingest_bytes_total grew by %v, want at least %d", got, len(single)+len(batch))
	}
	if got := delta("auditdb_ingest_writer_gathering_events", nil); got < 1 {
		t.Errorf("no writer gathering recorded (%v)", got)
	}
	if q := series(after, "auditdb_ingest_writer_queued_events", nil); len(q) != 1 || q[0].Gauge.GetValue() < 0 {
		t.Errorf("writer queue depth: %v", q)
	}
	for _, pool := range []string{"console", "ingest"} {
		if got := value(after, "auditdb_db_pool_max_connections", map[string]string{"pool": pool}); got < 1 {
			t.Errorf("pool %s: max connections %v", pool, got)
		}
		if got := value(after, "auditdb_db_pool_open_connections", map[string]string{"pool": pool}); got < 1 {
			t.Errorf("pool %s: open connections %v (it served requests)", pool, got)
		}
		if len(series(after, "auditdb_db_pool_wait_seconds_total", map[string]string{"pool": pool})) != 1 {
			t.Errorf("pool %s: no wait time series", pool)
		}
	}
	// The writer's pgx pool counts its acquisitions: the success rate is derivable.
	ingestPool := map[string]string{"pool": "ingest"}
	if got := delta("auditdb_db_pool_acquires_total", ingestPool); got < 1 {
		t.Errorf("ingest pool acquires grew by %v, want at least 1 (the writer committed)", got)
	}
	if got := value(after, "auditdb_db_pool_acquire_seconds_total", ingestPool); got <= 0 {
		t.Errorf("ingest pool acquire time %v, want > 0", got)
	}
	if len(series(after, "auditdb_db_pool_canceled_acquires_total", ingestPool)) != 1 {
		t.Error("ingest pool: no canceled acquisitions series")
	}
	for _, name := range []string{"auditdb_query_cache_hits_total", "auditdb_query_cache_misses_total"} {
		if got := delta(name, nil); got < 1 {
			t.Errorf("%s grew by %v, want at least 1", name, got)
		}
	}
	if got := value(after, "auditdb_query_cache_entries", nil); got < 1 {
		t.Errorf("auditdb_query_cache_entries %v, want at least 1", got)
	}
	for _, name := range []string{"auditdb_query_cache_evictions_total", "auditdb_query_cache_bytes"} {
		if len(series(after, name, nil)) != 1 {
			t.Errorf("no %s series", name)
		}
	}
	for _, lag := range []string{"auditdb_sequencer_lag_seconds", "auditdb_detection_lag_seconds"} {
		s := series(after, lag, nil)
		if len(s) != 1 || s[0].Gauge.GetValue() < 0 || s[0].Gauge.GetValue() > 3600 {
			t.Errorf("%s: %v", lag, s)
		}
	}
	if got := value(after, "go_goroutines", nil); got < 1 {
		t.Errorf("go_goroutines %v", got)
	}
	if got := value(after, "process_resident_memory_bytes", nil); got < 1<<20 {
		t.Errorf("process_resident_memory_bytes %v", got)
	}
}

// TestSequencerLagMetric: a write waiting for the sequencer shows as a lag that grows,
// and the lag falls to 0 once the sequencer has taken it.
func TestSequencerLagMetric(t *testing.T) {
	env := webtest.New(t)
	base := env.Serve()
	env.Sequence()
	org := env.Org("lag")
	key := env.APIKey(org, models.ScopeIngest)
	if s := postEvents(t, base+"/api/v1/events", key, `{"action":"lag.test","status":"success"}`); s != http.StatusCreated {
		t.Fatalf("ingest: %d", s)
	}
	// Nothing runs the sequencer in this Env but the test: the write waits.
	time.Sleep(1100 * time.Millisecond)
	if got := value(scrape(t, base), "auditdb_sequencer_lag_seconds", nil); got < 1 {
		t.Errorf("a write waiting over a second: lag %v s, want at least 1", got)
	}
	if got := healthzSequencerLag(t, base); got < 1 {
		t.Errorf("/healthz: sequencer lag %v s, want at least 1 (the same age as the metric)", got)
	}
	env.Sequence()
	if got := value(scrape(t, base), "auditdb_sequencer_lag_seconds", nil); got != 0 {
		t.Errorf("after sequencing: lag %v s, want 0", got)
	}
	if got := healthzSequencerLag(t, base); got != 0 {
		t.Errorf("/healthz after sequencing: sequencer lag %v s, want 0", got)
	}
}

// healthzSequencerLag is /healthz's sequencer.lag_seconds.
func healthzSequencerLag(t *testing.T, base string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Sequencer struct {
			Status     string   `json:"status"`
			LagSeconds *float64 `json:"lag_seconds"`
		} `json:"sequencer"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || h.Sequencer.Status != "ok" || h.Sequencer.LagSeconds == nil {
		t.Fatalf("/healthz: %+v (%v), want sequencer.status ok and lag_seconds", h, err)
	}
	return *h.Sequencer.LagSeconds
}

// metricsStatus is /metrics's status for a request from this process to base with the
// given headers.
func metricsStatus(t *testing.T, base string, headers ...string) int {
	t.Helper()
	return proxied(t, "GET", base, "/metrics", nil, headers...).StatusCode
}

// TestMetricsLoopbackOnly: on the main listener /metrics answers loopback clients only,
// judged by the TCP peer unless the peer is a trusted proxy, and then by the client it
// forwarded for; a spoofed X-Forwarded-For never helps.
func TestMetricsLoopbackOnly(t *testing.T) {
	t.Run("untrusted peers", func(t *testing.T) {
		env := webtest.New(t)
		base := env.Serve()
		if s := metricsStatus(t, base); s != http.StatusOK {
			t.Errorf("loopback peer: %d, want 200", s)
		}
		// A proxy on this machine that is not trusted forwards for someone else: refused.
		if s := metricsStatus(t, base, "X-Forwarded-For", "203.0.113.9"); s != http.StatusForbidden {
			t.Errorf("loopback peer forwarding for 203.0.113.9: %d, want 403", s)
		}
		if s := metricsStatus(t, base, "X-Forwarded-For", "127.0.0.1"); s != http.StatusForbidden {
			t.Errorf("untrusted loopback peer forwarding for 127.0.0.1: %d, want 403", s)
		}
		// app.Test's peer is 0.0.0.0: not loopback, whatever it claims.
		for _, xff := range []string{"", "127.0.0.1", "::1"} {
			req := httptest.NewRequest("GET", "/metrics", nil)
			if xff != "" {
				req.Header.Set("X-Forwarded-For", xff)
			}
			if r := env.Anonymous().Do(req); r.StatusCode != http.StatusForbidden {
				t.Errorf("non-loopback peer (X-Forwarded-For %q): %d, want 403", xff, r.StatusCode)
			}
		}
		// A real non-loopback peer, where this machine has a non-loopback address.
		if ip := nonLoopbackIP(t); ip != nil {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
			if err != nil {
				t.Fatal(err)
			}
			go env.App.Listener(ln)
			resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("peer %s: %d, want 403", ip, resp.StatusCode)
			}
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		base := webtest.New(t, webtest.Options{TrustedProxies: []string{"127.0.0.1"}}).Serve()
		if s := metricsStatus(t, base, "X-Forwarded-For", "203.0.113.9"); s != http.StatusForbidden {
			t.Errorf("trusted proxy forwarding for 203.0.113.9: %d, want 403", s)
		}
		// The client hops left of an untrusted one are the client's own words.
		if s := metricsStatus(t, base, "X-Forwarded-For", "127.0.0.1, 203.0.113.9"); s != http.StatusForbidden {
			t.Errorf("trusted proxy forwarding for 203.0.113.9 (spoofed 127.0.0.1 left of it): %d, want 403", s)
		}
		if s := metricsStatus(t, base, "X-Forwarded-For", "127.0.0.1"); s != http.StatusOK {
			t.Errorf("trusted proxy forwarding for 127.0.0.1: %d, want 200", s)
		}
		if s := metricsStatus(t, base); s != http.StatusOK {
			t.Errorf("trusted loopback proxy's own request: %d, want 200", s)
		}
	})
	t.Run("own listener", func(t *testing.T) {
		base := webtest.New(t, webtest.Options{Metrics: web.MetricsSeparate}).Serve()
		if s := metricsStatus(t, base); s != http.StatusNotFound {
			t.Errorf("main listener with a metrics listener of its own: %d, want 404", s)
		}
		srv := httptest.NewServer(web.MetricsHandler())
		defer srv.Close()
		if fams := scrape(t, srv.URL); fams["auditdb_http_request_duration_seconds"] == nil {
			t.Error("the metrics listener lacks the HTTP durations")
		}
	})
}

// nonLoopbackIP returns an address of this machine that is not loopback, or nil.
func nonLoopbackIP(t *testing.T) net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil && !n.IP.IsLinkLocalUnicast() {
			return n.IP
		}
	}
	t.Log("this machine has no non-loopback IPv4 address; the real-peer case is covered by app.Test's 0.0.0.0 peer only")
	return nil
}

type readyAnswer struct {
	Status     string `json:"status"`
	Components map[string]struct {
		State   string `json:"state"`
		Message string `json:"message"`
	} `json:"components"`
}

func readyz(t *testing.T, env *webtest.Env) (int, readyAnswer) {
	t.Helper()
	r := env.Anonymous().Do(httptest.NewRequest("GET", "/readyz", nil))
	var a readyAnswer
	if err := json.NewDecoder(strings.NewReader(r.Body)).Decode(&a); err != nil {
		t.Fatalf("/readyz body %q: %v", r.Body, err)
	}
	return r.StatusCode, a
}

// TestReadyz: ready when the database answers and has the newest migration; degraded but
// ready without Redis; 503 with the newest migration rolled back or the database
// unreachable; /healthz stays liveness.
func TestReadyz(t *testing.T) {
	t.Run("ready", func(t *testing.T) {
		code, a := readyz(t, webtest.New(t))
		if code != http.StatusOK || a.Status != "ready" {
			t.Fatalf("%d %+v, want 200 ready", code, a)
		}
		for _, c := range []string{"database", "migrations", "redis"} {
			if a.Components[c].State != "ok" {
				t.Errorf("%s: %+v", c, a.Components[c])
			}
		}
	})
	t.Run("redis unreachable", func(t *testing.T) {
		dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
		defer dead.Close()
		code, a := readyz(t, webtest.New(t, webtest.Options{Redis: dead}))
		if code != http.StatusOK || a.Status != "degraded" || a.Components["redis"].State != "down" {
			t.Fatalf("%d %+v, want 200 degraded with redis down", code, a)
		}
	})
	t.Run("migrations behind", func(t *testing.T) {
		db, _ := pgtest.ExtraDB(t)
		if err := migrations.Down(t.Context(), db); err != nil {
			t.Fatal(err)
		}
		env := webtest.New(t, webtest.Options{DB: db})
		code, a := readyz(t, env)
		if code != http.StatusServiceUnavailable || a.Status != "not ready" || a.Components["migrations"].State != "behind" {
			t.Fatalf("%d %+v, want 503 with migrations behind", code, a)
		}
		if r := env.Anonymous().Do(httptest.NewRequest("GET", "/healthz", nil)); r.StatusCode != http.StatusOK {
			t.Errorf("/healthz (liveness) with migrations behind: %d, want 200", r.StatusCode)
		}
		// Migrated again, it is ready: the check reads the history each time.
		if err := migrations.Up(t.Context(), db); err != nil {
			t.Fatal(err)
		}
		if code, a := readyz(t, env); code != http.StatusOK {
			t.Fatalf("migrated again: %d %+v, want 200", code, a)
		}
	})
	t.Run("database unreachable", func(t *testing.T) {
		db, err := gorm.Open(postgres.Open("postgres://postgres@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=1"),
			&gorm.Config{DisableAutomaticPing: true, Logger: logger.Default.LogMode(logger.Silent)})
		if err != nil {
			t.Fatal(err)
		}
		env := webtest.New(t, webtest.Options{DB: db})
		code, a := readyz(t, env)
		if code != http.StatusServiceUnavailable || a.Status != "not ready" || a.Components["database"].State != "down" {
			t.Fatalf("%d %+v, want 503 with the database down", code, a)
		}
	})
}
