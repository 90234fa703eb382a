package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/ingest"
)

// SealOptions configures the sealing-scheme benchmark: what the current scheme (sha256-jcs-v3) costs against
// sha256-jcs-v1, in CPU per event and in ingest throughput, measured in the same run with
// the two schemes alternating (so they share the machine's load).
type SealOptions struct {
	DB        *gorm.DB
	Sealer    *models.Sealer
	Org       string
	Events    int // events sealed per scheme and round for the CPU comparison
	Batches   int // batches written per scheme and round for the ingest comparison
	BatchSize int
	Writers   int // concurrent batch writers
	Rounds    int
	Out       io.Writer
}

// SealResult is what the sealing benchmark measured: the per-round medians.
type SealResult struct {
	V1NsPerEvent, V2NsPerEvent     float64 // CPU time of one thread sealing
	CPURatio                       float64 // median over rounds of v2 / v1 time per event
	V1EventsPerSec, V2EventsPerSec float64 // seal + binary COPY commit, Writers at once
	IngestRatio                    float64 // median over rounds of v2 / v1 throughput
	V1RowBytes, V2RowBytes         float64 // average stored size of the integrity columns per row
}

// sealTemplates returns n unsealed events shaped like clinical traffic: a principal, a
// patient as target, details with two personal keys (ip, userAgent) and three others.
func sealTemplates(org string, n int, now time.Time) []models.Event {
	out := make([]models.Event, n)
	resType := "Patient"
	for k := range out {
		principal := "dr.user-" + strconv.Itoa(k%500)
		target := "pat-" + strconv.Itoa(100000+k%20000)
		outcome := "Viewed patient chart summary"
		details, _ := json.Marshal(map[string]any{"ip": "10.20." + strconv.Itoa(k%250) + "." + strconv.Itoa(k%200),
			"userAgent": "Mozilla/5.0 (X11; Linux x86_64)", "sessionId": "sess-" + strconv.Itoa(k%3000), "method": "GET", "n": k})
		out[k] = models.Event{OrganizationID: org, Timestamp: now.Add(-time.Duration(k) * time.Millisecond),
			Action: "patient.record.read", Status: "success", PrincipalID: &principal, TargetResourceType: &resType,
			TargetResourceID: &target, OutcomeDescription: &outcome, DataClassification: "PHI",
			RetentionPolicy: "standard", EventVersion: "1.0", Details: details}
	}
	return out
}

