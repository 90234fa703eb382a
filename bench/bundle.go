package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/bundle"
	"auditdb/models/ingest"
	"auditdb/models/merkle"
)

// BundleOptions configures the evidence bundle benchmark.
type BundleOptions struct {
	DB     *gorm.DB
	Sealer *models.Sealer
	Log    *merkle.Log
	Org    string
	Events int
	Rounds int
	Sample int // events proven one by one for the per-proof baseline
	Now    time.Time
	Out    io.Writer
}

// BundleResult is what the bundle benchmark measured (medians over the rounds).
type BundleResult struct {
	Write, Copy, Verify   time.Duration
	WriteCPU, VerifyCPU   time.Duration // this process's user+system CPU (not PostgreSQL's)
	Size                  int64
	WriteRSS, VerifyRSS   int64
	BatchProof, OneProof  time.Duration // per proof: batched InclusionPaths, and ProveAt one at a time
	BundleEvents          int64
	CheckpointSize        int64
	WriteOverCopy, OneBat float64
}

// Bundle measures evidence bundles of o.Events events of one organization, in alternating
// rounds: bundle.Write into a temporary file (time, size, peak RSS), against a baseline
// COPY (SELECT …) TO STDOUT of the same rows joined with their log entries; bundle.Verify
// of that file (time, peak RSS); and the proofs alone, batched as Write reads them against
// ProveAt one event at a time for o.Sample events.
func Bundle(ctx context.Context, o BundleOptions) (BundleResult, error) {
	var res BundleResult
	out := o.Out
	start := time.Now()
	if err := writeBundleEvents(ctx, o); err != nil {
		return res, err
	}
	fmt.Fprintf(out, "seeded %d events in %s\n", o.Events, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	for {
		r, err := o.Log.Sequence(ctx, 50_000)
		if err != nil {
			return res, err
		}
		if r.Leaves == 0 {
			break
		}
	}
	// Fresh statistics, as autovacuum keeps them on a live database.
	if err := o.DB.WithContext(ctx).Exec(`ANALYZE audit_log, audit_leaf, audit_merkle_node`).Error; err != nil {
		return res, err
	}
	cp, err := o.Log.Latest(ctx, o.Org)
	if err != nil {
		return res, err
	}
	res.CheckpointSize = cp.TreeSize
	fmt.Fprintf(out, "sequenced into the Merkle log in %s; checkpoint %d of tree size %d\n", time.Since(start).Round(time.Millisecond),
		cp.Number, cp.TreeSize)
	filter := models.EventFilter{From: o.Now.Add(-364 * 24 * time.Hour), To: o.Now.Add(time.Minute)}
	where, args := models.FilterSQL(o.Org, filter)
	key := o.Log.Key().VerifierKey()
	var indexes []int64
	if err := o.DB.Raw(`SELECT leaf_index FROM audit_leaf WHERE organization_id = ? ORDER BY leaf_index`, o.Org).
		Scan(&indexes).Error; err != nil {
		return res, err
	}
	rng := rand.New(rand.NewPCG(5, 5))
	sample := make([]int64, 0, o.Sample)
	var sampleIDs []int64
	for range o.Sample {
		sample = append(sample, indexes[rng.IntN(len(indexes))])
	}
	slices.Sort(sample)
	if err := o.DB.Raw(`SELECT audit_log_id FROM audit_leaf WHERE organization_id = ? AND leaf_index IN ? ORDER BY leaf_index`,
		o.Org, sample).Scan(&sampleIDs).Error; err != nil {
		return res, err
	}

	var writes, copies, verifies, batch, one, writeCPU, verifyCPU []time.Duration
	var writeRSS, verifyRSS []int64
	for round := 1; round <= o.Rounds; round++ {
		// Baseline first in odd rounds, second in even ones.
		steps := []func() error{
			func() error { // the rows a bundle holds, read bare
				st := time.Now()
				err := models.WithPgx(ctx, o.DB, func(conn *pgx.Conn) error {
					_, err := conn.PgConn().CopyTo(ctx, io.Discard, copySQL(where, args))
					return err
				})
				copies = append(copies, time.Since(st))
				return err
			},
			func() error {
				f, err := os.CreateTemp("", "auditdb-bench-bundle-*.zip")
				if err != nil {
					return err
				}
				defer os.Remove(f.Name())
				defer f.Close()
				os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
				st, cpu := time.Now(), selfCPU()
				sum, err := bundle.Write(ctx, o.DB, o.Log, o.Sealer, o.Org, filter, f)
				if err != nil {
					return err
				}
				writes, writeCPU = append(writes, time.Since(st)), append(writeCPU, selfCPU()-cpu)
				rss, _ := PeakRSSOf(os.Getpid())()
				writeRSS = append(writeRSS, rss)
				size, _ := f.Seek(0, io.SeekEnd)
				res.Size, res.BundleEvents = size, sum.Events
				os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
				st, cpu = time.Now(), selfCPU()
				rep, err := bundle.Verify(f, size, []string{key})
				if err != nil {
					return err
				}
				verifies, verifyCPU = append(verifies, time.Since(st)), append(verifyCPU, selfCPU()-cpu)
				if !rep.OK() {
					return fmt.Errorf("bench: the bundle does not verify: %v", rep.Problems[0])
				}
				rss, _ = PeakRSSOf(os.Getpid())()
				verifyRSS = append(verifyRSS, rss)
				return nil
			},
			func() error { // proofs: one batch read as Write does, against one ProveAt per event
				st := time.Now()
				err := models.WithPgx(ctx, o.DB, func(conn *pgx.Conn) error {
					for i := 0; i < len(sample); i += 2048 {
						if _, err := merkle.InclusionPaths(ctx, conn, o.Org, cp.TreeSize, sample[i:min(i+2048, len(sample))]); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
				batch = append(batch, time.Since(st)/time.Duration(len(sample)))
				st = time.Now()
				for _, id := range sampleIDs {
					if _, err := o.Log.ProveAt(ctx, o.Org, id, cp.TreeSize); err != nil {
						return err
					}
				}
				one = append(one, time.Since(st)/time.Duration(len(sampleIDs)))
				return nil
			},
		}
		if round%2 == 0 {
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return res, err
			}
		}
		fmt.Fprintf(out, "round %d: bundle %s (CPU %s, %s), COPY %s, verify %s (CPU %s); per proof batched %s, one by one %s\n", round,
			writes[round-1].Round(time.Millisecond), writeCPU[round-1].Round(time.Millisecond), human(res.Size),
			copies[round-1].Round(time.Millisecond), verifies[round-1].Round(time.Millisecond), verifyCPU[round-1].Round(time.Millisecond), batch[round-1].Round(time.Microsecond/10), one[round-1].Round(time.Microsecond/10))
	}
	res.Write, res.Copy, res.Verify = medianOf(writes), medianOf(copies), medianOf(verifies)
	res.BatchProof, res.OneProof = medianOf(batch), medianOf(one)
	res.WriteCPU, res.VerifyCPU = medianOf(writeCPU), medianOf(verifyCPU)
	res.WriteRSS, res.VerifyRSS = slices.Max(writeRSS), slices.Max(verifyRSS)
	res.WriteOverCopy = res.Write.Seconds() / res.Copy.Seconds()
	res.OneBat = res.OneProof.Seconds() / res.BatchProof.Seconds()
	fmt.Fprintf(out, "medians of %d rounds: bundle of %d events in %s (%.0f events/s; CPU of this process %s), %s, %.1f× the bare COPY of its rows (%s); peak RSS %s\n",
		o.Rounds, res.BundleEvents, res.Write.Round(time.Millisecond), float64(res.BundleEvents)/res.Write.Seconds(),
		res.WriteCPU.Round(time.Millisecond), human(res.Size), res.WriteOverCopy, res.Copy.Round(time.Millisecond), human(res.WriteRSS))
	fmt.Fprintf(out, "verify-bundle of it: %s (%.0f events/s; CPU %s); peak RSS %s\n", res.Verify.Round(time.Millisecond),
		float64(res.BundleEvents)/res.Verify.Seconds(), res.VerifyCPU.Round(time.Millisecond), human(res.VerifyRSS))
	fmt.Fprintf(out, "inclusion proofs of %d random events: %s each batched, %s each one by one (%.1f× faster batched)\n",
		len(sample), res.BatchProof.Round(time.Microsecond/10), res.OneProof.Round(time.Microsecond/10), res.OneBat)
	return res, nil
}

// copySQL is the bundle's live query as a COPY with its arguments inlined (COPY takes no
// parameters): org and the range, quoted.
func copySQL(where string, args []any) string {
	q := `COPY (SELECT e.*, l.leaf_index FROM (SELECT * FROM audit_log WHERE ` + where + `) e
		JOIN audit_leaf l ON l.organization_id = $1 AND l.audit_log_id = e.id ORDER BY l.leaf_index) TO STDOUT`
	lit := func(v any) string {
		switch x := v.(type) {
		case time.Time:
			return "'" + x.UTC().Format(time.RFC3339Nano) + "'::timestamptz"
		case string:
			return "'" + strings.ReplaceAll(x, "'", "''") + "'"
		}
		return fmt.Sprint(v)
	}
	for i := len(args); i >= 1; i-- {
		q = strings.ReplaceAll(q, fmt.Sprintf("$%d", i), lit(args[i-1]))
	}
	return q
}

func medianOf(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// writeBundleEvents seals and copies the events, spread over the last 300 days, in batches
// of 10,000.
func writeBundleEvents(ctx context.Context, o BundleOptions) error {
	rng := rand.New(rand.NewPCG(17, 17))
	parts := models.NewPartitionManager(o.DB)
	actions := []string{"auth.login.success", "patient.record.read", "document.update", "role.update", "export.create"}
	statuses := []string{"success", "success", "success", "failure", "attempt"}
	batch := make([]models.Event, 0, 10_000)
	for i := 0; i < o.Events; i++ {
		ts := o.Now.Add(-time.Duration(rng.IntN(300*24*3600)) * time.Second).Truncate(time.Microsecond)
		principal := fmt.Sprintf("user-%d", rng.IntN(5000))
		rtype, rid := "document", fmt.Sprintf("doc-%d", rng.IntN(100_000))
		ev := models.Event{OrganizationID: o.Org, Timestamp: ts, Action: actions[rng.IntN(len(actions))],
			Status: statuses[rng.IntN(len(statuses))], DataClassification: "INTERNAL", RetentionPolicy: "standard",
			EventVersion: "1.0", PrincipalID: &principal, TargetResourceType: &rtype, TargetResourceID: &rid,
			Details: fmt.Appendf(nil, `{"ip":"10.%d.%d.%d","userAgent":"Mozilla/5.0","requestId":"req-%d","bytes":%d}`,
				rng.IntN(256), rng.IntN(256), rng.IntN(256), i, rng.IntN(1<<20))}
		if err := o.Sealer.Seal(&ev); err != nil {
			return err
		}
		batch = append(batch, ev)
		if len(batch) == cap(batch) || i == o.Events-1 {
			if _, err := ingest.CopyEvents(ctx, o.DB, parts, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}

// selfCPU is the user and system CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
