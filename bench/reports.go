package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/reports"
)

// ReportsOptions configure the reports benchmark.
type ReportsOptions struct {
	DB     *gorm.DB
	DSN    string
	Sealer *models.Sealer
	Org    string
	Events int
	Rounds int
	// PDFRows is how many event rows the PDF round lists.
	PDFRows int
	Now     time.Time
	// Child runs this program's hidden report child: args are appended to it.
	Child func(args ...string) *exec.Cmd
	Out   io.Writer
}

// SeedReportEvents writes n events of org spread over the year before now (unless the
// organization already has them), in batches of 10,000; some carry formula prefixes,
// right-to-left text and emoji.
func SeedReportEvents(ctx context.Context, db *gorm.DB, sealer *models.Sealer, org string, n int, now time.Time) error {
	var have int64
	if err := db.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ?`, org).Scan(&have).Error; err != nil {
		return err
	}
	if have >= int64(n) {
		return nil
	}
	rng := rand.New(rand.NewPCG(14, 14))
	parts := models.NewPartitionManager(db)
	actions := []string{"auth.login.success", "fhir.read", "data.read", "document.update", "export.create"}
	classes := []string{"PHI", "INTERNAL", "CONFIDENTIAL", "PHI", "PUBLIC"}
	statuses := []string{"success", "success", "success", "failure", "attempt"}
	outcomes := []string{"Viewed patient chart", "=SUM(A1:A9) exported", "קריאה של רשומה", "Signed in 😀", "<b>updated</b>"}
	batch := make([]models.Event, 0, 10_000)
	for i := int(have); i < n; i++ {
		ts := now.Add(-time.Duration(rng.Int64N(int64(364 * 24 * time.Hour)))).Truncate(time.Microsecond)
		principal := fmt.Sprintf("user-%d", rng.IntN(5000))
		rtype, rid := "Patient", fmt.Sprintf("pat-%06d", rng.IntN(100_000))
		outcome := outcomes[rng.IntN(len(outcomes))]
		ev := models.Event{OrganizationID: org, Timestamp: ts, Action: actions[rng.IntN(len(actions))],
			Status: statuses[rng.IntN(len(statuses))], DataClassification: classes[rng.IntN(len(classes))],
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
	_ = db.Exec(`ANALYZE audit_log`).Error
	return nil
}

// literalSQL inlines args into query's $n placeholders (strings quoted, times as
// timestamptz literals), for psql.
func literalSQL(query string, args []any) string {
	for i := len(args); i >= 1; i-- {
		var lit string
		switch v := args[i-1].(type) {
		case string:
			lit = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		case time.Time:
			lit = "'" + v.UTC().Format(time.RFC3339Nano) + "'::timestamptz"
		default:
			lit = fmt.Sprint(v)
		}
		query = strings.ReplaceAll(query, fmt.Sprintf("$%d", i), lit)
	}
	return strings.Join(strings.Fields(query), " ")
}

type childRun struct {
	seconds float64
	maxRSS  int64
	out     string
}

func runChild(cmd *exec.Cmd) (childRun, error) {
	start := time.Now()
	out, err := cmd.Output()
	secs := time.Since(start).Seconds()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		return childRun{}, fmt.Errorf("bench: %s: %v %s", strings.Join(cmd.Args, " "), err, msg)
	}
	// The child reports its own peak (VmHWM): the rusage of a child started from a large
	// parent can carry the parent's pages from before the exec.
	text, peak, _ := strings.Cut(strings.TrimSpace(string(out)), "|rss=")
	rss, _ := strconv.ParseInt(peak, 10, 64)
	return childRun{seconds: secs, maxRSS: rss, out: text}, nil
}

// Reports measures the CSV of the organization's whole year against psql's \copy of the
// same rows (alternating rounds, medians), the CSV writer's peak RSS at a tenth and at all
// of the rows (flat memory shows as the same peak), and a PDF of PDFRows rows.
func Reports(ctx context.Context, o ReportsOptions) error {
	out := o.Out
	if err := SeedReportEvents(ctx, o.DB, o.Sealer, o.Org, o.Events, o.Now); err != nil {
		return err
	}
	year := reports.Criteria{Type: reports.TypeGeneral, From: o.Now.AddDate(-1, 0, 0), To: o.Now.Add(time.Minute)}
	var rows int64
	if err := o.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND "timestamp" >= ? AND "timestamp" < ?`,
		o.Org, year.From, year.To).Scan(&rows).Error; err != nil {
		return err
	}
	query, args := reports.EventsSQL(o.Org, year)
	dir, err := os.MkdirTemp("", "auditdb-bench-reports")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	csvPath, psqlPath := filepath.Join(dir, "report.csv"), filepath.Join(dir, "psql.csv")
	copyCmd := `\copy (` + literalSQL(query, args) + `) TO '` + psqlPath + `' csv`
	fmt.Fprintf(out, "reports: %d events of %s in the year (%s to %s)\n", rows, o.Org, year.From.Format(time.DateOnly), year.To.Format(time.DateOnly))
	period := func(c reports.Criteria) []string {
		return []string{"--org", o.Org, "--from", c.From.Format(time.RFC3339Nano), "--to", c.To.Format(time.RFC3339Nano)}
	}
	var ours, theirs []float64
	var rss []int64
	for round := 1; round <= o.Rounds; round++ {
		// Alternate which goes first, so neither always meets a warmer cache.
		runOurs := func() error {
			r, err := runChild(o.Child(append([]string{"--mode", "csv", "--out", csvPath}, period(year)...)...))
			if err != nil {
				return err
			}
			ours = append(ours, float64(rows)/r.seconds)
			rss = append(rss, r.maxRSS)
			fmt.Fprintf(out, "  round %d: auditdb CSV %.2fs (%.0f events/s, peak RSS %s)\n", round, r.seconds, float64(rows)/r.seconds, human(r.maxRSS))
			return nil
		}
		runPsql := func() error {
			cmd := exec.CommandContext(ctx, "psql", "-X", "-q", o.DSN, "-c", copyCmd)
			r, err := runChild(cmd)
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
	oursSize, _ := os.Stat(csvPath)
	theirSize, _ := os.Stat(psqlPath)
	fmt.Fprintf(out, "CSV: auditdb %.0f events/s, psql \\copy %.0f events/s (medians of %d rounds): ratio %.2f× (target ≥ 0.5×); files %s and %s\n",
		median(ours), median(theirs), o.Rounds, median(ours)/median(theirs), human(oursSize.Size()), human(theirSize.Size()))

	// Flat memory: the same writer over a tenth of the year.
	tenth := year
	tenth.From = year.To.Add(-year.To.Sub(year.From) / 10)
	small, err := runChild(o.Child(append([]string{"--mode", "csv", "--out", csvPath}, period(tenth)...)...))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "CSV peak RSS: %s for a tenth of the rows (%s), %s for all of them (median of %d)\n",
		human(small.maxRSS), small.out, human(medianInt(rss)), o.Rounds)

	// PDF of PDFRows rows.
	pdf, err := runChild(o.Child(append([]string{"--mode", "pdf", "--rows", fmt.Sprint(o.PDFRows), "--out", filepath.Join(dir, "r.pdf")}, period(year)...)...))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "PDF: %d event rows in %.2fs, %s, peak RSS %s\n", o.PDFRows, pdf.seconds, pdf.out, human(pdf.maxRSS))
	return nil
}

func medianInt(xs []int64) int64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// ReportChild is the measured side of the benchmark, run in a process of its own so its
// peak RSS is the report's alone: mode csv writes the CSV of org's events in the period to
// path; mode pdf builds the report and writes its PDF with at most rows event rows. It
// writes a short summary to out.
func ReportChild(ctx context.Context, db *gorm.DB, mode, org string, from, to time.Time, rows int, path string, out io.Writer) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	c := reports.Criteria{Type: reports.TypeGeneral, From: from, To: to}
	switch mode {
	case "csv":
		n, err := reports.WriteCSV(ctx, db, org, c, f, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%d events", n)
	case "pdf":
		r, err := reports.NewGenerator(db).Build(ctx, org, c, time.Now())
		if err != nil {
			return err
		}
		pages, err := reports.WritePDFRows(ctx, db, r, f, rows)
		if err != nil {
			return err
		}
		st, _ := f.Stat()
		fmt.Fprintf(out, "%d pages, %s", pages, human(st.Size()))
	default:
		return fmt.Errorf("bench: unknown report child mode %q", mode)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	peak, err := PeakRSSOf(os.Getpid())()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "|rss=%d", peak)
	return nil
}
