package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"auditdb/models"
)

// DashboardOptions configure the dashboard benchmark.
type DashboardOptions struct {
	Events     int // events the bench organization holds (filled once per database)
	Iterations int // timed requests
	// Serve serves the application over the bench database on a listener.
	Serve   func(net.Listener) error
	Out     io.Writer
	Timeout time.Duration // per request
	DSN     string        // the database, for the bare-SQL baseline over pgx
}

// dashOrg is the organization whose dashboard is measured.
const dashOrg = "bench-dashboard"

// Shape of the generated history: how far back it reaches, and how many distinct actions
// and principals it holds; one event in failureEvery fails.
const (
	dashSpan       = 90 * 24 * time.Hour
	dashActions    = 40
	dashPrincipals = 2000
	failureEvery   = 33
	fillChunk      = 500_000
)

// Dashboard fills the bench database (once) with o.Events events of one organization, their
// Merkle leaves and the event-count rollups the detection pass keeps for them, then times
// GET / over HTTP (the server's own time, from Server-Timing) next to the very same
// statements run bare over pgx, alternating, and the old dashboard's counts over audit_log
// for comparison. It prints a table and returns an error if a request fails.
func Dashboard(ctx context.Context, db *gorm.DB, o DashboardOptions) error {
	if err := fillDashboard(ctx, db, o.Events, o.Out); err != nil {
		return err
	}
	const email, password = "bench-dashboard@auditdb.example", "bench-password-not-secret"
	users := models.NewUserStore(db)
	if _, err := users.Authenticate(ctx, email, password); err != nil {
		if _, err := users.Create(ctx, models.NewUser{Email: email, Password: password, OrgID: dashOrg, Role: models.OwnerRole}); err != nil {
			return fmt.Errorf("bench: create bench user: %w", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go o.Serve(ln)
	base := "http://" + ln.Addr().String()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: o.Timeout}
	if err := signIn(client, base, email, password); err != nil {
		return err
	}

	conn, err := pgx.Connect(ctx, o.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	// The same statements the handler's stores run on every request: the dashboard's batch
	// (without the 30-day aggregates, read at most once a minute), the newest checkpoint
	// and the ten latest events; and, apart, the 30-day aggregates a refresh adds.
	batch := func(monthly bool) func() error {
		return func() error {
			now := time.Now()
			b := &pgx.Batch{}
			for _, q := range models.DashboardQueries(dashOrg, now) {
				if q.Monthly == monthly {
					b.Queue(q.SQL, q.Args...)
				}
			}
			if !monthly {
				b.Queue(`SELECT * FROM audit_checkpoint WHERE organization_id = $1 ORDER BY number DESC LIMIT 1`, dashOrg)
				sqlText, args := models.ListSQL(dashOrg, models.EventFilter{From: now.Add(-30 * 24 * time.Hour), To: now.Add(5 * time.Minute)}, nil, 11)
				b.Queue(sqlText, args...)
			}
			return conn.SendBatch(ctx, b).Close()
		}
	}
	bare, refresh := batch(false), batch(true)
	timed := func(f func() error) (time.Duration, error) {
		start := time.Now()
		err := f()
		return time.Since(start), err
	}
	var serverT, sqlT, refreshT []time.Duration
	for i := -20; i < o.Iterations; i++ { // the first twenty warm caches, connections and plans
		d, err := get(client, base+"/")
		if err != nil {
			return err
		}
		b, err := timed(bare)
		if err != nil {
			return err
		}
		r, err := timed(refresh)
		if err != nil {
			return err
		}
		if i >= 0 {
			serverT, sqlT, refreshT = append(serverT, d), append(sqlT, b), append(refreshT, r)
		}
	}
	// Before: the three counts the dashboard used to run over audit_log.
	events := models.NewEventStore(db)
	var oldT []time.Duration
	for i := -2; i < 20; i++ {
		d, err := timed(func() error {
			_, err := events.Stats(ctx, dashOrg, time.Now())
			return err
		})
		if err != nil {
			return err
		}
		if i >= 0 {
			oldT = append(oldT, d)
		}
	}
	server, sql, month, old := percentiles(serverT), percentiles(sqlT), percentiles(refreshT), percentiles(oldT)
	fmt.Fprintf(o.Out, "\n%-44s %11s %11s\n", fmt.Sprintf("dashboard of %d events", o.Events), "p50", "p95")
	fmt.Fprintf(o.Out, "%-44s %11s %11s   (target: p95 at most 100 ms)\n", "GET / inside the server", ms(server.P50), ms(server.P95))
	fmt.Fprintf(o.Out, "%-44s %11s %11s\n", "its statements, bare SQL over pgx", ms(sql.P50), ms(sql.P95))
	fmt.Fprintf(o.Out, "%-44s %11s %11s\n", "30-day aggregates (once a minute), bare SQL", ms(month.P50), ms(month.P95))
	fmt.Fprintf(o.Out, "%-44s %11s %11s\n", "before: the old three counts over audit_log", ms(old.P50), ms(old.P95))
	fmt.Fprintf(o.Out, "\nserver = Server-Timing of GET / (session, authorization, queries, rendering), %d runs alternating with the\n"+
		"bare SQL of its statements (the rollup batch, the newest checkpoint, the ten latest events) and with the 30-day\n"+
		"aggregates (the daily chart and the top lists, which the store refreshes in the background about once a minute);\n"+
		"before = the old dashboard's counts (EventStore.Stats), %d runs.\n", o.Iterations, len(oldT))
	return nil
}

// fillDashboard gives the bench organization n events over the last 90 days, in time order,
// with their leaves, one checkpoint, one sweep run, a few alerts and the hourly and daily
// rollups the detection pass would have written for exactly those events. A database
// holding another number of events is refused: each size gets its own database.
func fillDashboard(ctx context.Context, db *gorm.DB, n int, out io.Writer) error {
	orgs := models.NewOrgStore(db)
	if _, err := orgs.Get(ctx, dashOrg); err != nil {
		if _, err := orgs.Create(ctx, dashOrg, "Dashboard benchmark"); err != nil {
			return fmt.Errorf("bench: create organization: %w", err)
		}
	}
	var have int64
	if err := db.WithContext(ctx).Raw(`SELECT coalesce(sum(events), 0) FROM event_counts_hourly WHERE organization_id = ?`, dashOrg).
		Scan(&have).Error; err != nil {
		return err
	}
	if have == int64(n) {
		return nil
	}
	if have != 0 {
		return fmt.Errorf("bench: the bench database holds %d dashboard events, not %d; use another --database", have, n)
	}
	now := time.Now().UTC().Truncate(time.Second)
	if err := models.NewPartitionManager(db).EnsureFor(ctx, "audit_log", months(now.Add(-dashSpan), now)...); err != nil {
		return err
	}
	fmt.Fprintf(out, "filling %d events with their leaves and rollups (once per bench database)…\n", n)
	start := time.Now()
	stepUS := dashSpan.Microseconds() / int64(n)
	// Event g (1…n) happened, and was sequenced, at now - (n - g) × step.
	gen := fmt.Sprintf(`SELECT g, $2::timestamptz - ((%d - g) * %d) * interval '1 microsecond' AS ts,
		'bench.action.' || (g %% %d) AS action, 'user-' || ((g * 31) %% %d) AS principal,
		CASE WHEN g %% %d = 0 THEN 'failure' ELSE 'success' END AS status
		FROM generate_series($3::bigint, $4::bigint) g`, n, stepUS, dashActions, dashPrincipals, failureEvery)
	exec := func(sqls ...string) func(lo, hi int) error {
		return func(lo, hi int) error {
			return models.WithPgx(ctx, db, func(conn *pgx.Conn) error {
				return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
					for _, q := range sqls {
						if _, err := tx.Exec(ctx, q, dashOrg, now, lo, hi); err != nil {
							return err
						}
					}
					return nil
				})
			})
		}
	}
	// Ids far above the sequence's, so that the console's own events never collide.
	events := exec(`INSERT INTO audit_log (id, "timestamp", organization_id, action, principal_id, status, hash, details)
			SELECT 1000000000000 + g, ts, $1, action, principal, status, md5(g::text) || md5(g::text), '{"source": "bench"}'::jsonb
			FROM (`+gen+`) e`,
		`INSERT INTO audit_leaf (organization_id, leaf_index, audit_log_id, event_timestamp, event_hash, sequenced_at)
			SELECT $1, g - 1, 1000000000000 + g, ts, md5(g::text) || md5(g::text), ts FROM (`+gen+`) e`)
	for lo := 1; lo <= n; lo += fillChunk {
		hi := min(lo+fillChunk-1, n)
		if err := events(lo, hi); err != nil {
			return fmt.Errorf("bench: fill events %d–%d: %w", lo, hi, err)
		}
		fmt.Fprintf(out, "  %d events (%s)\n", hi, time.Since(start).Round(time.Second))
	}
	rollups := exec(`INSERT INTO event_counts_hourly (organization_id, hour, events, failures)
			SELECT $1, date_trunc('hour', ts), count(*), count(*) FILTER (WHERE status = 'failure')
			FROM (`+gen+`) e GROUP BY 2`,
		`INSERT INTO event_counts_daily (organization_id, day, kind, value, events, failures)
			SELECT $1, (ts AT TIME ZONE 'UTC')::date, 'action', action, count(*), count(*) FILTER (WHERE status = 'failure')
			FROM (`+gen+`) e GROUP BY 2, 4`,
		`INSERT INTO event_counts_daily (organization_id, day, kind, value, events, failures)
			SELECT $1, (ts AT TIME ZONE 'UTC')::date, 'principal', principal, count(*), count(*) FILTER (WHERE status = 'failure')
			FROM (`+gen+`) e GROUP BY 2, 4`)
	if err := rollups(1, n); err != nil {
		return fmt.Errorf("bench: fill rollups: %w", err)
	}
	if err := db.WithContext(ctx).Exec(`INSERT INTO audit_checkpoint (organization_id, number, tree_size, root_hash, note, created_at)
		VALUES (?, 1, ?, '\x00', 'bench checkpoint', ?)`, dashOrg, n, now).Error; err != nil {
		return err
	}
	if err := models.NewSweepRunStore(db).Record(ctx, dashOrg, models.SweepRun{SweptAt: now.Add(-3 * time.Hour), OK: true, Events: int64(n)}); err != nil {
		return err
	}
	alerts := models.NewAlertStore(db)
	for i := range 200 {
		sev := models.AlertSeverities[i%len(models.AlertSeverities)]
		id, err := alerts.Raise(ctx, models.NewAlert{Org: dashOrg, Severity: sev, Type: "SECURITY", Title: "bench alert", Source: "bench"})
		if err != nil {
			return err
		}
		if i%3 == 0 {
			db.WithContext(ctx).Exec(`UPDATE alerts SET acknowledged = true, acknowledged_at = now() WHERE id = ?`, id)
		}
	}
	for _, t := range []string{"audit_log", "audit_leaf", "event_counts_hourly", "event_counts_daily", "alerts"} {
		if err := db.WithContext(ctx).Exec("ANALYZE " + t).Error; err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "filled in %s\n", time.Since(start).Round(time.Second))
	return nil
}

// months lists the first instant of every month from a to b.
func months(a, b time.Time) []time.Time {
	var out []time.Time
	for m := models.MonthStart(a); !m.After(b); m = m.AddDate(0, 1, 0) {
		out = append(out, m)
	}
	return out
}
