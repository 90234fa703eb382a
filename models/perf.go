package models

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"gorm.io/gorm"
)

// The seed's performance thresholds.
const (
	// DefaultSlowQuery is the mean execution time over which a statement is slow.
	DefaultSlowQuery = time.Second
	// UnusedIndexBytes: an index never scanned and larger than this is unused.
	UnusedIndexBytes = 1 << 20
	// VacuumRatio: a table whose dead rows (left by updates and deletes) exceed this share
	// of its live rows needs VACUUM ANALYZE.
	VacuumRatio = 0.1
	// AnalyzeAge: a table with rows not analyzed for this long needs ANALYZE.
	AnalyzeAge = 7 * 24 * time.Hour
	// SnapshotEvery is the performance report's period; SnapshotKeep how long reports are
	// kept.
	SnapshotEvery = 5 * time.Minute
	SnapshotKeep  = 30 * 24 * time.Hour
	// Auto-optimization: a hit ratio under ClearBelowRatio over at least ClearMinReads
	// reads since the previous report clears the cache; more than MaintainAboveSlow slow
	// statements run maintenance on the tables that need it.
	ClearBelowRatio   = 0.10
	ClearMinReads     = 20
	MaintainAboveSlow = 10
)

// Self-audit actions of the performance page and its automatic rules.
const (
	ActionPerfVacuum     = "performance.vacuum"
	ActionPerfCacheClear = "performance.cache.clear"
)

// PerfOptions tune the performance report.
type PerfOptions struct {
	SlowQuery    time.Duration // the slow-statement threshold (mean time)
	AutoOptimize bool          // run the seed's rules after each report
}

// DefaultPerfOptions are the seed's: 1000 ms, rules on.
func DefaultPerfOptions() PerfOptions {
	return PerfOptions{SlowQuery: DefaultSlowQuery, AutoOptimize: true}
}

// SlowQuery is one statement of pg_stat_statements over the threshold.
type SlowQuery struct {
	QueryID      string
	Query        string
	Calls        int64
	MeanMS       float64
	TotalMS      float64
	Rows         int64
	SharedHitPct float64 // share of the statement's block reads served from shared buffers
}

// IndexUsage is one index of ours with its scans and size.
type IndexUsage struct {
	Table, Index string
	Scans        int64
	Bytes        int64
	Unique       bool
}

// Unused says whether the index was never scanned and is over 1 MiB (unique indexes
// enforce a rule and are never unused).
func (i IndexUsage) Unused() bool { return i.Scans == 0 && i.Bytes > UnusedIndexBytes && !i.Unique }

// TableStats is one table (or partition) of ours with its size, rows and maintenance.
type TableStats struct {
	Table, Parent         string // Parent: the partitioned table this is a partition of
	Bytes                 int64  // with indexes and TOAST
	LiveRows, DeadRows    int64
	LastVacuum            *time.Time // the later of manual and automatic
	LastAnalyze           *time.Time
	NeedsVacuum, NeedsAna bool
}

// PoolStats are the database pool's figures.
type PoolStats struct {
	Open, InUse, Idle int
	MaxOpen           int
	Waits             int64
	// AvgAcquireMS is the average wait of the requests that had to wait for a connection.
	AvgAcquireMS float64
	// Writer is the ingest writer's pgx pool (nil when the store was given none).
	Writer *WriterPoolStats `json:"writer,omitempty"`
}

// WriterPoolStats are the ingest writer's pgx pool figures. Unlike database/sql, pgx
// counts its acquisitions: the successful ones (Acquires, with their total duration) and
// those canceled by their context before a connection came (Canceled). An acquisition
// that failed because a new connection could not be made is counted in neither, so the
// success rate covers waiting, not reaching the server (the health panel's database
// check does).
type WriterPoolStats struct {
	Total    int   `json:"total"`
	InUse    int   `json:"in_use"`
	Idle     int   `json:"idle"`
	Max      int   `json:"max"`
	Acquires int64 `json:"acquires"`
	Canceled int64 `json:"canceled"`
	// Waits are the successful acquisitions that found the pool empty and waited.
	Waits int64 `json:"waits"`
	// AvgAcquireMS is the average time of a successful acquisition, waits or not.
	AvgAcquireMS float64 `json:"avg_acquire_ms"`
	// SuccessPct is the share of acquisitions that got a connection, in [0, 100].
	SuccessPct float64 `json:"success_pct"`
}

