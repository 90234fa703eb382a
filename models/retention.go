package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// ActionRetentionApply is the self-audit event each retention run writes per organization
// it changed: counts, ranges and the SHA-256 of the removed event ids.
const ActionRetentionApply = "gdpr.retention.apply"

// retentionLockKey is the advisory lock that lets one retention run at a time, across
// instances (beside the migration lock 72_000_001 and the test template lock 72_000_002).
const retentionLockKey = 72_000_013

// ErrRetentionRunning is returned when another retention run holds the lock.
var ErrRetentionRunning = &Error{Kind: KindConflict, Field: "retention",
	Message: "another retention run is in progress; try again when it has finished"}

// RetentionEngine archives events past their policy's archive_after_days into compressed
// archives and deletes events at the end of their retention, from audit_log and from
// archives, leaving a removed_events row for each. Every change happens in transactions
// that declare the purpose 'retention', the only way past audit_log's immutability.
type RetentionEngine struct {
	db    *gorm.DB
	trail *AuditTrail
	parts *PartitionManager
	// Now is the clock (UTC days decide what is due).
	Now func() time.Time
	// PartSize is the most events one archive (and one transaction) holds; 50,000 by default.
	PartSize int
	// DeleteBatch is the most events one deletion transaction removes; 5,000 by default.
	DeleteBatch int
	// AnalyzeAfter is how many events a run archives or deletes before it refreshes the
	// statistics of archived_events and removed_events; 10,000 by default.
	AnalyzeAfter int64
	// AfterBatch, when set, is called after each committed transaction (progress, tests).
	AfterBatch func()

	// Reused from archive part to archive part within a run (the lock makes runs sequential).
	writer           *archiveWriter
	ids, leaves      []int64
	times            []time.Time
	hashes           []string
	leafIDs, leafIdx []int64
	unsequenced      []int64
}

func (e *RetentionEngine) afterBatch() {
	if e.AfterBatch != nil {
		e.AfterBatch()
	}
}

// NewRetentionEngine returns the engine; trail writes the self-audit events.
func NewRetentionEngine(db *gorm.DB, trail *AuditTrail, parts *PartitionManager) *RetentionEngine {
	return &RetentionEngine{db: db, trail: trail, parts: parts, Now: time.Now, PartSize: 50_000, DeleteBatch: 5_000,
		AnalyzeAfter: 10_000}
}

// RetentionOptions narrows a run.
type RetentionOptions struct {
	Org    string // one organization; all when empty
	DryRun bool   // count what is due, change nothing
}

// RetentionResult is what a run did (or, dry, would do).
type RetentionResult struct {
	RunID             int64
	DryRun            bool
	Archived          int64
	Archives          int
	Deleted           int64 // from audit_log and archives
	DeletedArchived   int64 // of Deleted, removed from archives
	KeptByHolds       int64
	DroppedPartitions []string
	Orgs              map[string]*OrgRetention
}

// OrgRetention is one organization's share of a run.
type OrgRetention struct {
	Archived, Deleted, KeptByHolds int64
	Archives                       []string
	Policies                       map[string]bool
}

// Run takes the retention lock (without waiting: ErrRetentionRunning when another run holds
// it), records the run in retention_runs and, per organization: deletes from audit_log the
// events at the end of their retention and not held, moves the events due for the archive
// into archives, deletes from archives what is due and not held, drops emptied partitions
// and writes one gdpr.retention.apply event. Cancelling ctx stops between transactions; the
// next run picks up what is still due.
func (e *RetentionEngine) Run(ctx context.Context, opts RetentionOptions) (*RetentionResult, error) {
	sqlDB, err := e.db.DB()
	if err != nil {
		return nil, fmt.Errorf("models: pool: %w", err)
	}
	lockConn, err := sqlDB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("models: acquire connection: %w", err)
	}
	defer lockConn.Close()
	var got bool
	if err := lockConn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, retentionLockKey).Scan(&got); err != nil {
		return nil, fmt.Errorf("models: retention lock: %w", err)
	}
	if !got {
		return nil, ErrRetentionRunning
	}
	defer lockConn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, retentionLockKey)

	if err := e.closeInterrupted(ctx); err != nil {
		return nil, err
	}
	now := e.Now().UTC()
	res := &RetentionResult{DryRun: opts.DryRun, Orgs: map[string]*OrgRetention{}}
	var org *string
	if opts.Org != "" {
		org = &opts.Org
	}
	if err := e.db.WithContext(ctx).Raw(`INSERT INTO retention_runs (organization_id, dry_run, started_at)
		VALUES (?, ?, ?) RETURNING id`, org, opts.DryRun, now).Scan(&res.RunID).Error; err != nil {
		return nil, fmt.Errorf("models: record retention run: %w", err)
	}
	runErr := e.run(ctx, opts, now, res)
	status, errText := "completed", (*string)(nil)
	if runErr != nil {
		status = "failed"
		s := runErr.Error()
		errText = &s
	}
	summary, _ := json.Marshal(map[string]any{"archives": res.Archives, "deletedFromArchives": res.DeletedArchived,
		"droppedPartitions": res.DroppedPartitions, "organizations": len(res.Orgs)})
	err = e.db.WithContext(context.WithoutCancel(ctx)).Exec(`UPDATE retention_runs SET status = ?, finished_at = ?, archived = ?,
		deleted = ?, kept_by_holds = ?, summary = ?, error = ? WHERE id = ?`, status, e.Now().UTC(), res.Archived, res.Deleted,
		res.KeptByHolds, string(summary), errText, res.RunID).Error
	if runErr != nil {
		return res, runErr
	}
	if err != nil {
		return res, fmt.Errorf("models: record retention run: %w", err)
	}
	// A large run changes archived_events and removed_events by far more than autovacuum's
	// next look may come soon enough for: verification planned on the old statistics (a
	// nested loop over 100,000 records) took minutes instead of seconds. Fresh statistics
	// are cheap (a sample); failing to take them changes nothing the run did. Only the
	// tables the run changed: archival writes archived_events alone, deletion from the log
	// removed_events alone, deletion from archives both.
	if !opts.DryRun {
		var tables []string
		if res.Archived+res.DeletedArchived >= e.AnalyzeAfter {
			tables = append(tables, "archived_events")
		}
		if res.Deleted >= e.AnalyzeAfter {
			tables = append(tables, "removed_events")
		}
		if len(tables) > 0 {
			_ = e.db.WithContext(context.WithoutCancel(ctx)).Exec(`ANALYZE ` + strings.Join(tables, ", ")).Error
		}
	}
	return res, nil
}

