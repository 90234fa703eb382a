package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
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
	// AfterBatch, when set, is called after each committed transaction (progress, tests).
	AfterBatch func()
}

func (e *RetentionEngine) afterBatch() {
	if e.AfterBatch != nil {
		e.AfterBatch()
	}
}

// NewRetentionEngine returns the engine; trail writes the self-audit events.
func NewRetentionEngine(db *gorm.DB, trail *AuditTrail, parts *PartitionManager) *RetentionEngine {
	return &RetentionEngine{db: db, trail: trail, parts: parts, Now: time.Now, PartSize: 50_000, DeleteBatch: 5_000}
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

// retentionPolicy is the effective policy of one name in one organization.
type retentionPolicy struct {
	Name            string
	RetentionDays   int
	ArchiveAfter    *int
	DeleteAfter     *int
	ArchiveCutoff   time.Time // events before it are due for the archive (zero: never)
	DeleteCutoff    time.Time // events before it are due for deletion
	OrganizationOwn bool
}

// dueCutoff is the instant before which an event is due after days: an event becomes due on
// the UTC calendar day date(event)+days, at midnight.
func dueCutoff(now time.Time, days int) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1-days)
}

// effectivePolicies returns org's policies by name: its own active policy of a name, else the
// global one ('*').
func (e *RetentionEngine) effectivePolicies(ctx context.Context, org string, now time.Time) (map[string]*retentionPolicy, error) {
	var rows []struct {
		OrganizationID   string
		PolicyName       string
		RetentionDays    int
		ArchiveAfterDays *int
		DeleteAfterDays  *int
	}
	err := e.db.WithContext(ctx).Raw(`SELECT organization_id, policy_name, retention_days, archive_after_days, delete_after_days
		FROM audit_retention_policy WHERE is_active AND organization_id IN ('*', ?) ORDER BY organization_id = '*' DESC`, org).
		Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: retention policies: %w", err)
	}
	out := map[string]*retentionPolicy{}
	for _, r := range rows { // global first, then the organization's own overrides it
		p := &retentionPolicy{Name: r.PolicyName, RetentionDays: r.RetentionDays, ArchiveAfter: r.ArchiveAfterDays,
			DeleteAfter: r.DeleteAfterDays, OrganizationOwn: r.OrganizationID != "*"}
		del := r.RetentionDays
		if r.DeleteAfterDays != nil {
			del = *r.DeleteAfterDays
		}
		p.DeleteCutoff = dueCutoff(now, del)
		if r.ArchiveAfterDays != nil {
			p.ArchiveCutoff = dueCutoff(now, *r.ArchiveAfterDays)
		}
		out[r.PolicyName] = p
	}
	return out, nil
}

// heldSQL is true for an audit_log row e under an active legal hold of its organization.
//
// Minimal version for the engine until the legal holds area exports models.HeldPredicate;
// the two must agree with legalHold.holds below.
const heldSQL = `EXISTS (SELECT 1 FROM legal_holds h WHERE h.organization_id = e.organization_id AND h.released_at IS NULL
	AND (h.from_time IS NULL OR e."timestamp" >= h.from_time) AND (h.to_time IS NULL OR e."timestamp" <= h.to_time)
	AND CASE h.scope WHEN 'principal' THEN e.principal_id = h.principal_id
		WHEN 'resource' THEN e.target_resource_type = h.resource_type AND e.target_resource_id = h.resource_id
		WHEN 'correlation' THEN e.correlation_id = h.correlation_id
		ELSE true END)`

// legalHold is an active hold, to test archived events (which are no longer rows).
type legalHold struct {
	Scope         string
	PrincipalID   *string
	ResourceType  *string
	ResourceID    *string
	CorrelationID *string
	FromTime      *time.Time
	ToTime        *time.Time
}

func eq(a, b *string) bool { return a != nil && b != nil && *a == *b }