// AcquireSuccessPct is the share in percent of acquisitions that got a connection, of
// acquires successful ones and canceled ones canceled by their context (pgx counts the two
// apart: its AcquireCount holds the successful ones only). With none it is 100.
func AcquireSuccessPct(acquires, canceled int64) float64 {
	if acquires < 0 || canceled < 0 || acquires+canceled == 0 {
		return 100
	}
	return 100 * float64(acquires) / float64(acquires+canceled)
}

// AvgAcquireMS is the average of total over n acquisitions in milliseconds (0 with none).
func AvgAcquireMS(total time.Duration, n int64) float64 {
	if n <= 0 {
		return 0
	}
	return float64(total.Microseconds()) / 1000 / float64(n)
}

func writerPoolStats(st *pgxpool.Stat) *WriterPoolStats {
	return &WriterPoolStats{Total: int(st.TotalConns()), InUse: int(st.AcquiredConns()), Idle: int(st.IdleConns()),
		Max: int(st.MaxConns()), Acquires: st.AcquireCount(), Canceled: st.CanceledAcquireCount(), Waits: st.EmptyAcquireCount(),
		AvgAcquireMS: AvgAcquireMS(st.AcquireDuration(), st.AcquireCount()),
		SuccessPct:   AcquireSuccessPct(st.AcquireCount(), st.CanceledAcquireCount())}
}

// PerfStore reads PostgreSQL's own statistics for the performance page and report, runs
// the page's fixed EXPLAINs and its maintenance. Everything it reads is about the database
// as a whole, so only superadmins see it; the organization-scoped parts are the named
// EXPLAINs (run with the viewer's organization).
type PerfStore struct {
	db     *gorm.DB
	writer *pgxpool.Pool
	opts   PerfOptions
	trail  *AuditTrail
}

// NewPerfStore returns a store over db.
func NewPerfStore(db *gorm.DB, opts PerfOptions) *PerfStore {
	if opts.SlowQuery <= 0 {
		opts.SlowQuery = DefaultSlowQuery
	}
	return &PerfStore{db: db, opts: opts}
}

// WithAudit records the page's maintenance in trail; it returns s.
func (s *PerfStore) WithAudit(trail *AuditTrail) *PerfStore {
	s.trail = trail
	return s
}

// WithWriterPool reports the ingest writer's pgx pool beside the console's; it returns s.
func (s *PerfStore) WithWriterPool(pool *pgxpool.Pool) *PerfStore {
	s.writer = pool
	return s
}

// Options returns the store's settings.
func (s *PerfStore) Options() PerfOptions { return s.opts }

// ErrNoStatements is returned when pg_stat_statements is not loaded or not created.
var ErrNoStatements = errors.New("models: pg_stat_statements is not available")

// SlowQueries returns this database's statements whose mean time exceeds the threshold,
// slowest first (at most 50). It returns ErrNoStatements when the extension is not
// loaded (shared_preload_libraries) or not created in this database.
func (s *PerfStore) SlowQueries(ctx context.Context) ([]SlowQuery, error) {
	var created bool
	if err := s.db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')`).
		Scan(&created).Error; err != nil {
		return nil, fmt.Errorf("models: slow queries: %w", err)
	}
	if !created {
		return nil, ErrNoStatements
	}
	var out []SlowQuery
	err := s.db.WithContext(ctx).Raw(`SELECT coalesce(queryid::text, '') AS query_id, query, calls,
			mean_exec_time AS mean_ms, total_exec_time AS total_ms, rows,
			CASE WHEN shared_blks_hit + shared_blks_read = 0 THEN 100
			     ELSE 100.0 * shared_blks_hit / (shared_blks_hit + shared_blks_read) END AS shared_hit_pct
		FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND mean_exec_time > ?
		ORDER BY mean_exec_time DESC LIMIT 50`, float64(s.opts.SlowQuery)/float64(time.Millisecond)).Scan(&out).Error
	if err != nil {
		var pe *pgconn.PgError
		// 55000: "pg_stat_statements must be loaded via shared_preload_libraries".
		if errors.As(err, &pe) && pe.Code == "55000" {
			return nil, ErrNoStatements
		}
		return nil, fmt.Errorf("models: slow queries: %w", err)
	}
	return out, nil
}