func (e *RetentionEngine) run(ctx context.Context, opts RetentionOptions, now time.Time, res *RetentionResult) error {
	orgs := []string{opts.Org}
	if opts.Org == "" {
		orgs = nil
		if err := e.db.WithContext(ctx).Raw(`SELECT id FROM organizations ORDER BY id`).Scan(&orgs).Error; err != nil {
			return fmt.Errorf("models: organizations: %w", err)
		}
	}
	if !opts.DryRun {
		if err := e.analyzeUnanalyzed(ctx); err != nil {
			return err
		}
	}
	months := map[time.Time]bool{}
	// One organization's failure does not keep the others from their retention: the run
	// goes on to the next and reports every failure at its end.
	var failed []error
	for _, org := range orgs {
		or := &OrgRetention{Policies: map[string]bool{}}
		res.Orgs[org] = or
		err := e.runOrg(ctx, org, now, opts.DryRun, res, or, months)
		if !opts.DryRun && or.Archived+or.Deleted > 0 {
			// Written even when the run stopped half way: what was removed is recorded.
			if aerr := e.audit(context.WithoutCancel(ctx), org, res.RunID, or); aerr != nil && err == nil {
				err = aerr
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed = append(failed, err)
		}
	}
	if opts.DryRun || e.parts == nil {
		return errors.Join(failed...)
	}
	current := MonthStart(now)
	sorted := make([]time.Time, 0, len(months))
	for m := range months {
		sorted = append(sorted, m)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Before(sorted[j]) })
	for _, m := range sorted {
		if !m.Before(current) {
			continue
		}
		dropped, err := e.parts.DropIfEmpty(ctx, "audit_log", m)
		if err != nil {
			return errors.Join(append(failed, err)...)
		}
		if dropped != "" {
			res.DroppedPartitions = append(res.DroppedPartitions, dropped)
		}
	}
	return errors.Join(failed...)
}

// analyzeUnanalyzed gathers statistics on the partitions of audit_log that have rows and
// were never analyzed (a month just loaded or backfilled, before autovacuum came by): the
// run's queries are planned on them, and without statistics the planner takes a partition
// of 50,000 rows for an empty one.
func (e *RetentionEngine) analyzeUnanalyzed(ctx context.Context) error {
	var parts []string
	if err := e.db.WithContext(ctx).Raw(`SELECT s.relname FROM pg_inherits i
		JOIN pg_stat_user_tables s ON s.relid = i.inhrelid
		WHERE i.inhparent = 'audit_log'::regclass AND s.last_analyze IS NULL AND s.last_autoanalyze IS NULL
		AND s.n_live_tup + s.n_tup_ins > 0 ORDER BY 1`).Scan(&parts).Error; err != nil {
		return fmt.Errorf("models: partitions to analyze: %w", err)
	}
	for _, name := range parts {
		if err := e.db.WithContext(ctx).Exec(`ANALYZE ` + pgx.Identifier{name}.Sanitize()).Error; err != nil {
			return fmt.Errorf("models: analyze %s: %w", name, err)
		}
	}
	return nil
}

func (e *RetentionEngine) runOrg(ctx context.Context, org string, now time.Time, dry bool, res *RetentionResult,
	or *OrgRetention, months map[time.Time]bool) error {
	rules, err := loadRetentionRules(ctx, e.db, org, now)
	if err != nil {
		return err
	}
	plan, err := rules.plan(ctx, e.db)
	if err != nil {
		return err
	}
	// What the plan counts is what the run does: first the deletions from audit_log (so that
	// nothing due for deletion is archived first), then the archival, month by month.
	for _, row := range plan {
		res.KeptByHolds += row.Kept
		or.KeptByHolds += row.Kept
		if dry {
			res.Deleted += row.Delete
			or.Deleted += row.Delete
			res.Archived += row.Archive
			or.Archived += row.Archive
			res.Archives += int((row.Archive + int64(e.PartSize) - 1) / int64(e.PartSize))
			continue
		}
		if row.Delete > 0 {
			months[row.Month] = true
			if err := e.deleteFromLog(ctx, rules, row.Policy, row.Month, res, or); err != nil {
				return err
			}
		}
	}
	if !dry {
		for _, row := range plan {
			if row.Archive > 0 {
				months[row.Month] = true
				if err := e.archiveMonth(ctx, rules, row.Policy, row.Month, row.Archive, res, or); err != nil {
					return err
				}
			}
		}
	}
	return e.deleteFromArchives(ctx, rules, dry, res, or)
}

