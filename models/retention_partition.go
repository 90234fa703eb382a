package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// errNotWholePartition rolls archiveWholePartition back when its month's partition holds a
// row the month's archival does not move (another organization's, another policy's, one
// not due yet) or none at all.
var errNotWholePartition = errors.New("models: the partition holds rows this archival does not move")

// truncateLockTimeout is how long archiveWholePartition waits for the exclusive lock that
// TRUNCATE takes (a reader of the partition holds it off); past it, the rows are deleted
// instead, which readers do not block.
const truncateLockTimeout = "2s"

// archiveWholePartition archives month m of org under policy p in one transaction when every
// row of the month's partition of audit_log is one this archival moves (the caller passes
// where, the month's condition, covering the whole month). The transaction first takes a
// SHARE lock on the partition, before its snapshot: no row can arrive in or leave the
// partition until it commits, while readers go on. It checks that where selects every row,
// reads the rows with their Merkle log entries through a cursor in id order, PartSize at a
// time, and writes one archive and its archived_events rows per part, exactly as the part
// by part path would. Then it empties the partition with TRUNCATE (no row-by-row delete,
// no dead rows, no per-row WAL) and bumps org's cache version, which TRUNCATE's missing
// row triggers would otherwise not. When the exclusive lock TRUNCATE needs is not granted
// within truncateLockTimeout, the rows are deleted instead, in the same transaction.
//
// It returns done=false, having changed nothing, when the partition does not exist, holds
// rows the archival does not move, or holds a row not in the Merkle log yet; the caller
// then takes the part by part path. Archival is not stopped by legal holds (they stop
// deletion), so none is consulted here, as on the other path.
func (e *RetentionEngine) archiveWholePartition(ctx context.Context, rules *retentionRules, p *retentionPolicy,
	m time.Time, where string, whereArgs []any, runID int64, or *OrgRetention) (n int64, archives []string, done bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, false, err
	}
	org := rules.org
	name := PartitionName("audit_log", m)
	if !partitionName.MatchString(name) {
		return 0, nil, false, nil
	}
	var exists bool
	if err := e.db.WithContext(ctx).Raw(`SELECT to_regclass(?) IS NOT NULL`, "public."+name).Scan(&exists).Error; err != nil {
		return 0, nil, false, fmt.Errorf("models: look up partition %s: %w", name, err)
	}
	if !exists {
		return 0, nil, false, nil
	}
	ident := pgx.Identifier{name}.Sanitize()
	w := e.writer
	err = e.withPurpose(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		n, archives = 0, archives[:0]
		// Before any query: the snapshot is taken after the lock is granted.
		if _, err := tx.Exec(ctx, `LOCK TABLE `+ident+` IN SHARE MODE`); err != nil {
			return err
		}
		var total, due int64
		if err := tx.QueryRow(ctx, pgxSQL(`SELECT count(*), count(*) FILTER (WHERE `+where+`) FROM `+ident+` e`),
			whereArgs...).Scan(&total, &due); err != nil {
			return fmt.Errorf("count the partition: %w", err)
		}
		if total == 0 || total != due {
			return errNotWholePartition
		}
		var part int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(part), 0) FROM archive_storage
			WHERE organization_id = $1 AND policy = $2 AND month = $3`, org, p.Name, m).Scan(&part); err != nil {
			return err
		}
		// The rows in id order by the partition's primary key (its heap is in about that
		// order: rows are appended as their ids are drawn), each with its log entry by the
		// (organization, event id) index: the cost follows the partition, not the
		// organization's whole log, and needs no sort (a hash join read every log entry of
		// the organization per month, then sorted 50 MB per 50,000 rows).
		for _, set := range []string{`enable_hashjoin = off`, `enable_mergejoin = off`, `enable_sort = off`} {
			if _, err := tx.Exec(ctx, `SET LOCAL `+set); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DECLARE retention_rows NO SCROLL CURSOR FOR SELECT `+archiveColumnsSelect+`, l.leaf_index
			FROM `+ident+` e LEFT JOIN audit_leaf l ON l.organization_id = $1 AND l.audit_log_id = e.id ORDER BY e.id`, org); err != nil {
			return fmt.Errorf("open the partition's rows: %w", err)
		}
		if _, err := tx.Exec(ctx, `SET LOCAL enable_hashjoin TO DEFAULT; SET LOCAL enable_mergejoin TO DEFAULT; SET LOCAL enable_sort TO DEFAULT`); err != nil {
			return err
		}
		fetch := fmt.Sprintf(`FETCH %d FROM retention_rows`, e.PartSize)
		var l ArchiveLine
		var hash, digest, sig *string
		var details, commitments []byte
		var leaf *int64
		dest := []any{&l.ID, &l.Timestamp, &l.TTL, &l.PrincipalID, &l.Action, &l.TargetResourceType,
			&l.TargetResourceID, &l.Status, &l.OutcomeDescription, &hash, &l.HashAlgorithm, &l.EventVersion,
			&l.CorrelationID, &l.DataClassification, &l.RetentionPolicy, &l.ProcessingLatency, &l.ArchivedAt,
			&details, &l.SubjectSalt, &digest, &sig, &commitments, &leaf}
		for {
			w.reset()
			e.ids, e.times, e.leaves, e.hashes = e.ids[:0], e.times[:0], e.leaves[:0], e.hashes[:0]
			rows, _ := tx.Query(ctx, fetch)
			_, err := pgx.ForEachRow(rows, dest, func() error {
				if leaf == nil {
					return errUnsequenced // the part by part path leaves such rows for a later run
				}
				l.LeafIndex = *leaf
				l.OrganizationID = org
				l.Timestamp = l.Timestamp.UTC()
				l.Hash, l.SubjectDigest, l.Signature = derefString(hash), derefString(digest), derefString(sig)
				l.Details = json.RawMessage(details)
				l.FieldCommitments = json.RawMessage(commitments)
				e.ids, e.times = append(e.ids, l.ID), append(e.times, l.Timestamp)
				e.leaves, e.hashes = append(e.leaves, l.LeafIndex), append(e.hashes, l.Hash)
				return w.add(&l)
			})
			if err != nil {
				return err
			}
			if w.count == 0 {
				break
			}
			part++
			a := Archive{ID: fmt.Sprintf("%s/%s/%s/%d", org, p.Name, m.Format("2006-01"), part), OrganizationID: org,
				Policy: p.Name, Month: m, Part: part, RunID: &runID}
			if err := e.storeArchive(ctx, tx, &a); err != nil {
				return err
			}
			if err := e.recordArchived(ctx, tx, &a); err != nil {
				return err
			}
			n += w.count
			archives = append(archives, a.ID)
		}
		if _, err := tx.Exec(ctx, `CLOSE retention_rows`); err != nil {
			return err
		}
		if n != total {
			return fmt.Errorf("archived %d events of a partition of %d rows", n, total)
		}
		return e.emptyPartition(ctx, tx, org, ident, total)
	})
	switch {
	case errors.Is(err, errNotWholePartition), errors.Is(err, errUnsequenced):
		return 0, nil, false, nil
	case err != nil:
		return 0, nil, false, fmt.Errorf("models: archive %s %s %s: %w", org, p.Name, m.Format("2006-01"), err)
	}
	return n, archives, true, nil
}