// holds reports whether h keeps ev; it mirrors heldSQL.
func (h legalHold) holds(ev *ArchiveLine) bool {
	if h.FromTime != nil && ev.Timestamp.Before(*h.FromTime) || h.ToTime != nil && ev.Timestamp.After(*h.ToTime) {
		return false
	}
	switch h.Scope {
	case "principal":
		return eq(ev.PrincipalID, h.PrincipalID)
	case "resource":
		return eq(ev.TargetResourceType, h.ResourceType) && eq(ev.TargetResourceID, h.ResourceID)
	case "correlation":
		return eq(ev.CorrelationID, h.CorrelationID)
	}
	return true
}

func (e *RetentionEngine) activeHolds(ctx context.Context, org string) ([]legalHold, error) {
	var hs []legalHold
	err := e.db.WithContext(ctx).Raw(`SELECT scope, principal_id, resource_type, resource_id, correlation_id, from_time, to_time
		FROM legal_holds WHERE organization_id = ? AND released_at IS NULL`, org).Scan(&hs).Error
	if err != nil {
		return nil, fmt.Errorf("models: legal holds: %w", err)
	}
	return hs, nil
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
	months := map[time.Time]bool{}
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
			return err
		}
	}
	if opts.DryRun || e.parts == nil {
		return nil
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
			return err
		}
		if dropped != "" {
			res.DroppedPartitions = append(res.DroppedPartitions, dropped)
		}
	}
	return nil
}

func (e *RetentionEngine) runOrg(ctx context.Context, org string, now time.Time, dry bool, res *RetentionResult,
	or *OrgRetention, months map[time.Time]bool) error {
	policies, err := e.effectivePolicies(ctx, org, now)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(policies))
	for n := range policies {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		p := policies[name]
		if err := e.deleteFromLog(ctx, org, p, dry, res, or, months); err != nil {
			return err
		}
		if err := e.archive(ctx, org, p, dry, res, or, months); err != nil {
			return err
		}
		if err := e.deleteFromArchives(ctx, org, p, dry, res, or); err != nil {
			return err
		}
	}
	return nil
}