// withPurpose runs fn in one transaction that declared the purpose 'retention'.
func (e *RetentionEngine) withPurpose(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	return WithPgx(ctx, e.db, func(conn *pgx.Conn) error {
		return pgx.BeginTxFunc(ctx, conn, opts, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL auditdb.purpose = 'retention'`); err != nil {
				return err
			}
			return fn(tx)
		})
	})
}

// withPurposeSnapshot runs fn in one REPEATABLE READ transaction with the retention purpose
// and, once it has committed, bumps org's cache version. Inside such a transaction the
// cache triggers leave the bump out (migration 0056): as an upsert of the organization's one
// version row inside an older snapshot, it failed with a serialization error whenever
// anything else of the organization had bumped it meanwhile, rolling the month back.
func (e *RetentionEngine) withPurposeSnapshot(ctx context.Context, org string, fn func(tx pgx.Tx) error) error {
	if err := e.withPurpose(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, fn); err != nil {
		return err
	}
	// Committed: a failed bump leaves cached figures (the dashboard's, reports') to expire
	// with their time to live instead of failing a run whose change already stands.
	bg := context.WithoutCancel(ctx)
	_ = WithPgx(bg, e.db, func(conn *pgx.Conn) error { return BumpCacheVersion(bg, conn, org) })
	return nil
}

func monthEnd(m, cutoff time.Time) time.Time {
	end := m.AddDate(0, 1, 0)
	if cutoff.Before(end) {
		return cutoff
	}
	return end
}

// deleteFromLog removes, in batches, org's events of month m governed by policy p at the end
// of their retention that no hold keeps and that are in the Merkle log (an event still
// queued for it waits for the next run), each with its removed_events row. Each batch narrows
// by the month, the cutoff and the policy before it asks whether a hold keeps a row.
func (e *RetentionEngine) deleteFromLog(ctx context.Context, rules *retentionRules, p *retentionPolicy, m time.Time,
	res *RetentionResult, or *OrgRetention) error {
	org := rules.org
	end := monthEnd(m, p.DeleteCutoff)
	gov, gArgs := rules.governsSQL(p, "e")
	held, hArgs := HeldPredicate("e", org)
	// Plain statements rather than one of CTEs joined to each other or to audit_leaf: such
	// joins are planned on guesses (a CTE has no statistics, a freshly loaded table has
	// none) and went quadratic, or walked the whole log, on fresh data. The batch is the
	// next DeleteBatch due rows by id (a keyset, so rows not yet in the Merkle log are
	// stepped over, not read again); their log entries are looked up by id.
	// Two forms of the batch's query: without a hold in force none is asked about per row.
	dueSQL := func(held string) string {
		return pgxSQL(`SELECT e.id, e."timestamp", e.hash FROM audit_log e
		WHERE e.organization_id = ? AND e."timestamp" >= ? AND e."timestamp" < ? AND ` + gov + ` AND NOT ` + held + `
		AND e.id > ? ORDER BY e.id LIMIT ?`)
	}
	dueHeld, dueFree := dueSQL(held), dueSQL("false")
	heldArgs := append(append(append([]any{}, org, m, end), gArgs...), hArgs...)
	freeArgs := append(append([]any{}, org, m, end), gArgs...)
	lo := int64(math.MinInt64)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var n int64
		read := 0
		err := e.withPurposeSnapshot(ctx, org, func(tx pgx.Tx) error {
			e.ids, e.times, e.hashes = e.ids[:0], e.times[:0], e.hashes[:0]
			holds, err := rules.recheck(ctx, tx)
			if err != nil {
				return err
			}
			due, dueArgs := dueFree, freeArgs
			if holds > 0 {
				due, dueArgs = dueHeld, heldArgs
			}
			rows, _ := tx.Query(ctx, due, append(slices.Clip(dueArgs), lo, e.DeleteBatch)...)
			var id int64
			var ts time.Time
			var hash *string
			if _, err := pgx.ForEachRow(rows, []any{&id, &ts, &hash}, func() error {
				e.ids, e.times, e.hashes = append(e.ids, id), append(e.times, ts), append(e.hashes, derefString(hash))
				return nil
			}); err != nil {
				return err
			}
			if read = len(e.ids); read == 0 {
				return nil
			}
			lo = e.ids[read-1]
			leaf := map[int64]int64{}
			rows, _ = tx.Query(ctx, `SELECT audit_log_id, leaf_index FROM audit_leaf WHERE organization_id = $1 AND audit_log_id = ANY ($2)`,
				org, e.ids)
			var lid, lix int64
			if _, err := pgx.ForEachRow(rows, []any{&lid, &lix}, func() error { leaf[lid] = lix; return nil }); err != nil {
				return err
			}
			// Only events in the Merkle log go; the rest wait for a later run.
			k := 0
			e.leaves = e.leaves[:0]
			for i, id := range e.ids {
				if lix, ok := leaf[id]; ok {
					e.ids[k], e.times[k], e.hashes[k] = id, e.times[i], e.hashes[i]
					e.leaves = append(e.leaves, lix)
					k++
				}
			}
			e.ids, e.times, e.hashes = e.ids[:k], e.times[:k], e.hashes[:k]
			if k == 0 {
				return nil
			}
			// The rows just read, by primary key, under the same snapshot.
			tag, err := tx.Exec(ctx, `DELETE FROM audit_log e USING unnest($2::bigint[], $3::timestamptz[]) AS u(id, ts)
				WHERE e.organization_id = $1 AND e."timestamp" >= $4 AND e."timestamp" < $5 AND e.id = u.id AND e."timestamp" = u.ts`,
				org, e.ids, e.times, m, end)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != int64(k) {
				return fmt.Errorf("removed %d rows for %d due events", tag.RowsAffected(), k)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO removed_events (organization_id, audit_log_id, event_timestamp, leaf_index,
				event_hash, reason, policy, run_id, removed_at)
				SELECT $1, u.id, u.ts, u.leaf, u.hash, 'retention', $2, $3, $4
				FROM unnest($5::bigint[], $6::timestamptz[], $7::bigint[], $8::text[]) AS u(id, ts, leaf, hash)`,
				org, p.Name, res.RunID, e.Now().UTC(), e.ids, e.times, e.leaves, e.hashes); err != nil {
				return err
			}
			n = int64(k)
			return nil
		})
		if err != nil {
			return fmt.Errorf("models: delete events of %s (%s): %w", org, p.Name, err)
		}
		if read == 0 {
			return nil
		}
		if n == 0 {
			continue
		}
		e.afterBatch()
		res.Deleted += n
		or.Deleted += n
		or.Policies[p.Name] = true
	}
}

