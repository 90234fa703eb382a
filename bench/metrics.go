package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// MetricsServer is one server of the metrics benchmark.
type MetricsServer struct {
	URL string
	PID int // for its CPU time; 0 when unknown
}

// MetricsOptions configure the metrics benchmark.
type MetricsOptions struct {
	On, Off      MetricsServer // the same build over the same database, with and without metrics
	Key          string        // an ingest key
	Batches      int           // batch requests per server and round
	BatchSize    int
	BatchClients int
	Singles      int // single-event requests per server and round
	Concurrency  int
	Rounds       int
	// IdleFor is how long each server's idle CPU is measured before the rounds (0: not
	// measured, nor taken out).
	IdleFor time.Duration
	// Sequence appends everything queued to the Merkle logs, in this process: the servers'
	// own sequencer and detection are (nearly) idle, so that neither server's CPU carries
	// that work for the other.
	Sequence func(ctx context.Context) error
	Out      io.Writer
}

// MetricsRound is one round's figures for one server.
type MetricsRound struct {
	BatchRate, SingleRate float64       // events/s
	CPUPerEvent           time.Duration // the server's CPU time per event over the round
}

// MetricsResult is what the metrics benchmark measured: per round, the rates and CPU of
// the server with metrics over the one without (1.0 = no cost), and their medians.
type MetricsResult struct {
	BatchRatio, SingleRatio, CPURatio []float64
	MedianBatch, MedianSingle         float64
	MedianCPU                         float64
	CPUKnown                          bool
}

