package jobs

import (
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"auditdb/models"
)

// RequestDurationMetric is the HTTP request histogram the report reads (labels route,
// method, code), registered by the server's metrics.
const RequestDurationMetric = "auditdb_http_request_duration_seconds"

// LatencyReader turns the request histogram into p50/p95 per route group over the requests
// since its previous call.
type LatencyReader struct {
	g    prometheus.Gatherer
	mu   sync.Mutex
	last map[string]bucketCounts
}

type bucketCounts struct {
	bounds []float64
	counts []uint64 // cumulative
	total  uint64
}

// NewLatencyReader reads from g (prometheus.DefaultGatherer in serve).
func NewLatencyReader(g prometheus.Gatherer) *LatencyReader {
	return &LatencyReader{g: g, last: map[string]bucketCounts{}}
}

// RouteGroup is the part of a route pattern a report groups by: /api/v1/<resource> for the
// API, the first path segment for the console.
func RouteGroup(route string) string {
	parts := strings.Split(strings.Trim(route, "/"), "/")
	if len(parts) >= 3 && parts[0] == "api" {
		return "/" + strings.Join(parts[:3], "/")
	}
	if parts[0] == "" {
		return "/"
	}
	return "/" + parts[0]
}

// Read returns p50/p95 in milliseconds per route group for the requests since the previous
// Read (all requests on the first); empty when the histogram is not registered.
func (l *LatencyReader) Read() map[string]models.Quantiles {
	fams, err := l.g.Gather()
	if err != nil && len(fams) == 0 {
		return nil
	}
	now := map[string]bucketCounts{}
	for _, fam := range fams {
		if fam.GetName() != RequestDurationMetric || fam.GetType() != dto.MetricType_HISTOGRAM {
			continue
		}
		for _, m := range fam.GetMetric() {
			route := ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "route" {
					route = lp.GetValue()
				}
			}
			g := RouteGroup(route)
			h := m.GetHistogram()
			cur := now[g]
			if cur.bounds == nil {
				for _, b := range h.GetBucket() {
					cur.bounds = append(cur.bounds, b.GetUpperBound())
				}
				cur.counts = make([]uint64, len(cur.bounds))
			}
			for i, b := range h.GetBucket() {
				if i < len(cur.counts) {
					cur.counts[i] += b.GetCumulativeCount()
				}
			}
			cur.total += h.GetSampleCount()
			now[g] = cur
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]models.Quantiles{}
	for g, cur := range now {
		d := cur
		if prev, ok := l.last[g]; ok && len(prev.counts) == len(cur.counts) && prev.total <= cur.total {
			d.counts = make([]uint64, len(cur.counts))
			for i := range cur.counts {
				d.counts[i] = cur.counts[i] - prev.counts[i]
			}
			d.total = cur.total - prev.total
		}
		if d.total == 0 {
			continue
		}
		out[g] = models.Quantiles{P50: quantile(0.5, d) * 1000, P95: quantile(0.95, d) * 1000}
	}
	l.last = now
	return out
}

// quantile estimates the q-quantile by linear interpolation inside its bucket, as
// Prometheus's histogram_quantile does; above the last bound it answers that bound.
func quantile(q float64, b bucketCounts) float64 {
	rank := q * float64(b.total)
	i := sort.Search(len(b.counts), func(i int) bool { return float64(b.counts[i]) >= rank })
	if i >= len(b.bounds) {
		if len(b.bounds) == 0 {
			return math.NaN()
		}
		return b.bounds[len(b.bounds)-1]
	}
	lower, below := 0.0, uint64(0)
	if i > 0 {
		lower, below = b.bounds[i-1], b.counts[i-1]
	}
	in := b.counts[i] - below
	if in == 0 {
		return b.bounds[i]
	}
	return lower + (b.bounds[i]-lower)*(rank-float64(below))/float64(in)
}
