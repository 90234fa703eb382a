package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
)

// DetectOptions configure the detection benchmark.
type DetectOptions struct {
	// OffURL and OnURL are the base URLs of two servers on the same database, neither running
	// detection of its own: OffURL's writes events only, OnURL's also feeds detection
	// (AUDITDB_DETECT_FEED=true), as a server running detection does. Phases with detection
	// off post to the first, phases with it on to the second.
	OffURL, OnURL string
	Key           string // an ingest key of Org
	Org           string
	Events        int // events sent in all, half with detection on
	BatchSize     int // events per batch request
	BatchClients  int // concurrent batch clients
	Rounds        int // detection off and on alternate this many times
	Every         time.Duration
	ServerPIDs    []int            // the servers' process ids, for their CPU time (none: not measured)
	DB            *gorm.DB         // the server's database (the sequencer queue)
	Detector      *models.Detector // detection as the server's job runs it, on the same database
	CatchUp       *models.Detector // detection reading every pending leaf, between phases (nil: Detector)
	Out           io.Writer
}

// DetectResult is what the detection benchmark measured.
type DetectResult struct {
	OffRate, OnRate float64 // events/s through POST /events/batch with detection off and on
	// Ratios is on/off throughput of each round (its two phases, back to back); the
	// median of them is the benchmark's answer, their spread its noise.
	Ratios      []float64
	MedianRatio float64
	// CatchUpRates is detection's own speed in events/s, alone on the machine's share it
	// gets: the time it took to read the backlog each detection-off phase left.
	CatchUpRates   []float64
	LagP50, LagP95 time.Duration // detection lag sampled while detection was on (models.Detector.Lag)
	Samples        int
	// CPU time (server + PostgreSQL backends of the bench database + this process, which
	// posts the events and runs detection) per event: ingest with detection off, ingest
	// with detection on (with the short backlog it left, read after the phase), and
	// detection alone (reading an off phase's backlog). Unlike throughput, CPU time is
	// hardly inflated by other work on the machine. CPUKnown says whether it was read.
	CPUOff, CPUOn, CPUAlone CPUSplit
	CPUKnown                bool
}