// emptyPartition removes the total rows of partition ident (quoted), all of org's, in tx:
// by TRUNCATE when its exclusive lock comes within truncateLockTimeout, otherwise by DELETE
// checked by count; then it bumps org's cache version as audit_log's delete trigger would
// (neither fires that trigger: it is the parent's statement trigger).
func (e *RetentionEngine) emptyPartition(ctx context.Context, tx pgx.Tx, org, ident string, total int64) error {
	if _, err := tx.Exec(ctx, `SAVEPOINT retention_truncate`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+truncateLockTimeout+`'`); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `TRUNCATE `+ident)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT retention_truncate`); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM `+ident)
		if err != nil {
			return fmt.Errorf("remove archived rows: %w", err)
		}
		if tag.RowsAffected() != total {
			return fmt.Errorf("removed %d rows for %d archived events", tag.RowsAffected(), total)
		}
		// A DELETE on the partition itself fires none of audit_log's statement triggers
		// either (they are the parent's): the cache version is bumped below all the same.
	} else {
		if err != nil {
			return fmt.Errorf("truncate archived partition: %w", err)
		}
		if _, err := tx.Exec(ctx, `RELEASE SAVEPOINT retention_truncate`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout TO DEFAULT`); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, `WITH bumped AS (
			INSERT INTO query_cache_versions AS v (organization_id, version) VALUES ($1, 1)
			ON CONFLICT (organization_id) DO UPDATE SET version = v.version + 1
			RETURNING v.organization_id, v.version)
		SELECT count(pg_notify('auditdb_cache', organization_id || ':' || version)) FROM bumped`, org)
	if err != nil {
		return fmt.Errorf("bump cache version: %w", err)
	}
	return nil
}
