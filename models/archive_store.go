package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Self-audit action of the archive browser.
const ActionArchiveRetrieve = "retention.archive.retrieve"

// ArchiveAlertSource is the source of the CRITICAL alert a corrupt archive raises; the
// alert's correlation id is the archive's id.
const ArchiveAlertSource = "archive-integrity"

// ArchiveStore lists an organization's archives and hands out their content only after
// both checksums and the event count have been checked. A mismatch raises a CRITICAL
// integrity alert (one while it stays unresolved) and is returned as an ErrArchiveCorrupt;
// every successful retrieval is counted and self-audited.
type ArchiveStore struct {
	db     *gorm.DB
	trail  *AuditTrail
	alerts *AlertStore
	now    func() time.Time
}

// NewArchiveStore returns the store; trail records retrievals, alerts receives the
// integrity alerts.
func NewArchiveStore(db *gorm.DB, trail *AuditTrail, alerts *AlertStore) *ArchiveStore {
	return &ArchiveStore{db: db, trail: trail, alerts: alerts, now: time.Now}
}

// List returns org's archives, newest month first, deleted ones included (their content
// is gone; their metadata stays as the record of what was there).
func (s *ArchiveStore) List(ctx context.Context, org string) ([]Archive, error) {
	var out []Archive
	err := s.db.WithContext(ctx).Raw(`SELECT `+archiveColumns+` FROM archive_storage
		WHERE organization_id = ? AND encoding IS NOT NULL ORDER BY month DESC, policy, part`, org).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: archives: %w", err)
	}
	return out, nil
}

// Get returns the metadata of archive id of org; KindNotFound for another organization's
// archive or an unknown id.
func (s *ArchiveStore) Get(ctx context.Context, org, id string) (*Archive, error) {
	var a Archive
	err := s.db.WithContext(ctx).Raw(`SELECT `+archiveColumns+` FROM archive_storage
		WHERE id = ? AND organization_id = ? AND encoding IS NOT NULL`, id, org).Scan(&a).Error
	if err != nil {
		return nil, fmt.Errorf("models: archive %s: %w", id, err)
	}
	if a.ID == "" {
		return nil, NotFound("archive")
	}
	return &a, nil
}

// VerifiedArchive is an archive whose content passed its checks: both SHA-256 sums, its
// size and its event count.
type VerifiedArchive struct {
	Meta    Archive
	content []byte
}

// Compressed returns the stored (compressed) bytes.
func (v *VerifiedArchive) Compressed() []byte { return v.content }

// Lines returns a reader of the archive's lines.
func (v *VerifiedArchive) Lines() (*ArchiveReader, error) {
	return OpenArchiveContent(v.Meta, v.content)
}

// Load reads archive id of org and checks its content in full before returning it. A
// deleted archive or another organization's is KindNotFound. A mismatch raises the CRITICAL
// alert (unless one for this archive is still unresolved) and returns an error wrapping
// ErrArchiveCorrupt that says what did not match; nothing of the content is returned.
func (s *ArchiveStore) Load(ctx context.Context, org, id string) (*VerifiedArchive, error) {
	meta, err := s.Get(ctx, org, id)
	if err != nil {
		return nil, err
	}
	if meta.DeletedAt != nil {
		return nil, NotFound("archive")
	}
	var content []byte
	// Read under the same conditions as the metadata: a deletion racing this read is a 404,
	// not a corrupt archive.
	if err := s.db.WithContext(ctx).Raw(`SELECT content FROM archive_storage WHERE id = ? AND organization_id = ?
		AND deleted_at IS NULL`, id, org).Row().Scan(&content); errors.Is(err, sql.ErrNoRows) {
		return nil, NotFound("archive")
	} else if err != nil {
		return nil, fmt.Errorf("models: archive %s: %w", id, err)
	}
	err = verifyContent(*meta, content)
	if err == nil {
		return &VerifiedArchive{Meta: *meta, content: content}, nil
	}
	if aerr := s.raiseCorrupt(context.WithoutCancel(ctx), meta, err); aerr != nil {
		return nil, errors.Join(err, aerr)
	}
	return nil, err
}

func verifyContent(meta Archive, content []byte) error {
	r, err := OpenArchiveContent(meta, content)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Verify()
}