// archiveMonth moves org's events of month m that policy p governs and that are due for the
// archive into archives of at most PartSize events. When the whole month is due and its
// partition holds nothing else, one transaction does it all (archiveWholePartition);
// otherwise each part is one transaction, the parts' id boundaries coming from one narrow
// query, so each part reads only its own rows.
func (e *RetentionEngine) archiveMonth(ctx context.Context, rules *retentionRules, p *retentionPolicy, m time.Time,
	planned int64, res *RetentionResult, or *OrgRetention) error {
	end := monthEnd(m, p.ArchiveCutoff)
	gov, gArgs := rules.governsSQL(p, "e")
	where := `e.organization_id = ? AND e."timestamp" >= ? AND e."timestamp" < ? AND ` + gov
	whereArgs := append([]any{rules.org, m, end}, gArgs...)
	var err error
	if e.writer == nil {
		if e.writer, err = newArchiveWriter(); err != nil {
			return err
		}
		e.writer.jsonb = true // every line comes from audit_log's rows
	}
	if end.Equal(m.AddDate(0, 1, 0)) {
		// The whole month is due: when its partition holds nothing else, one transaction
		// archives it and empties the partition.
		n, archives, done, err := e.archiveWholePartition(ctx, rules, p, m, where, whereArgs, res.RunID, or)
		if err != nil {
			return err
		}
		if done {
			e.afterBatch()
			res.Archived += n
			res.Archives += len(archives)
			or.Archived += n
			or.Archives = append(or.Archives, archives...)
			or.Policies[p.Name] = true
			return nil
		}
	}
	bounds := []int64{math.MaxInt64}
	if planned > int64(e.PartSize) {
		bounds, err = e.partBounds(ctx, where, whereArgs)
	}
	if err != nil {
		return fmt.Errorf("models: archive parts of %s %s: %w", p.Name, m.Format("2006-01"), err)
	}
	if len(bounds) == 0 {
		return nil
	}
	bounds[len(bounds)-1] = math.MaxInt64 // the last part takes what arrived since
	lo := int64(math.MinInt64)
	for _, hi := range bounds {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := e.archivePart(ctx, rules, p, m, where, whereArgs, lo, hi, res.RunID, or)
		if err != nil {
			return err
		}
		lo = hi
		if n == 0 {
			continue
		}
		e.afterBatch()
		res.Archived += n
		res.Archives++
	}
	return nil
}

// partBounds returns the highest id of each run of PartSize rows of where, by id: the
// upper bounds of a month's archive parts (a month the plan says fits one part needs none).
func (e *RetentionEngine) partBounds(ctx context.Context, where string, whereArgs []any) ([]int64, error) {
	var bounds []int64
	err := WithPgx(ctx, e.db, func(conn *pgx.Conn) error {
		rows, _ := conn.Query(ctx, pgxSQL(`SELECT max(id) FROM (SELECT e.id, (row_number() OVER (ORDER BY e.id) - 1) / ? AS k
			FROM audit_log e WHERE `+where+`) x GROUP BY k ORDER BY k`), append([]any{e.PartSize}, whereArgs...)...)
		var hi int64
		_, err := pgx.ForEachRow(rows, []any{&hi}, func() error { bounds = append(bounds, hi); return nil })
		return err
	})
	return bounds, err
}

// archiveColumnsSelect are the columns of an archive line, in ArchiveLine's order.
const archiveColumnsSelect = `e.id, e."timestamp", e.ttl, e.principal_id, e.action, e.target_resource_type,
	e.target_resource_id, e.status, e.outcome_description, e.hash, e.hash_algorithm, e.event_version,
	e.correlation_id, e.data_classification, e.retention_policy, e.processing_latency, e.archived_at,
	e.details, e.subject_salt, e.subject_digest, e.signature, e.field_commitments`

// archivePart writes, in one REPEATABLE READ transaction, the archive of the rows of where
// with an id in (lo, hi] that are in the Merkle log: the archive, its archived_events rows
// (COPY), and the deletion of the same rows from audit_log by the same condition, which
// under the transaction's one snapshot is the same set (checked by count). The rows and
// their log entries are read as two id-ordered ranges and matched here, not looked up row
// by row. It returns how many events it archived.
func (e *RetentionEngine) archivePart(ctx context.Context, rules *retentionRules, p *retentionPolicy, m time.Time,
	where string, whereArgs []any, lo, hi, runID int64, or *OrgRetention) (int64, error) {
	n, err := e.archivePartTx(ctx, rules, p, m, where, whereArgs, lo, hi, runID, or, true)
	if errors.Is(err, errUnsequenced) {
		// A row of the range is not in the Merkle log yet (a backfill): the one-pass delete
		// was rolled back; read, then delete all but such rows.
		n, err = e.archivePartTx(ctx, rules, p, m, where, whereArgs, lo, hi, runID, or, false)
	}
	return n, err
}

// archiveLinesKey is the archive metadata key listing the lines' [retention_policy,
// data_classification] pairs.
const archiveLinesKey = "lines"

// errUnsequenced stops archivePartTx's one pass at a row not in the Merkle log.
// storeArchive finishes the writer's archive as a (compressed content, sizes, checksums)
// and inserts its archive_storage row.
func (e *RetentionEngine) storeArchive(ctx context.Context, tx pgx.Tx, a *Archive) error {
	content, meta, err := finishArchive(e.writer, a)
	if err != nil {
		return err
	}
	if err := insertArchiveRow(ctx, tx, a, meta, content, *a.RunID, e.Now().UTC()); err != nil {
		return fmt.Errorf("insert archive %s: %w", a.ID, err)
	}
	return nil
}

// finishArchive closes w's archive a (see archiveWriter.finish) and returns its compressed
// bytes, which w's next reset overwrites, and its metadata.
func finishArchive(w *archiveWriter, a *Archive) ([]byte, string, error) {
	content, err := w.finish(a)
	if err != nil {
		return nil, "", err
	}
	meta, _ := json.Marshal(map[string]any{"format": "JSON Lines, one audit_log row per line, zstd-compressed",
		"policy": a.Policy, "month": a.Month.Format("2006-01"), "part": a.Part, archiveLinesKey: w.linePairs()})
	return content, string(meta), nil
}

// recordArchived writes the archived_events rows placing the events of e.ids (with e.times,
// e.leaves and e.hashes) in archive a.
func (e *RetentionEngine) recordArchived(ctx context.Context, tx pgx.Tx, a *Archive) error {
	return copyArchivedRows(ctx, tx, a, e.ids, e.times, e.leaves, e.hashes)
}

// copyArchivedRows writes the archived_events rows placing events ids (with their times,
// leaves and hashes, index by index) in archive a.
func copyArchivedRows(ctx context.Context, tx pgx.Tx, a *Archive, ids []int64, times []time.Time, leaves []int64, hashes []string) error {
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"archived_events"},
		[]string{"organization_id", "audit_log_id", "event_timestamp", "archive_id", "leaf_index", "event_hash"},
		pgx.CopyFromSlice(len(ids), func(i int) ([]any, error) {
			return []any{a.OrganizationID, ids[i], times[i], a.ID, leaves[i], hashes[i]}, nil
		}))
	if err != nil {
		return fmt.Errorf("record archived events: %w", err)
	}
	return nil
}

