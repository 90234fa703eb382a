package erasure

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"auditdb/models"
)

var (
	errEOF    = io.EOF
	errNoRows = sql.ErrNoRows
)

// eraseArchives rewrites each of the organization's archives that holds events of the
// subject, one archive per transaction: deleted events leave the archive (and
// archived_events) for removed_events, kept ones are rewritten pseudonymized, the archive's
// checksums, sizes and ranges are recomputed and the rewrite is recorded in
// archive_rewrites. An archive left empty is marked deleted, as retention does.
func (r *run) eraseArchives(ctx context.Context) error {
	var ids []string
	if err := r.e.db.WithContext(ctx).Raw(`SELECT id FROM archive_storage WHERE organization_id = ? AND deleted_at IS NULL
		AND content IS NOT NULL ORDER BY month, part`, r.org).Scan(&ids).Error; err != nil {
		return fmt.Errorf("erasure: archives: %w", err)
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		var inClear int64
		c, err := r.commitBatch(ctx, "archive "+id, func(tx pgx.Tx) (counts, error) {
			var c counts
			var err error
			c, inClear, err = r.rewriteArchive(ctx, tx, id)
			return c, err
		})
		if err != nil {
			return err
		}
		r.res.LeftInClear += inClear
		if c == (counts{}) {
			continue
		}
		r.applied(c)
		r.e.afterBatch()
		r.report("archives")
	}
	return nil
}

func (r *run) rewriteArchive(ctx context.Context, tx pgx.Tx, id string) (c counts, inClear int64, err error) {
	var meta models.Archive
	var content []byte
	err = tx.QueryRow(ctx, `SELECT id, organization_id, month, part, event_count, original_size, compressed_size,
		sha256_original, sha256_compressed, content FROM archive_storage
		WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL AND content IS NOT NULL FOR UPDATE`, id, r.org).Scan(
		&meta.ID, &meta.OrganizationID, &meta.Month, &meta.Part, &meta.EventCount, &meta.OriginalSize,
		&meta.CompressedSize, &meta.SHA256Original, &meta.SHA256Compressed, &content)
	if err == pgx.ErrNoRows {
		return c, 0, nil // deleted meanwhile
	}
	if err != nil {
		return c, 0, err
	}
	// holds block the erasure of the subject's lines; mentionHolds (every op) keep the
	// lines they cover out of the free-text redaction.
	var holds, mentionHolds []models.LegalHold
	if r.op == opErase || r.mentionArchives {
		if _, err := tx.Exec(ctx, models.LockHoldsSQL, r.org); err != nil {
			return c, 0, err
		}
		if mentionHolds, err = r.e.activeHolds(ctx, tx, r.org); err != nil {
			return c, 0, err
		}
		if r.op == opErase {
			holds = mentionHolds
		}
	}
	rd, err := models.OpenArchiveContent(meta, content)
	if err != nil {
		return c, 0, err
	}
	defer rd.Close()
	b, err := models.NewArchiveBuilder()
	if err != nil {
		return c, 0, err
	}
	var ids, leaves []int64
	var times []time.Time
	var hashes []string
	var sp span
	// keep adds a line the archive keeps, its free text naming the subject redacted first.
	keep := func(l *models.ArchiveLine) error {
		if r.mentionArchives {
			ch, err := r.redactLineMentions(l, mentionHolds)
			if err != nil {
				return err
			}
			if ch {
				c.mentions++
				sp.add(l.Timestamp)
			}
		}
		return b.Add(l)
	}
	err = readAll(rd, func(l *models.ArchiveLine) error {
		if !r.s.matches(l) {
			return keep(l)
		}
		sp.add(l.Timestamp)
		for _, h := range holds {
			if covers(h, l) {
				hs, err := r.e.Holds(ctx, r.org, r.s)
				if err != nil {
					return err
				}
				return holdConflict(hs)
			}
		}
		if r.decide(l.HashAlgorithm, l.Action, l.TargetResourceType, l.TargetResourceID) == actDelete {
			ids, times, leaves, hashes = append(ids, l.ID), append(times, l.Timestamp), append(leaves, l.LeafIndex), append(hashes, l.Hash)
			return nil
		}
		f := fields{HashAlgorithm: l.HashAlgorithm, PrincipalID: l.PrincipalID, TargetResourceType: l.TargetResourceType,
			TargetResourceID: l.TargetResourceID, OutcomeDescription: l.OutcomeDescription, Details: l.Details,
			Commitments: lineCommitments(l)}
		if err := r.transform(&f, l.Hash); err != nil {
			return err
		}
		if f.leftInClear {
			inClear++
		}
		if f.changed {
			l.PrincipalID, l.TargetResourceID, l.Details = f.PrincipalID, f.TargetResourceID, json.RawMessage(f.Details)
			if f.clearSalt {
				l.SubjectSalt = nil
			}
			setLineCommitments(l, f.Commitments)
			c.archivedPseudonymized++
		}
		return keep(l)
	})
	if err != nil {
		return c, 0, err
	}
	c.archivedDeleted = int64(len(ids))
	if c.archivedDeleted == 0 && c.archivedPseudonymized == 0 && c.mentions == 0 {
		return counts{}, inClear, nil
	}
	now := r.e.Now().UTC()
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM archived_events WHERE organization_id = $1 AND audit_log_id = ANY($2)`, r.org, ids); err != nil {
			return c, 0, err
		}
		if err := r.recordRemoved(ctx, tx, ids, times, leaves, hashes); err != nil {
			return c, 0, err
		}
	}
	var newSum *string
	note, _ := json.Marshal(map[string]any{"lastRewrite": map[string]any{"operation": string(r.op), "requestId": r.requestID,
		"at": now.Format(time.RFC3339), "removed": c.archivedDeleted, "pseudonymized": c.archivedPseudonymized,
		"mentionsRedacted": c.mentions}})
	if b.Count() == 0 {
		_, err = tx.Exec(ctx, `UPDATE archive_storage SET content = NULL, event_count = 0, deleted_at = $2,
			metadata = metadata || $3::jsonb WHERE id = $1`, id, now, string(note))
	} else {
		a := models.Archive{}
		newContent, ferr := b.Finish(&a)
		if ferr != nil {
			return c, 0, ferr
		}
		newSum = &a.SHA256Compressed
		_, err = tx.Exec(ctx, `UPDATE archive_storage SET content = $2, event_count = $3, first_event_at = $4, last_event_at = $5,
			min_event_id = $6, max_event_id = $7, min_leaf_index = $8, max_leaf_index = $9, original_size = $10,
			compressed_size = $11, sha256_original = $12, sha256_compressed = $13, metadata = metadata || $14::jsonb WHERE id = $1`,
			id, newContent, a.EventCount, a.FirstEventAt, a.LastEventAt, a.MinEventID, a.MaxEventID, a.MinLeafIndex,
			a.MaxLeafIndex, a.OriginalSize, a.CompressedSize, a.SHA256Original, a.SHA256Compressed, string(note))
	}
	if err != nil {
		return c, 0, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO archive_rewrites (organization_id, archive_id, request_id, operation, removed, pseudonymized,
		old_sha256_compressed, new_sha256_compressed, rewritten_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		r.org, id, r.requestID, string(r.op), c.archivedDeleted, c.archivedPseudonymized, meta.SHA256Compressed, newSum, now)
	if err != nil {
		return c, 0, err
	}
	if err := r.withdrawReports(ctx, tx, sp); err != nil {
		return c, 0, err
	}
	c.archivesRewritten = 1
	return c, inClear, nil
}
