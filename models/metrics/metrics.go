// Package metrics holds auditdb's Prometheus series, registered once with
// prometheus.DefaultRegisterer (next to the Go runtime and process collectors it already
// carries), and the small functions the rest of the program records through. It imports
// nothing of ours, so the ingest writer, the jobs and the web layer can all record into it.
//
// Recording can be switched off for the whole process (SetEnabled(false), AUDITDB_METRICS=off):
// every function here then returns at once, so the instrumentation's cost can be measured
// against a server without it.
package metrics

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace starts every series of ours.
const Namespace = "auditdb"

var enabled atomic.Bool

func init() { enabled.Store(true) }

// SetEnabled turns recording on or off for the whole process.
func SetEnabled(on bool) { enabled.Store(on) }

// Enabled reports whether recording is on.
func Enabled() bool { return enabled.Load() }

// durationBuckets are the HTTP and job duration buckets, in seconds: 1 ms to 30 s.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

var (
	// HTTPDuration is every answered request's duration by route pattern (never the raw
	// path), method and status class ("2xx".."5xx").
	HTTPDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
		Help:    "Time from a request's arrival to its answer, by route pattern, method and status class.",
		Buckets: durationBuckets,
	}, []string{"route", "method", "code"})
	// HTTPOverload counts answers that turned a client away for lack of capacity: 429 (a
	// limit or a full queue) and 503 (a dependency down).
	HTTPOverload = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "http", Name: "overload_responses_total",
		Help: "Answers 429 (too many requests) and 503 (unavailable), by route pattern and code.",
	}, []string{"route", "code"})

	ingestEvents = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "ingest", Name: "events_total",
		Help: "Events committed by the group-commit writer.",
	})
	ingestBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "ingest", Name: "bytes_total",
		Help: "Request body bytes (after decompression) of accepted ingest requests.",
	})
	writerQueued = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "ingest", Name: "writer_queued_events",
		Help: "Events accepted by the group-commit writer and not answered yet.",
	})
	writerGathering = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "ingest", Name: "writer_gathering_events",
		Help:    "Events per gathering (one transaction) of the group-commit writer.",
		Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000},
	})

	jobRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "job", Name: "runs_total",
		Help: "Background job runs on this instance, by job.",
	}, []string{"job"})
	jobFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "job", Name: "failures_total",
		Help: "Background job runs that failed (an error or a panic), by job.",
	}, []string{"job"})
	jobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "job", Name: "duration_seconds",
		Help:    "Duration of background job runs, by job.",
		Buckets: durationBuckets,
	}, []string{"job"})
)

func init() {
	prometheus.MustRegister(HTTPDuration, HTTPOverload, ingestEvents, ingestBytes, writerQueued, writerGathering,
		jobRuns, jobFailures, jobDuration, pools, lags, queryCache)
}

// StatusClass is the label of an HTTP status: "2xx" for 200..299, and so on (a constant
// string: no allocation per request).
func StatusClass(status int) string {
	switch status / 100 {
	case 1:
		return "1xx"
	case 2:
		return "2xx"
	case 3:
		return "3xx"
	case 4:
		return "4xx"
	case 5:
		return "5xx"
	}
	return "other"
}

// IngestBytes counts the body bytes of an accepted ingest request.
func IngestBytes(n int) {
	if enabled.Load() {
		ingestBytes.Add(float64(n))
	}
}

// IngestCommitted counts events the writer committed.
func IngestCommitted(events int) {
	if enabled.Load() {
		ingestEvents.Add(float64(events))
	}
}

// WriterQueued moves the writer's queue depth by delta events.
func WriterQueued(delta int) {
	if enabled.Load() {
		writerQueued.Add(float64(delta))
	}
}

// WriterGathering records the size of one gathering the writer wrote.
func WriterGathering(events int) {
	if enabled.Load() {
		writerGathering.Observe(float64(events))
	}
}

// JobRun records one run of job: its duration and whether it failed.
func JobRun(job string, took time.Duration, failed bool) {
	if !enabled.Load() {
		return
	}
	jobRuns.WithLabelValues(job).Inc()
	jobDuration.WithLabelValues(job).Observe(took.Seconds())
	if failed {
		jobFailures.WithLabelValues(job).Inc()
	}
}

// PoolStats are a connection pool's figures, whatever the driver.
type PoolStats struct {
	Max, Open, InUse, Idle int64
	// Waits is how many acquisitions had to wait, WaitTime their total wait.
	Waits    int64
	WaitTime time.Duration
	// Acquires counts successful acquisitions where the driver counts them (pgx), with
	// their total time; Canceled those canceled by their context. 0 otherwise.
	Acquires    int64
	AcquireTime time.Duration
	Canceled    int64
}

// poolCollector reports the pools registered with SetPool at every scrape.
type poolCollector struct {
	mu      sync.Mutex
	sources map[string]func() PoolStats

	max, open, inUse, idle, waits, waitTime, acquires, acquireTime, canceled *prometheus.Desc
}