// Detect measures what detection costs ingest: batch ingest with detection off and on in
// alternating rounds (the order flips every round, so both share the machine's
// conditions), and detection's lag (models.Detector.Lag) sampled four times a second
// while it runs. Detection runs as the serve job does, every o.Every, in this process
// against the same database; while it is on, the events go to a server that feeds it
// (o.OnURL), as a server running detection does, so the feed's cost at ingest counts as
// detection's. Between phases the sequencer and detection catch up untimed, so no phase
// inherits another's backlog.
func Detect(ctx context.Context, o DetectOptions) (DetectResult, error) {
	var res DetectResult
	per := o.Events / (2 * o.Rounds)
	fmt.Fprintf(o.Out, "detection benchmark: %d events in batches of %d (%d clients), %d rounds of detection off and on, detection every %s\n",
		2*per*o.Rounds, o.BatchSize, o.BatchClients, o.Rounds, o.Every)
	offClient, err := newPoster(o.OffURL, o.Key, 2*o.BatchClients, batchPath)
	if err != nil {
		return res, err
	}
	defer offClient.close()
	onClient, err := newPoster(o.OnURL, o.Key, 2*o.BatchClients, batchPath)
	if err != nil {
		return res, err
	}
	defer onClient.close()
	bodies := makeEvents(per, time.Now().UnixNano())
	batches := make([][]byte, 0, per/o.BatchSize+1)
	for lo := 0; lo < per; lo += o.BatchSize {
		batches = append(batches, []byte("["+strings.Join(bodies[lo:min(lo+o.BatchSize, per)], ",")+"]"))
	}
	for _, c := range []*poster{offClient, onClient} { // warm up
		if err := post(c, batchPath, batches[0]); err != nil {
			return res, err
		}
	}
	if _, _, _, err := catchUp(ctx, o); err != nil {
		return res, err
	}
	res.CPUKnown = len(o.ServerPIDs) > 0
	var offTime, onTime time.Duration
	var lags []time.Duration
	for r := 0; r < o.Rounds; r++ {
		var roundOff, roundOn time.Duration
		for _, on := range [][]bool{{false, true}, {true, false}}[r%2] {
			var stop func() []time.Duration
			client := offClient
			if on {
				stop = runDetection(ctx, o)
				client = onClient
			}
			c0, pg := procCPU(o), startDBCPU(ctx, o.DB)
			ends := make([]time.Time, len(batches))
			_, err := closedLoop(len(batches), o.BatchClients, func(i int) error {
				err := post(client, batchPath, batches[i])
				ends[i] = time.Now()
				return err
			})
			took := steadyTime(ends)
			if on {
				lags = append(lags, stop()...)
			}
			phaseCPU, cpuOK := c0.until(ctx, o, pg)
			res.CPUKnown = res.CPUKnown && cpuOK
			if on {
				onTime += took
				roundOn = took
			} else {
				offTime += took
				roundOff = took
			}
			if err != nil {
				return res, err
			}
			events, took, tailCPU, err := catchUp(ctx, o)
			if err != nil {
				return res, err
			}
			if on {
				res.CPUOn = res.CPUOn.Add(phaseCPU).Add(tailCPU)
			} else {
				res.CPUOff = res.CPUOff.Add(phaseCPU)
				res.CPUAlone = res.CPUAlone.Add(tailCPU)
			}
			if !on && events > 0 {
				res.CatchUpRates = append(res.CatchUpRates, float64(events)/took.Seconds())
			}
			settle(ctx, o)
		}
		// The same events both ways: the throughput ratio is the inverse ratio of the times.
		res.Ratios = append(res.Ratios, roundOff.Seconds()/roundOn.Seconds())
	}
	sent := float64(per * o.Rounds)
	res.OffRate, res.OnRate = sent/offTime.Seconds(), sent/onTime.Seconds()
	slices.Sort(lags)
	res.Samples = len(lags)
	if len(lags) > 0 {
		res.LagP50, res.LagP95 = lags[len(lags)*50/100], lags[min(len(lags)*95/100, len(lags)-1)]
	}
	fmt.Fprintf(o.Out, "%-28s %12s\n", "batch ingest", "events/s")
	fmt.Fprintf(o.Out, "%-28s %12.0f\n", "detection off", res.OffRate)
	fmt.Fprintf(o.Out, "%-28s %12.0f\n", "detection on", res.OnRate)
	sorted := slices.Clone(res.Ratios)
	slices.Sort(sorted)
	res.MedianRatio = median(sorted)
	rounds := make([]string, len(res.Ratios))
	for i, q := range res.Ratios {
		rounds[i] = fmt.Sprintf("%.3f", q)
	}
	fmt.Fprintf(o.Out, "on / off per round: %s\n", strings.Join(rounds, " "))
	fmt.Fprintf(o.Out, "on / off: median %.3f over %d rounds (spread %.3f – %.3f), all phases together %.3f\n",
		res.MedianRatio, len(sorted), sorted[0], sorted[len(sorted)-1], res.OnRate/res.OffRate)
	fmt.Fprintf(o.Out, "detection costs %.1f %% of ingest throughput (median; target ≤ 5 %%)\n", 100*(1-res.MedianRatio))
	if len(res.CatchUpRates) > 0 {
		rates := slices.Clone(res.CatchUpRates)
		slices.Sort(rates)
		fmt.Fprintf(o.Out, "detection alone, reading each off phase's backlog (not fed: from audit_log): median %.0f events/s (spread %.0f – %.0f)\n",
			median(rates), rates[0], rates[len(rates)-1])
	}
	fmt.Fprintf(o.Out, "detection lag while on: p50 %s, p95 %s over %d samples (target p95 ≤ 2s)\n",
		res.LagP50.Round(time.Millisecond), res.LagP95.Round(time.Millisecond), res.Samples)
	if res.CPUKnown {
		n := per * o.Rounds
		line := func(name string, c CPUSplit) {
			fmt.Fprintf(o.Out, "  %-30s %7.1f µs: server %s, PostgreSQL %s, bench process %s\n", name,
				float64(c.total().Microseconds())/float64(n), perEvent(c.Server, n), perEvent(c.Postgres, n), perEvent(c.LoadGenerator, n))
		}
		fmt.Fprintln(o.Out, "CPU time per event (from /proc; PostgreSQL = the bench database's backends; the bench process posts and detects):")
		line("ingest, detection off", res.CPUOff)
		line("ingest, detection on", res.CPUOn)
		line("detection alone (catch-up)", res.CPUAlone)
		fmt.Fprintf(o.Out, "detection adds %.1f %% CPU per event to ingest (on vs off); alone it costs %.1f %% of ingest's CPU\n",
			100*(res.CPUOn.total().Seconds()/res.CPUOff.total().Seconds()-1), 100*res.CPUAlone.total().Seconds()/res.CPUOff.total().Seconds())
	} else {
		fmt.Fprintln(o.Out, "CPU time per event: not measured (the server or PostgreSQL is not a process on this machine)")
	}
	return res, nil
}