// Indexes returns every index of our tables with its scans and size, largest first.
func (s *PerfStore) Indexes(ctx context.Context) ([]IndexUsage, error) {
	var out []IndexUsage
	err := s.db.WithContext(ctx).Raw(`SELECT st.relname AS "table", st.indexrelname AS "index", st.idx_scan AS scans,
			pg_relation_size(st.indexrelid) AS bytes, i.indisunique AS "unique"
		FROM pg_stat_user_indexes st JOIN pg_index i ON i.indexrelid = st.indexrelid
		WHERE st.schemaname = 'public'
		ORDER BY bytes DESC, "index"`).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: index usage: %w", err)
	}
	return out, nil
}

// Tables returns every table and partition of ours with its size, rows and last
// maintenance at now, largest first, each marked with what maintenance it needs.
func (s *PerfStore) Tables(ctx context.Context, now time.Time) ([]TableStats, error) {
	var rows []struct {
		Table, Parent               string
		Bytes, LiveRows, DeadRows   int64
		LastVacuum, LastAutovacuum  *time.Time
		LastAnalyze, LastAutoanalyz *time.Time
	}
	err := s.db.WithContext(ctx).Raw(`SELECT st.relname AS "table", coalesce(p.relname, '') AS parent,
			pg_total_relation_size(st.relid) AS bytes, st.n_live_tup AS live_rows, st.n_dead_tup AS dead_rows,
			st.last_vacuum, st.last_autovacuum, st.last_analyze, st.last_autoanalyze AS last_autoanalyz
		FROM pg_stat_user_tables st
		LEFT JOIN pg_inherits inh ON inh.inhrelid = st.relid
		LEFT JOIN pg_class p ON p.oid = inh.inhparent
		WHERE st.schemaname = 'public'
		ORDER BY bytes DESC, "table"`).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: table statistics: %w", err)
	}
	out := make([]TableStats, 0, len(rows))
	for _, r := range rows {
		t := TableStats{Table: r.Table, Parent: r.Parent, Bytes: r.Bytes, LiveRows: r.LiveRows, DeadRows: r.DeadRows,
			LastVacuum: later(r.LastVacuum, r.LastAutovacuum), LastAnalyze: later(r.LastAnalyze, r.LastAutoanalyz)}
		t.NeedsVacuum, t.NeedsAna = NeedsMaintenance(t, now)
		out = append(out, t)
	}
	return out, nil
}

// NeedsMaintenance applies the seed's rules to t at now: VACUUM ANALYZE when its dead rows
// (what updates and deletes left since the last vacuum) exceed 10 % of its live rows;
// ANALYZE when it holds rows and was not analyzed for 7 days.
func NeedsMaintenance(t TableStats, now time.Time) (vacuum, analyze bool) {
	vacuum = t.DeadRows > 0 && float64(t.DeadRows) > VacuumRatio*float64(max(t.LiveRows, 1))
	analyze = !vacuum && t.LiveRows > 0 && (t.LastAnalyze == nil || now.Sub(*t.LastAnalyze) > AnalyzeAge)
	return vacuum, analyze
}

func later(a, b *time.Time) *time.Time {
	switch {
	case a == nil:
		return b
	case b == nil || a.After(*b):
		return a
	}
	return b
}

// Pool returns the console's database pool's figures and, with WithWriterPool, the
// ingest writer's.
func (s *PerfStore) Pool() PoolStats {
	var p PoolStats
	if sqlDB, err := s.db.DB(); err == nil {
		p = poolStats(sqlDB.Stats())
	}
	if s.writer != nil {
		p.Writer = writerPoolStats(s.writer.Stat())
	}
	return p
}

func poolStats(st sql.DBStats) PoolStats {
	p := PoolStats{Open: st.OpenConnections, InUse: st.InUse, Idle: st.Idle, MaxOpen: st.MaxOpenConnections, Waits: st.WaitCount}
	p.AvgAcquireMS = AvgAcquireMS(st.WaitDuration, st.WaitCount)
	return p
}

