// Package bench holds the load and latency benchmarks behind `auditdb bench`. They run
// against a real PostgreSQL and compare each measurement with a baseline taken in the same
// run (machines are noisy; ratios travel better than milliseconds).
package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/demo"
)

// EventsListOptions configure the events list benchmark.
type EventsListOptions struct {
	Events     int       // events to seed when the database holds fewer
	Iterations int       // timed requests per case
	DeepPages  int       // how many keyset pages deep the "deep page" case is
	Now        time.Time // the benchmark's clock
	// Start runs the server to measure over the same database (seeded by then) and returns
	// its base URL, its process id and what stops it.
	Start func(ctx context.Context) (string, int, func(), error)
	// ExportRounds is how many times the export of a year of events is timed (0: not).
	ExportRounds int
	Sealer       *models.Sealer
	Out          io.Writer
	Timeout      time.Duration // per request
	DSN          string        // the database, for the bare-SQL baseline over pgx
}

// Percentiles summarises timings.
type Percentiles struct{ P50, P95 time.Duration }

func percentiles(ds []time.Duration) Percentiles {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration { return s[int(q*float64(len(s)-1)+0.5)] }
	return Percentiles{P50: at(0.50), P95: at(0.95)}
}

// benchOrg is the demo organization with most events, whose list is measured.
const benchOrg = "acme-health"

