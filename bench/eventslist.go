// Package bench holds the load and latency benchmarks behind `auditdb bench`. They run
// against a real PostgreSQL and compare each measurement with a baseline taken in the same
// run (machines are noisy; ratios travel better than milliseconds).
package bench

import (
	"context"
	"errors"
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
	// Qualifier and Text are the qualifier query and the free text measured over 30 days;
	// both should match events of the bench organization.
	Qualifier, Text string
	// TenantSQL runs the bare SQL as the server does, in a read-only transaction as the
	// tenant role (row-level security on); false: as the connecting owner.
	TenantSQL bool
	// CaseBudget ends a case's warm-up and then its runs once it has taken this long (it
	// keeps at least five runs);
	// 0: every case runs Iterations times.
	CaseBudget time.Duration
	Sealer     *models.Sealer
	Out        io.Writer
	Timeout    time.Duration // per request
	DSN        string        // the database, for the bare-SQL baseline over pgx
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
// has), signs in and times, over HTTP, next to the very same SQL run bare over pgx (the two
// alternating so that both meet the same machine): the events list for the last 30 days
// (first page, and a page o.DeepPages keyset pages deep), the qualifier query o.Qualifier
// and the free text o.Text over 30 days, the list's summary (count, histogram and facets)
// for 30 days, and the worst cases, a word and an action that match nothing over a year.
// Before it measures it builds the search sketches as the server's hourly job does. It
// prints a table with the target for each case and returns an error if any request
// fails.
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
	// Free text skips the days its search sketches rule out; the server builds them daily
	// (and at start), so the bench builds them as that job does before it measures.
	built, err := models.NewSearchSketches(db, time.Now).Build(ctx, "")
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "search sketches built as the hourly job builds them: %d days of %d organizations, %d refreshed, %d events read in %s (largest fill %.1f %%)\n",
		built.Built, built.Orgs, built.Refreshed, built.Events, built.Took.Round(time.Millisecond), 100*built.MaxFill)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: o.Timeout}
	if err := signIn(client, base, email, password); err != nil {
		return err
	}

	// Times go into URLs to the second; the bare SQL uses the very same instants.
	now := o.Now.UTC().Truncate(time.Second)
	month := models.EventFilter{From: now.Add(-30 * 24 * time.Hour), To: now.Add(5 * time.Minute)}
	year := models.EventFilter{From: now.AddDate(-1, 0, 0), To: month.To}
	pageURL := func(f models.EventFilter, q string) string {
		v := url.Values{"from": {f.From.Format(time.RFC3339)}, "to": {f.To.Format(time.RFC3339)}}
		if q != "" {
			v.Set("q", q)
		}
		return base + "/events?" + v.Encode()
	}
	firstURL := pageURL(month, "")
	deepURL, deepCursor, err := followPages(client, firstURL, o.DeepPages)
	if err != nil {
		return err
	}

	var total int64
	db.WithContext(ctx).Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND "timestamp" >= ? AND "timestamp" < ?`,
		benchOrg, month.From, month.To).Scan(&total)
	fmt.Fprintf(o.Out, "organization %s: %d events in the last 30 days; deep page = %d pages of %d in\n",
		benchOrg, total, o.DeepPages, 50)

	conn, err := pgx.Connect(ctx, o.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var runPlan func(generic bool, sqlText string, args []any, first ...any) (int, error)
	// run runs one statement bare and returns how many rows it gave (and the first column
	// of the first row into first, when given). With o.TenantSQL it runs as the server runs
	// it: in a read-only transaction as the tenant role, row-level security on.
	run := func(sqlText string, args []any, first ...any) (int, error) {
		return runPlan(false, sqlText, args, first...)
	}
	runPlan = func(generic bool, sqlText string, args []any, first ...any) (int, error) {
		b := &pgx.Batch{}
		if o.TenantSQL {
			b.Queue("BEGIN READ ONLY")
			settings := "SELECT set_config('role', $1, true), set_config($2, $3, true)"
			if generic { // as the server runs a free-text list (models.PreferGenericPlan)
				settings += ", set_config('plan_cache_mode', 'force_generic_plan', true)"
			}
			b.Queue(settings, models.TenantRole, models.TenantSetting, benchOrg)
		}
		b.Queue(sqlText, args...)
		if o.TenantSQL {
			b.Queue("COMMIT")
		}
		br := conn.SendBatch(ctx, b)
		defer br.Close()
		if o.TenantSQL {
			for i := 0; i < 2; i++ {
				if _, err := br.Exec(); err != nil {
					return 0, err
				}
			}
		}
		rows, err := br.Query()
		if err != nil {
			return 0, err
		}
		n := 0
		for rows.Next() {
			if n == 0 && len(first) > 0 {
				if err := rows.Scan(first...); err != nil {
					rows.Close()
					return 0, err
				}
			}
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
		if o.TenantSQL {
			if _, err := br.Exec(); err != nil {
				return 0, err
			}
		}
		return n, br.Close()
	}
	// list is the bare SQL of the list's first page (or the page after cur) for f and q;
	// empty says whether the query is meant to match nothing.
	store := models.NewEventStore(db)
	list := func(f models.EventFilter, q string, cur *models.Cursor, empty bool) (func() error, error) {
		var err error
		if f.Query, err = models.ParseEventQuery(q); err != nil {
			return nil, err
		}
		return func() error {
			// The server resolves action: terms into exact actions first (as the database
			// owner, from detection's counts): part of the bare time as well.
			f, err := store.ResolveFilter(ctx, benchOrg, f)
			if err != nil {
				return err
			}
			n := 0
			if !f.MatchesNothing() {
				sqlText, args := models.ListSQL(benchOrg, f, cur, 51)
				n, err = runPlan(models.PreferGenericPlan(f), sqlText, args)
			}
			if err == nil && (n == 0) != empty {
				err = fmt.Errorf("bench: bare SQL for %q returned %d rows", q, n)
			}
			return err
		}, nil
	}
	// summary is the bare SQL of GET /events/summary for f: the count (and the planner's
	// estimate when more than models.MaxExactCount match), the histogram and the facets.
	summary := func(f models.EventFilter) func() error {
		countSQL, countArgs := models.CountSQL(benchOrg, f)
		estSQL, estArgs := models.EstimateSQL(benchOrg, f)
		facetSQL, facetArgs := models.FacetsSQL(benchOrg, f)
		return func() error {
			var n int64
			if _, err := run(countSQL, countArgs, &n); err != nil {
				return err
			}
			if n > models.MaxExactCount {
				if _, err := run(estSQL, estArgs); err != nil {
					return err
				}
			}
			// The histogram of a query without conditions is no longer one statement: the
			// hours detection counted come from its counts, the rest from the events (as the
			// database owner and in the tenant transaction): run as the server runs it.
			if _, err := store.Histogram(ctx, benchOrg, f, models.HistogramWidth(f.To.Sub(f.From))); err != nil {
				return err
			}
			got, err := run(facetSQL, facetArgs)
			if err == nil && got == 0 {
				err = fmt.Errorf("bench: bare facets SQL returned no rows")
			}
			return err
		}
	}

	type benchCase struct {
		name, url string
		target    time.Duration // the target for the server's p95
		bare      func() error
	}
	var cases []benchCase
	add := func(name, u string, target time.Duration, bare func() error, err error) error {
		if err != nil {
			return err
		}
		cases = append(cases, benchCase{name, u, target, bare})
		return nil
	}
	firstBare, err := list(month, "", nil, false)
	if err := add("first page", firstURL, 50*time.Millisecond, firstBare, err); err != nil {
		return err
	}
	deepBare, err := list(month, "", &deepCursor, false)
	if err := add("deep keyset page", deepURL, 50*time.Millisecond, deepBare, err); err != nil {
		return err
	}
	qualBare, err := list(month, o.Qualifier, nil, false)
	if err := add("qualifiers, 30 d", pageURL(month, o.Qualifier), 50*time.Millisecond, qualBare, err); err != nil {
		return err
	}
	textBare, err := list(month, o.Text, nil, false)
	if err := add("free text, 30 d", pageURL(month, o.Text), 150*time.Millisecond, textBare, err); err != nil {
		return err
	}
	sum := url.Values{"from": {month.From.Format(time.RFC3339)}, "to": {month.To.Format(time.RFC3339)}, "shown": {"50"}}
	if err := add("count+hist+facets", base+"/events/summary?"+sum.Encode(), 200*time.Millisecond, summary(month), nil); err != nil {
		return err
	}
	noText, err := list(year, noMatchText, nil, true)
	if err := add("no-match text, 1 y", pageURL(year, noMatchText), 500*time.Millisecond, noText, err); err != nil {
		return err
	}
	noAction, err := list(year, noMatchAction, nil, true)
	if err := add("no-match action,1 y", pageURL(year, noMatchAction), 500*time.Millisecond, noAction, err); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "qualifiers: %q; free text: %q; no match: %q and %q\n", o.Qualifier, o.Text, noMatchText, noMatchAction)

	type result struct {
		benchCase
		server, http, sql Percentiles
		runs, refused     int
	}
	var results []result
	for _, c := range cases {
		var serverT, httpT, sqlT []time.Duration
		refused := 0
		began := time.Now()
		for i := -min(10, o.Iterations); i < o.Iterations; i++ { // the first ten warm caches, connections and plans
			if o.CaseBudget > 0 && time.Since(began) > o.CaseBudget {
				if i >= 5 {
					break // a slow case keeps the runs it has (at least five)
				}
				if i < 0 {
					i = 0 // and warms up for less
				}
			}
			start := time.Now()
			d, err := get(client, c.url)
			took := time.Since(start)
			if errors.Is(err, errUnavailable) {
				// The statement timeout ended the query ("narrow the range or the query"):
				// counted, with the round trip as its time.
				d, err = took, nil
				if i >= 0 {
					refused++
				}
			}
			if err != nil {
				return err
			}
			start = time.Now()
			if err := c.bare(); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			if i >= 0 {
				serverT, httpT, sqlT = append(serverT, d), append(httpT, took), append(sqlT, time.Since(start))
			}
		}
		results = append(results, result{c, percentiles(serverT), percentiles(httpT), percentiles(sqlT), len(serverT), refused})
	}
	fmt.Fprintf(o.Out, "\n%-20s %5s %11s %11s %11s %11s %11s %11s %9s %10s %4s %s\n", "case", "runs", "server p50", "server p95",
		"SQL p50", "SQL p95", "HTTP p50", "HTTP p95", "p95 ratio", "target p95", "503s", "met")
	missed := 0
	for _, r := range results {
		met := "yes"
		if r.server.P95 > r.target || r.refused > 0 {
			met, missed = "NO", missed+1
		}
		fmt.Fprintf(o.Out, "%-20s %5d %11s %11s %11s %11s %11s %11s %8.2fx %10s %4d %s\n", r.name, r.runs, ms(r.server.P50), ms(r.server.P95),
			ms(r.sql.P50), ms(r.sql.P95), ms(r.http.P50), ms(r.http.P95), float64(r.server.P95)/float64(max(r.sql.P95, time.Microsecond)),
			ms(r.target), r.refused, met)
	}
	bareAs := "as the database owner"
	if o.TenantSQL {
		bareAs = "as the server runs them (tenant role, row-level security)"
	}
	fmt.Fprintf(o.Out, "\nserver = time inside the server (session, queries, HTML rendering), from its Server-Timing header;\n"+
		"SQL = the same queries run bare over pgx, %s (the list's keyset query; for the summary its count,\n"+
		"estimate, histogram and facets); HTTP = the client's loopback round trip. Up to %d runs each (fewer when a case\n"+
		"outlasts its time budget), server and SQL alternating;\n"+
		"ratio = server p95 / SQL p95; target = the issue's p95 target for the server time; 503s = requests the server's statement\n"+
		"timeout ended (timed by their round trip). %d of %d cases miss the target.\n",
		bareAs, o.Iterations, missed, len(results))
	if o.ExportRounds > 0 {
		return benchExport(ctx, db, o, base, pid)
	}
	return nil
}

// The worst cases: a word and an action that match nothing, searched over a year.
const (
	noMatchText   = "zzq-no-such-word"
	noMatchAction = "action:no.such.action"
)

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

// errUnavailable is a 503 answer: the server gave up on the request (its statement timeout).
var errUnavailable = errors.New("status 503 (unavailable)")

// get fetches u and returns the server's own time for it, read from Server-Timing.
func get(client *http.Client, u string) (time.Duration, error) {
	resp, err := client.Get(u)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return 0, fmt.Errorf("bench: GET %s: %w", u, errUnavailable)
	}
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
