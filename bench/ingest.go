package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/eventjson"
	"auditdb/models/ingest"
)

// IngestOptions configure the ingest benchmark.
type IngestOptions struct {
	URL          string // the server's base URL
	Key          string // an ingest key of Org
	Org          string
	Events       int // events sent through the batch route, and copied raw for the baseline
	BatchSize    int // events per batch request
	BatchClients int // concurrent batch clients
	Singles      int // single-event requests at full concurrency
	Concurrency  int // concurrent single-event clients
	HalfRateFor  time.Duration
	Rounds       int                   // the baseline and the routes alternate this many times
	DB           *gorm.DB              // the server's database, for the baseline and the sequencer queue
	DSN          string                // the same database, for the baseline's pgx connection
	Builder      *ingest.Builder       // builds and seals the baseline's rows like the server does
	PeakRSS      func() (int64, error) // the server's peak resident set (VmHWM), in bytes; nil when unknown
	ServerPID    int                   // the server's process, for its CPU time; 0 when it is not on this machine
	Out          io.Writer
}

// IngestResult is what the benchmark measured.
type IngestResult struct {
	CopyRate       float64 // events/s, raw COPY into a scratch copy of audit_log
	BatchRate      float64 // events/s through POST /events/batch
	BatchLatency   Latency
	SingleRate     float64 // events/s through POST /events at full concurrency
	SingleLatency  Latency
	HalfRate       float64 // the rate offered in the half-rate phase
	HalfLatency    Latency
	HalfServer     Latency       // the same requests as the server timed them (Server-Timing)
	QueueAfter     int64         // the most events waiting for the sequencer at the end of a batch phase
	QueuePeak      int64         // the most events seen waiting for the sequencer during the run
	SequencerDrain time.Duration // the longest wait, after a batch phase, until everything was logged
	PeakRSS        int64
	// CopyCPU, BatchCPU and SingleCPU split the CPU time of the baseline, batch and
	// single-event phases between the server, PostgreSQL and the load generator (which runs
	// the baseline's COPY); CPUKnown says whether they were read.
	CopyCPU, BatchCPU, SingleCPU CPUSplit
	CPUKnown                     bool
}

// Latency summarises request times.
type Latency struct{ P50, P99 time.Duration }

func latency(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return Latency{P50: at(0.50), P99: at(0.99)}
}

