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
// SHARE lock on the partition (waiting truncateLockTimeout at most), before its snapshot: no
// row can arrive in or leave the partition until it commits, while readers go on. It rules
// out a partition with another organization's rows by index, has readPartition read the rows
// with their Merkle log entries on a second connection in the same snapshot (checking each
// against where), and writes their archived_events rows and one archive per PartSize as they
// come, exactly as the part by part path would. Then it empties the partition with TRUNCATE
// (no row-by-row delete, no dead rows, no per-row WAL); org's cache version, which
// TRUNCATE's missing row triggers would not bump, is bumped after the commit. When the
// exclusive lock TRUNCATE needs is not granted within truncateLockTimeout, the rows are
// deleted instead, in the same transaction.
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
		// Before any query: the snapshot is taken after the lock is granted. The lock is not
		// waited for long: a request queued behind a writer of the month would hold off every
		// later writer too; past the timeout the month is archived part by part.
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+truncateLockTimeout+`'`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `LOCK TABLE `+ident+` IN SHARE MODE`); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
				return errNotWholePartition
			}
			return err
		}
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout TO DEFAULT`); err != nil {
			return err
		}
		// Another organization's row, or none of org's, rules the path out at once, through the
		// partition's (organization_id, …) index. Whether every row of org's is one this
		// archival moves, the reader checks on each row it reads anyway (a count here was a
		// whole scan of the partition more).
		var others, mine bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+ident+` WHERE organization_id < $1 OR organization_id > $1),
			EXISTS (SELECT 1 FROM `+ident+` WHERE organization_id = $1)`, org).Scan(&others, &mine); err != nil {
			return fmt.Errorf("look at the partition: %w", err)
		}
		if others || !mine {
			return errNotWholePartition
		}
		var part int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(part), 0) FROM archive_storage
			WHERE organization_id = $1 AND policy = $2 AND month = $3`, org, p.Name, m).Scan(&part); err != nil {
			return err
		}
		// The rows are read, encoded and compressed on a second connection whose transaction
		// imports this one's snapshot (taken after the lock was granted, so it sees exactly
		// the rows the lock froze), while this connection writes what came before: one
		// connection did the reading and the writing one after the other, and on two cores
		// archival took their sum.
		var snap string
		if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&snap); err != nil {
			return fmt.Errorf("export the snapshot: %w", err)
		}
		rctx, cancel := context.WithCancel(ctx)
		parts := make(chan *archivedPart, 4)
		readErr := make(chan error, 1)
		go func() {
			defer close(parts)
			readErr <- e.readPartition(rctx, snap, ident, org, where, whereArgs, func(k int) Archive {
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
			if len(pt.ids) > 0 { // a chunk's records, ahead of its archive (archived_events has no foreign key)
				if err := copyArchivedRows(ctx, tx, &pt.a, pt.ids, pt.times, pt.leaves, pt.hashes); err != nil {
					return err
				}
				n += int64(len(pt.ids))
			}
			if pt.content != nil {
				if err := insertArchiveRow(ctx, tx, &pt.a, pt.meta, pt.content, runID, e.Now().UTC()); err != nil {
					return fmt.Errorf("insert archive %s: %w", pt.a.ID, err)
				}
				archives = append(archives, pt.a.ID)
			}
		}
		if err := <-readErr; err != nil {
			return err
		}
		// The reader read every row of the partition and failed on any it would not move.
		return e.emptyPartition(ctx, tx, ident, n)
	})
	switch {
	case errors.Is(err, errNotWholePartition), errors.Is(err, errUnsequenced):
		return 0, nil, false, nil
	case err != nil:
		return 0, nil, false, fmt.Errorf("models: archive %s %s %s: %w", org, p.Name, m.Format("2006-01"), err)
	}
	return n, archives, true, nil
}