var errUnsequenced = errors.New("models: a row of the part is not in the Merkle log yet")

// archivePartTx is archivePart's transaction. With onePass, the part's rows are deleted and
// returned (sorted by id) by one statement, which both reads them for the archive and
// removes them, so the range is scanned once; a row not in the Merkle log makes it return
// errUnsequenced (and roll back). Without, the rows are read, and then those in the log
// deleted by the same condition.
func (e *RetentionEngine) archivePartTx(ctx context.Context, rules *retentionRules, p *retentionPolicy, m time.Time,
	where string, whereArgs []any, lo, hi, runID int64, or *OrgRetention, onePass bool) (int64, error) {
	org := rules.org
	partArgs := append(append([]any{}, whereArgs...), lo, hi)
	var n int64
	w := e.writer
	err := e.withPurposeSnapshot(ctx, org, func(tx pgx.Tx) error {
		w.reset()
		// A part's rows are sorted by id in memory rather than on disk.
		if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '64MB'`); err != nil {
			return err
		}
		e.leafIDs, e.leafIdx = e.leafIDs[:0], e.leafIdx[:0]
		rows, _ := tx.Query(ctx, `SELECT audit_log_id, leaf_index FROM audit_leaf
			WHERE organization_id = $1 AND audit_log_id > $2 AND audit_log_id <= $3 ORDER BY audit_log_id`, org, lo, hi)
		var lid, lix int64
		if _, err := pgx.ForEachRow(rows, []any{&lid, &lix}, func() error {
			e.leafIDs, e.leafIdx = append(e.leafIDs, lid), append(e.leafIdx, lix)
			return nil
		}); err != nil {
			return fmt.Errorf("log entries: %w", err)
		}
		// The part's archive id is known before its rows are read (its row is inserted at the
		// end of the transaction; archived_events has no foreign key to wait for it).
		var part int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(part), 0) + 1 FROM archive_storage
			WHERE organization_id = $1 AND policy = $2 AND month = $3`, org, p.Name, m).Scan(&part); err != nil {
			return err
		}
		archiveID := fmt.Sprintf("%s/%s/%s/%d", org, p.Name, m.Format("2006-01"), part)
		if onePass {
			// One statement deletes the rows, records them in archived_events (matched with
			// their log entries by a hash join, not a probe per row) and returns them for the
			// archive. A returned row without a log entry is not recorded; reading it below
			// stops the pass with errUnsequenced and the transaction rolls back.
			if _, err := tx.Exec(ctx, `SET LOCAL enable_nestloop = off`); err != nil {
				return err
			}
			args := append(append([]any{}, partArgs...), org, archiveID, e.leafIDs, e.leafIdx)
			rows, _ = tx.Query(ctx, pgxSQL(`WITH gone AS (DELETE FROM audit_log e WHERE `+where+` AND e.id > ? AND e.id <= ?
				RETURNING `+archiveColumnsSelect+`),
				recorded AS (INSERT INTO archived_events (organization_id, audit_log_id, event_timestamp, archive_id, leaf_index, event_hash)
					SELECT ?::text, g.id, g."timestamp", ?::text, u.leaf, coalesce(g.hash, '')
					FROM gone g JOIN unnest(?::bigint[], ?::bigint[]) AS u(id, leaf) ON u.id = g.id)
				SELECT * FROM gone ORDER BY id`), args...)
		} else {
			rows, _ = tx.Query(ctx, pgxSQL(`SELECT `+archiveColumnsSelect+` FROM audit_log e
				WHERE `+where+` AND e.id > ? AND e.id <= ? ORDER BY e.id`), partArgs...)
		}
		var l ArchiveLine
		var hash, digest, sig *string
		var details, commitments []byte
		e.ids, e.times, e.leaves, e.hashes, e.unsequenced = e.ids[:0], e.times[:0], e.leaves[:0], e.hashes[:0], e.unsequenced[:0]
		li := 0
		_, err := pgx.ForEachRow(rows, []any{&l.ID, &l.Timestamp, &l.TTL, &l.PrincipalID, &l.Action, &l.TargetResourceType,
			&l.TargetResourceID, &l.Status, &l.OutcomeDescription, &hash, &l.HashAlgorithm, &l.EventVersion,
			&l.CorrelationID, &l.DataClassification, &l.RetentionPolicy, &l.ProcessingLatency, &l.ArchivedAt,
			&details, &l.SubjectSalt, &digest, &sig, &commitments}, func() error {
			for li < len(e.leafIDs) && e.leafIDs[li] < l.ID {
				li++
			}
			if li == len(e.leafIDs) || e.leafIDs[li] != l.ID {
				if onePass {
					return errUnsequenced
				}
				// Not in the Merkle log yet: it stays, and a later run archives it.
				e.unsequenced = append(e.unsequenced, l.ID)
				return nil
			}
			l.LeafIndex = e.leafIdx[li]
			l.OrganizationID = org
			l.Timestamp = l.Timestamp.UTC()
			l.Hash, l.SubjectDigest, l.Signature = derefString(hash), derefString(digest), derefString(sig)
			l.Details = json.RawMessage(details)
			l.FieldCommitments = json.RawMessage(commitments)
			if !onePass { // the one pass recorded archived_events already
				e.ids, e.times, e.leaves, e.hashes = append(e.ids, l.ID), append(e.times, l.Timestamp),
					append(e.leaves, l.LeafIndex), append(e.hashes, l.Hash)
			}
			return w.add(&l)
		})
		if err != nil {
			return err
		}
		if w.count == 0 {
			return nil
		}
		a := Archive{ID: archiveID, OrganizationID: org,
			Policy: p.Name, Month: m, Part: part, RunID: &runID}
		if err := e.storeArchive(ctx, tx, &a); err != nil {
			return err
		}
		if onePass {
			n = w.count
			or.Archives = append(or.Archives, a.ID)
			return nil
		}
		if err := e.recordArchived(ctx, tx, &a); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, pgxSQL(`DELETE FROM audit_log e WHERE `+where+` AND e.id > ? AND e.id <= ?
			AND NOT (e.id = ANY (coalesce(?::bigint[], '{}')))`), append(partArgs, e.unsequenced)...)
		if err != nil {
			return fmt.Errorf("remove archived rows: %w", err)
		}
		if tag.RowsAffected() != w.count {
			return fmt.Errorf("removed %d rows for %d archived events", tag.RowsAffected(), w.count)
		}
		n = w.count
		or.Archives = append(or.Archives, a.ID)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("models: archive %s %s %s: %w", org, p.Name, m.Format("2006-01"), err)
	}
	or.Archived += n
	if n > 0 {
		or.Policies[p.Name] = true
	}
	return n, nil
}