// Suggestions are the seed's recommendations from the tables and indexes: maintenance
// per table, unused indexes to consider dropping.
func Suggestions(tables []TableStats, indexes []IndexUsage) []string {
	var out []string
	for _, t := range tables {
		switch {
		case t.NeedsVacuum:
			out = append(out, fmt.Sprintf("VACUUM ANALYZE %s: %d dead rows against %d live (over %.0f %%).",
				t.Table, t.DeadRows, t.LiveRows, VacuumRatio*100))
		case t.NeedsAna:
			out = append(out, fmt.Sprintf("ANALYZE %s: not analyzed for over %d days.", t.Table, int(AnalyzeAge.Hours()/24)))
		}
	}
	for _, i := range indexes {
		if i.Unused() {
			out = append(out, fmt.Sprintf("Index %s on %s was never scanned and takes %s: drop it if no query needs it.",
				i.Index, i.Table, HumanBytes(i.Bytes)))
		}
	}
	return out
}

// HumanBytes formats n as B, kB, MB, GB (powers of 1024).
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ExplainQueries are the console's named statements the page may EXPLAIN: the dashboard's,
// for the viewer's organization. The list is fixed; nothing a user types reaches EXPLAIN.
func ExplainQueries(org string, now time.Time) []DashboardQuery {
	return DashboardQueries(org, now)
}

// ExplainNames are the names of ExplainQueries, in order.
func ExplainNames() []string {
	var out []string
	for _, q := range ExplainQueries("", time.Time{}) {
		out = append(out, q.Name)
	}
	return out
}

