package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"auditdb/models"
)

// exportCase is one download of the export benchmark.
type exportCase struct {
	name string
	run  func() (int64, error) // returns the bytes received
}

// exportResult sums the rounds of one case.
type exportResult struct {
	name  string
	time  time.Duration
	bytes int64
	peak  int64 // the server's peak resident set during the case's downloads; 0 for COPY
}

// benchExport times the events list's export of a year of the bench organization's events
// (GET /events/export.csv and .jsonl, as an admin) against a COPY … TO STDOUT of the same
// rows and columns over pgx, in alternating rounds, and reads the server's peak resident
// set during each download (VmHWM, reset before each through /proc/<pid>/clear_refs).
func benchExport(ctx context.Context, db *gorm.DB, o EventsListOptions, base string, pid int) error {
	const email, password = "bench-export@auditdb.example", "bench-password-not-secret"
	users := models.NewUserStore(db)
	if _, err := users.Authenticate(ctx, email, password); err != nil {
		if _, err := users.Create(ctx, models.NewUser{Email: email, Password: password, OrgID: benchOrg, Role: "org:admin"}); err != nil {
			return fmt.Errorf("bench: create export user: %w", err)
		}
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 15 * time.Minute}
	if err := signIn(client, base, email, password); err != nil {
		return err
	}
	from, to := o.Now.Add(-365*24*time.Hour), o.Now.Add(5*time.Minute)
	var rows int64
	db.WithContext(ctx).Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND "timestamp" >= ? AND "timestamp" < ?`,
		benchOrg, from, to).Scan(&rows)
	conn, err := pgx.Connect(ctx, o.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	// The export's columns (handlers' exportColumns), newest first, as the export reads them.
	copySQL := fmt.Sprintf(`COPY (SELECT id, "timestamp", action, status, principal_id, target_resource_type, target_resource_id,
		outcome_description, correlation_id, data_classification, retention_policy, event_version, hash_algorithm, hash, signature
		FROM audit_log WHERE organization_id = '%s' AND "timestamp" >= '%s' AND "timestamp" < '%s'
		ORDER BY "timestamp" DESC, id DESC) TO STDOUT WITH (FORMAT csv, HEADER)`,
		benchOrg, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	download := func(path string) func() (int64, error) {
		return func() (int64, error) {
			resp, err := client.Get(base + path + "?range=1y")
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return 0, fmt.Errorf("bench: GET %s: status %d", path, resp.StatusCode)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			if err == nil && n == 0 {
				err = fmt.Errorf("bench: GET %s: empty", path)
			}
			return n, err
		}
	}
	cases := []exportCase{
		{"COPY … TO STDOUT (CSV), pgx", func() (int64, error) {
			tag, err := conn.PgConn().CopyTo(ctx, io.Discard, copySQL)
			return tag.RowsAffected(), err
		}},
		{"GET /events/export.csv", download("/events/export.csv")},
		{"GET /events/export.jsonl", download("/events/export.jsonl")},
	}
	results := make([]exportResult, len(cases))
	fmt.Fprintf(o.Out, "\nexport of %s's last year: %d events, %d rounds\n", benchOrg, rows, o.ExportRounds)
	for r := 0; r < o.ExportRounds; r++ {
		for i, c := range cases {
			if i > 0 {
				resetPeak(pid)
			}
			start := time.Now()
			n, err := c.run()
			if err != nil {
				return err
			}
			d := time.Since(start)
			results[i].name = c.name
			results[i].time += d
			rss := ""
			if i > 0 {
				results[i].bytes += n
				if peak, err := PeakRSSOf(pid)(); err == nil {
					results[i].peak = max(results[i].peak, peak)
					rss = fmt.Sprintf(", server peak RSS %.1f MiB", float64(peak)/(1<<20))
				}
			}
			fmt.Fprintf(o.Out, "  round %d: %-28s %8.0f events/s in %s%s\n", r+1, c.name, float64(rows)/d.Seconds(), d.Round(100*time.Millisecond), rss)
		}
	}
	fmt.Fprintf(o.Out, "\n%-30s %12s %10s %14s %16s\n", "export", "events/s", "× COPY", "MiB/s", "server peak RSS")
	copyRate := float64(rows) * float64(o.ExportRounds) / results[0].time.Seconds()
	for _, r := range results {
		rate := float64(rows) * float64(o.ExportRounds) / r.time.Seconds()
		mibs, peak := "—", "—"
		if r.bytes > 0 {
			mibs = fmt.Sprintf("%.1f", float64(r.bytes)/r.time.Seconds()/(1<<20))
		}
		if r.peak > 0 {
			peak = fmt.Sprintf("%.1f MiB", float64(r.peak)/(1<<20))
		}
		fmt.Fprintf(o.Out, "%-30s %12.0f %10.2f %14s %16s\n", r.name, rate, rate/copyRate, mibs, peak)
	}
	if rss, err := currentRSS(pid); err == nil {
		fmt.Fprintf(o.Out, "server resident set after the exports (VmRSS): %.1f MiB\n", float64(rss)/(1<<20))
	}
	fmt.Fprintln(o.Out, "(peak RSS = VmHWM of the server process, reset before each download; the COPY runs in PostgreSQL)")
	return nil
}

// resetPeak resets the peak resident set (VmHWM) of process pid to its current size.
func resetPeak(pid int) {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// currentRSS reads VmRSS of process pid, in bytes.
func currentRSS(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			_, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), "kB"), &kb)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("bench: no VmRSS in /proc/%d/status", pid)
}
