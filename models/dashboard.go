package models

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// Dashboard windows: hours of the hourly chart, days of the daily chart and the top lists,
// the ingest-rate window, and how many top actions and principals are listed.
const (
	DashboardHours      = 24
	DashboardDays       = 30
	DashboardIngestSpan = 5 * time.Minute
	DashboardTopN       = 5
)

// HourCount is the events (and failures among them) of one UTC hour.
type HourCount struct {
	Hour             time.Time
	Events, Failures int64
}

// DayCount is the events (and failures among them) of one UTC day.
type DayCount struct {
	Day              time.Time // midnight UTC
	Events, Failures int64
}

// ValueCount is one action or principal with its events and failures.
type ValueCount struct {
	Value            string
	Events, Failures int64
}

// SweepRun is one organization's outcome of an integrity sweep.
type SweepRun struct {
	SweptAt  time.Time
	OK       bool
	Problems int64
	Events   int64
	Error    string // the check could not run ("" when it ran)
}

// DashboardOverview is everything the dashboard shows about one organization, read from the
// event-count rollups, the alerts, the Merkle log's leaves and the sweep's runs; never from
// audit_log, so its cost does not grow with history.
type DashboardOverview struct {
	// Hours are the last DashboardHours UTC hours, oldest first, the current hour last;
	// hours without events are present with zero counts.
	Hours []HourCount
	// Days are the last DashboardDays UTC days, oldest first, today last.
	Days []DayCount
	// TopActions and TopPrincipals are the DashboardTopN busiest over Days.
	TopActions, TopPrincipals []ValueCount
	// MonthlyAsOf is when Days and the top lists were read (they are refreshed about once a
	// minute).
	MonthlyAsOf time.Time
	// ActiveAlerts counts alerts neither acknowledged nor resolved, by severity.
	ActiveAlerts map[string]int64
	// LastSweep is the newest integrity sweep of the organization (nil: never swept).
	LastSweep *SweepRun
	// LogSize is the number of events in the organization's Merkle log; Ingested is how
	// many of them were sequenced within DashboardIngestSpan before the clock.
	LogSize, Ingested int64
	// Counted says whether the rollups hold any row for the organization, ever. Recorded
	// says whether it holds any event other than the console's own records (sign-ins,
	// changes made in the console), counted or not yet.
	Counted, Recorded bool
}

// Empty says whether the organization has never received an event from its own systems.
func (o *DashboardOverview) Empty() bool { return !o.Recorded }

// DashboardQuery is one statement of the dashboard with its arguments. Monthly statements
// aggregate the 30 days (per day, per action, per principal): their cost is days × distinct
// values, so the store keeps their answer and refreshes it in the background.
type DashboardQuery struct {
	Name    string
	SQL     string
	Args    []any
	Monthly bool
}

// DefaultMonthlyTTL is how old the kept 30-day aggregates may get before they are read again.
const DefaultMonthlyTTL = time.Minute

// DashboardStore reads the dashboard's figures. The 30-day aggregates (the daily chart and
// the top lists) are kept per organization until the UTC day changes; once older than
// MonthlyTTL they are still answered while a background read replaces them, so a request
// pays for them only on an organization's first view of the day. Everything else is read on
// every call.
type DashboardStore struct {
	db *gorm.DB
	// MonthlyTTL is how old the kept 30-day aggregates may get before a background read
	// replaces them; 0 reads them on every call.
	MonthlyTTL time.Duration
	now        func() time.Time

	mu         sync.Mutex
	monthly    map[string]monthlyFigures
	refreshing map[string]bool
}

// monthlyFigures are an organization's 30-day aggregates as read at a time.
type monthlyFigures struct {
	readAt                    time.Time
	today                     time.Time
	days                      map[time.Time]DayCount
	topActions, topPrincipals []ValueCount
}

// NewDashboardStore returns a store over db keeping the 30-day aggregates for
// DefaultMonthlyTTL.
func NewDashboardStore(db *gorm.DB) *DashboardStore {
	return &DashboardStore{db: db, MonthlyTTL: DefaultMonthlyTTL, now: time.Now, monthly: map[string]monthlyFigures{},
		refreshing: map[string]bool{}}
}

