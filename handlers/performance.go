package handlers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/models/querycache"
	"auditdb/views/components"
	"auditdb/views/pages/performance"
)

// PerfReader is what the performance page reads and does.
type PerfReader interface {
	SlowQueries(ctx context.Context) ([]models.SlowQuery, error)
	Indexes(ctx context.Context) ([]models.IndexUsage, error)
	Tables(ctx context.Context, now time.Time) ([]models.TableStats, error)
	Pool() models.PoolStats
	Options() models.PerfOptions
	Snapshots(ctx context.Context, since time.Time) ([]models.PerfSnapshot, error)
	Explain(ctx context.Context, org, name string, now time.Time) ([]string, error)
	Vacuum(ctx context.Context, org, table string, by models.Actor) error
}

// CacheStatser reports the query cache's counters.
type CacheStatser interface {
	Stats() querycache.Stats
}

// HealthSource reports each component's health and the worst state.
type HealthSource interface {
	Health(ctx context.Context) models.HealthReport
}

// PerfDeps are what the performance page needs.
type PerfDeps struct {
	Perf   PerfReader
	Cache  CacheStatser
	Health HealthSource
	Now    func() time.Time
}

const donePerfVacuum = "perf-vacuum"

func init() {
	doneMessages[donePerfVacuum] = "VACUUM ANALYZE of %s done; recorded in the audit log (performance.vacuum)."
}

// PerformancePage shows the performance page: to superadmins the database as a whole, to
// an organization's viewer (audit.metrics read) its own figures. ?org= names the
// organization of the figures: another organization than the viewer's is a 404 unless
// the viewer is a superadmin. ?vacuum=<table> adds the maintenance's confirmation step.
func PerformancePage(d PerfDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, err := perfProps(c, d)
		if err != nil {
			return err
		}
		if t := c.Query("vacuum"); t != "" && p.Superadmin {
			if !hasOption(p.VacuumTables, t) {
				p.Error = &components.FormError{Field: "vacuum", Message: "is not one of this database's tables"}
				return render.HTML(c, fiber.StatusBadRequest, performance.Page(render.ViewerOf(c).Shell("Performance", "performance"), p))
			}
			p.Confirm = t
		}
		return render.HTML(c, fiber.StatusOK, performance.Page(render.ViewerOf(c).Shell("Performance", "performance"), p))
	}
}

// PerformanceExplain shows the page with the plan of the named console statement; a name
// not on the list is a 404.
func PerformanceExplain(d PerfDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, err := perfProps(c, d)
		if err != nil {
			return err
		}
		name := c.Params("name")
		lines, err := d.Perf.Explain(c.UserContext(), p.Org, name, d.Now())
		if err != nil {
			return err
		}
		p.Explain = &performance.Explain{Name: name, Lines: lines}
		return render.HTML(c, fiber.StatusOK, performance.Page(render.ViewerOf(c).Shell("Performance", "performance"), p))
	}
}

// VacuumTable runs VACUUM ANALYZE on the posted table once its name is typed again; a table
// that is not ours is refused (400).
func VacuumTable(d PerfDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		table, confirm := c.FormValue("table"), c.FormValue("confirm")
		err := error(nil)
		if confirm != table {
			err = models.Invalid("confirm", "type the table's name exactly to confirm")
		} else {
			err = d.Perf.Vacuum(c.UserContext(), v.OrgID, table, ActorOf(c))
		}
		if fe := refusalOf(err); fe != nil {
			p, perr := perfProps(c, d)
			if perr != nil {
				return perr
			}
			p.Error = fe
			if hasOption(p.VacuumTables, table) {
				p.Confirm = table
			}
			return render.HTML(c, render.StatusOf(err), performance.Page(v.Shell("Performance", "performance"), p))
		} else if err != nil {
			return err
		}
		return redirectDone(c, "/performance", donePerfVacuum, table)
	}
}

func hasOption(opts []components.Option, v string) bool {
	for _, o := range opts {
		if o.Value == v {
			return true
		}
	}
	return false
}

