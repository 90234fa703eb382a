package models

import (
	"context"
	"errors"
	"fmt"
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

// Alert severities in the order the console lists them, most severe first.
var AlertSeverities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW"}

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

// DashboardQuery is one statement of the dashboard with its arguments.
type DashboardQuery struct {
	Name string
	SQL  string
	Args []any
}

// DashboardStore reads the dashboard's figures.
type DashboardStore struct{ db *gorm.DB }

// NewDashboardStore returns a store over db.
func NewDashboardStore(db *gorm.DB) *DashboardStore { return &DashboardStore{db: db} }

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
		{"hours", `SELECT hour, events, failures FROM event_counts_hourly
			WHERE organization_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour`, []any{org, hourStart, hourEnd}},
		// Every event has exactly one action, so a day's action counts add up to its total.
		{"days", `SELECT day, sum(events)::bigint, sum(failures)::bigint FROM event_counts_daily
			WHERE organization_id = $1 AND kind = 'action' AND day >= $2 AND day <= $3
			GROUP BY day ORDER BY day`, []any{org, dayStart, today}},
		{"top actions", top("action"), []any{org, dayStart, today, DashboardTopN}},
		{"top principals", top("principal"), []any{org, dayStart, today, DashboardTopN}},
		{"active alerts", `SELECT severity, count(*) FROM alerts
			WHERE organization_id = $1 AND NOT acknowledged AND NOT resolved GROUP BY severity`, []any{org}},
		{"last sweep", `SELECT swept_at, ok, problems, events, coalesce(error, '') FROM integrity_sweep_runs
			WHERE organization_id = $1 ORDER BY swept_at DESC LIMIT 1`, []any{org}},
		// Leaves are numbered 0, 1, … in the order they were sequenced, and sequenced_at
		// grows with the number, so a binary search over the primary key finds the first
		// leaf of the window in about log2(size) index probes.
		{"ingest", `WITH RECURSIVE size AS (
				SELECT coalesce((SELECT leaf_index + 1 FROM audit_leaf WHERE organization_id = $1
					ORDER BY leaf_index DESC LIMIT 1), 0) AS n),
			search(lo, hi) AS (
				SELECT 0::bigint, n FROM size
				UNION ALL
				SELECT CASE WHEN l.sequenced_at >= $2 THEN s.lo ELSE (s.lo + s.hi) / 2 + 1 END,
				       CASE WHEN l.sequenced_at >= $2 THEN (s.lo + s.hi) / 2 ELSE s.hi END
				FROM search s JOIN audit_leaf l ON l.organization_id = $1 AND l.leaf_index = (s.lo + s.hi) / 2
				WHERE s.lo < s.hi)
			SELECT (SELECT n FROM size), (SELECT n FROM size) - (SELECT hi FROM search ORDER BY hi - lo LIMIT 1)`,
			[]any{org, now.Add(-DashboardIngestSpan)}},
		// Whether anything was counted, and whether any event is not the console's own: an
		// existence probe that stops at the first such event, not a count.
		{"recorded", `SELECT EXISTS (SELECT 1 FROM event_counts_hourly WHERE organization_id = $1),
			EXISTS (SELECT 1 FROM audit_log WHERE organization_id = $1 AND details->>'source' IS DISTINCT FROM 'console')`, []any{org}},
	}
}

// Overview reads org's dashboard figures at now in one round trip.
func (s *DashboardStore) Overview(ctx context.Context, org string, now time.Time) (*DashboardOverview, error) {
	if org == "" {
		return nil, NotFound("organization")
	}
	now = now.UTC()
	qs := DashboardQueries(org, now)
	o := &DashboardOverview{ActiveAlerts: map[string]int64{}}
	hours := map[time.Time]HourCount{}
	days := map[time.Time]DayCount{}
	err := WithPgx(ctx, s.db, func(conn *pgx.Conn) error {
		b := &pgx.Batch{}
		for _, q := range qs {
			b.Queue(q.SQL, q.Args...)
		}
		br := conn.SendBatch(ctx, b)
		defer br.Close()
		scans := []func(pgx.Rows) error{
			func(r pgx.Rows) error {
				var h HourCount
				_, err := pgx.ForEachRow(r, []any{&h.Hour, &h.Events, &h.Failures}, func() error {
					hours[h.Hour.UTC()] = h
					return nil
				})
				return err
			},
			func(r pgx.Rows) error {
				var d DayCount
				_, err := pgx.ForEachRow(r, []any{&d.Day, &d.Events, &d.Failures}, func() error {
					days[d.Day.UTC()] = d
					return nil
				})
				return err
			},
			func(r pgx.Rows) error { return scanValues(r, &o.TopActions) },
			func(r pgx.Rows) error { return scanValues(r, &o.TopPrincipals) },
			func(r pgx.Rows) error {
				var sev string
				var n int64
				_, err := pgx.ForEachRow(r, []any{&sev, &n}, func() error {
					o.ActiveAlerts[sev] = n
					return nil
				})
				return err
			},
			func(r pgx.Rows) error {
				var run SweepRun
				_, err := pgx.ForEachRow(r, []any{&run.SweptAt, &run.OK, &run.Problems, &run.Events, &run.Error}, func() error {
					o.LastSweep = &run
					return nil
				})
				return err
			},
			func(r pgx.Rows) error {
				_, err := pgx.ForEachRow(r, []any{&o.LogSize, &o.Ingested}, func() error { return nil })
				return err
			},
			func(r pgx.Rows) error {
				_, err := pgx.ForEachRow(r, []any{&o.Counted, &o.Recorded}, func() error { return nil })
				return err
			},
		}
		for i, scan := range scans {
			rows, err := br.Query()
			if err != nil {
				return fmt.Errorf("%s: %w", qs[i].Name, err)
			}
			if err := scan(rows); err != nil {
				return fmt.Errorf("%s: %w", qs[i].Name, err)
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, fmt.Errorf("models: dashboard: %w", err)
	}
	hourEnd := now.Truncate(time.Hour).Add(time.Hour)
	for h := hourEnd.Add(-DashboardHours * time.Hour); h.Before(hourEnd); h = h.Add(time.Hour) {
		c := hours[h]
		c.Hour = h
		o.Hours = append(o.Hours, c)
	}
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	for d := today.AddDate(0, 0, -(DashboardDays - 1)); !d.After(today); d = d.AddDate(0, 0, 1) {
		c := days[d]
		c.Day = d
		o.Days = append(o.Days, c)
	}
	return o, nil
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