// DashboardQueries are the statements Overview runs for org at now, in order: hours, days,
// top actions, top principals, active alerts, last sweep, ingest, recorded. Each reads
// through an index on organization_id and a bounded range, so none grows with history.
func DashboardQueries(org string, now time.Time) []DashboardQuery {
	now = now.UTC()
	hourEnd := now.Truncate(time.Hour).Add(time.Hour)
	hourStart := hourEnd.Add(-DashboardHours * time.Hour)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	dayStart := today.AddDate(0, 0, -(DashboardDays - 1))
	top := func(kind string) string {
		return `SELECT value, sum(events)::bigint AS e, sum(failures)::bigint FROM event_counts_daily
			WHERE organization_id = $1 AND kind = '` + kind + `' AND day >= $2 AND day <= $3
			GROUP BY value ORDER BY e DESC, value LIMIT $4`
	}
	return []DashboardQuery{
		{Name: "hours", SQL: `SELECT hour, events, failures FROM event_counts_hourly
			WHERE organization_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour`, Args: []any{org, hourStart, hourEnd}},
		// Every event has exactly one action, so a day's action counts add up to its total.
		{Name: "days", Monthly: true, SQL: `SELECT day, sum(events)::bigint, sum(failures)::bigint FROM event_counts_daily
			WHERE organization_id = $1 AND kind = 'action' AND day >= $2 AND day <= $3
			GROUP BY day ORDER BY day`, Args: []any{org, dayStart, today}},
		{Name: "top actions", Monthly: true, SQL: top("action"), Args: []any{org, dayStart, today, DashboardTopN}},
		{Name: "top principals", Monthly: true, SQL: top("principal"), Args: []any{org, dayStart, today, DashboardTopN}},
		{Name: "active alerts", SQL: `SELECT severity, count(*) FROM alerts
			WHERE organization_id = $1 AND NOT acknowledged AND NOT resolved GROUP BY severity`, Args: []any{org}},
		{Name: "last sweep", SQL: `SELECT swept_at, ok, problems, events, coalesce(error, '') FROM integrity_sweep_runs
			WHERE organization_id = $1 ORDER BY swept_at DESC LIMIT 1`, Args: []any{org}},
		// Leaves are numbered 0, 1, … in the order they were sequenced, and sequenced_at
		// grows with the number, so a binary search over the primary key finds the first
		// leaf of the window in about log2(size) index probes.
		{Name: "ingest", SQL: `WITH RECURSIVE size AS (SELECT (` + LogSizeSQL + `) AS n),
			search(lo, hi) AS (
				SELECT 0::bigint, n FROM size
				UNION ALL
				SELECT CASE WHEN l.sequenced_at >= $2 THEN s.lo ELSE (s.lo + s.hi) / 2 + 1 END,
				       CASE WHEN l.sequenced_at >= $2 THEN (s.lo + s.hi) / 2 ELSE s.hi END
				FROM search s JOIN audit_leaf l ON l.organization_id = $1 AND l.leaf_index = (s.lo + s.hi) / 2
				WHERE s.lo < s.hi)
			SELECT (SELECT n FROM size), (SELECT n FROM size) - (SELECT hi FROM search ORDER BY hi - lo LIMIT 1)`,
			Args: []any{org, now.Add(-DashboardIngestSpan)}},
		// Whether anything was counted, and whether any event is not the console's own: an
		// existence probe that stops at the first such event, not a count.
		{Name: "recorded", SQL: `SELECT EXISTS (SELECT 1 FROM event_counts_hourly WHERE organization_id = $1),
			EXISTS (SELECT 1 FROM audit_log WHERE organization_id = $1 AND details->>'source' IS DISTINCT FROM 'console')`, Args: []any{org}},
	}
}

// Overview reads org's dashboard figures at now in one round trip; the 30-day aggregates
// come from the store's memory when it holds them for the same UTC day (see DashboardStore).
func (s *DashboardStore) Overview(ctx context.Context, org string, now time.Time) (*DashboardOverview, error) {
	if org == "" {
		return nil, NotFound("organization")
	}
	now = now.UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	o := &DashboardOverview{ActiveAlerts: map[string]int64{}}
	hours := map[time.Time]HourCount{}
	s.mu.Lock()
	month, kept := s.monthly[org]
	kept = kept && s.MonthlyTTL > 0 && month.today.Equal(today)
	if kept && s.now().Sub(month.readAt) >= s.MonthlyTTL && !s.refreshing[org] {
		s.refreshing[org] = true
		go s.refreshMonthly(org, now)
	}
	s.mu.Unlock()
	if !kept {
		month = monthlyFigures{readAt: s.now(), today: today, days: map[time.Time]DayCount{}}
	}
	scanners := month.scanners()
	for name, scan := range map[string]func(pgx.Rows) error{
		"hours": func(r pgx.Rows) error {
			var h HourCount
			_, err := pgx.ForEachRow(r, []any{&h.Hour, &h.Events, &h.Failures}, func() error {
				hours[h.Hour.UTC()] = h
				return nil
			})
			return err
		},
		"active alerts": func(r pgx.Rows) error {
			var sev string
			var n int64
			_, err := pgx.ForEachRow(r, []any{&sev, &n}, func() error {
				o.ActiveAlerts[sev] = n
				return nil
			})
			return err
		},
		"last sweep": func(r pgx.Rows) error {
			var run SweepRun
			_, err := pgx.ForEachRow(r, []any{&run.SweptAt, &run.OK, &run.Problems, &run.Events, &run.Error}, func() error {
				o.LastSweep = &run
				return nil
			})
			return err
		},
		"ingest": func(r pgx.Rows) error {
			_, err := pgx.ForEachRow(r, []any{&o.LogSize, &o.Ingested}, func() error { return nil })
			return err
		},
		"recorded": func(r pgx.Rows) error {
			_, err := pgx.ForEachRow(r, []any{&o.Counted, &o.Recorded}, func() error { return nil })
			return err
		},
	} {
		scanners[name] = scan
	}
	var qs []DashboardQuery
	for _, q := range DashboardQueries(org, now) {
		if !q.Monthly || !kept {
			qs = append(qs, q)
		}
	}
	if err := s.run(ctx, qs, scanners); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, fmt.Errorf("models: dashboard: %w", err)
	}
	if !kept && s.MonthlyTTL > 0 {
		s.mu.Lock()
		s.monthly[org] = month
		s.mu.Unlock()
	}
	hourEnd := now.Truncate(time.Hour).Add(time.Hour)
	for h := hourEnd.Add(-DashboardHours * time.Hour); h.Before(hourEnd); h = h.Add(time.Hour) {
		c := hours[h]
		c.Hour = h
		o.Hours = append(o.Hours, c)
	}
	for d := today.AddDate(0, 0, -(DashboardDays - 1)); !d.After(today); d = d.AddDate(0, 0, 1) {
		c := month.days[d]
		c.Day = d
		o.Days = append(o.Days, c)
	}
	o.TopActions, o.TopPrincipals = month.topActions, month.topPrincipals
	o.MonthlyAsOf = month.readAt.UTC()
	return o, nil
}