// deleteFromArchives removes from org's archives the events at the end of their retention
// (by the policy governing each line now) that no hold keeps: an archive whose events all go
// is emptied and marked deleted; otherwise it is rewritten without them. One archive per
// transaction. Whether a hold keeps a line is decided by HeldPredicate in SQL over the due
// lines' fields, the rule audit_log rows are held by.
func (e *RetentionEngine) deleteFromArchives(ctx context.Context, rules *retentionRules, dry bool, res *RetentionResult,
	or *OrgRetention) error {
	org := rules.org
	var latest time.Time
	for _, p := range rules.policies {
		if p.DeleteCutoff.After(latest) {
			latest = p.DeleteCutoff
		}
	}
	if latest.IsZero() {
		return nil
	}
	var cands []struct {
		ID           string
		FirstEventAt time.Time
		LastEventAt  time.Time
		Lines        *string
	}
	err := e.db.WithContext(ctx).Raw(`SELECT id, first_event_at, last_event_at, metadata->'`+archiveLinesKey+`' AS lines FROM archive_storage
		WHERE organization_id = ? AND deleted_at IS NULL AND first_event_at < ? ORDER BY month, policy, part`, org, latest).
		Scan(&cands).Error
	if err != nil {
		return fmt.Errorf("models: archives due: %w", err)
	}
	// An archive that lists its lines' (policy, classification) pairs is opened only when
	// its oldest event is due under one of the policies governing them; older archives,
	// without the list, are opened and read.
	var ids []string
	whole := map[string]string{} // archives whose every line is due under one policy: its name
	for _, c := range cands {
		var pairs [][2]string
		if c.Lines == nil || json.Unmarshal([]byte(*c.Lines), &pairs) != nil {
			ids = append(ids, c.ID)
			continue
		}
		for _, pr := range pairs {
			if p := rules.governing(pr[0], pr[1]); p != nil && c.FirstEventAt.Before(p.DeleteCutoff) {
				ids = append(ids, c.ID)
				break
			}
		}
		if len(ids) == 0 || ids[len(ids)-1] != c.ID || len(pairs) == 0 {
			continue
		}
		name := ""
		for _, pr := range pairs {
			p := rules.governing(pr[0], pr[1])
			if p == nil || !c.LastEventAt.Before(p.DeleteCutoff) || (name != "" && p.Name != name) {
				name = ""
				break
			}
			name = p.Name
		}
		if name != "" {
			whole[c.ID] = name
		}
	}
	held, heldArgs := HeldPredicate("e", org)
	heldQ := pgxSQL(`SELECT e.id FROM (SELECT u.*, ?::text AS organization_id FROM unnest(?::bigint[], ?::timestamptz[], ?::text[],
		?::text[], ?::text[], ?::text[]) AS u(id, "timestamp", principal_id, target_resource_type, target_resource_id, correlation_id)) e
		WHERE ` + held)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		var removed, kept int64
		policies := map[string]bool{}
		if name, ok := whole[id]; ok && !dry && rules.holds == 0 {
			n, err := e.dropWholeArchive(ctx, rules, id, name, res.RunID)
			if err != nil {
				return fmt.Errorf("models: delete archive %s: %w", id, err)
			}
			if n > 0 {
				e.afterBatch()
				res.Deleted += n
				res.DeletedArchived += n
				or.Deleted += n
				or.Policies[name] = true
				continue
			}
			// n == 0: not taken (a hold placed since, or records that do not match the
			// archive); the archive is read line by line below.
		}
		err := e.withPurpose(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
			holds, err := rules.recheck(ctx, tx)
			if err != nil {
				return err
			}
			var meta Archive
			var content []byte
			err = tx.QueryRow(ctx, `SELECT id, organization_id, month, part, event_count, original_size, compressed_size,
				sha256_original, sha256_compressed, content FROM archive_storage WHERE id = $1 FOR UPDATE`, id).Scan(
				&meta.ID, &meta.OrganizationID, &meta.Month, &meta.Part, &meta.EventCount, &meta.OriginalSize,
				&meta.CompressedSize, &meta.SHA256Original, &meta.SHA256Compressed, &content)
			if err != nil {
				return err
			}
			// First pass: the lines due, by the policy governing each.
			var dIDs, dLeaves []int64
			var dTimes []time.Time
			var dHashes, dPolicies []string
			var dPrincipals, dTypes, dResources, dCorrelations []*string
			r, err := OpenArchiveContent(meta, content)
			if err != nil {
				return err
			}
			total := int64(0)
			for {
				l, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					r.Close()
					return err
				}
				total++
				if p := rules.governing(l.RetentionPolicy, l.DataClassification); p != nil && l.Timestamp.Before(p.DeleteCutoff) {
					dIDs, dTimes = append(dIDs, l.ID), append(dTimes, l.Timestamp)
					dLeaves, dHashes, dPolicies = append(dLeaves, l.LeafIndex), append(dHashes, l.Hash), append(dPolicies, p.Name)
					if holds > 0 { // the fields a hold matches on, kept only when some hold may
						dPrincipals, dTypes = append(dPrincipals, l.PrincipalID), append(dTypes, l.TargetResourceType)
						dResources, dCorrelations = append(dResources, l.TargetResourceID), append(dCorrelations, l.CorrelationID)
					}
				}
			}
			r.Close()
			if len(dIDs) == 0 {
				return nil
			}
			isHeld := map[int64]bool{}
			if holds > 0 {
				rows, _ := tx.Query(ctx, heldQ, append([]any{org, dIDs, dTimes, dPrincipals, dTypes, dResources, dCorrelations}, heldArgs...)...)
				var hid int64
				if _, err := pgx.ForEachRow(rows, []any{&hid}, func() error { isHeld[hid] = true; return nil }); err != nil {
					return fmt.Errorf("held archived events: %w", err)
				}
			}
			kept = int64(len(isHeld))
			removed = int64(len(dIDs)) - kept
			if removed == 0 || dry {
				return nil
			}
			var w *archiveWriter
			var gIDs, gLeaves []int64
			var gTimes []time.Time
			var gHashes, gPolicies []string
			if removed == total {
				// Every line goes: the first pass has all that is needed, no second read.
				gIDs, gTimes, gLeaves, gHashes, gPolicies = dIDs, dTimes, dLeaves, dHashes, dPolicies
				for _, p := range dPolicies {
					policies[p] = true
				}
			} else {
				// Second pass: the lines that go, and the archive rewritten without them.
				r, err = OpenArchiveContent(meta, content)
				if err != nil {
					return err
				}
				defer r.Close()
				if w, err = newArchiveWriter(); err != nil {
					return err
				}
			}
			for w != nil {
				l, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				if p := rules.governing(l.RetentionPolicy, l.DataClassification); p != nil && l.Timestamp.Before(p.DeleteCutoff) && !isHeld[l.ID] {
					gIDs, gTimes, gLeaves, gHashes = append(gIDs, l.ID), append(gTimes, l.Timestamp), append(gLeaves, l.LeafIndex), append(gHashes, l.Hash)
					gPolicies = append(gPolicies, p.Name)
					policies[p.Name] = true
					continue
				}
				if w != nil {
					if err := w.add(l); err != nil {
						return err
					}
				}
			}
			if _, err := tx.Exec(ctx, `DELETE FROM archived_events WHERE organization_id = $1 AND audit_log_id = ANY($2)`, org, gIDs); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO removed_events (organization_id, audit_log_id, event_timestamp, leaf_index,
				event_hash, reason, policy, run_id, removed_at)
				SELECT $1, u.id, u.ts, u.leaf, u.hash, 'retention', u.policy, $2, $3
				FROM unnest($4::bigint[], $5::timestamptz[], $6::bigint[], $7::text[], $8::text[]) AS u(id, ts, leaf, hash, policy)`,
				org, res.RunID, e.Now().UTC(), gIDs, gTimes, gLeaves, gHashes, gPolicies); err != nil {
				return err
			}
			if w == nil || w.count == 0 {
				_, err := tx.Exec(ctx, `UPDATE archive_storage SET content = NULL, event_count = 0, deleted_at = $2 WHERE id = $1`,
					id, e.Now().UTC())
				return err
			}
			a := Archive{}
			newContent, err := w.finish(&a)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE archive_storage SET content = $2, event_count = $3, first_event_at = $4, last_event_at = $5,
				min_event_id = $6, max_event_id = $7, min_leaf_index = $8, max_leaf_index = $9, original_size = $10,
				compressed_size = $11, sha256_original = $12, sha256_compressed = $13 WHERE id = $1`,
				id, newContent, a.EventCount, a.FirstEventAt, a.LastEventAt, a.MinEventID, a.MaxEventID, a.MinLeafIndex,
				a.MaxLeafIndex, a.OriginalSize, a.CompressedSize, a.SHA256Original, a.SHA256Compressed)
			return err
		})
		if err != nil {
			return fmt.Errorf("models: delete from archive %s: %w", id, err)
		}
		if removed > 0 && !dry {
			e.afterBatch()
		}
		if !slices.Contains(or.Archives, id) { // what this run archived, it counted as kept in audit_log
			res.KeptByHolds += kept
			or.KeptByHolds += kept
		}
		res.Deleted += removed
		res.DeletedArchived += removed
		or.Deleted += removed
		for p := range policies {
			or.Policies[p] = true
		}
	}
	return nil
}