// Metrics measures what the Prometheus instrumentation costs ingest: two servers of the
// same build over the same database, one with AUDITDB_METRICS=off, take the same load in
// alternating rounds (the order flips every round, so both share the machine's
// conditions). Each round sends Batches batches and then Singles single events to one
// server, lets the sequencer catch up untimed, then does the same to the other. The server
// with metrics is scraped once per round, as Prometheus would, outside the timed phases.
// Between phases this process sequences what the phase queued (o.Sequence), untimed.
func Metrics(ctx context.Context, o MetricsOptions) (MetricsResult, error) {
	var res MetricsResult
	fmt.Fprintf(o.Out, "metrics benchmark: per server and round %d batches of %d (%d clients) and %d single events (concurrency %d), %d rounds\n",
		o.Batches, o.BatchSize, o.BatchClients, o.Singles, o.Concurrency, o.Rounds)
	type side struct {
		name     string
		srv      MetricsServer
		client   *poster
		rounds   []MetricsRound
		idleRate float64 // CPU time per wall time with no load
	}
	sides := []*side{{name: "metrics on", srv: o.On}, {name: "metrics off", srv: o.Off}}
	for _, s := range sides {
		c, err := newPoster(s.srv.URL, o.Key, 4*max(o.Concurrency, o.BatchClients), eventsPath, batchPath)
		if err != nil {
			return res, err
		}
		defer c.close()
		s.client = c
		// Warm up: connections, prepared statements, partitions, caches.
		warm := makeEvents(o.BatchSize+200, time.Now().UnixNano())
		if err := post(c, batchPath, []byte("["+strings.Join(warm[:o.BatchSize], ",")+"]")); err != nil {
			return res, err
		}
		if _, err := closedLoop(200, o.Concurrency, func(i int) error { return post(c, eventsPath, []byte(warm[o.BatchSize+i])) }); err != nil {
			return res, err
		}
	}
	if err := o.Sequence(ctx); err != nil {
		return res, err
	}
	res.CPUKnown = o.On.PID > 0 && o.Off.PID > 0
	// A server's background jobs (which instance takes a job's lock is a race the first
	// server to start tends to win) use CPU whatever the load: each server's idle rate,
	// measured with no load, is taken out of its phases' CPU.
	idle := func() {
		for _, s := range sides {
			s.idleRate = 0
		}
		c0 := make([]time.Duration, len(sides))
		for i, s := range sides {
			c0[i], _ = processCPU(s.srv.PID)
		}
		start := time.Now()
		time.Sleep(o.IdleFor)
		for i, s := range sides {
			c1, err := processCPU(s.srv.PID)
			if err != nil {
				res.CPUKnown = false
				continue
			}
			s.idleRate = float64(c1-c0[i]) / float64(time.Since(start))
		}
	}
	if res.CPUKnown && o.IdleFor > 0 {
		idle()
		fmt.Fprintf(o.Out, "  idle CPU (background jobs): metrics on %.1f %%, off %.1f %% of a core\n",
			100*sides[0].idleRate, 100*sides[1].idleRate)
	}
	for r := 0; r < o.Rounds; r++ {
		order := []*side{sides[0], sides[1]}
		if r%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, s := range order {
			bodies := makeEvents(o.Batches*o.BatchSize+o.Singles, time.Now().UnixNano())
			batches := make([][]byte, o.Batches)
			for i := range batches {
				batches[i] = []byte("[" + strings.Join(bodies[i*o.BatchSize:(i+1)*o.BatchSize], ",") + "]")
			}
			singles := asBytes(bodies[o.Batches*o.BatchSize:])
			cpu0, cpuErr := processCPU(s.srv.PID)
			phaseStart := time.Now()
			start := phaseStart
			if _, err := closedLoop(len(batches), o.BatchClients, func(i int) error { return post(s.client, batchPath, batches[i]) }); err != nil {
				return res, err
			}
			batchDur := time.Since(start)
			start = time.Now()
			if _, err := closedLoop(len(singles), o.Concurrency, func(i int) error { return post(s.client, eventsPath, singles[i]) }); err != nil {
				return res, err
			}
			singleDur := time.Since(start)
			cpu1, cpuErr1 := processCPU(s.srv.PID)
			round := MetricsRound{BatchRate: float64(o.Batches*o.BatchSize) / batchDur.Seconds(),
				SingleRate: float64(o.Singles) / singleDur.Seconds()}
			if cpuErr == nil && cpuErr1 == nil {
				busy := cpu1 - cpu0 - time.Duration(s.idleRate*float64(time.Since(phaseStart)))
				round.CPUPerEvent = max(busy, 0) / time.Duration(o.Batches*o.BatchSize+o.Singles)
			} else {
				res.CPUKnown = false
			}
			s.rounds = append(s.rounds, round)
			fmt.Fprintf(o.Out, "  round %d, %-11s: batch route %.0f/s, single events %.0f/s, server CPU %s/event\n",
				r+1, s.name, round.BatchRate, round.SingleRate, round.CPUPerEvent)
			if err := o.Sequence(ctx); err != nil {
				return res, err
			}
		}
		if err := scrapeOnce(o.On.URL); err != nil {
			return res, err
		}
		on, off := sides[0].rounds[r], sides[1].rounds[r]
		res.BatchRatio = append(res.BatchRatio, on.BatchRate/off.BatchRate)
		res.SingleRatio = append(res.SingleRatio, on.SingleRate/off.SingleRate)
		if res.CPUKnown && off.CPUPerEvent > 0 {
			res.CPURatio = append(res.CPURatio, float64(on.CPUPerEvent)/float64(off.CPUPerEvent))
		}
	}
	res.MedianBatch, res.MedianSingle, res.MedianCPU = median(res.BatchRatio), median(res.SingleRatio), median(res.CPURatio)
	spread := func(xs []float64) string {
		if len(xs) == 0 {
			return "n/a"
		}
		s := slices.Clone(xs)
		slices.Sort(s)
		return fmt.Sprintf("%.3f–%.3f", s[0], s[len(s)-1])
	}
	fmt.Fprintf(o.Out, "with metrics / without, median of %d rounds (range across rounds):\n", o.Rounds)
	fmt.Fprintf(o.Out, "  batch throughput   %.3f (%s)\n", res.MedianBatch, spread(res.BatchRatio))
	fmt.Fprintf(o.Out, "  single throughput  %.3f (%s)\n", res.MedianSingle, spread(res.SingleRatio))
	if res.CPUKnown {
		fmt.Fprintf(o.Out, "  server CPU / event %.3f (%s)\n", res.MedianCPU, spread(res.CPURatio))
	}
	return res, nil
}

// scrapeOnce reads url's /metrics as Prometheus would.
func scrapeOnce(url string) error {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: GET /metrics: status %d", resp.StatusCode)
	}
	return nil
}

// median of xs (0 for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