// perfProps reads the page's figures for the request's viewer.
func perfProps(c *fiber.Ctx, d PerfDeps) (performance.Props, error) {
	v := render.ViewerOf(c)
	ctx := c.UserContext()
	now := d.Now().UTC()
	org := c.Query("org")
	if org == "" {
		org = v.OrgID
	}
	if org != v.OrgID && !v.User.Superadmin {
		return performance.Props{}, models.NotFound("organization")
	}
	if org == "" {
		return performance.Props{}, models.NotFound("organization")
	}
	name := v.OrgName
	if org != v.OrgID {
		name = org
	}
	p := performance.Props{Superadmin: v.User.Superadmin, OrgName: name, Org: org, CSRF: v.Session.CSRFToken(),
		Flash: flash(c), ExplainNames: models.ExplainNames()}
	if d.Health != nil {
		rep := d.Health.Health(ctx)
		p.HealthOverall = string(rep.State)
		for _, h := range rep.Components {
			p.Health = append(p.Health, performance.HealthRow{Name: h.Name, State: string(h.State), Detail: h.Message})
		}
	}
	if !p.Superadmin {
		return p, nil
	}
	opts := d.Perf.Options()
	p.SlowThreshold = strconv.FormatInt(opts.SlowQuery.Milliseconds(), 10) + " ms"
	slow, err := d.Perf.SlowQueries(ctx)
	switch {
	case errors.Is(err, models.ErrNoStatements):
	case err != nil:
		return p, err
	default:
		p.SlowAvailable = true
		for _, q := range slow {
			p.Slow = append(p.Slow, performance.SlowRow{Query: models.ShortQuery(q.Query, 400), Calls: components.Thousands(q.Calls),
				Mean: ms(q.MeanMS), Total: ms(q.TotalMS), HitPct: fmt.Sprintf("%.1f %%", q.SharedHitPct)})
		}
	}
	tables, err := d.Perf.Tables(ctx, now)
	if err != nil {
		return p, err
	}
	for _, t := range tables {
		row := performance.TableRow{Table: t.Table, Parent: t.Parent, Size: models.HumanBytes(t.Bytes),
			Live: components.Thousands(t.LiveRows), Dead: components.Thousands(t.DeadRows),
			LastVacuum: optTime(t.LastVacuum), LastAnalyze: optTime(t.LastAnalyze)}
		switch {
		case t.NeedsVacuum:
			row.Needs = "VACUUM ANALYZE"
		case t.NeedsAna:
			row.Needs = "ANALYZE"
		}
		p.Tables = append(p.Tables, row)
		p.VacuumTables = append(p.VacuumTables, components.Option{Value: t.Table, Label: t.Table})
	}
	sort.Slice(p.VacuumTables, func(i, j int) bool { return p.VacuumTables[i].Value < p.VacuumTables[j].Value })
	indexes, err := d.Perf.Indexes(ctx)
	if err != nil {
		return p, err
	}
	for _, i := range indexes {
		p.Indexes = append(p.Indexes, performance.IndexRow{Table: i.Table, Index: i.Index, Scans: components.Thousands(i.Scans),
			Size: models.HumanBytes(i.Bytes), Unused: i.Unused()})
	}
	p.Suggestions = models.Suggestions(tables, indexes)
	pool := d.Perf.Pool()
	p.Pool = []performance.Stat{
		{Label: "Open", Value: strconv.Itoa(pool.Open), TestID: "perf-pool-open"},
		{Label: "In use", Value: strconv.Itoa(pool.InUse), TestID: "perf-pool-inuse"},
		{Label: "Idle", Value: strconv.Itoa(pool.Idle), TestID: "perf-pool-idle"},
		{Label: "Waits", Value: components.Thousands(pool.Waits), TestID: "perf-pool-waits"},
		{Label: "Average acquire wait", Value: ms(pool.AvgAcquireMS), TestID: "perf-pool-acquire"},
	}
	if w := pool.Writer; w != nil {
		p.WriterPool = []performance.Stat{
			{Label: "Open", Value: strconv.Itoa(w.Total) + " of " + strconv.Itoa(w.Max), TestID: "perf-writer-pool-open"},
			{Label: "In use", Value: strconv.Itoa(w.InUse), TestID: "perf-writer-pool-inuse"},
			{Label: "Acquisitions", Value: components.Thousands(w.Acquires), TestID: "perf-writer-pool-acquires"},
			{Label: "Canceled", Value: components.Thousands(w.Canceled), TestID: "perf-writer-pool-canceled"},
			{Label: "Success rate", Value: fmt.Sprintf("%.1f %%", w.SuccessPct), TestID: "perf-writer-pool-success"},
			{Label: "Average acquire time", Value: ms(w.AvgAcquireMS), TestID: "perf-writer-pool-acquire"},
		}
	}
	if d.Cache != nil {
		st := d.Cache.Stats()
		state := "on"
		if !st.Enabled {
			state = "off"
		} else if !st.RedisAvailable {
			state = "on (in process only: Redis unavailable)"
		}
		p.Cache = []performance.Stat{
			{Label: "State", Value: state, TestID: "perf-cache-state"},
			{Label: "Hit ratio", Value: fmt.Sprintf("%.1f %%", st.HitRatio()*100), TestID: "perf-cache-ratio"},
			{Label: "Hits / misses", Value: components.Thousands(int64(st.Hits)) + " / " + components.Thousands(int64(st.Misses)), TestID: "perf-cache-hits"},
			{Label: "Entries", Value: components.Thousands(int64(st.Entries)) + " of " + components.Thousands(int64(st.MaxEntries)), TestID: "perf-cache-entries"},
			{Label: "Size", Value: models.HumanBytes(int64(st.Bytes)) + " of " + models.HumanBytes(st.MaxBytes), TestID: "perf-cache-size"},
			{Label: "Evictions", Value: components.Thousands(int64(st.Evictions)), TestID: "perf-cache-evictions"},
		}
	}
	week, err := d.Perf.Snapshots(ctx, now.Add(-7*24*time.Hour))
	if err != nil {
		return p, err
	}
	var day []models.PerfSnapshot
	for _, s := range week {
		if !s.TakenAt.Before(now.Add(-24 * time.Hour)) {
			day = append(day, s)
		}
	}
	p.Charts24h = perfCharts("perf-24h", day, time.Hour*3, false)
	p.Charts7d = perfCharts("perf-7d", hourly(week), 24*time.Hour, true)
	if len(week) > 0 {
		last := week[len(week)-1]
		at := last.TakenAt
		p.LastReportAt, p.LastReport = &at, fmt.Sprintf("taken in %s.", ms(last.DurationMS))
		if len(last.Figures.AutoActions) > 0 {
			p.LastReport += " Automatic actions: " + fmt.Sprint(last.Figures.AutoActions)
		}
	}
	return p, nil
}