// Seal runs the sealing benchmark and prints what it measured.
func Seal(ctx context.Context, o SealOptions) (SealResult, error) {
	var r SealResult
	now := time.Now().UTC()
	schemes := []struct {
		name string
		seal func(*models.Event) error
	}{{models.HashAlgorithmV1, o.Sealer.SealV1}, {models.HashAlgorithmV3, o.Sealer.Seal}}
	cpuTemplates := sealTemplates(o.Org, o.Events, now)
	batchTemplates := sealTemplates(o.Org, o.BatchSize, now)
	var cpuRatios, ingestRatios, v1ns, v2ns, v1rate, v2rate []float64
	fmt.Fprintf(o.Out, "sealing: %d events per scheme and round (one thread, its CPU time); ingest: %d batches of %d per scheme and round, %d writers; %d rounds\n",
		o.Events, o.Batches, o.BatchSize, o.Writers, o.Rounds)
	for round := 0; round < o.Rounds; round++ {
		var ns [2]float64
		var rate [2]float64
		for j := 0; j < 2; j++ {
			i := (j + round) % 2 // alternate which scheme goes first
			evs := make([]models.Event, len(cpuTemplates))
			copy(evs, cpuTemplates)
			// CPU time of this thread, not wall time: on a loaded machine the wait for a core
			// would dominate.
			runtime.LockOSThread()
			start := threadCPU()
			for k := range evs {
				if err := schemes[i].seal(&evs[k]); err != nil {
					runtime.UnlockOSThread()
					return r, err
				}
			}
			ns[i] = float64(threadCPU()-start) / float64(len(evs))
			runtime.UnlockOSThread()
		}
		for j := 0; j < 2; j++ {
			i := (j + round) % 2
			var err error
			if rate[i], err = sealAndCopy(ctx, o, batchTemplates, schemes[i].seal, round); err != nil {
				return r, err
			}
		}
		fmt.Fprintf(o.Out, "round %d: seal v1 %.0f CPU ns/event, v3 %.0f CPU ns/event (×%.2f); ingest v1 %.0f events/s, v3 %.0f events/s (×%.3f)\n",
			round+1, ns[0], ns[1], ns[1]/ns[0], rate[0], rate[1], rate[1]/rate[0])
		cpuRatios, ingestRatios = append(cpuRatios, ns[1]/ns[0]), append(ingestRatios, rate[1]/rate[0])
		v1ns, v2ns, v1rate, v2rate = append(v1ns, ns[0]), append(v2ns, ns[1]), append(v1rate, rate[0]), append(v2rate, rate[1])
	}
	r.CPURatio, r.IngestRatio = median(cpuRatios), median(ingestRatios)
	r.V1NsPerEvent, r.V2NsPerEvent, r.V1EventsPerSec, r.V2EventsPerSec = median(v1ns), median(v2ns), median(v1rate), median(v2rate)
	var sizes struct{ V1, V2 float64 }
	err := o.DB.WithContext(ctx).Raw(`SELECT
		coalesce(avg(coalesce(pg_column_size(subject_salt), 0) + coalesce(pg_column_size(subject_digest), 0) + coalesce(pg_column_size(field_commitments), 0))
			FILTER (WHERE hash_algorithm = ?), 0) AS v1,
		coalesce(avg(coalesce(pg_column_size(subject_salt), 0) + coalesce(pg_column_size(subject_digest), 0) + coalesce(pg_column_size(field_commitments), 0))
			FILTER (WHERE hash_algorithm = ?), 0) AS v2
		FROM audit_log WHERE organization_id = ?`, models.HashAlgorithmV1, models.HashAlgorithmV3, o.Org).Scan(&sizes).Error
	if err != nil {
		return r, err
	}
	r.V1RowBytes, r.V2RowBytes = sizes.V1, sizes.V2
	fmt.Fprintf(o.Out, "median of %d rounds: Seal v3 / Seal v1 CPU ×%.2f (%.0f vs %.0f CPU ns/event); ingest throughput v3 / v1 ×%.3f (%.0f vs %.0f events/s)\n",
		o.Rounds, r.CPURatio, r.V2NsPerEvent, r.V1NsPerEvent, r.IngestRatio, r.V2EventsPerSec, r.V1EventsPerSec)
	fmt.Fprintf(o.Out, "stored integrity columns per row (subject_salt + subject_digest + field_commitments): v1 %.0f bytes, v3 %.0f bytes\n",
		r.V1RowBytes, r.V2RowBytes)
	return r, nil
}

// threadCPU returns the CPU time the calling OS thread has used, in nanoseconds, from the
// scheduler's own count (CLOCK_THREAD_CPUTIME_ID). getrusage(RUSAGE_THREAD) counts in clock
// ticks on this kernel: a short run could read 0 and a ratio of 0 (a CI failure).
func threadCPU() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}

// sealAndCopy writes o.Batches batches, each sealed with seal and committed with one binary
// COPY (as the ingest writer does), o.Writers at a time, and returns events per second.
func sealAndCopy(ctx context.Context, o SealOptions, templates []models.Event, seal func(*models.Event) error, round int) (float64, error) {
	parts := models.NewPartitionManager(o.DB)
	g, gctx := errgroup.WithContext(ctx)
	next := make(chan int)
	var mu sync.Mutex
	written := int64(0)
	start := time.Now()
	for w := 0; w < o.Writers; w++ {
		g.Go(func() error {
			batch := make([]models.Event, len(templates))
			for b := range next {
				copy(batch, templates)
				for k := range batch {
					// A distinct time per event and batch; all in the current month's partition.
					batch[k].Timestamp = batch[k].Timestamp.Add(-time.Duration(round*o.Batches+b) * time.Microsecond)
					if err := seal(&batch[k]); err != nil {
						return err
					}
				}
				n, err := ingest.CopyEvents(gctx, o.DB, parts, batch)
				if err != nil {
					return err
				}
				mu.Lock()
				written += n
				mu.Unlock()
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(next)
		for b := 0; b < o.Batches; b++ {
			select {
			case next <- b:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return float64(written) / time.Since(start).Seconds(), nil
}