// Explain runs EXPLAIN (ANALYZE, BUFFERS) of the named console statement for org at now
// and returns the plan's lines. An unknown name is a KindNotFound; the statement runs in a
// read-only transaction that is rolled back.
func (s *PerfStore) Explain(ctx context.Context, org, name string, now time.Time) ([]string, error) {
	if org == "" {
		return nil, NotFound("organization")
	}
	var q *DashboardQuery
	for _, c := range ExplainQueries(org, now) {
		if c.Name == name {
			q = &c
			break
		}
	}
	if q == nil {
		return nil, NotFound("named query")
	}
	var lines []string
	err := WithPgx(ctx, s.db, func(conn *pgx.Conn) error {
		tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+q.SQL, q.Args...)
		if err != nil {
			return err
		}
		var line string
		_, err = pgx.ForEachRow(rows, []any{&line}, func() error {
			lines = append(lines, line)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("models: explain %s: %w", name, err)
	}
	return lines, nil
}

// Vacuum runs VACUUM ANALYZE on table, which must be one of ours (a table or partition in
// the public schema; anything else is a KindInvalid naming "table"), and records it in
// org's audit log as done by by (with WithAudit). It returns the database's error otherwise.
func (s *PerfStore) Vacuum(ctx context.Context, org, table string, by Actor) error {
	if err := s.vacuum(ctx, table); err != nil {
		return err
	}
	if s.trail == nil || org == "" {
		return nil
	}
	return s.trail.Record(ctx, AuditEntry{Org: org, Action: ActionPerfVacuum, Actor: by, TargetType: "table", TargetID: table,
		Outcome: "VACUUM ANALYZE " + table})
}

func (s *PerfStore) vacuum(ctx context.Context, table string) error {
	var ours bool
	if err := s.db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM pg_stat_user_tables WHERE schemaname = 'public' AND relname = ?)`,
		table).Scan(&ours).Error; err != nil {
		return fmt.Errorf("models: vacuum: %w", err)
	}
	if !ours {
		return Invalid("table", "is not one of this database's tables")
	}
	// VACUUM cannot run in a transaction: a plain statement on a pooled connection.
	if err := s.db.WithContext(ctx).Exec("VACUUM (ANALYZE) " + pgx.Identifier{"public", table}.Sanitize()).Error; err != nil {
		return fmt.Errorf("models: vacuum %s: %w", table, err)
	}
	return nil
}

// OperatorOrgs are the organizations the automatic actions are recorded in: those with a
// superadmin member (the people who run the deployment read them there).
func (s *PerfStore) OperatorOrgs(ctx context.Context) ([]string, error) {
	var out []string
	err := s.db.WithContext(ctx).Raw(`SELECT DISTINCT m.organization_id FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE u.superadmin ORDER BY 1`).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: operator organizations: %w", err)
	}
	return out, nil
}

// PerfFigures are one performance report's contents.
type PerfFigures struct {
	Pool  PoolStats    `json:"pool"`
	Cache CacheFigures `json:"cache"`
	// Partitions of audit_log and error_log: how many, their bytes and rows.
	Partitions struct {
		Count int   `json:"count"`
		Bytes int64 `json:"bytes"`
		Rows  int64 `json:"rows"`
	} `json:"partitions"`
	// SlowQueries is -1 when pg_stat_statements is not available.
	SlowQueries   int      `json:"slow_queries"`
	UnusedIndexes int      `json:"unused_indexes"`
	Suggestions   []string `json:"suggestions,omitempty"`
	// IngestPerSec: events counted by the rollups over the current and previous hour,
	// per second.
	IngestPerSec float64 `json:"ingest_per_sec"`
	WriterQueue  int64   `json:"writer_queue"`
	// SequencerLagSec is the age in seconds of the oldest write waiting for the Merkle
	// log (0 when none waits): the figure /healthz, /metrics and the health panel report.
	SequencerLagSec float64 `json:"sequencer_lag_sec"`
	DetectionLagSec float64 `json:"detection_lag_sec"`
	// Latency is p50/p95 in milliseconds per route group, over the requests since the
	// previous report (empty without the request histogram).
	Latency     map[string]Quantiles `json:"latency,omitempty"`
	HeapBytes   uint64               `json:"heap_bytes"`
	SysBytes    uint64               `json:"sys_bytes"`
	Goroutines  int                  `json:"goroutines"`
	AutoActions []string             `json:"auto_actions,omitempty"`
}

// CacheFigures are the query cache's counters in a report; Reads and Ratio cover the
// interval since the previous report.
type CacheFigures struct {
	Hits, Misses uint64  `json:",omitempty"`
	Reads        uint64  `json:"reads"`
	Ratio        float64 `json:"ratio"`
	Entries      int     `json:"entries"`
	Bytes        uint64  `json:"bytes"`
	Evictions    uint64  `json:"evictions"`
}

// Quantiles are a latency distribution's p50 and p95 in milliseconds.
type Quantiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
}

// PerfSnapshot is one stored report.
type PerfSnapshot struct {
	TakenAt    time.Time
	DurationMS float64
	Figures    PerfFigures
}

// SnapshotSlot is the five-minute slot of t (UTC).
func SnapshotSlot(t time.Time) time.Time { return t.UTC().Truncate(SnapshotEvery) }

// Gather reads the database's part of a report: partitions, slow statements, unused
// indexes, suggestions and ingest rate at now (the lags come from their pipelines, see
// jobs.PerfSources).
func (s *PerfStore) Gather(ctx context.Context, now time.Time) (PerfFigures, error) {
	var f PerfFigures
	f.Pool = s.Pool()
	tables, err := s.Tables(ctx, now)
	if err != nil {
		return f, err
	}
	for _, t := range tables {
		if t.Parent == "audit_log" || t.Parent == "error_log" {
			f.Partitions.Count++
			f.Partitions.Bytes += t.Bytes
			f.Partitions.Rows += t.LiveRows
		}
	}
	indexes, err := s.Indexes(ctx)
	if err != nil {
		return f, err
	}
	for _, i := range indexes {
		if i.Unused() {
			f.UnusedIndexes++
		}
	}
	f.Suggestions = Suggestions(tables, indexes)
	switch slow, err := s.SlowQueries(ctx); {
	case errors.Is(err, ErrNoStatements):
		f.SlowQueries = -1
	case err != nil:
		return f, err
	default:
		f.SlowQueries = len(slow)
	}
	var rate struct {
		Events int64
		Since  time.Time
	}
	hour := now.UTC().Truncate(time.Hour).Add(-time.Hour)
	if err := s.db.WithContext(ctx).Raw(`SELECT coalesce(sum(events), 0)::bigint AS events, ?::timestamptz AS since
		FROM event_counts_hourly WHERE hour >= ?`, hour, hour).Scan(&rate).Error; err != nil {
		return f, fmt.Errorf("models: ingest rate: %w", err)
	}
	if secs := now.Sub(hour).Seconds(); secs > 0 {
		f.IngestPerSec = math.Round(float64(rate.Events)/secs*100) / 100
	}
	return f, nil
}

// SaveSnapshot stores the report of slot unless one is stored already (another instance
// took it): it reports whether this one was stored.
func (s *PerfStore) SaveSnapshot(ctx context.Context, slot time.Time, took time.Duration, f PerfFigures) (bool, error) {
	body, err := json.Marshal(f)
	if err != nil {
		return false, fmt.Errorf("models: save snapshot: %w", err)
	}
	res := s.db.WithContext(ctx).Exec(`INSERT INTO perf_snapshots (taken_at, duration_ms, figures) VALUES (?, ?, ?)
		ON CONFLICT (taken_at) DO NOTHING`, slot.UTC(), float64(took.Microseconds())/1000, string(body))
	if res.Error != nil {
		return false, fmt.Errorf("models: save snapshot: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// NoteActions appends the automatic actions taken after the report of slot to it.
func (s *PerfStore) NoteActions(ctx context.Context, slot time.Time, actions []string) error {
	if len(actions) == 0 {
		return nil
	}
	body, _ := json.Marshal(actions)
	err := s.db.WithContext(ctx).Exec(`UPDATE perf_snapshots SET figures = jsonb_set(figures, '{auto_actions}', ?::jsonb)
		WHERE taken_at = ?`, string(body), slot.UTC()).Error
	if err != nil {
		return fmt.Errorf("models: note actions: %w", err)
	}
	return nil
}

// PruneSnapshots deletes the reports taken before before and returns how many.
func (s *PerfStore) PruneSnapshots(ctx context.Context, before time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Exec(`DELETE FROM perf_snapshots WHERE taken_at < ?`, before.UTC())
	if res.Error != nil {
		return 0, fmt.Errorf("models: prune snapshots: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// Snapshots returns the reports taken at or after since, oldest first.
func (s *PerfStore) Snapshots(ctx context.Context, since time.Time) ([]PerfSnapshot, error) {
	var rows []struct {
		TakenAt    time.Time
		DurationMs float64
		Figures    string
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT taken_at, duration_ms, figures::text AS figures FROM perf_snapshots
		WHERE taken_at >= ? ORDER BY taken_at`, since.UTC()).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("models: snapshots: %w", err)
	}
	out := make([]PerfSnapshot, 0, len(rows))
	for _, r := range rows {
		sn := PerfSnapshot{TakenAt: r.TakenAt.UTC(), DurationMS: r.DurationMs}
		if err := json.Unmarshal([]byte(r.Figures), &sn.Figures); err != nil {
			return nil, fmt.Errorf("models: snapshot %s: %w", r.TakenAt, err)
		}
		out = append(out, sn)
	}
	return out, nil
}