func ms(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + " ms" }

func optTime(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return components.DateTime(*t)
}

// hourly averages the reports per UTC hour (the 7-day charts' points).
func hourly(in []models.PerfSnapshot) []models.PerfSnapshot {
	var out []models.PerfSnapshot
	var n float64
	for _, s := range in {
		h := s.TakenAt.Truncate(time.Hour)
		if len(out) == 0 || !out[len(out)-1].TakenAt.Equal(h) {
			out = append(out, models.PerfSnapshot{TakenAt: h, Figures: s.Figures})
			n = 1
			continue
		}
		last := &out[len(out)-1]
		n++
		last.Figures.IngestPerSec += (s.Figures.IngestPerSec - last.Figures.IngestPerSec) / n
		last.Figures.Cache.Ratio += (s.Figures.Cache.Ratio - last.Figures.Cache.Ratio) / n
		last.Figures.Pool.InUse = max(last.Figures.Pool.InUse, s.Figures.Pool.InUse)
		last.Figures.SlowQueries = max(last.Figures.SlowQueries, s.Figures.SlowQueries)
		last.Figures.SequencerLagSec = max(last.Figures.SequencerLagSec, s.Figures.SequencerLagSec)
		last.Figures.DetectionLagSec = max(last.Figures.DetectionLagSec, s.Figures.DetectionLagSec)
		for g, q := range s.Figures.Latency {
			if last.Figures.Latency == nil {
				last.Figures.Latency = map[string]models.Quantiles{}
			}
			cur := last.Figures.Latency[g]
			last.Figures.Latency[g] = models.Quantiles{P50: max(cur.P50, q.P50), P95: max(cur.P95, q.P95)}
		}
	}
	return out
}