// steadyTime is how long a phase whose batches completed at ends would have taken at the
// pace of its middle 80 % of batches (by completion time). Its first and last tenth count
// for neither phase: at the end of an on phase, detection's last batch is still being
// held (up to half a detection batch of events) and is read by the untimed catch-up, so
// timing the whole phase left that share of detection's work out of it; timing the middle
// measures detection's steady share.
func steadyTime(ends []time.Time) time.Duration {
	sorted := slices.Clone(ends)
	slices.SortFunc(sorted, func(a, b time.Time) int { return a.Compare(b) })
	n := len(sorted)
	lo, hi := n/10, n-1-n/10
	if hi <= lo {
		return sorted[n-1].Sub(sorted[0])
	}
	return time.Duration(float64(sorted[hi].Sub(sorted[lo])) * float64(n) / float64(hi-lo))
}

// runDetection runs detection passes every o.Every and samples the lag four times a second
// until the returned function is called; that returns the samples.
func runDetection(ctx context.Context, o DetectOptions) func() []time.Duration {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var lags []time.Duration
	wg.Add(2)
	go func() {
		defer wg.Done()
		t := time.NewTicker(o.Every)
		defer t.Stop()
		for {
			for {
				res, err := o.Detector.Pass(ctx)
				if err != nil || res.Events == 0 {
					break
				}
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if lag, _, err := o.Detector.Lag(ctx, o.Org); err == nil {
					lags = append(lags, lag)
				}
			}
		}
	}()
	return func() []time.Duration {
		close(done)
		wg.Wait()
		return lags
	}
}

// catchUp waits for the sequencer to log everything, then runs detection to the end; it
// returns how many events detection read and how long that took.
// It also returns the CPU time detection took (this process and the database's backends).
func catchUp(ctx context.Context, o DetectOptions) (int, time.Duration, CPUSplit, error) {
	if err := drain(ctx, o.DB, 5*time.Minute); err != nil {
		return 0, 0, CPUSplit{}, err
	}
	d := o.CatchUp
	if d == nil {
		d = o.Detector
	}
	c0, pg := procCPU(o), startDBCPU(ctx, o.DB)
	start, events := time.Now(), 0
	for {
		res, err := d.Pass(ctx)
		if err != nil || res.Events == 0 {
			took := time.Since(start)
			c, _ := c0.until(ctx, o, pg)
			return events, took, c, err
		}
		events += res.Events
	}
}

// settle leaves every phase the same database to start from, untimed: a checkpoint (so
// none falls inside a phase: a phase writes a tenth of max_wal_size) and a vacuum of the
// tables ingest fills (so autovacuum does not start on them inside one). Without it, a
// checkpoint or an autovacuum of the month's partition landed in the same phases run after
// run and moved single rounds by 10 to 20 % either way. Both are ingest's own costs, taken
// out of both phases alike. A role not allowed to run them leaves the phases as they are.
func settle(ctx context.Context, o DetectOptions) {
	for _, q := range []string{`CHECKPOINT`, `VACUUM (ANALYZE) audit_log, audit_leaf, audit_leaf_queue, audit_merkle_node`} {
		if err := o.DB.WithContext(ctx).Exec(q).Error; err != nil {
			fmt.Fprintf(o.Out, "between phases: %s: %v (phases not settled)\n", q, err)
			return
		}
	}
}

// procStart is the CPU time of the server and this process at the start of a measurement.
type procStart struct {
	at           time.Time
	server, self time.Duration
	ok           bool
}

func procCPU(o DetectOptions) procStart {
	p := procStart{at: time.Now(), ok: len(o.ServerPIDs) > 0}
	for _, pid := range o.ServerPIDs {
		c, err := processCPU(pid)
		p.server += c
		p.ok = p.ok && err == nil
	}
	self, err := processCPU(os.Getpid())
	p.self = self
	p.ok = p.ok && err == nil
	return p
}

// until ends a measurement begun at p (with pg measuring the database).
func (p procStart) until(ctx context.Context, o DetectOptions, pg *dbCPU) (CPUSplit, bool) {
	pgTime, pgOK := pg.stop(ctx)
	q := procCPU(o)
	if !p.ok || !q.ok || !pgOK {
		return CPUSplit{}, false
	}
	return CPUSplit{Server: q.server - p.server, Postgres: pgTime, LoadGenerator: q.self - p.self, Wall: q.at.Sub(p.at)}, true
}