// Ingest measures, in Rounds rounds so that the baseline and the routes share the
// machine's conditions (other work on a small machine swings every figure): a raw COPY of
// a share of the events into a scratch copy of audit_log, the batch route with the same
// events, and single events at full concurrency. Then single events at half the measured
// rate, and how long the sequencer takes to log everything. It prints a table with the
// ratios against the baseline.
func Ingest(ctx context.Context, o IngestOptions) (IngestResult, error) {
	var res IngestResult
	// The load generator shares the machine with the server: like serve, it trades memory
	// for fewer garbage collections, so that it takes less of the CPU it measures.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	bodies := makeEvents(o.Events+o.Singles, time.Now().UnixNano())
	fmt.Fprintf(o.Out, "ingest benchmark: %d events in batches of %d (%d clients), %d single events at concurrency %d, in %d rounds\n",
		o.Events, o.BatchSize, o.BatchClients, o.Singles, o.Concurrency, o.Rounds)
	cp, err := newCopier(ctx, o, bodies[:o.Events])
	if err != nil {
		return res, fmt.Errorf("bench: raw COPY baseline: %w", err)
	}
	defer cp.close()
	if err := drain(ctx, o.DB, 2*time.Minute); err != nil {
		return res, err
	}
	stopSampling := sampleQueue(ctx, o.DB, &res.QueuePeak)
	defer stopSampling()
	// On a small machine the load generator competes with the server, so a light client
	// measures the server (see poster).
	client, err := newPoster(o.URL, o.Key, 4*o.Concurrency, eventsPath, batchPath)
	if err != nil {
		return res, err
	}
	defer client.close()

	// Warm up: connections, prepared statements, partitions, caches.
	warm := makeEvents(1500, time.Now().UnixNano())
	if err := post(client, batchPath, []byte("["+strings.Join(warm[:1000], ",")+"]")); err != nil {
		return res, err
	}
	if _, err := closedLoop(500, o.Concurrency, func(i int) error {
		return post(client, eventsPath, []byte(warm[1000+i]))
	}); err != nil {
		return res, err
	}
	var copyTime, batchTime, singleTime time.Duration
	var batchLat, singleLat []time.Duration
	meter := cpuMeter{serverPID: o.ServerPID}
	res.CPUKnown = o.ServerPID > 0
	measure := func(into *CPUSplit, from cpuSnapshot) {
		split, ok := since(from, meter.snapshot())
		*into = into.Add(split)
		res.CPUKnown = res.CPUKnown && ok
	}
	for r := 0; r < o.Rounds; r++ {
		lo, hi := r*o.Events/o.Rounds, (r+1)*o.Events/o.Rounds
		cpuFrom := meter.snapshot()
		d, err := cp.copy(ctx, lo, hi)
		if err != nil {
			return res, fmt.Errorf("bench: raw COPY baseline: %w", err)
		}
		copyTime += d
		measure(&res.CopyCPU, cpuFrom)

		var batches [][]byte
		for i := lo; i < hi; i += o.BatchSize {
			batches = append(batches, []byte("["+strings.Join(bodies[i:min(i+o.BatchSize, hi)], ",")+"]"))
		}
		cpuFrom = meter.snapshot()
		start := time.Now()
		lat, err := closedLoop(len(batches), o.BatchClients, func(i int) error {
			return post(client, batchPath, batches[i])
		})
		if err != nil {
			return res, err
		}
		batchEnd := time.Now()
		measure(&res.BatchCPU, cpuFrom)
		batchDur := batchEnd.Sub(start)
		batchTime += batchDur
		batchLat = append(batchLat, lat...)
		res.QueueAfter = max(res.QueueAfter, queued(ctx, o.DB))

		// Single events are measured on their own, not while the sequencer catches up with
		// the batch phase.
		if err := drain(ctx, o.DB, 2*time.Minute); err != nil {
			return res, err
		}
		res.SequencerDrain = max(res.SequencerDrain, time.Since(batchEnd))
		singles := asBytes(bodies[o.Events+r*o.Singles/o.Rounds : o.Events+(r+1)*o.Singles/o.Rounds])
		cpuFrom = meter.snapshot()
		start = time.Now()
		lat, err = closedLoop(len(singles), o.Concurrency, func(i int) error {
			return post(client, eventsPath, singles[i])
		})
		if err != nil {
			return res, err
		}
		singleDur := time.Since(start)
		measure(&res.SingleCPU, cpuFrom)
		singleTime += singleDur
		singleLat = append(singleLat, lat...)
		fmt.Fprintf(o.Out, "  round %d: raw COPY %.0f/s, batch route %.0f/s, single events %.0f/s\n", r+1,
			float64(hi-lo)/d.Seconds(), float64(hi-lo)/batchDur.Seconds(), float64(len(singles))/singleDur.Seconds())
	}
	if err := drain(ctx, o.DB, 2*time.Minute); err != nil {
		return res, err
	}
	res.CopyRate = float64(o.Events) / copyTime.Seconds()
	res.BatchRate, res.BatchLatency = float64(o.Events)/batchTime.Seconds(), latency(batchLat)
	res.SingleRate, res.SingleLatency = float64(o.Singles)/singleTime.Seconds(), latency(singleLat)

	stopSampling() // the half-rate phase measures latency: no other queries meanwhile
	res.HalfRate = res.SingleRate / 2
	half := asBytes(makeEvents(int(res.HalfRate*o.HalfRateFor.Seconds())+1, time.Now().UnixNano()))
	inServer := make([]time.Duration, len(half))
	lat, err := openLoop(len(half), res.HalfRate, 4*o.Concurrency, func(i int) error {
		var err error
		inServer[i], err = postTimed(client, eventsPath, half[i])
		return err
	})
	if err != nil {
		return res, err
	}
	res.HalfLatency, res.HalfServer = latency(lat), latency(inServer)
	fmt.Fprintf(o.Out, "  single events at %.0f/s: p99 %s\n", res.HalfRate, ms(res.HalfLatency.P99))

	if o.PeakRSS != nil {
		if res.PeakRSS, err = o.PeakRSS(); err != nil {
			return res, err
		}
	}
	printIngest(o, res)
	return res, nil
}