// AutoRule is one automatic action the seed's rules call for after a report.
type AutoRule struct {
	ClearCache bool
	// Maintain lists the tables to VACUUM ANALYZE (or ANALYZE) because of slow statements.
	Maintain []string
}

// AutoRules applies the seed's rules to a report: a hit ratio under 10 % (over at least
// ClearMinReads reads) clears the cache; more than 10 slow statements maintain every table
// that needs it.
func AutoRules(f PerfFigures, tables []TableStats) AutoRule {
	var r AutoRule
	r.ClearCache = f.Cache.Reads >= ClearMinReads && f.Cache.Ratio < ClearBelowRatio
	if f.SlowQueries > MaintainAboveSlow {
		for _, t := range tables {
			if t.NeedsVacuum || t.NeedsAna {
				r.Maintain = append(r.Maintain, t.Table)
			}
		}
		sort.Strings(r.Maintain)
	}
	return r
}

// MaintainTable runs what t needs (VACUUM ANALYZE, which also analyzes) for the automatic
// rules.
func (s *PerfStore) MaintainTable(ctx context.Context, table string) error {
	return s.vacuum(ctx, table)
}

// ShortQuery is q on one line, at most n characters.
func ShortQuery(q string, n int) string {
	q = strings.Join(strings.Fields(q), " ")
	return Truncate(q, n)
}