// withPurpose runs fn in one transaction that declared the purpose 'retention'.
func (e *RetentionEngine) withPurpose(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return WithPgx(ctx, e.db, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL auditdb.purpose = 'retention'`); err != nil {
				return err
			}
			return fn(tx)
		})
	})
}

// deleteFromLog removes, in batches, org's events of policy p at the end of their retention
// that no hold keeps and that are in the Merkle log (an event still queued for it waits for
// the next run), each with its removed_events row.
func (e *RetentionEngine) deleteFromLog(ctx context.Context, org string, p *retentionPolicy, dry bool, res *RetentionResult,
	or *OrgRetention, months map[time.Time]bool) error {
	held := `SELECT count(*) FROM audit_log e WHERE e.organization_id = $1 AND e.retention_policy = $2 AND e."timestamp" < $3 AND ` + heldSQL
	var kept int64
	if err := WithPgx(ctx, e.db, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, held, org, p.Name, p.DeleteCutoff).Scan(&kept)
	}); err != nil {
		return fmt.Errorf("models: count held events: %w", err)
	}
	res.KeptByHolds += kept
	or.KeptByHolds += kept
	due := `SELECT e.id, e."timestamp", l.leaf_index, e.hash FROM audit_log e
		JOIN audit_leaf l ON l.organization_id = e.organization_id AND l.audit_log_id = e.id
		WHERE e.organization_id = $1 AND e.retention_policy = $2 AND e."timestamp" < $3 AND NOT ` + heldSQL
	if dry {
		var n int64
		if err := WithPgx(ctx, e.db, func(conn *pgx.Conn) error {
			return conn.QueryRow(ctx, `SELECT count(*) FROM (`+due+`) d`, org, p.Name, p.DeleteCutoff).Scan(&n)
		}); err != nil {
			return fmt.Errorf("models: count events due for deletion: %w", err)
		}
		res.Deleted += n
		or.Deleted += n
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var n int64
		var first, last time.Time
		err := e.withPurpose(ctx, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `WITH due AS (`+due+` ORDER BY e.id LIMIT $5),
				gone AS (DELETE FROM audit_log e USING due WHERE e.organization_id = $1 AND e.id = due.id
					AND e."timestamp" = due."timestamp" RETURNING e.id),
				rec AS (INSERT INTO removed_events (organization_id, audit_log_id, event_timestamp, leaf_index, event_hash,
					reason, policy, run_id, removed_at)
					SELECT $1, due.id, due."timestamp", due.leaf_index, due.hash, 'retention', $2, $4, $6 FROM due JOIN gone USING (id)
					RETURNING event_timestamp)
				SELECT count(*), coalesce(min(event_timestamp), 'epoch'), coalesce(max(event_timestamp), 'epoch') FROM rec`,
				org, p.Name, p.DeleteCutoff, res.RunID, e.DeleteBatch, e.Now().UTC()).Scan(&n, &first, &last)
		})
		if err != nil {
			return fmt.Errorf("models: delete events of %s (%s): %w", org, p.Name, err)
		}
		if n == 0 {
			return nil
		}
		e.afterBatch()
		for m := MonthStart(first); !m.After(last); m = m.AddDate(0, 1, 0) {
			months[m] = true
		}
		res.Deleted += n
		or.Deleted += n
		or.Policies[p.Name] = true
	}
}

// archive moves org's events of policy p due for the archive into archives of one month
// each, PartSize events (one transaction) per archive.
func (e *RetentionEngine) archive(ctx context.Context, org string, p *retentionPolicy, dry bool, res *RetentionResult,
	or *OrgRetention, months map[time.Time]bool) error {
	if p.ArchiveAfter == nil {
		return nil
	}
	var monthsDue []time.Time
	err := WithPgx(ctx, e.db, func(conn *pgx.Conn) error {
		rows, _ := conn.Query(ctx, `SELECT date_trunc('month', e."timestamp" AT TIME ZONE 'UTC') AS m, count(*) FROM audit_log e
			JOIN audit_leaf l ON l.organization_id = e.organization_id AND l.audit_log_id = e.id
			WHERE e.organization_id = $1 AND e.retention_policy = $2 AND e."timestamp" < $3 GROUP BY 1 ORDER BY 1`,
			org, p.Name, p.ArchiveCutoff)
		var m time.Time
		var n int64
		_, err := pgx.ForEachRow(rows, []any{&m, &n}, func() error {
			monthsDue = append(monthsDue, time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, time.UTC))
			if dry {
				res.Archived += n
				or.Archived += n
				res.Archives += int((n + int64(e.PartSize) - 1) / int64(e.PartSize))
			}
			return nil
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("models: events due for the archive: %w", err)
	}
	if dry {
		return nil
	}
	for _, m := range monthsDue {
		months[m] = true
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			n, err := e.archivePart(ctx, org, p, m, res.RunID, or)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			e.afterBatch()
			res.Archived += n
			res.Archives++
		}
	}
	return nil
}

// archivePart writes the next archive part of org, policy p and month m in one transaction:
// the archive, its archived_events rows, and the deletion of its audit_log rows. It returns
// how many events it archived (0: nothing left).
func (e *RetentionEngine) archivePart(ctx context.Context, org string, p *retentionPolicy, m time.Time, runID int64,
	or *OrgRetention) (int64, error) {
	end := m.AddDate(0, 1, 0)
	if p.ArchiveCutoff.Before(end) {
		end = p.ArchiveCutoff
	}
	var n int64
	err := e.withPurpose(ctx, func(tx pgx.Tx) error {
		w, err := newArchiveWriter()
		if err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `SELECT e.id, e."timestamp", e.ttl, e.principal_id, e.action, e.target_resource_type,
				e.target_resource_id, e.status, e.outcome_description, e.hash, e.hash_algorithm, e.event_version,
				e.correlation_id, e.data_classification, e.retention_policy, e.processing_latency, e.archived_at,
				e.details, e.subject_salt, e.subject_digest, e.signature, e.field_commitments, l.leaf_index
			FROM audit_log e JOIN audit_leaf l ON l.organization_id = e.organization_id AND l.audit_log_id = e.id
			WHERE e.organization_id = $1 AND e.retention_policy = $2 AND e."timestamp" >= $3 AND e."timestamp" < $4
			ORDER BY e.id LIMIT $5`, org, p.Name, m, end, e.PartSize)
		var l ArchiveLine
		var hash, digest, sig *string
		var details, commitments []byte
		ids := make([]int64, 0, 1024)
		times := make([]time.Time, 0, 1024)
		leaves := make([]int64, 0, 1024)
		hashes := make([]string, 0, 1024)
		_, err = pgx.ForEachRow(rows, []any{&l.ID, &l.Timestamp, &l.TTL, &l.PrincipalID, &l.Action, &l.TargetResourceType,
			&l.TargetResourceID, &l.Status, &l.OutcomeDescription, &hash, &l.HashAlgorithm, &l.EventVersion,
			&l.CorrelationID, &l.DataClassification, &l.RetentionPolicy, &l.ProcessingLatency, &l.ArchivedAt,
			&details, &l.SubjectSalt, &digest, &sig, &commitments, &l.LeafIndex}, func() error {
			l.OrganizationID = org
			l.Timestamp = l.Timestamp.UTC()
			l.Hash, l.SubjectDigest, l.Signature = derefString(hash), derefString(digest), derefString(sig)
			l.Details, l.FieldCommitments = nil, nil
			if details != nil {
				l.Details = json.RawMessage(details)
			}
			if commitments != nil {
				l.FieldCommitments = json.RawMessage(commitments)
			}
			ids, times, leaves, hashes = append(ids, l.ID), append(times, l.Timestamp), append(leaves, l.LeafIndex), append(hashes, l.Hash)
			return w.add(&l)
		})
		if err != nil {
			return err
		}
		if w.count == 0 {
			return nil
		}
		var part int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(part), 0) + 1 FROM archive_storage
			WHERE organization_id = $1 AND policy = $2 AND month = $3`, org, p.Name, m).Scan(&part); err != nil {
			return err
		}
		a := Archive{ID: fmt.Sprintf("%s/%s/%s/%d", org, p.Name, m.Format("2006-01"), part), OrganizationID: org,
			Policy: p.Name, Month: m, Part: part, RunID: &runID}
		content, err := w.finish(&a)
		if err != nil {
			return err
		}
		meta, _ := json.Marshal(map[string]any{"format": "JSON Lines, one audit_log row per line, zstd-compressed",
			"policy": p.Name, "month": m.Format("2006-01"), "part": part})
		_, err = tx.Exec(ctx, `INSERT INTO archive_storage (id, organization_id, metadata, content, encoding, policy, month, part,
			event_count, first_event_at, last_event_at, min_event_id, max_event_id, min_leaf_index, max_leaf_index,
			original_size, compressed_size, sha256_original, sha256_compressed, run_id, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
			a.ID, org, string(meta), content, a.Encoding, a.Policy, a.Month, a.Part, a.EventCount, a.FirstEventAt, a.LastEventAt,
			a.MinEventID, a.MaxEventID, a.MinLeafIndex, a.MaxLeafIndex, a.OriginalSize, a.CompressedSize, a.SHA256Original,
			a.SHA256Compressed, runID, e.Now().UTC())
		if err != nil {
			return fmt.Errorf("insert archive %s: %w", a.ID, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO archived_events (organization_id, audit_log_id, event_timestamp, archive_id, leaf_index, event_hash)
			SELECT $1, u.id, u.ts, $2, u.leaf, u.hash FROM unnest($3::bigint[], $4::timestamptz[], $5::bigint[], $6::text[]) AS u(id, ts, leaf, hash)`,
			org, a.ID, ids, times, leaves, hashes)
		if err != nil {
			return fmt.Errorf("record archived events: %w", err)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM audit_log WHERE organization_id = $1 AND "timestamp" >= $2 AND "timestamp" < $3
			AND id = ANY($4)`, org, m, end, ids)
		if err != nil {
			return fmt.Errorf("remove archived rows: %w", err)
		}
		if tag.RowsAffected() != int64(len(ids)) {
			return fmt.Errorf("removed %d rows for %d archived events", tag.RowsAffected(), len(ids))
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

// deleteFromArchives removes from org's archives of policy p the events at the end of their
// retention that no hold keeps: an archive whose events all go is emptied and marked
// deleted; otherwise it is rewritten without them. One archive per transaction.
func (e *RetentionEngine) deleteFromArchives(ctx context.Context, org string, p *retentionPolicy, dry bool, res *RetentionResult,
	or *OrgRetention) error {
	var ids []string
	err := e.db.WithContext(ctx).Raw(`SELECT id FROM archive_storage WHERE organization_id = ? AND policy = ?
		AND deleted_at IS NULL AND first_event_at < ? ORDER BY month, part`, org, p.Name, p.DeleteCutoff).Scan(&ids).Error
	if err != nil {
		return fmt.Errorf("models: archives due: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	holds, err := e.activeHolds(ctx, org)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		var removed, kept int64
		err := e.withPurpose(ctx, func(tx pgx.Tx) error {
			var meta Archive
			var content []byte
			err := tx.QueryRow(ctx, `SELECT id, organization_id, month, part, event_count, original_size, compressed_size,
				sha256_original, sha256_compressed, content FROM archive_storage WHERE id = $1 FOR UPDATE`, id).Scan(
				&meta.ID, &meta.OrganizationID, &meta.Month, &meta.Part, &meta.EventCount, &meta.OriginalSize,
				&meta.CompressedSize, &meta.SHA256Original, &meta.SHA256Compressed, &content)
			if err != nil {
				return err
			}
			r, err := OpenArchiveContent(meta, content)
			if err != nil {
				return err
			}
			defer r.Close()
			w, err := newArchiveWriter()
			if err != nil {
				return err
			}
			var gIDs, gLeaves []int64
			var gTimes []time.Time
			var gHashes []string
			for {
				l, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				due := l.Timestamp.Before(p.DeleteCutoff)
				isHeld := false
				for _, h := range holds {
					if h.holds(l) {
						isHeld = true
						break
					}
				}
				if due && isHeld {
					kept++
				}
				if due && !isHeld {
					gIDs, gTimes, gLeaves, gHashes = append(gIDs, l.ID), append(gTimes, l.Timestamp), append(gLeaves, l.LeafIndex), append(gHashes, l.Hash)
					continue
				}
				if err := w.add(l); err != nil {
					return err
				}
			}
			removed = int64(len(gIDs))
			if removed == 0 || dry {
				return nil
			}
			if _, err := tx.Exec(ctx, `DELETE FROM archived_events WHERE organization_id = $1 AND audit_log_id = ANY($2)`, org, gIDs); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO removed_events (organization_id, audit_log_id, event_timestamp, leaf_index,
				event_hash, reason, policy, run_id, removed_at)
				SELECT $1, u.id, u.ts, u.leaf, u.hash, 'retention', $2, $3, $4
				FROM unnest($5::bigint[], $6::timestamptz[], $7::bigint[], $8::text[]) AS u(id, ts, leaf, hash)`,
				org, p.Name, res.RunID, e.Now().UTC(), gIDs, gTimes, gLeaves, gHashes); err != nil {
				return err
			}
			if w.count == 0 {
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
		res.KeptByHolds += kept
		or.KeptByHolds += kept
		res.Deleted += removed
		res.DeletedArchived += removed
		or.Deleted += removed
		if removed > 0 {
			or.Policies[p.Name] = true
		}
	}
	return nil
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

func derefString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// IsRetentionRunning reports whether err says another run holds the lock.
func IsRetentionRunning(err error) bool { return errors.Is(err, ErrRetentionRunning) }