func printIngest(o IngestOptions, r IngestResult) {
	w := o.Out
	fmt.Fprintf(w, "\n%-44s %12s %10s %10s %10s %8s\n", "case", "events/s", "× COPY", "p50 ack", "p99 ack", "target")
	// rate is events/s (0: not a rate of its own); ratio says whether to compare it with the
	// baseline (the half-rate phase offers a rate derived from the measured one).
	row := func(name string, rate float64, ratio bool, l Latency, target string) {
		events, times := "—", "—"
		if rate > 0 {
			events = fmt.Sprintf("%.0f", rate)
			if ratio {
				times = fmt.Sprintf("%.2f", rate/r.CopyRate)
			}
		}
		p50, p99 := "—", "—"
		if l.P99 > 0 {
			p50, p99 = ms(l.P50), ms(l.P99)
		}
		fmt.Fprintf(w, "%-44s %12s %10s %10s %10s %8s\n", name, events, times, p50, p99, target)
	}
	row("raw COPY into a scratch audit_log (baseline)", r.CopyRate, true, Latency{}, "")
	row(fmt.Sprintf("POST /events/batch (%d per request)", o.BatchSize), r.BatchRate, true, r.BatchLatency, "≥ 0.60")
	row(fmt.Sprintf("POST /events, concurrency %d", o.Concurrency), r.SingleRate, true, r.SingleLatency, "≥ 0.30")
	row("POST /events at half that rate, open loop", r.HalfRate, false, r.HalfLatency, "p99≤50ms")
	row("  the same, time inside the server", 0, false, r.HalfServer, "")
	fmt.Fprintf(w, "\nsequencer (runs in the server): at most %d events waiting during the run, at most %d at the end\n"+
		"  of a batch phase; everything was in the Merkle log at most %s after a batch phase ended\n",
		r.QueuePeak, r.QueueAfter, r.SequencerDrain.Round(10*time.Millisecond))
	if r.PeakRSS > 0 {
		fmt.Fprintf(w, "server peak RSS (VmHWM): %.1f MiB (target ≤ 150 MiB)\n", float64(r.PeakRSS)/(1<<20))
	} else {
		fmt.Fprintln(w, "server peak RSS: not measured (server not started by the benchmark)")
	}
	if r.CPUKnown {
		cpus := runtime.NumCPU()
		line := func(name string, c CPUSplit, events int) {
			fmt.Fprintf(w, "  %-14s server %s, PostgreSQL %s, load generator %s; CPUs idle %.0f%% of the phase\n", name,
				perEvent(c.Server, events), perEvent(c.Postgres, events), perEvent(c.LoadGenerator, events),
				100*c.Idle.Seconds()/(c.Wall.Seconds()*float64(cpus)))
		}
		fmt.Fprintf(w, "CPU time per event (from /proc, %d CPUs):\n", cpus)
		line("raw COPY", r.CopyCPU, o.Events)
		line("batch route", r.BatchCPU, o.Events)
		line("single events", r.SingleCPU, o.Singles)
	} else {
		fmt.Fprintln(w, "CPU time per event: not measured (the server or PostgreSQL is not a process on this machine)")
	}
	fmt.Fprintln(w, "(ack = request sent until its 201 arrived, which is after the commit)")
}

// copier holds the events built and sealed as the server would, and a scratch copy of
// audit_log (same columns and indexes) to COPY them into.
type copier struct {
	conn   *pgx.Conn
	events []models.Event
	cols   []string
}

func newCopier(ctx context.Context, o IngestOptions, bodies []string) (*copier, error) {
	now := time.Now()
	c := &copier{events: make([]models.Event, len(bodies)), cols: ingest.CopyColumns()}
	for i, b := range bodies {
		in, err := eventjson.DecodeOne([]byte(b))
		if err != nil {
			return nil, err
		}
		if c.events[i], err = o.Builder.BuildOne(ctx, o.Org, in, now); err != nil {
			return nil, err
		}
	}
	var err error
	if c.conn, err = pgx.Connect(ctx, o.DSN); err != nil {
		return nil, err
	}
	month := models.MonthStart(now)
	for _, sql := range []string{
		`DROP TABLE IF EXISTS bench_audit_log`,
		`CREATE TABLE bench_audit_log (LIKE audit_log INCLUDING ALL) PARTITION BY RANGE ("timestamp")`,
		fmt.Sprintf(`CREATE TABLE bench_audit_log_p PARTITION OF bench_audit_log FOR VALUES FROM ('%s') TO ('%s')`,
			month.Format(time.RFC3339), month.AddDate(0, 1, 0).Format(time.RFC3339)),
	} {
		if _, err := c.conn.Exec(ctx, sql); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// copy times copying events[lo:hi] in batches of 1,000 over one connection.
func (c *copier) copy(ctx context.Context, lo, hi int) (time.Duration, error) {
	start := time.Now()
	for i := lo; i < hi; i += 1000 {
		batch := c.events[i:min(i+1000, hi)]
		err := pgx.BeginFunc(ctx, c.conn, func(tx pgx.Tx) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"bench_audit_log"}, c.cols, pgx.CopyFromSlice(len(batch), func(j int) ([]any, error) {
				return ingest.CopyRow(&batch[j]), nil
			}))
			return err
		})
		if err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

func (c *copier) close() {
	ctx := context.Background()
	c.conn.Exec(ctx, `DROP TABLE IF EXISTS bench_audit_log`)
	c.conn.Close(ctx)
}

// closedLoop runs n requests on workers goroutines, each sending the next as soon as its
// last was answered, and returns every request's time.
func closedLoop(n, workers int, do func(i int) error) ([]time.Duration, error) {
	return runLoop(n, workers, func(int) time.Time { return time.Now() }, do)
}

// openLoop starts n requests at a steady rate per second, whatever the answers, on up to
// workers goroutines, and returns every request's time from its scheduled start (so a
// late start counts against it).
func openLoop(n int, rate float64, workers int, do func(i int) error) ([]time.Duration, error) {
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	return runLoop(n, workers, func(i int) time.Time {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		return due
	}, do)
}

// runLoop hands requests 0..n-1 to workers goroutines; begin(i) waits as the loop demands
// and returns the instant request i's time is counted from. It stops at the first error.
func runLoop(n, workers int, begin func(i int) time.Time, do func(i int) error) ([]time.Duration, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				from := begin(i)
				if err := do(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				lat[i] = time.Since(from)
			}
		}()
	}
	wg.Wait()
	return lat, firstErr
}