// EventsList seeds the database (when needed) with the demo data set, starts the server via
// o.Start, waits until its Merkle sequencer has taken in the seeded events (a live server
// has), signs in and times the events list (first page, and a page o.DeepPages keyset pages
// deep, for the last 30 days) over HTTP next to the very same SQL run bare over pgx, the two
// alternating so that both meet the same machine. It prints a table and returns an error if
// any request fails.
func EventsList(ctx context.Context, db *gorm.DB, o EventsListOptions) error {
	if err := seedDemo(ctx, db, o.Sealer, o.Events, o.Now, o.Out); err != nil {
		return err
	}
	const email, password = "bench@auditdb.example", "bench-password-not-secret"
	users := models.NewUserStore(db)
	if _, err := users.Authenticate(ctx, email, password); err != nil {
		if _, err := users.Create(ctx, models.NewUser{Email: email, Password: password, OrgID: benchOrg, Role: "org:member"}); err != nil {
			return fmt.Errorf("bench: create bench user: %w", err)
		}
	}

	base, pid, stop, err := o.Start(ctx)
	if err != nil {
		return err
	}
	defer stop()
	if err := waitForSequencer(ctx, db, o.Out); err != nil {
		return err
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: o.Timeout}
	if err := signIn(client, base, email, password); err != nil {
		return err
	}

	filter := models.EventFilter{From: o.Now.Add(-30 * 24 * time.Hour), To: o.Now.Add(5 * time.Minute)}
	q := url.Values{"from": {filter.From.UTC().Format(time.RFC3339)}, "to": {filter.To.UTC().Format(time.RFC3339)}}
	firstURL := base + "/events?" + q.Encode()
	deepURL, deepCursor, err := followPages(client, firstURL, o.DeepPages)
	if err != nil {
		return err
	}

	var total int64
	db.WithContext(ctx).Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND "timestamp" >= ? AND "timestamp" < ?`,
		benchOrg, filter.From, filter.To).Scan(&total)
	fmt.Fprintf(o.Out, "organization %s: %d events in the last 30 days; deep page = %d pages of %d in\n",
		benchOrg, total, o.DeepPages, 50)

	conn, err := pgx.Connect(ctx, o.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)

	type result struct {
		name              string
		server, http, sql Percentiles
	}
	var results []result
	for _, c := range []struct {
		name   string
		url    string
		cursor *models.Cursor
	}{{"first page", firstURL, nil}, {"deep keyset page", deepURL, &deepCursor}} {
		sqlText, args := models.ListSQL(benchOrg, filter, c.cursor, 51)
		bare := func() error {
			rows, err := conn.Query(ctx, sqlText, args...)
			if err != nil {
				return err
			}
			n := 0
			for rows.Next() {
				n++
			}
			rows.Close()
			if n == 0 {
				return fmt.Errorf("bench: bare SQL returned no rows")
			}
			return rows.Err()
		}
		var serverT, httpT, sqlT []time.Duration
		for i := -10; i < o.Iterations; i++ { // the first ten warm caches, connections and plans
			start := time.Now()
			d, err := get(client, c.url)
			if err != nil {
				return err
			}
			took := time.Since(start)
			start = time.Now()
			if err := bare(); err != nil {
				return err
			}
			if i >= 0 {
				serverT, httpT, sqlT = append(serverT, d), append(httpT, took), append(sqlT, time.Since(start))
			}
		}
		results = append(results, result{c.name, percentiles(serverT), percentiles(httpT), percentiles(sqlT)})
	}
	fmt.Fprintf(o.Out, "\n%-18s %11s %11s %11s %11s %11s %11s %9s\n", "case", "server p50", "server p95",
		"SQL p50", "SQL p95", "HTTP p50", "HTTP p95", "p95 ratio")
	for _, r := range results {
		fmt.Fprintf(o.Out, "%-18s %11s %11s %11s %11s %11s %11s %8.2fx\n", r.name, ms(r.server.P50), ms(r.server.P95),
			ms(r.sql.P50), ms(r.sql.P95), ms(r.http.P50), ms(r.http.P95), float64(r.server.P95)/float64(r.sql.P95))
	}
	fmt.Fprintf(o.Out, "\nserver = time inside the server for GET /events (session, query, HTML rendering), from its Server-Timing header;\n"+
		"SQL = the same keyset query run bare over pgx; HTTP = the client's loopback round trip. %d runs each; ratio = server p95 / SQL p95.\n", o.Iterations)
	if o.ExportRounds > 0 {
		return benchExport(ctx, db, o, base, pid)
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// seedDemo fills the bench database with the demo data set of n events, unless it holds
// that many already, and refreshes the planner's statistics.
func seedDemo(ctx context.Context, db *gorm.DB, sealer *models.Sealer, n int, now time.Time, out io.Writer) error {
	var have int64
	if err := db.WithContext(ctx).Raw("SELECT count(*) FROM audit_log").Scan(&have).Error; err != nil {
		return err
	}
	if have < int64(n) {
		fmt.Fprintf(out, "seeding %d events (database has %d)…\n", n, have)
		start := time.Now()
		res, err := demo.Seed(ctx, db, sealer, models.NewPartitionManager(db), demo.Options{Events: n, Now: now, Seed: 1})
		if err != nil {
			return err
		}
		if res.Skipped != "" {
			return fmt.Errorf("bench: the bench database already holds demo events but fewer than %d; drop it and run again", n)
		}
		fmt.Fprintf(out, "seeded %d events in %s\n", res.EventsWritten, time.Since(start).Round(time.Second))
	}
	return db.WithContext(ctx).Exec("ANALYZE audit_log").Error
}

// waitForSequencer waits until the Merkle leaf queue is empty: a freshly seeded database
// has every event queued, and a server that has caught up has none.
func waitForSequencer(ctx context.Context, db *gorm.DB, out io.Writer) error {
	told := false
	for deadline := time.Now().Add(30 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		var queued int64
		if err := db.WithContext(ctx).Raw("SELECT coalesce(sum(cardinality(audit_log_ids)), 0) FROM audit_leaf_queue").Scan(&queued).Error; err != nil {
			return err
		}
		if queued == 0 {
			return nil
		}
		if !told {
			fmt.Fprintf(out, "waiting for the server's Merkle sequencer to take in %d queued events (once per bench database)…\n", queued)
			told = true
		}
	}
	return fmt.Errorf("bench: the Merkle sequencer did not catch up within 30 minutes")
}

var (
	csrfInput    = regexp.MustCompile(`name="_csrf"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="_csrf"`)
	serverTiming = regexp.MustCompile(`app;dur=([0-9.]+)`)
	nextLink     = regexp.MustCompile(`href="(/events\?[^"]*after=[^"]+)"`)
)

func signIn(client *http.Client, base, email, password string) error {
	resp, err := client.Get(base + "/login")
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfInput.FindStringSubmatch(string(body))
	if m == nil {
		return fmt.Errorf("bench: no CSRF token on the sign-in page")
	}
	token := m[1] + m[2]
	resp, err = client.PostForm(base+"/login", url.Values{"_csrf": {token}, "email": {email}, "password": {password}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.HasSuffix(resp.Request.URL.Path, "/login") {
		return fmt.Errorf("bench: sign-in failed with status %d", resp.StatusCode)
	}
	return nil
}

// get fetches u and returns the server's own time for it, read from Server-Timing.
func get(client *http.Client, u string) (time.Duration, error) {
	resp, err := client.Get(u)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("bench: GET %s: status %d", u, resp.StatusCode)
	}
	m := serverTiming.FindStringSubmatch(resp.Header.Get("Server-Timing"))
	if m == nil {
		return 0, fmt.Errorf("bench: GET %s: no Server-Timing header", u)
	}
	ms, _ := strconv.ParseFloat(m[1], 64)
	return time.Duration(ms * float64(time.Millisecond)), err
}

// followPages walks n "older" links from first and returns the URL and cursor of that page.
func followPages(client *http.Client, first string, n int) (string, models.Cursor, error) {
	u := first
	var cur models.Cursor
	for i := 0; i < n; i++ {
		resp, err := client.Get(u)
		if err != nil {
			return "", cur, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := nextLink.FindStringSubmatch(string(body))
		if m == nil {
			return "", cur, fmt.Errorf("bench: page %d has no next link; seed more events or lower --deep", i)
		}
		href := strings.ReplaceAll(m[1], "&amp;", "&")
		parsed, _ := url.Parse(href)
		cur, err = models.ParseCursor(parsed.Query().Get("after"))
		if err != nil {
			return "", cur, err
		}
		base, _ := url.Parse(first)
		u = base.Scheme + "://" + base.Host + href
	}
	return u, cur, nil
}