// raiseCorrupt raises the CRITICAL integrity alert of a corrupt archive unless one for the
// same archive is still unresolved. The check and the insert run under a transaction-scoped
// advisory lock of the archive, so parallel reads raise one alert.
func (s *ArchiveStore) raiseCorrupt(ctx context.Context, meta *Archive, cause error) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended(?, 13))`, meta.OrganizationID+"\n"+meta.ID).Error; err != nil {
			return fmt.Errorf("models: lock archive alert: %w", err)
		}
		var open int64
		if err := tx.Raw(`SELECT count(*) FROM alerts WHERE organization_id = ? AND source = ? AND correlation_id = ?
			AND NOT resolved`, meta.OrganizationID, ArchiveAlertSource, meta.ID).Scan(&open).Error; err != nil {
			return fmt.Errorf("models: archive alerts: %w", err)
		}
		if open > 0 {
			return nil
		}
		problem := ArchiveProblem(cause)
		_, err := s.alerts.raiseTx(tx, NewAlert{Org: meta.OrganizationID, Severity: SeverityCritical, Type: AlertCompliance,
			Title:       Truncate("Archive "+meta.ID+" failed its integrity check", 500),
			Description: problem + "\nNothing of it was returned; its events cannot be read until the archive is restored.",
			Source:      ArchiveAlertSource,
			Metadata: map[string]any{"archiveId": meta.ID, "policy": meta.Policy, "month": meta.Month.Format("2006-01"),
				"part": meta.Part, "problem": problem}}, meta.ID)
		return err
	})
}

// RecordRetrieval counts one retrieval of archive id of org (its page, a page of its
// events, a download: what says which) and self-audits it, in one transaction.
func (s *ArchiveStore) RecordRetrieval(ctx context.Context, org, id, what string, by Actor) error {
	what = strings.TrimSpace(what)
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var count int64
		err := tx.Raw(`UPDATE archive_storage SET retrieved_count = retrieved_count + 1, last_retrieved_at = ?
			WHERE id = ? AND organization_id = ? RETURNING retrieved_count`, s.now().UTC(), id, org).Scan(&count).Error
		if err != nil {
			return fmt.Errorf("models: record archive retrieval: %w", err)
		}
		if count == 0 {
			return NotFound("archive")
		}
		return s.trail.RecordTx(ctx, tx, AuditEntry{Org: org, Action: ActionArchiveRetrieve, Actor: by,
			TargetType: "archive", TargetID: id, Outcome: "archive " + id + " retrieved: " + what,
			Details: map[string]any{"archiveId": id, "what": what, "retrievedCount": count}})
	})
}

// ArchiveFilterRange returns f with its time range widened to a's events where the filter
// left it open (zero).
func ArchiveFilterRange(f EventFilter, a Archive) EventFilter {
	if f.From.IsZero() {
		f.From = a.FirstEventAt.UTC()
	}
	if f.To.IsZero() {
		f.To = a.LastEventAt.UTC().Add(time.Microsecond)
	}
	return f
}

// ArchivePage is one page of an archive's events in archive order (ascending id).
type ArchivePage struct {
	Events []Event
	// Next is the id to pass as after for the next page; 0 when this is the last.
	Next int64
	// Scanned is how many lines were decoded.
	Scanned int64
}

// Page returns up to limit events of v matching f with an id above after. The content was
// checked by Load; a line that does not decode is still an ErrArchiveCorrupt.
func (v *VerifiedArchive) Page(f EventFilter, after int64, limit int) (ArchivePage, error) {
	var p ArchivePage
	r, err := v.Lines()
	if err != nil {
		return p, err
	}
	defer r.Close()
	for {
		l, err := r.Next()
		if err != nil {
			if err == io.EOF {
				return p, nil
			}
			return p, err
		}
		p.Scanned++
		if l.ID <= after {
			continue
		}
		ev := l.Event()
		if !f.Matches(ev) {
			continue
		}
		if len(p.Events) == limit {
			p.Next = p.Events[len(p.Events)-1].ID
			return p, nil
		}
		p.Events = append(p.Events, *ev)
	}
}

// ParseArchiveAfter reads an archive page cursor (an event id); 0 for none.
func ParseArchiveAfter(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, Invalid("after", "is not a valid page cursor")
	}
	return n, nil
}