// errNotWhole rolls dropWholeArchive back when the archive cannot go without being read.
var errNotWhole = errors.New("models: archive not removable whole")

// dropWholeArchive removes archive id of org, every line of which is due under policy (the
// caller decided that from the archive's metadata: the policies governing its lines' pairs,
// and its newest event), without decompressing it: its stored bytes are checked against
// their recorded SHA-256 and size in the database, its archived_events rows become
// removed_events rows in one statement, and the archive is emptied. It returns 0, with
// nothing changed, when the organization has an active legal hold (the lines must then be
// read to match them) or the archive's archived_events rows do not account for its events;
// the caller then takes the line-by-line path. A checksum mismatch is an ErrArchiveCorrupt;
// policies changed since rules were read, ErrPoliciesChanged.
func (e *RetentionEngine) dropWholeArchive(ctx context.Context, rules *retentionRules, id, policy string, runID int64) (int64, error) {
	org := rules.org
	var n int64
	err := e.withPurpose(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		holds, err := rules.recheck(ctx, tx)
		if err != nil {
			return err
		}
		var count, size int64
		var sum, gotSum string
		var gotSize int64
		err = tx.QueryRow(ctx, `SELECT event_count, compressed_size, sha256_compressed,
			coalesce(encode(sha256(content), 'hex'), ''), coalesce(octet_length(content), 0)
			FROM archive_storage WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL FOR UPDATE`, id, org).Scan(
			&count, &size, &sum, &gotSum, &gotSize)
		if errors.Is(err, pgx.ErrNoRows) {
			return errNotWhole
		}
		if err != nil {
			return err
		}
		if gotSum != sum || gotSize != size {
			return fmt.Errorf("%w: archive %s: the compressed bytes' SHA-256 is %s, the recorded one %s",
				ErrArchiveCorrupt, id, gotSum, sum)
		}
		if holds > 0 {
			return errNotWhole
		}
		now := e.Now().UTC()
		// The archive's rows through the primary key over its id range (no index on archive_id).
		tag, err := tx.Exec(ctx, `WITH gone AS (DELETE FROM archived_events a USING archive_storage s
				WHERE s.id = $2 AND a.organization_id = $1 AND a.archive_id = $2
					AND a.audit_log_id BETWEEN s.min_event_id AND s.max_event_id
				RETURNING a.audit_log_id, a.event_timestamp, a.leaf_index, a.event_hash)
			INSERT INTO removed_events (organization_id, audit_log_id, event_timestamp, leaf_index, event_hash, reason, policy,
				run_id, removed_at)
			SELECT $1, audit_log_id, event_timestamp, leaf_index, event_hash, 'retention', $3, $4, $5 FROM gone`,
			org, id, policy, runID, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != count {
			return errNotWhole
		}
		if _, err := tx.Exec(ctx, `UPDATE archive_storage SET content = NULL, event_count = 0, deleted_at = $2 WHERE id = $1`,
			id, now); err != nil {
			return err
		}
		n = count
		return nil
	})
	if errors.Is(err, errNotWhole) {
		return 0, nil
	}
	return n, err
}

