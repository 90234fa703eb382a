package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/merkle"
)

// RetentionOptions configures the retention benchmark.
type RetentionOptions struct {
	DB     *gorm.DB
	Sealer *models.Sealer
	Log    *merkle.Log
	Org    string
	Events int
	Now    time.Time
	Out    io.Writer
}

// RetentionResult is what the retention benchmark measured.
type RetentionResult struct {
	CopyPerSec, ArchivePerSec      float64 // plain COPY TO of the rows due, and archival of them
	LogDeletePerSec, ArchDelPerSec float64 // deletion from audit_log and from archives
	CompressionRatio               float64
	FirstPage                      time.Duration // open one archive and read its first 50 events
	PeakRSS                        int64
}

// Retention measures the retention engine on o.Events events of one organization: a fifth
// PUBLIC under a policy "bench-delete" of the organization's own (30 days, no archive; being
// PUBLIC, it does not take over the INTERNAL events), the rest INTERNAL under "standard"
// (archive after 365 days), 100 to 190 days old at o.Now. Three runs on a
// moving clock: at o.Now (deletes the fifth from audit_log), 300 days later (archives the
// rest, timed against a plain COPY (SELECT …) TO STDOUT of the same rows first), and 3000
// days later (deletes every archive).
func Retention(ctx context.Context, o RetentionOptions) (RetentionResult, error) {
	var res RetentionResult
	out := o.Out
	if err := o.DB.WithContext(ctx).Exec(`INSERT INTO audit_retention_policy (organization_id, policy_name, retention_days,
		data_classification, description) VALUES (?, 'bench-delete', 30, 'PUBLIC', 'retention benchmark')
		ON CONFLICT DO NOTHING`, o.Org).Error; err != nil {
		return res, err
	}
	start := time.Now()
	if err := writeRetentionEvents(ctx, o); err != nil {
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
	fmt.Fprintf(out, "sequenced into the Merkle log in %s\n", time.Since(start).Round(time.Millisecond))
	// The peak from here on is the engine's (Linux: writing 5 to clear_refs resets VmHWM),
	// once the seeding's garbage has gone back to the system.
	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)

	// phasePeak prints the peak RSS since the last phase and starts the next phase's count.
	phasePeak := func(phase string) {
		if rss, err := PeakRSSOf(os.Getpid())(); err == nil {
			res.PeakRSS = max(res.PeakRSS, rss)
			fmt.Fprintf(out, "  peak RSS during %s: %s\n", phase, human(rss))
		}
		debug.FreeOSMemory()
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	}
	parts := models.NewPartitionManager(o.DB)
	engine := models.NewRetentionEngine(o.DB, models.NewAuditTrail(o.DB, o.Sealer, parts), parts)
	at := o.Now
	engine.Now = func() time.Time { return at }

	start = time.Now()
	r1, err := engine.Run(ctx, models.RetentionOptions{Org: o.Org})
	if err != nil {
		return res, err
	}
	d := time.Since(start)
	res.LogDeletePerSec = float64(r1.Deleted) / d.Seconds()
	fmt.Fprintf(out, "delete from audit_log: %d events in %s = %.0f events/s\n", r1.Deleted, d.Round(time.Millisecond), res.LogDeletePerSec)
	phasePeak("the deletion from audit_log")

	at = o.Now.AddDate(0, 0, 300)
	var copied int64
	start = time.Now()
	err = models.WithPgx(ctx, o.DB, func(conn *pgx.Conn) error {
		tag, err := conn.PgConn().CopyTo(ctx, io.Discard, fmt.Sprintf(`COPY (SELECT e.* FROM audit_log e
			WHERE e.organization_id = '%s' AND e.retention_policy = 'standard' AND e."timestamp" < '%s') TO STDOUT`,
			o.Org, at.AddDate(0, 0, -364).Format(time.RFC3339)))
		copied = tag.RowsAffected()
		return err
	})
	if err != nil {
		return res, err
	}
	d = time.Since(start)
	res.CopyPerSec = float64(copied) / d.Seconds()
	fmt.Fprintf(out, "baseline COPY (SELECT …) TO STDOUT: %d rows in %s = %.0f rows/s\n", copied, d.Round(time.Millisecond), res.CopyPerSec)

	start = time.Now()
	r2, err := engine.Run(ctx, models.RetentionOptions{Org: o.Org})
	if err != nil {
		return res, err
	}
	d = time.Since(start)
	res.ArchivePerSec = float64(r2.Archived) / d.Seconds()
	var sizes struct{ Original, Compressed int64 }
	if err := o.DB.Raw(`SELECT coalesce(sum(original_size), 0) AS original, coalesce(sum(compressed_size), 1) AS compressed
		FROM archive_storage WHERE organization_id = ?`, o.Org).Scan(&sizes).Error; err != nil {
		return res, err
	}
	res.CompressionRatio = float64(sizes.Original) / float64(sizes.Compressed)
	fmt.Fprintf(out, "archival: %d events into %d archives in %s = %.0f events/s (%.2f × COPY); %s → %s, ratio %.1f\n",
		r2.Archived, r2.Archives, d.Round(time.Millisecond), res.ArchivePerSec, res.ArchivePerSec/res.CopyPerSec,
		human(sizes.Original), human(sizes.Compressed), res.CompressionRatio)
	phasePeak("the baseline COPY and archival")

	var first string
	if err := o.DB.Raw(`SELECT id FROM archive_storage WHERE organization_id = ? ORDER BY month, part LIMIT 1`, o.Org).Scan(&first).Error; err != nil {
		return res, err
	}
	// The archive browser's first page: load the archive, check both checksums and its count
	// over the whole of it, then decode the first 50 events of its default filter.
	archives := models.NewArchiveStore(o.DB, models.NewAuditTrail(o.DB, o.Sealer, parts), models.NewAlertStore(o.DB))
	start = time.Now()
	va, err := archives.Load(ctx, o.Org, first)
	if err != nil {
		return res, err
	}
	pg, err := va.Page(models.ArchiveFilterRange(models.EventFilter{}, va.Meta), 0, 50)
	if err != nil {
		return res, err
	}
	res.FirstPage = time.Since(start)
	fmt.Fprintf(out, "open archive %s (%d events), check it and page its first %d events: %s\n", first, va.Meta.EventCount,
		len(pg.Events), res.FirstPage.Round(time.Microsecond))
	phasePeak("opening the archive")

	at = o.Now.AddDate(0, 0, 3000)
	start = time.Now()
	r3, err := engine.Run(ctx, models.RetentionOptions{Org: o.Org})
	if err != nil {
		return res, err
	}
	d = time.Since(start)
	res.ArchDelPerSec = float64(r3.Deleted) / d.Seconds()
	fmt.Fprintf(out, "delete from archives: %d events in %s = %.0f events/s; dropped partitions %v\n",
		r3.Deleted, d.Round(time.Millisecond), res.ArchDelPerSec, append(r1.DroppedPartitions, append(r2.DroppedPartitions, r3.DroppedPartitions...)...))
	phasePeak("the deletion from archives")
	fmt.Fprintf(out, "peak RSS of the benchmark process during the runs: %s\n", human(res.PeakRSS))
	return res, nil
}

func human(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
}

// writeRetentionEvents seals and copies the events in batches of 10,000.
func writeRetentionEvents(ctx context.Context, o RetentionOptions) error {
	rng := rand.New(rand.NewPCG(13, 13))
	parts := models.NewPartitionManager(o.DB)
	actions := []string{"auth.login.success", "patient.record.read", "document.update", "role.update", "export.create"}
	statuses := []string{"success", "success", "success", "failure", "attempt"}
	batch := make([]models.Event, 0, 10_000)
	for i := 0; i < o.Events; i++ {
		ts := o.Now.Add(-time.Duration(100*24*3600+rng.IntN(90*24*3600)) * time.Second).Truncate(time.Microsecond)
		principal := fmt.Sprintf("user-%d", rng.IntN(5000))
		rtype, rid := "document", fmt.Sprintf("doc-%d", rng.IntN(100_000))
		policy, class := "standard", "INTERNAL"
		if i%5 == 0 {
			policy, class = "bench-delete", "PUBLIC"
		}
		ev := models.Event{OrganizationID: o.Org, Timestamp: ts, Action: actions[rng.IntN(len(actions))],
			Status: statuses[rng.IntN(len(statuses))], DataClassification: class, RetentionPolicy: policy,
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
