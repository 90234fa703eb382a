package models

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
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
// has readPartition read the rows with their Merkle log entries on a second connection in
// the same snapshot, PartSize at a time, and writes one archive and its archived_events rows
// per part as they come, exactly as the part by part path would. Then it empties the partition with TRUNCATE (no row-by-row delete,
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
	err = e.withPurposeSnapshot(ctx, org, func(tx pgx.Tx) error {
		n, archives = 0, archives[:0]
		// Before any query: the snapshot is taken after the lock is granted.
		if _, err := tx.Exec(ctx, `LOCK TABLE `+ident+` IN SHARE MODE`); err != nil {
			return err
		}
		var total, due int64
		if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil { // the count is one scan: nothing to compile for
			return err
		}
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
		// The rows are read, encoded and compressed on a second connection whose transaction
		// imports this one's snapshot (the lock above was granted before it, so it sees
		// exactly the rows counted), while this connection writes the part before: one
		// connection did the reading and the writing one after the other, and on two cores
		// archival took their sum.
		var snap string
		if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&snap); err != nil {
			return fmt.Errorf("export the snapshot: %w", err)
		}
		rctx, cancel := context.WithCancel(ctx)
		parts := make(chan *archivedPart, 1)
		readErr := make(chan error, 1)
		go func() {
			defer close(parts)
			readErr <- e.readPartition(rctx, snap, ident, org, func(k int) Archive {
				num := part + k + 1 // after the month's archives so far
				return Archive{ID: fmt.Sprintf("%s/%s/%s/%d", org, p.Name, m.Format("2006-01"), num), OrganizationID: org,
					Policy: p.Name, Month: m, Part: num, RunID: &runID}
			}, parts)
		}()
		// Every path waits for the reader to end, so its connection is back in the pool and
		// no goroutine outlives the transaction.
		defer func() {
			cancel()
			for range parts {
			}
		}()
		for pt := range parts {
			if err := insertArchiveRow(ctx, tx, &pt.a, pt.meta, pt.content, runID, e.Now().UTC()); err != nil {
				return fmt.Errorf("insert archive %s: %w", pt.a.ID, err)
			}
			if err := copyArchivedRows(ctx, tx, &pt.a, pt.ids, pt.times, pt.leaves, pt.hashes); err != nil {
				return err
			}
			n += pt.a.EventCount
			archives = append(archives, pt.a.ID)
		}
		if err := <-readErr; err != nil {
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
// checked by count. Neither fires audit_log's cache trigger (it is the parent's statement
// trigger): org's cache version is bumped after the commit (withPurposeSnapshot).
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
		// either (they are the parent's): the cache version is bumped after the commit all the same.
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
	return nil
}

// archivedPart is one archive built by readPartition, with the events it holds for their
// archived_events rows.
type archivedPart struct {
	a       Archive
	meta    string
	content []byte
	ids     []int64
	times   []time.Time
	leaves  []int64
	hashes  []string
}

// snapshotID is the shape of a pg_export_snapshot() id, checked before it is written into SET
// TRANSACTION SNAPSHOT (which takes no parameter).
var snapshotID = regexp.MustCompile(`^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$`)

// readPartition reads the rows of partition ident (quoted), all of org's, with their Merkle
// log entries, in a read-only transaction of its own that imports snapshot snap. It reads
// them through a cursor in id order by the partition's primary key (the heap is in about that
// order: rows are appended as their ids are drawn), each with its log entry by the
// (organization, event id) index, so the cost follows the partition, not the organization's
// whole log, and needs no sort (a hash join read every log entry of the organization per
// month, then sorted 50 MB per 50,000 rows). Every e.PartSize rows become one archive (the
// k-th, from 0, described by mk(k)), sent on out. It returns errUnsequenced for a row not in
// the log yet, and stops when ctx ends.
func (e *RetentionEngine) readPartition(ctx context.Context, snap, ident, org string, mk func(k int) Archive,
	out chan<- *archivedPart) error {
	if !snapshotID.MatchString(snap) {
		return fmt.Errorf("models: %q is not a snapshot id", snap)
	}
	w, err := newArchiveWriter()
	if err != nil {
		return err
	}
	w.jsonb = true // every line comes from audit_log's rows
	return WithPgx(ctx, e.db, func(conn *pgx.Conn) error {
		return pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET TRANSACTION SNAPSHOT '`+snap+`'`); err != nil {
				return fmt.Errorf("import the snapshot: %w", err)
			}
			// JIT compiled the cursor's expressions for 50 – 300 ms per partition, more than
			// it saved on rows that are only read and sent.
			for _, set := range []string{`enable_hashjoin = off`, `enable_mergejoin = off`, `enable_sort = off`, `jit = off`} {
				if _, err := tx.Exec(ctx, `SET LOCAL `+set); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, `DECLARE retention_rows NO SCROLL CURSOR FOR SELECT `+archiveColumnsSelect+`, l.leaf_index
				FROM `+ident+` e LEFT JOIN audit_leaf l ON l.organization_id = $1 AND l.audit_log_id = e.id ORDER BY e.id`, org); err != nil {
				return fmt.Errorf("open the partition's rows: %w", err)
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
			for k := 0; ; k++ {
				w.reset()
				pt := &archivedPart{a: mk(k)}
				pipe := startArchivePipe(w)
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
					pt.ids, pt.times = append(pt.ids, l.ID), append(pt.times, l.Timestamp)
					pt.leaves, pt.hashes = append(pt.leaves, l.LeafIndex), append(pt.hashes, l.Hash)
					pipe.add(&l)
					return nil
				})
				// The writer is waited for on every path: no goroutine outlives the part.
				if werr := pipe.wait(); err == nil {
					err = werr
				}
				if err != nil {
					return err
				}
				if w.count == 0 {
					return nil
				}
				content, meta, err := finishArchive(w, &pt.a)
				if err != nil {
					return err
				}
				pt.content, pt.meta = bytes.Clone(content), meta
				select {
				case out <- pt:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		})
	})
}