// audit writes org's gdpr.retention.apply event for run: counts, the id and leaf-index
// ranges of what this run removed, and the SHA-256 of its sorted removed ids (decimal, one
// per line), so that the deletion is itself in the Merkle log.
func (e *RetentionEngine) audit(ctx context.Context, org string, runID int64, or *OrgRetention) error {
	h := sha256.New()
	var n int64
	var minID, maxID, minLeaf, maxLeaf *int64
	err := WithPgx(ctx, e.db, func(conn *pgx.Conn) error {
		rows, _ := conn.Query(ctx, `SELECT audit_log_id, coalesce(leaf_index, -1) FROM removed_events
			WHERE organization_id = $1 AND run_id = $2 ORDER BY audit_log_id`, org, runID)
		var id, leaf int64
		_, err := pgx.ForEachRow(rows, []any{&id, &leaf}, func() error {
			h.Write(strconv.AppendInt(nil, id, 10))
			h.Write([]byte{'\n'})
			n++
			if minID == nil {
				minID = new(int64)
				*minID = id
			}
			maxID = new(int64)
			*maxID = id
			if leaf >= 0 {
				if minLeaf == nil || leaf < *minLeaf {
					minLeaf = new(int64)
					*minLeaf = leaf
				}
				if maxLeaf == nil || leaf > *maxLeaf {
					maxLeaf = new(int64)
					*maxLeaf = leaf
				}
			}
			return nil
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("models: removed events of run %d: %w", runID, err)
	}
	policies := make([]string, 0, len(or.Policies))
	for p := range or.Policies {
		policies = append(policies, p)
	}
	sort.Strings(policies)
	return e.trail.Record(ctx, AuditEntry{Org: org, Action: ActionRetentionApply, Actor: SystemActor("retention"),
		TargetType: "retention_run", TargetID: strconv.FormatInt(runID, 10),
		Outcome: fmt.Sprintf("retention run %d archived %d events and removed %d", runID, or.Archived, n),
		Details: map[string]any{"runId": runID, "archived": or.Archived, "archives": or.Archives, "removed": n,
			"keptByHolds": or.KeptByHolds, "policies": policies, "removedIdRange": []any{minID, maxID},
			"removedLeafRange": []any{minLeaf, maxLeaf}, "removedIdsSha256": hex.EncodeToString(h.Sum(nil))}})
}

// closeInterrupted finishes the record of runs a process left running: under the retention
// lock no other run is under way, so such a run's process ended (killed, crashed) after some
// of its transactions had committed and before it wrote its gdpr.retention.apply events.
// Each organization it changed gets that event now, from what the archives and removal
// records say the run did, and the run is marked failed with the reason.
func (e *RetentionEngine) closeInterrupted(ctx context.Context) error {
	db := e.db.WithContext(ctx)
	var runs []int64
	if err := db.Raw(`SELECT id FROM retention_runs WHERE kind = 'retention' AND status = 'running' AND NOT dry_run
		ORDER BY id`).Scan(&runs).Error; err != nil {
		return fmt.Errorf("models: interrupted retention runs: %w", err)
	}
	for _, run := range runs {
		var archives []struct {
			OrganizationID, ID, Policy string
			EventCount                 int64
		}
		if err := db.Raw(`SELECT organization_id, id, policy, event_count FROM archive_storage WHERE run_id = ? ORDER BY id`,
			run).Scan(&archives).Error; err != nil {
			return fmt.Errorf("models: archives of run %d: %w", run, err)
		}
		var removed []struct {
			OrganizationID, Policy string
			N                      int64
		}
		if err := db.Raw(`SELECT organization_id, policy, count(*) AS n FROM removed_events WHERE run_id = ? AND reason = 'retention'
			GROUP BY 1, 2`, run).Scan(&removed).Error; err != nil {
			return fmt.Errorf("models: removals of run %d: %w", run, err)
		}
		orgs := map[string]*OrgRetention{}
		of := func(org string) *OrgRetention {
			if orgs[org] == nil {
				orgs[org] = &OrgRetention{Policies: map[string]bool{}}
			}
			return orgs[org]
		}
		var archived, deleted int64
		for _, a := range archives {
			or := of(a.OrganizationID)
			or.Archived += a.EventCount
			or.Archives = append(or.Archives, a.ID)
			or.Policies[a.Policy] = true
			archived += a.EventCount
		}
		for _, r := range removed {
			or := of(r.OrganizationID)
			or.Deleted += r.N
			or.Policies[r.Policy] = true
			deleted += r.N
		}
		names := make([]string, 0, len(orgs))
		for org := range orgs {
			names = append(names, org)
		}
		sort.Strings(names)
		for _, org := range names {
			// A run (or an earlier recovery) that ended between two organizations' events
			// wrote some already.
			var written []int
			if err := db.Raw(`SELECT 1 FROM audit_log WHERE organization_id = ? AND action = ?
				AND target_resource_type = 'retention_run' AND target_resource_id = ? LIMIT 1`,
				org, ActionRetentionApply, strconv.FormatInt(run, 10)).Scan(&written).Error; err != nil {
				return fmt.Errorf("models: events of run %d: %w", run, err)
			}
			if len(written) > 0 {
				continue
			}
			if err := e.audit(ctx, org, run, orgs[org]); err != nil {
				return err
			}
		}
		if err := db.Exec(`UPDATE retention_runs SET status = 'failed', finished_at = ?, archived = ?, deleted = ?, error = ?
			WHERE id = ?`, e.Now().UTC(), archived, deleted,
			"the run's process ended before the run did; what it had committed was recorded by the next run", run).Error; err != nil {
			return fmt.Errorf("models: close run %d: %w", run, err)
		}
	}
	return nil
}

func derefString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// IsRetentionRunning reports whether err says another run holds the lock.
func IsRetentionRunning(err error) bool { return errors.Is(err, ErrRetentionRunning) }