// asBytes converts request bodies ahead of the timed loops.
func asBytes(bodies []string) [][]byte {
	out := make([][]byte, len(bodies))
	for i, b := range bodies {
		out[i] = []byte(b)
	}
	return out
}

// The routes the benchmark posts to.
const (
	eventsPath = "/api/v1/events"
	batchPath  = "/api/v1/events/batch"
)

func post(client *poster, path string, body []byte) error {
	_, err := postTimed(client, path, body)
	return err
}

// postTimed posts body and returns the time the server reports having spent on it (its
// Server-Timing header); any answer but 201 is an error.
func postTimed(client *poster, path string, body []byte) (time.Duration, error) {
	status, answer, serverTime, err := client.post(path, body)
	if err != nil {
		return 0, err
	}
	if status != 201 {
		return 0, fmt.Errorf("bench: POST %s: status %d: %.200s", path, status, answer)
	}
	return serverTime, nil
}

// drain waits until the sequencer's queue is empty.
func drain(ctx context.Context, db *gorm.DB, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for queued(ctx, db) > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: the sequencer did not empty its queue within %s", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// sampleQueue records the longest sequencer queue seen in *peak until the returned
// function is called. Four looks a second resolve the sequencer's 2-second cycle; each is a
// count over the queue, so looking more often would take PostgreSQL time from the run.
func sampleQueue(ctx context.Context, db *gorm.DB, peak *int64) func() {
	done := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if n := queued(ctx, db); n > atomic.LoadInt64(peak) {
					atomic.StoreInt64(peak, n)
				}
			}
		}
	}()
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

func queued(ctx context.Context, db *gorm.DB) int64 {
	var n int64
	db.WithContext(ctx).Raw(`SELECT coalesce(sum(cardinality(audit_log_ids)), 0) FROM audit_leaf_queue`).Scan(&n)
	return n
}

// makeEvents returns n event bodies shaped like a clinical system's audit trail, each about
// half a kilobyte.
func makeEvents(n int, seed int64) []string {
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	actions := []string{"patient.record.read", "patient.record.update", "auth.login.success", "observation.create",
		"medication.order", "lab.order", "data.export", "report.generate"}
	statuses := []string{"success", "success", "success", "failure", "attempt"}
	classes := []string{"PHI", "PHI", "INTERNAL", "CONFIDENTIAL"}
	out := make([]string, n)
	for i := range out {
		ev := map[string]any{
			"action":             actions[rng.IntN(len(actions))],
			"status":             statuses[rng.IntN(len(statuses))],
			"principalId":        "clinician-" + strconv.Itoa(rng.IntN(500)),
			"targetResourceType": "Patient",
			"targetResourceId":   "patient-" + strconv.Itoa(rng.IntN(100_000)),
			"outcomeDescription": "Chart section opened from the ward view during a scheduled round",
			"correlationId":      fmt.Sprintf("%016x", rng.Uint64()),
			"dataClassification": classes[rng.IntN(len(classes))],
			"details": map[string]any{
				"ip":        fmt.Sprintf("10.%d.%d.%d", rng.IntN(256), rng.IntN(256), rng.IntN(256)),
				"userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) EHRClient/4.2",
				"method":    "GET", "path": "/fhir/Patient/" + strconv.Itoa(rng.IntN(100_000)),
				"ward": "ward-" + strconv.Itoa(rng.IntN(40)), "durationMs": rng.IntN(900),
			},
		}
		b, _ := json.Marshal(ev)
		out[i] = string(b)
	}
	return out
}