// run sends qs in one batch and scans each answer with the scanner of its name.
func (s *DashboardStore) run(ctx context.Context, qs []DashboardQuery, scanners map[string]func(pgx.Rows) error) error {
	return WithPgx(ctx, s.db, func(conn *pgx.Conn) error {
		b := &pgx.Batch{}
		for _, q := range qs {
			b.Queue(q.SQL, q.Args...)
		}
		br := conn.SendBatch(ctx, b)
		defer br.Close()
		for _, q := range qs {
			rows, err := br.Query()
			if err != nil {
				return fmt.Errorf("%s: %w", q.Name, err)
			}
			if err := scanners[q.Name](rows); err != nil {
				return fmt.Errorf("%s: %w", q.Name, err)
			}
		}
		return nil
	})
}

// scanners read the 30-day statements' answers into m.
func (m *monthlyFigures) scanners() map[string]func(pgx.Rows) error {
	return map[string]func(pgx.Rows) error{
		"days": func(r pgx.Rows) error {
			var d DayCount
			_, err := pgx.ForEachRow(r, []any{&d.Day, &d.Events, &d.Failures}, func() error {
				m.days[d.Day.UTC()] = d
				return nil
			})
			return err
		},
		"top actions":    func(r pgx.Rows) error { return scanValues(r, &m.topActions) },
		"top principals": func(r pgx.Rows) error { return scanValues(r, &m.topPrincipals) },
	}
}

// refreshMonthly reads org's 30-day aggregates again, in the background of a request that
// answered with the kept ones; on failure the kept ones stay and the next request retries.
func (s *DashboardStore) refreshMonthly(org string, now time.Time) {
	defer func() {
		s.mu.Lock()
		delete(s.refreshing, org)
		s.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	m := monthlyFigures{readAt: s.now(), today: today, days: map[time.Time]DayCount{}}
	var qs []DashboardQuery
	for _, q := range DashboardQueries(org, now) {
		if q.Monthly {
			qs = append(qs, q)
		}
	}
	if err := s.run(ctx, qs, m.scanners()); err != nil {
		return
	}
	s.mu.Lock()
	if cur, ok := s.monthly[org]; !ok || cur.readAt.Before(m.readAt) {
		s.monthly[org] = m
	}
	s.mu.Unlock()
}

func scanValues(r pgx.Rows, into *[]ValueCount) error {
	var v ValueCount
	_, err := pgx.ForEachRow(r, []any{&v.Value, &v.Events, &v.Failures}, func() error {
		*into = append(*into, v)
		return nil
	})
	return err
}

// SweepRunStore records the integrity sweep's outcome per organization.
type SweepRunStore struct{ db *gorm.DB }

// NewSweepRunStore returns a store over db.
func NewSweepRunStore(db *gorm.DB) *SweepRunStore { return &SweepRunStore{db: db} }

// Record writes org's outcome of the sweep that ran at run.SweptAt.
func (s *SweepRunStore) Record(ctx context.Context, org string, run SweepRun) error {
	if org == "" {
		return NotFound("organization")
	}
	err := s.db.WithContext(ctx).Exec(`INSERT INTO integrity_sweep_runs (organization_id, swept_at, ok, problems, events, error)
		VALUES (?, ?, ?, ?, ?, NULLIF(?, '')) ON CONFLICT (organization_id, swept_at) DO UPDATE
		SET ok = EXCLUDED.ok, problems = EXCLUDED.problems, events = EXCLUDED.events, error = EXCLUDED.error`,
		org, run.SweptAt.UTC(), run.OK, run.Problems, run.Events, Truncate(run.Error, 2000)).Error
	if err != nil {
		return fmt.Errorf("models: record sweep run: %w", err)
	}
	return nil
}
