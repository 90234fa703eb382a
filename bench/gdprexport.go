package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/gdpr"
	"auditdb/models/ingest"
)

// GDPRExportOptions configure the GDPR export benchmark.
type GDPRExportOptions struct {
	DB     *gorm.DB
	DSN    string
	Sealer *models.Sealer
	Org    string
	// Events are the organization's events in all; Subject of them are the subject's (as
	// principal, every other one of them also as a target resource).
	Events, Subject int
	Rounds          int
	Now             time.Time
	// Child runs this program's hidden export child: args are appended to it.
	Child func(args ...string) *exec.Cmd
	Out   io.Writer
}

// GDPRSubject is the principal id whose events the benchmark exports; gdprSmallSubject has
// a tenth as many, for the flat-memory comparison.
const (
	GDPRSubject      = "gdpr-bench-subject"
	gdprSmallSubject = "gdpr-bench-small-subject"
)

// seedGDPREvents writes n events of org over the year before now, subject of them the
// subject's, in batches of 10,000.
func seedGDPREvents(ctx context.Context, db *gorm.DB, sealer *models.Sealer, org string, n, subject int, now time.Time) error {
	rng := rand.New(rand.NewPCG(15, 15))
	parts := models.NewPartitionManager(db)
	every := n / subject
	batch := make([]models.Event, 0, 10_000)
	for i := 0; i < n; i++ {
		ts := now.Add(-time.Duration(rng.Int64N(int64(364 * 24 * time.Hour)))).Truncate(time.Microsecond)
		principal := fmt.Sprintf("user-%d", rng.IntN(5000))
		rtype, rid := "Patient", fmt.Sprintf("pat-%06d", rng.IntN(100_000))
		if i%every == 0 && i/every < subject {
			principal = GDPRSubject
		} else if i%every == 1 && i/every < subject/10 {
			principal = gdprSmallSubject
		}
		outcome := "Viewed patient chart"
		ev := models.Event{OrganizationID: org, Timestamp: ts, Action: "fhir.read", Status: "success", DataClassification: "PHI",
			RetentionPolicy: "standard", EventVersion: "1.0", PrincipalID: &principal, TargetResourceType: &rtype,
			TargetResourceID: &rid, OutcomeDescription: &outcome,
			Details: fmt.Appendf(nil, `{"ip":"10.%d.%d.%d","requestId":"req-%d"}`, rng.IntN(256), rng.IntN(256), rng.IntN(256), i)}
		if err := sealer.Seal(&ev); err != nil {
			return err
		}
		batch = append(batch, ev)
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := ingest.CopyEvents(ctx, db, parts, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return db.Exec(`ANALYZE audit_log`).Error
}

// sqlNull prints as NULL in literalSQL.
type sqlNull struct{}

func (sqlNull) String() string { return "NULL" }

// GDPRExport measures a GDPR export of a subject's events (the whole pipeline: the
// background job, zstd, the chunks stored in PostgreSQL) against psql's \copy of the same
// rows to a file, in alternating rounds (medians), and the export's peak RSS in a process
// of its own at a tenth of the subject's events and at all of them.
func GDPRExport(ctx context.Context, o GDPRExportOptions) error {
	out := o.Out
	start := time.Now()
	if err := seedGDPREvents(ctx, o.DB, o.Sealer, o.Org, o.Events, o.Subject, o.Now); err != nil {
		return err
	}
	fmt.Fprintf(out, "gdpr-export: seeded %d events (%d of the subject) in %s\n", o.Events, o.Subject, time.Since(start).Round(time.Second))
	store := gdpr.NewStore(o.DB, nil)
	file := func(principal string) (*gdpr.Request, error) {
		return store.Create(ctx, o.Org, gdpr.Input{Type: gdpr.TypeAccess, Subject: gdpr.Subject{PrincipalID: principal},
			IdentityCheck: "benchmark", RequestedBy: "benchmark"}, models.SystemActor("bench"))
	}
	req, err := file(GDPRSubject)
	if err != nil {
		return err
	}
	query, args := gdpr.ExportSQL(o.Org, req.ID, req.Subject)
	lits := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case *string:
			if v == nil {
				lits[i] = sqlNull{}
			} else {
				lits[i] = *v
			}
		default:
			lits[i] = v
		}
	}
	dir, err := os.MkdirTemp("", "auditdb-bench-gdpr")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	psqlPath := filepath.Join(dir, "psql.csv")
	copyCmd := `\copy (` + literalSQL(query, lits) + `) TO '` + psqlPath + `' csv`
	rows := int64(o.Subject)
	var ours, theirs []float64
	var rss []int64
	for round := 1; round <= o.Rounds; round++ {
		runOurs := func() error {
			r, err := runChild(o.Child("--org", o.Org, "--request", req.ID, "--format", gdpr.FormatCSV))
			if err != nil {
				return err
			}
			ours = append(ours, float64(rows)/r.seconds)
			rss = append(rss, r.maxRSS)
			fmt.Fprintf(out, "  round %d: auditdb GDPR export %.2fs (%.0f events/s, %s, peak RSS %s)\n", round, r.seconds,
				float64(rows)/r.seconds, r.out, human(r.maxRSS))
			return nil
		}
		runPsql := func() error {
			r, err := runChild(exec.CommandContext(ctx, "psql", "-X", "-q", o.DSN, "-c", copyCmd))
			if err != nil {
				return err
			}
			theirs = append(theirs, float64(rows)/r.seconds)
			fmt.Fprintf(out, "  round %d: psql \\copy %.2fs (%.0f events/s)\n", round, r.seconds, float64(rows)/r.seconds)
			return nil
		}
		first, second := runOurs, runPsql
		if round%2 == 0 {
			first, second = runPsql, runOurs
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "GDPR export of %d events among %d: auditdb %.0f events/s, psql \\copy %.0f events/s (medians of %d rounds): ratio %.2f× (target ≥ 0.3×)\n",
		rows, o.Events, median(ours), median(theirs), o.Rounds, median(ours)/median(theirs))

	// Flat memory: the same export of a subject with a tenth of the events.
	other, err := file(gdprSmallSubject)
	if err != nil {
		return err
	}
	r, err := runChild(o.Child("--org", o.Org, "--request", other.ID, "--format", gdpr.FormatCSV))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "peak RSS: %s for a subject with a tenth of the events (%s), %s for the subject with %d events (median of %d; target ≤ 150 MB)\n",
		human(r.maxRSS), r.out, human(medianInt(rss)), rows, o.Rounds)
	return nil
}

// GDPRExportChild is the measured side of the benchmark, run in a process of its own so its
// peak RSS is the export's alone: it runs org's request's export in format through the
// background runner and waits for it, then writes a short summary to out.
func GDPRExportChild(ctx context.Context, db *gorm.DB, org, request, format string, out io.Writer) error {
	store := gdpr.NewStore(db, nil)
	runner := gdpr.NewRunner(db, store, nil, nil, nil)
	if _, err := runner.StartExport(ctx, org, request, format, models.SystemActor("bench")); err != nil {
		return err
	}
	runner.Wait()
	files, err := store.Exports(ctx, org, request)
	if err != nil {
		return err
	}
	r, err := store.Get(ctx, org, request)
	if err != nil {
		return err
	}
	if r.Operation != gdpr.OpDone || len(files) != 1 || !files[0].Complete {
		return fmt.Errorf("bench: the export did not complete: %s", r.Error)
	}
	fmt.Fprintf(out, "%d events, %s stored as %s", files[0].Events, human(files[0].Size), human(files[0].StoredSize))
	peak, err := PeakRSSOf(os.Getpid())()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "|rss=%d", peak)
	return nil
}
