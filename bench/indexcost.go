package bench

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"

	"auditdb/models/ingest"
)

// IndexCostOptions configure the index-cost benchmark.
type IndexCostOptions struct {
	URL          string // the server's base URL
	Key          string // an ingest key of Org
	Org          string
	Events       int // events in all, split evenly over the rounds
	BatchSize    int
	BatchClients int
	Rounds       int      // rounds in all, half with the indexes and half without (ABBA order)
	Indexes      []string // the audit_log indexes whose cost is measured
	DB           *gorm.DB
	DSN          string
	Builder      *ingest.Builder
	ServerPID    int // the server's process, for its CPU time; 0 when unknown
	Out          io.Writer
}

// IndexCostResult is what the benchmark measured: per state, the batch route's rate and
// its ratio to a raw COPY of the same rows timed in the same round.
type IndexCostResult struct {
	With, Without IndexState
	// Cost is how much slower batch ingest is with the indexes, from the median of the
	// per-round batch/COPY ratios of each state (0.10 = 10 % slower).
	Cost float64
	// BlockCosts are the same per ABBA block of four neighbouring rounds (with, without,
	// without, with): 1 − batch rate with / batch rate without, the block's own time as the
	// yardstick; BlockMedian is their median.
	BlockCosts  []float64
	BlockMedian float64
}

// IndexState sums the rounds of one state.
type IndexState struct {
	Events            int
	CopyTime, Batch   time.Duration
	Ratios            []float64 // batch/COPY per round
	CopyRate, Rate    float64
	MedianRatio       float64
	RatioLow, RatioHi float64
	// DBCPU and ServerCPU are the CPU time the bench database's backends and the server
	// spent during the batch phases: counted per process, so other work on the machine
	// does not enter them.
	DBCPU, ServerCPU time.Duration
}