// Chart colours of the performance page: the same meaning has the same colour everywhere.
var latencyColours = []string{"#2563eb", "#7c3aed", "#0d9488", "#ea580c"}

// perfCharts draws the reports: ingest rate, cache hit ratio, the pipelines' lag (the age
// of the oldest write waiting for the sequencer, as /healthz reports it, and detection's
// largest lag; the 7-day points keep each hour's worst) and request p95 of the busiest
// route groups. Axis labels every tick apart.
func perfCharts(id string, snaps []models.PerfSnapshot, tick time.Duration, days bool) []components.LineChart {
	labels := make([]string, len(snaps))
	short := make([]string, len(snaps))
	ingest := make([]float64, len(snaps))
	ratio := make([]float64, len(snaps))
	seqLag := make([]float64, len(snaps))
	detLag := make([]float64, len(snaps))
	groups := map[string]int{}
	for i, s := range snaps {
		labels[i] = components.DateTime(s.TakenAt)
		if s.TakenAt.Equal(s.TakenAt.Truncate(tick)) {
			if days {
				short[i] = s.TakenAt.Format("Jan 2")
			} else {
				short[i] = s.TakenAt.Format("15:04")
			}
		}
		ingest[i] = s.Figures.IngestPerSec
		seqLag[i] = math.Round(s.Figures.SequencerLagSec*10) / 10
		detLag[i] = math.Round(s.Figures.DetectionLagSec*10) / 10
		ratio[i] = math.NaN()
		if s.Figures.Cache.Reads > 0 {
			ratio[i] = math.Round(s.Figures.Cache.Ratio*1000) / 10
		}
		for g := range s.Figures.Latency {
			groups[g]++
		}
	}
	var names []string
	for g := range groups {
		names = append(names, g)
	}
	sort.Slice(names, func(i, j int) bool {
		if groups[names[i]] != groups[names[j]] {
			return groups[names[i]] > groups[names[j]]
		}
		return names[i] < names[j]
	})
	if len(names) > len(latencyColours) {
		names = names[:len(latencyColours)]
	}
	var lat []components.LineSeries
	for k, g := range names {
		vals := make([]float64, len(snaps))
		for i, s := range snaps {
			vals[i] = math.NaN()
			if q, ok := s.Figures.Latency[g]; ok {
				vals[i] = math.Round(q.P95*10) / 10
			}
		}
		lat = append(lat, components.LineSeries{Name: g, Colour: latencyColours[k], Values: vals})
	}
	return []components.LineChart{
		components.NewLineChart(id+"-ingest", "Ingest (events/s)", "/s", labels, short,
			[]components.LineSeries{{Name: "Events per second", Colour: "#2563eb", Values: ingest}}),
		components.NewLineChart(id+"-cache", "Query cache hit ratio (%)", " %", labels, short,
			[]components.LineSeries{{Name: "Hit ratio", Colour: "#16a34a", Values: ratio}}),
		components.NewLineChart(id+"-lag", "Pipeline lag (s)", " s", labels, short, []components.LineSeries{
			{Name: "Sequencer (oldest waiting write)", Colour: "#7c3aed", Values: seqLag},
			{Name: "Detection (largest)", Colour: "#ea580c", Values: detLag}}),
		components.NewLineChart(id+"-latency", "Request p95 by route group (ms)", " ms", labels, short, lat),
	}
}