func newPoolCollector() *poolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "db_pool", name), help, []string{"pool"}, nil)
	}
	return &poolCollector{
		sources:     map[string]func() PoolStats{},
		max:         d("max_connections", "The pool's connection limit."),
		open:        d("open_connections", "Connections open, in use or idle."),
		inUse:       d("in_use_connections", "Connections in use."),
		idle:        d("idle_connections", "Idle connections."),
		waits:       d("waits_total", "Acquisitions that waited for a connection."),
		waitTime:    d("wait_seconds_total", "Total time acquisitions waited for a connection."),
		acquires:    d("acquires_total", "Successful acquisitions (pools that count them)."),
		acquireTime: d("acquire_seconds_total", "Total time of the successful acquisitions (pools that count them)."),
		canceled:    d("canceled_acquires_total", "Acquisitions canceled by their context before a connection came (pools that count them)."),
	}
}

var pools = newPoolCollector()

// SetPool reports stats under pool="name" from now on, replacing an earlier source of that
// name (nil removes it).
func SetPool(name string, stats func() PoolStats) {
	pools.mu.Lock()
	defer pools.mu.Unlock()
	if stats == nil {
		delete(pools.sources, name)
		return
	}
	pools.sources[name] = stats
}

func (p *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{p.max, p.open, p.inUse, p.idle, p.waits, p.waitTime, p.acquires, p.acquireTime, p.canceled} {
		ch <- d
	}
}

func (p *poolCollector) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	sources := make(map[string]func() PoolStats, len(p.sources))
	for k, v := range p.sources {
		sources[k] = v
	}
	p.mu.Unlock()
	for name, stats := range sources {
		s := stats()
		g := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		c := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, name)
		}
		g(p.max, float64(s.Max))
		g(p.open, float64(s.Open))
		g(p.inUse, float64(s.InUse))
		g(p.idle, float64(s.Idle))
		c(p.waits, float64(s.Waits))
		c(p.waitTime, s.WaitTime.Seconds())
		c(p.acquires, float64(s.Acquires))
		c(p.acquireTime, s.AcquireTime.Seconds())
		c(p.canceled, float64(s.Canceled))
	}
}

// Lag reads how far behind a background pipeline is.
type Lag func(ctx context.Context) (time.Duration, error)

// lagCollector reads the sequencer's and detection's lag from the database at every scrape
// (bounded by lagTimeout), so the figure is right whichever instance runs those jobs.
type lagCollector struct {
	mu        sync.Mutex
	sequencer Lag
	detection Lag
	seqDesc   *prometheus.Desc
	detDesc   *prometheus.Desc
}

// lagTimeout bounds each lag query of a scrape.
const lagTimeout = 2 * time.Second

var lags = &lagCollector{
	seqDesc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "sequencer", "lag_seconds"),
		"Age of the oldest committed event not yet appended to its Merkle log (0 when none waits).", nil, nil),
	detDesc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "detection", "lag_seconds"),
		"The largest time an organization's logged events have waited for detection.", nil, nil),
}

// SetLags installs the readers of the sequencer's and detection's lag (nil: not reported).
func SetLags(sequencer, detection Lag) {
	lags.mu.Lock()
	defer lags.mu.Unlock()
	lags.sequencer, lags.detection = sequencer, detection
}

func (l *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- l.seqDesc; ch <- l.detDesc }

func (l *lagCollector) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	seq, det := l.sequencer, l.detection
	l.mu.Unlock()
	for _, r := range []struct {
		read Lag
		desc *prometheus.Desc
	}{{seq, l.seqDesc}, {det, l.detDesc}} {
		if r.read == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), lagTimeout)
		d, err := r.read(ctx)
		cancel()
		if err != nil {
			continue // the series is absent from this scrape; the scrape itself still answers
		}
		ch <- prometheus.MustNewConstMetric(r.desc, prometheus.GaugeValue, d.Seconds())
	}
}

// CacheStats are the query cache's figures as a scrape reports them.
type CacheStats struct {
	Hits, Misses, Evictions uint64
	Entries                 int
	Bytes                   uint64
}

// cacheCollector reads the query cache's counters at every scrape: nothing is recorded
// per lookup, so the cache's hot path carries no metrics cost.
type cacheCollector struct {
	mu    sync.Mutex
	stats func() CacheStats

	hits, misses, evictions, entries, bytes *prometheus.Desc
}

var queryCache = func() *cacheCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "query_cache", name), help, nil, nil)
	}
	return &cacheCollector{
		hits:      d("hits_total", "Query cache lookups answered from L1 or Redis."),
		misses:    d("misses_total", "Query cache lookups read from the database."),
		evictions: d("evictions_total", "L1 entries pushed out by its bounds or their TTL."),
		entries:   d("entries", "L1 entries now."),
		bytes:     d("bytes", "Bytes of L1's values now (as stored, compressed or not)."),
	}
}()

// SetQueryCache reports the query cache's figures from stats at every scrape (nil: none).
func SetQueryCache(stats func() CacheStats) {
	queryCache.mu.Lock()
	defer queryCache.mu.Unlock()
	queryCache.stats = stats
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.evictions, c.entries, c.bytes} {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	stats := c.stats
	c.mu.Unlock()
	if stats == nil {
		return
	}
	s := stats()
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(s.Evictions))
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(s.Entries))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Bytes))
}