// IndexCost measures what the named audit_log indexes cost batch ingest: rounds with the
// indexes and without them alternate (with, without, without, with, …, so that a drift of
// the machine's load or of the table's size falls on both), each round timing a raw COPY
// of its share of the events into a scratch copy of audit_log (always with every index: the
// round's yardstick for the machine's speed) and then the same events through POST
// /events/batch. Dropping and recreating the indexes happens between rounds, untimed, as
// does the Merkle sequencer's catching up. The indexes are left in place at the end.
func IndexCost(ctx context.Context, o IndexCostOptions) (IndexCostResult, error) {
	var res IndexCostResult
	if o.Rounds < 2 || o.Rounds%2 != 0 {
		return res, fmt.Errorf("bench: index cost needs an even number of rounds, at least 2")
	}
	defs := make([]string, len(o.Indexes))
	for i, name := range o.Indexes {
		var def string
		if err := o.DB.WithContext(ctx).Raw(`SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'audit_log' AND indexname = ?`,
			name).Scan(&def).Error; err != nil {
			return res, err
		}
		if def == "" {
			return res, fmt.Errorf("bench: audit_log has no index %s", name)
		}
		// The parent's definition says ON ONLY; recreated on the parent, it covers every partition.
		defs[i] = strings.Replace(def, " ON ONLY ", " ON ", 1)
	}
	present := true
	setIndexes := func(want bool) error {
		if want == present {
			return nil
		}
		for i, name := range o.Indexes {
			sql := "DROP INDEX IF EXISTS " + name
			if want {
				sql = defs[i]
			}
			if err := o.DB.WithContext(ctx).Exec(sql).Error; err != nil {
				return fmt.Errorf("bench: %s: %w", sql, err)
			}
		}
		present = want
		return nil
	}
	defer setIndexes(true)

	bodies := makeEvents(o.Events, time.Now().UnixNano())
	cp, err := newCopier(ctx, IngestOptions{Org: o.Org, DSN: o.DSN, Builder: o.Builder}, bodies)
	if err != nil {
		return res, fmt.Errorf("bench: raw COPY baseline: %w", err)
	}
	defer cp.close()
	client, err := newPoster(o.URL, o.Key, 4*o.BatchClients, batchPath)
	if err != nil {
		return res, err
	}
	defer client.close()
	warm := makeEvents(1000, time.Now().UnixNano())
	if err := post(client, batchPath, []byte("["+strings.Join(warm, ",")+"]")); err != nil {
		return res, err
	}
	fmt.Fprintf(o.Out, "index cost: %s; %d events in %d rounds (half without the indexes), batches of %d from %d clients\n",
		strings.Join(o.Indexes, ", "), o.Events, o.Rounds, o.BatchSize, o.BatchClients)
	var blockWith, blockWithout time.Duration
	var blockEvents [2]int
	for r := 0; r < o.Rounds; r++ {
		with := r%4 == 0 || r%4 == 3
		if err := setIndexes(with); err != nil {
			return res, err
		}
		if err := drain(ctx, o.DB, 5*time.Minute); err != nil {
			return res, err
		}
		lo, hi := r*o.Events/o.Rounds, (r+1)*o.Events/o.Rounds
		copyDur, err := cp.copy(ctx, lo, hi)
		if err != nil {
			return res, fmt.Errorf("bench: raw COPY baseline: %w", err)
		}
		var batches [][]byte
		for i := lo; i < hi; i += o.BatchSize {
			batches = append(batches, []byte("["+strings.Join(bodies[i:min(i+o.BatchSize, hi)], ",")+"]"))
		}
		db0, srv0 := backendsCPU(ctx, o.DB), serverCPU(o.ServerPID)
		start := time.Now()
		if _, err := closedLoop(len(batches), o.BatchClients, func(i int) error {
			return post(client, batchPath, batches[i])
		}); err != nil {
			return res, err
		}
		batchDur := time.Since(start)
		dbCPU, srvCPU := cpuSince(db0, backendsCPU(ctx, o.DB)), serverCPU(o.ServerPID)-srv0
		st := &res.Without
		label := "without"
		if with {
			st, label = &res.With, "with"
		}
		st.Events += hi - lo
		st.CopyTime += copyDur
		st.Batch += batchDur
		st.DBCPU += dbCPU
		st.ServerCPU += srvCPU
		ratio := copyDur.Seconds() / batchDur.Seconds() // (events/batch time) / (events/COPY time)
		st.Ratios = append(st.Ratios, ratio)
		if with {
			blockWith += batchDur
			blockEvents[0] += hi - lo
		} else {
			blockWithout += batchDur
			blockEvents[1] += hi - lo
		}
		if r%4 == 3 || r == o.Rounds-1 {
			if blockEvents[0] > 0 && blockEvents[1] > 0 {
				rateWith := float64(blockEvents[0]) / blockWith.Seconds()
				rateWithout := float64(blockEvents[1]) / blockWithout.Seconds()
				res.BlockCosts = append(res.BlockCosts, 1-rateWith/rateWithout)
			}
			blockWith, blockWithout, blockEvents = 0, 0, [2]int{}
		}
		fmt.Fprintf(o.Out, "  round %d (%-7s): raw COPY %.0f/s, batch route %.0f/s, ratio %.3f; PostgreSQL %.1f µs and server %.1f µs CPU per event\n", r+1, label,
			float64(hi-lo)/copyDur.Seconds(), float64(hi-lo)/batchDur.Seconds(), ratio,
			float64(dbCPU.Microseconds())/float64(hi-lo), float64(srvCPU.Microseconds())/float64(hi-lo))
	}
	for _, st := range []*IndexState{&res.With, &res.Without} {
		st.CopyRate = float64(st.Events) / st.CopyTime.Seconds()
		st.Rate = float64(st.Events) / st.Batch.Seconds()
		s := append([]float64(nil), st.Ratios...)
		sort.Float64s(s)
		st.MedianRatio = (s[(len(s)-1)/2] + s[len(s)/2]) / 2
		st.RatioLow, st.RatioHi = s[0], s[len(s)-1]
	}
	res.Cost = 1 - res.With.MedianRatio/res.Without.MedianRatio
	if len(res.BlockCosts) > 0 {
		b := append([]float64(nil), res.BlockCosts...)
		sort.Float64s(b)
		res.BlockMedian = (b[(len(b)-1)/2] + b[len(b)/2]) / 2
	}
	w := o.Out
	fmt.Fprintf(w, "\n%-18s %12s %12s %22s\n", "indexes", "COPY/s", "batch/s", "batch/COPY median (range)")
	for _, row := range []struct {
		name string
		st   IndexState
	}{{"with", res.With}, {"without", res.Without}} {
		fmt.Fprintf(w, "%-18s %12.0f %12.0f %10.3f (%.3f–%.3f)\n", row.name, row.st.CopyRate, row.st.Rate,
			row.st.MedianRatio, row.st.RatioLow, row.st.RatioHi)
	}
	fmt.Fprintf(w, "\nbatch ingest with the indexes is %.1f %% slower (1 − median ratio with / median ratio without);\n"+
		"by raw rates, %.1f %% (the COPY yardstick corrects for the machine's load in each round)\n",
		100*res.Cost, 100*(1-res.With.Rate/res.Without.Rate))
	perEv := func(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(n) }
	dbWith, dbWithout := perEv(res.With.DBCPU, res.With.Events), perEv(res.Without.DBCPU, res.Without.Events)
	srvWith, srvWithout := perEv(res.With.ServerCPU, res.With.Events), perEv(res.Without.ServerCPU, res.Without.Events)
	fmt.Fprintf(w, "CPU per batched event: PostgreSQL (the bench database's backends) %.1f µs with, %.1f µs without (%+.1f %%);\n"+
		"  server %.1f µs with, %.1f µs without; both together %+.1f %% with the indexes\n",
		dbWith, dbWithout, 100*(dbWith/dbWithout-1), srvWith, srvWithout, 100*((dbWith+srvWith)/(dbWithout+srvWithout)-1))
	blocks := make([]string, len(res.BlockCosts))
	for i, c := range res.BlockCosts {
		blocks[i] = fmt.Sprintf("%.1f", 100*c)
	}
	fmt.Fprintf(w, "per block of four neighbouring rounds (with, without, without, with), batch ingest slower with the indexes by\n"+
		"  %s %%; median %.1f %%\n", strings.Join(blocks, " / "), 100*res.BlockMedian)
	return res, nil
}

// backendsCPU reads the CPU time of every backend connected to the bench database, by
// process id.
func backendsCPU(ctx context.Context, db *gorm.DB) map[int]time.Duration {
	var pids []int
	db.WithContext(ctx).Raw(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&pids)
	out := make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		if d, err := processCPU(pid); err == nil {
			out[pid] = d
		}
	}
	return out
}

// cpuSince sums what each backend spent between two readings (a backend that started in
// between counts whole).
func cpuSince(before, after map[int]time.Duration) time.Duration {
	var sum time.Duration
	for pid, d := range after {
		sum += d - before[pid]
	}
	return sum
}

func serverCPU(pid int) time.Duration {
	d, _ := processCPU(pid)
	return d
}