// emptyPartition removes the total rows of partition ident (quoted), all of one organization's, in tx:
// by TRUNCATE when its exclusive lock comes within truncateLockTimeout, otherwise by DELETE
// checked by count. Neither fires audit_log's cache trigger (it is the parent's statement
// trigger): the organization's cache version is bumped after the commit (withPurposeSnapshot).
func (e *RetentionEngine) emptyPartition(ctx context.Context, tx pgx.Tx, ident string, total int64) error {
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

// archivedPart is what readPartition hands the writer: a chunk of an archive's events for
// their archived_events rows (ids, times, leaves, hashes), or the finished archive (content
// and metadata), never both.
type archivedPart struct {
	a       Archive
	meta    string
	content []byte
	ids     []int64
	times   []time.Time
	leaves  []int64
	hashes  []string
}

// archiveRecordChunk is how many rows readPartition reads at a time, and so how many
// archived_events rows the writer receives at once.
const archiveRecordChunk = 5_000

// snapshotID is the shape of a pg_export_snapshot() id, checked before it is written into SET
// TRANSACTION SNAPSHOT (which takes no parameter).
var snapshotID = regexp.MustCompile(`^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$`)

// readPartition reads the rows of partition ident (quoted), all of org's, with their Merkle
// log entries, in a read-only transaction of its own that imports snapshot snap. It reads
// them through a cursor in the heap's order, which is about id order (rows are appended as
// their ids are drawn), so parts cover about disjoint id ranges; each archive's range is
// taken from its content all the same. Each row's log entry comes by the (organization,
// event id) index, so the cost follows the partition, not the organization's whole log (a
// hash join read every log entry of the organization per month); reading by the primary
// key in strict id order cost a fifth more than the heap scan. Every e.PartSize rows
// become one archive (the k-th, from 0, described by mk(k)), sent on out after its chunks'
// records. It returns errNotWholePartition for a row where (the month's condition, over
// alias e, with whereArgs) does not select, errUnsequenced for a row not in the log yet,
// and stops when ctx ends.
func (e *RetentionEngine) readPartition(ctx context.Context, snap, ident, org, where string, whereArgs []any,
	mk func(k int) Archive, out chan<- *archivedPart) error {
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
			// Each row's log entry by index, never a hash join (which read every log entry of
			// the organization per partition).
			for _, set := range []string{`enable_hashjoin = off`, `enable_mergejoin = off`} {
				if _, err := tx.Exec(ctx, `SET LOCAL `+set); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, pgxSQL(`DECLARE retention_rows NO SCROLL CURSOR FOR SELECT `+archiveColumnsSelect+`,
				l.leaf_index, coalesce(`+where+`, false)
				FROM `+ident+` e LEFT JOIN audit_leaf l ON l.organization_id = ? AND l.audit_log_id = e.id`),
				append(append([]any{}, whereArgs...), org)...); err != nil {
				return fmt.Errorf("open the partition's rows: %w", err)
			}
			var l ArchiveLine
			var hash, digest, sig *string
			var details, commitments []byte
			var leaf *int64
			var due bool
			dest := []any{&l.ID, &l.Timestamp, &l.TTL, &l.PrincipalID, &l.Action, &l.TargetResourceType,
				&l.TargetResourceID, &l.Status, &l.OutcomeDescription, &hash, &l.HashAlgorithm, &l.EventVersion,
				&l.CorrelationID, &l.DataClassification, &l.RetentionPolicy, &l.ProcessingLatency, &l.ArchivedAt,
				&details, &l.SubjectSalt, &digest, &sig, &commitments, &leaf, &due}
			// Rows come in chunks; each chunk's archived_events rows go to the writer at once,
			// so that it records them while the rest of the part is read, and the part's
			// archive follows when the part is full or the rows end.
			k, inPart := 0, 0
			a := mk(k)
			w.reset()
			pipe := startArchivePipe(w)
			defer func() { pipe.wait() }() // any path out waits for the encoder (a second wait is harmless)
			send := func(pt *archivedPart) error {
				select {
				case out <- pt:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			for {
				want := min(archiveRecordChunk, e.PartSize-inPart)
				rec := &archivedPart{a: a}
				rows, _ := tx.Query(ctx, fmt.Sprintf(`FETCH %d FROM retention_rows`, want))
				tag, err := pgx.ForEachRow(rows, dest, func() error {
					if !due {
						return errNotWholePartition // a row of org's this archival does not move
					}
					if leaf == nil {
						return errUnsequenced // the part by part path leaves such rows for a later run
					}
					l.LeafIndex = *leaf
					l.OrganizationID = org
					l.Timestamp = l.Timestamp.UTC()
					l.Hash, l.SubjectDigest, l.Signature = derefString(hash), derefString(digest), derefString(sig)
					l.Details = json.RawMessage(details)
					l.FieldCommitments = json.RawMessage(commitments)
					rec.ids, rec.times = append(rec.ids, l.ID), append(rec.times, l.Timestamp)
					rec.leaves, rec.hashes = append(rec.leaves, l.LeafIndex), append(rec.hashes, l.Hash)
					pipe.add(&l)
					return nil
				})
				if err != nil {
					return err
				}
				got := int(tag.RowsAffected())
				if got > 0 {
					if err := send(rec); err != nil {
						return err
					}
				}
				inPart += got
				last := got < want
				if inPart == e.PartSize || last && inPart > 0 {
					if err := pipe.wait(); err != nil {
						return err
					}
					content, meta, err := finishArchive(w, &a)
					if err != nil {
						return err
					}
					if err := send(&archivedPart{a: a, meta: meta, content: bytes.Clone(content)}); err != nil {
						return err
					}
					k, inPart = k+1, 0
					a = mk(k)
					w.reset()
					pipe = startArchivePipe(w)
				}
				if last {
					return pipe.wait()
				}
			}
		})
	})
}
