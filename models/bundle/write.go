package bundle

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zip"
	"golang.org/x/mod/sumdb/note"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/merkle"
)

// Summary reports one bundle.
type Summary struct {
	Events           int64 // event lines (live and archived)
	Archived         int64 // of which came from archives
	Removed          int64 // manifest entries of removed events (no line)
	NotSequenced     int64 // events of the filter left out: not yet in the checkpoint
	CheckpointSize   int64
	CheckpointNumber int64
}

// batchSize is how many log entries get their manifest lines and proofs at once: their
// proof nodes are read together, so neighbours share the reads.
const batchSize = 2048

// maxEvents is MaxEvents; a test lowers it.
var maxEvents int64 = MaxEvents

// Validate refuses a filter a bundle cannot be made for: an invalid one, or a range over
// MaxRange.
func Validate(f models.EventFilter) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if f.To.Sub(f.From) > MaxRange {
		return models.Invalid("to", "an evidence bundle covers at most one year: narrow the range")
	}
	return nil
}

// Check refuses, before anything is written, a filter that Write would refuse: an invalid
// or too long range, or more than MaxEvents events. Write checks again in its own snapshot.
func Check(ctx context.Context, db *gorm.DB, org string, f models.EventFilter) error {
	if err := Validate(f); err != nil {
		return err
	}
	return inSnapshot(ctx, db, func(tx pgx.Tx) error { return checkCount(ctx, tx, org, f) })
}

func inSnapshot(ctx context.Context, db *gorm.DB, fn func(pgx.Tx) error) error {
	return models.WithPgx(ctx, db, func(conn *pgx.Conn) error {
		return pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
	})
}

// checkCount refuses more than MaxEvents events in the filter's range: matching live
// events, and every archived and removed event of the range (an upper bound: their other
// fields are not filtered in SQL).
func checkCount(ctx context.Context, tx pgx.Tx, org string, f models.EventFilter) error {
	where, args := models.FilterSQL(org, f)
	var n int64
	err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM audit_log WHERE `+where+`)
		+ (SELECT count(*) FROM archived_events WHERE organization_id = $1 AND event_timestamp >= $2 AND event_timestamp < $3)
		+ (SELECT count(*) FROM removed_events WHERE organization_id = $1 AND event_timestamp >= $2 AND event_timestamp < $3)`,
		args...).Scan(&n)
	if err != nil {
		return fmt.Errorf("bundle: count: %w", err)
	}
	if n > maxEvents {
		return models.TooLarge("to", fmt.Sprintf("the filter selects %d events; an evidence bundle holds at most %d: narrow the range or the filter",
			n, maxEvents))
	}
	return nil
}

// Write writes the evidence bundle of org's events matching f to w as one .zip, streaming:
// memory stays flat in the number of events (the manifest and proofs wait in temporary
// files until the events are written). Everything is read in one snapshot, against org's
// newest checkpoint; events it does not cover yet are left out and counted. It returns a
// KindInvalid or KindTooLarge error, before writing anything, for a filter Check refuses,
// and KindConflict while org has no checkpoint. sealer holds the server key: a bundle
// carries erased and pseudonymized fields that no one can check offline, vouched for by the
// server, so Write refuses (KindConflict, naming the event and field) an event whose
// redaction MAC does not verify rather than vouch for a forged redaction. (An event whose
// commitments cannot be read at all goes in: the bundle's checker reports it.)
func Write(ctx context.Context, db *gorm.DB, lg *merkle.Log, sealer *models.Sealer, org string, f models.EventFilter, w io.Writer) (Summary, error) {
	if err := Validate(f); err != nil {
		return Summary{}, err
	}
	if org == "" {
		return Summary{}, models.NotFound("organization")
	}
	if sealer == nil {
		return Summary{}, errors.New("bundle: no sealer to check the events' redactions")
	}
	var sum Summary
	err := inSnapshot(ctx, db, func(tx pgx.Tx) error {
		bw := &writer{ctx: ctx, tx: tx, org: org, f: f, key: lg.Key().VerifierKey(), signer: lg.Key(), sealer: sealer, algorithms: map[string]bool{}}
		err := bw.run(w)
		sum = bw.sum
		return err
	})
	return sum, err
}

type writer struct {
	ctx        context.Context
	tx         pgx.Tx
	org        string
	f          models.EventFilter
	key        string
	signer     note.Signer
	sealer     *models.Sealer
	cp         merkle.Checkpoint
	sum        Summary
	zw         *zip.Writer
	files      []InfoFile
	manifest   *spool
	proofs     *spool
	pending    []pend
	algorithms map[string]bool
}

// pend is a log entry waiting for its manifest line and proof.
type pend struct {
	id        int64
	leaf      int64
	algorithm string
	state     string
	archive   string
	removed   *removedRow
}

type removedRow struct {
	reason, policy string
	runID          *int64
	ts             time.Time
}

func (b *writer) run(w io.Writer) error {
	err := b.tx.QueryRow(b.ctx, `SELECT organization_id, number, tree_size, root_hash, note, created_at
		FROM audit_checkpoint WHERE organization_id = $1 ORDER BY number DESC LIMIT 1`, b.org).
		Scan(&b.cp.OrganizationID, &b.cp.Number, &b.cp.TreeSize, &b.cp.RootHash, &b.cp.Note, &b.cp.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return models.Conflict("checkpoint", "the organization has no signed checkpoint yet; retry in a few seconds")
	}
	if err != nil {
		return fmt.Errorf("bundle: checkpoint: %w", err)
	}
	b.sum.CheckpointSize, b.sum.CheckpointNumber = b.cp.TreeSize, b.cp.Number
	if err := checkCount(b.ctx, b.tx, b.org, b.f); err != nil {
		return err
	}
	if b.manifest, err = newSpool(); err != nil {
		return err
	}
	defer b.manifest.close()
	if b.proofs, err = newSpool(); err != nil {
		return err
	}
	defer b.proofs.close()

	b.zw = zip.NewWriter(w)
	if err := b.small(FileReadme, []byte(readme(b.org, b.cp))); err != nil {
		return err
	}
	if err := b.small(FileCheckpoint, []byte(b.cp.Note)); err != nil {
		return err
	}
	if err := b.small(FileKey, []byte(b.key+"\n")); err != nil {
		return err
	}
	events, err := b.create(FileEvents)
	if err != nil {
		return err
	}
	if err := b.live(events); err != nil {
		return err
	}
	if err := b.archived(events); err != nil {
		return err
	}
	if err := b.removed(); err != nil {
		return err
	}
	if err := b.flush(); err != nil {
		return err
	}
	events.done()
	for _, s := range []struct {
		name string
		sp   *spool
	}{{FileManifest, b.manifest}, {FileProofs, b.proofs}} {
		out, err := b.create(s.name)
		if err != nil {
			return err
		}
		if err := s.sp.copyTo(out); err != nil {
			return err
		}
		out.done()
	}
	info, err := json.MarshalIndent(b.info(), "", "  ")
	if err != nil {
		return err
	}
	info = append(info, '\n')
	if err := b.small(FileInfo, info); err != nil {
		return err
	}
	// The statement: the server's signed claim that the files whose digests bundle.json
	// lists are all of the filter's events at the checkpoint (docs/integrity.md §8).
	signed, err := note.Sign(&note.Note{Text: StatementOrigin(b.org) + "\n" + string(info)}, b.signer)
	if err != nil {
		return fmt.Errorf("bundle: sign the statement: %w", err)
	}
	if err := b.small(FileStatement, signed); err != nil {
		return err
	}
	return b.zw.Close()
}

func (b *writer) info() Info {
	algs := make([]string, 0, len(b.algorithms))
	for a := range b.algorithms {
		algs = append(algs, a)
	}
	slices.Sort(algs)
	f := b.f
	return Info{Format: Format, OrganizationID: b.org, GeneratedAt: time.Now().UTC(),
		Filter: Filter{From: f.From.UTC(), To: f.To.UTC(), Action: f.Action, Status: f.Status, PrincipalID: f.PrincipalID,
			ResourceType: f.ResourceType, ResourceID: f.ResourceID, Classification: f.Classification,
			CorrelationID: f.CorrelationID, Query: f.Query.String()},
		Checkpoint: InfoCP{Number: b.cp.Number, TreeSize: b.cp.TreeSize, RootHash: hex.EncodeToString(b.cp.RootHash)},
		Events:     b.sum.Events, Archived: b.sum.Archived, Removed: b.sum.Removed, NotSequenced: b.sum.NotSequenced,
		HashAlgorithms: algs, Files: b.files}
}

// entry is one file being written into the zip, hashed and counted on the way.
type entry struct {
	b    *writer
	name string
	w    io.Writer
	h    hash.Hash
	n    int64
}

func (e *entry) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	e.h.Write(p[:n])
	e.n += int64(n)
	return n, err
}

// done records the file for bundle.json.
func (e *entry) done() {
	e.b.files = append(e.b.files, InfoFile{Name: e.name, Size: e.n, SHA256: hex.EncodeToString(e.h.Sum(nil))})
}

func (b *writer) create(name string) (*entry, error) {
	w, err := b.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: b.cp.CreatedAt.UTC()})
	if err != nil {
		return nil, fmt.Errorf("bundle: %s: %w", name, err)
	}
	return &entry{b: b, name: name, w: w, h: sha256.New()}, nil
}

func (b *writer) small(name string, content []byte) error {
	e, err := b.create(name)
	if err != nil {
		return err
	}
	if _, err := e.Write(content); err != nil {
		return fmt.Errorf("bundle: %s: %w", name, err)
	}
	if name != FileInfo && name != FileStatement {
		e.done()
	}
	return nil
}

// eventColumns are the columns of an event line, in models.ArchiveLine's order.
const eventColumns = `e.id, e."timestamp", e.ttl, e.principal_id, e.organization_id, e.action, e.target_resource_type,
	e.target_resource_id, e.status, e.outcome_description, e.hash, e.hash_algorithm, e.event_version, e.correlation_id,
	e.data_classification, e.retention_policy, e.processing_latency, e.archived_at, e.details, e.subject_salt,
	e.subject_digest, e.signature, e.field_commitments`

// live writes the lines of the matching events still in audit_log, in log order, through
// a cursor: between fetches the connection is free to read their proofs.
func (b *writer) live(events io.Writer) error {
	where, args := models.FilterSQL(b.org, b.f)
	_, err := b.tx.Exec(b.ctx, `DECLARE bundle_live NO SCROLL CURSOR FOR
		SELECT `+eventColumns+`, l.leaf_index FROM (SELECT * FROM audit_log WHERE `+where+`) e
		LEFT JOIN audit_leaf l ON l.organization_id = $1 AND l.audit_log_id = e.id
		ORDER BY l.leaf_index NULLS LAST, e.id`, args...)
	if err != nil {
		return fmt.Errorf("bundle: events: %w", err)
	}
	var line models.ArchiveLine
	var leaf *int64
	var digest *string // NULL for sha256-jcs-v2 events
	targets := []any{&line.ID, &line.Timestamp, &line.TTL, &line.PrincipalID, &line.OrganizationID, &line.Action,
		&line.TargetResourceType, &line.TargetResourceID, &line.Status, &line.OutcomeDescription, &line.Hash,
		&line.HashAlgorithm, &line.EventVersion, &line.CorrelationID, &line.DataClassification, &line.RetentionPolicy,
		&line.ProcessingLatency, &line.ArchivedAt, &line.Details, &line.SubjectSalt, &digest, &line.Signature,
		&line.FieldCommitments, &leaf}
	enc := json.NewEncoder(events) // escapes U+2028 and U+2029 too, which some line splitters break at
	for {
		rows, _ := b.tx.Query(b.ctx, `FETCH 1024 FROM bundle_live`)
		n := 0
		_, err := pgx.ForEachRow(rows, targets, func() error {
			n++
			defer func() { line, leaf, digest = models.ArchiveLine{}, nil, nil }() // fresh pointer fields for the next row
			if digest != nil {
				line.SubjectDigest = *digest
			}
			if leaf == nil || *leaf >= b.cp.TreeSize {
				b.sum.NotSequenced++
				return nil
			}
			line.LeafIndex = *leaf
			line.Timestamp = line.Timestamp.UTC()
			if err := b.sealer.CheckRedactions(line.Event()); models.KindOf(err) == models.KindConflict {
				return fmt.Errorf("bundle: %w", err)
			}
			if err := enc.Encode(&line); err != nil {
				return fmt.Errorf("bundle: event %d: %w", line.ID, err)
			}
			b.sum.Events++
			b.pending = append(b.pending, pend{id: line.ID, leaf: line.LeafIndex, algorithm: line.HashAlgorithm, state: StateLive})
			return nil
		})
		if err != nil {
			return fmt.Errorf("bundle: events: %w", err)
		}
		if err := b.flushFull(); err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	_, err = b.tx.Exec(b.ctx, `CLOSE bundle_live`)
	return err
}

// archived writes the lines of the matching events retention moved to archives, archive by
// archive (each is at most one part of 50,000 events, read whole and checked).
func (b *writer) archived(events io.Writer) error {
	rows, _ := b.tx.Query(b.ctx, `SELECT id, organization_id, encoding, event_count, original_size, compressed_size,
			sha256_original, sha256_compressed
		FROM archive_storage WHERE organization_id = $1 AND deleted_at IS NULL AND content IS NOT NULL
		  AND last_event_at >= $2 AND first_event_at < $3
		ORDER BY min_leaf_index, id`, b.org, b.f.From.UTC(), b.f.To.UTC())
	metas, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (models.Archive, error) {
		var a models.Archive
		err := r.Scan(&a.ID, &a.OrganizationID, &a.Encoding, &a.EventCount, &a.OriginalSize, &a.CompressedSize,
			&a.SHA256Original, &a.SHA256Compressed)
		return a, err
	})
	if err != nil {
		return fmt.Errorf("bundle: archives: %w", err)
	}
	enc := json.NewEncoder(events) // escapes U+2028 and U+2029 too, which some line splitters break at
	for _, meta := range metas {
		var content []byte
		if err := b.tx.QueryRow(b.ctx, `SELECT content FROM archive_storage WHERE id = $1 AND organization_id = $2`,
			meta.ID, b.org).Scan(&content); err != nil {
			return fmt.Errorf("bundle: archive %s: %w", meta.ID, err)
		}
		r, err := models.OpenArchiveContent(meta, content)
		if err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		for {
			line, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				r.Close()
				return fmt.Errorf("bundle: %w", err)
			}
			if !matches(b.f, line) {
				continue
			}
			if line.LeafIndex >= b.cp.TreeSize {
				b.sum.NotSequenced++
				continue
			}
			line.Timestamp = line.Timestamp.UTC()
			if err := b.sealer.CheckRedactions(line.Event()); models.KindOf(err) == models.KindConflict {
				r.Close()
				return fmt.Errorf("bundle: %w", err)
			}
			if err := enc.Encode(line); err != nil {
				r.Close()
				return fmt.Errorf("bundle: event %d: %w", line.ID, err)
			}
			b.sum.Events++
			b.sum.Archived++
			b.pending = append(b.pending, pend{id: line.ID, leaf: line.LeafIndex, algorithm: line.HashAlgorithm,
				state: StateArchived, archive: meta.ID})
			if err := b.flushFull(); err != nil {
				r.Close()
				return err
			}
		}
		r.Close()
	}
	return nil
}

// matches applies f to an archived line as FilterSQL does to a row (the text filter
// compares case-insensitively, as ILIKE).
// matches is the events list's filter applied to an archived line.
func matches(f models.EventFilter, l *models.ArchiveLine) bool { return f.Matches(l.Event()) }

// removed lists the events of the range that retention or an erasure deleted: their other
// fields are gone, so they are listed whatever the rest of the filter says.
func (b *writer) removed() error {
	_, err := b.tx.Exec(b.ctx, `DECLARE bundle_removed NO SCROLL CURSOR FOR
		SELECT audit_log_id, leaf_index, reason, coalesce(policy, ''), run_id, event_timestamp FROM removed_events
		WHERE organization_id = $1 AND event_timestamp >= $2 AND event_timestamp < $3
		  AND leaf_index IS NOT NULL AND leaf_index < $4
		ORDER BY leaf_index`, b.org, b.f.From.UTC(), b.f.To.UTC(), b.cp.TreeSize)
	if err != nil {
		return fmt.Errorf("bundle: removed events: %w", err)
	}
	for {
		rows, _ := b.tx.Query(b.ctx, `FETCH 1024 FROM bundle_removed`)
		n := 0
		var p pend
		var rr removedRow
		_, err := pgx.ForEachRow(rows, []any{&p.id, &p.leaf, &rr.reason, &rr.policy, &rr.runID, &rr.ts}, func() error {
			n++
			r := rr
			r.ts = r.ts.UTC()
			b.pending = append(b.pending, pend{id: p.id, leaf: p.leaf, state: StateRemoved, removed: &r})
			b.sum.Removed++
			rr = removedRow{}
			return nil
		})
		if err != nil {
			return fmt.Errorf("bundle: removed events: %w", err)
		}
		if err := b.flushFull(); err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	_, err = b.tx.Exec(b.ctx, `CLOSE bundle_removed`)
	return err
}

func (b *writer) flushFull() error {
	if len(b.pending) < batchSize {
		return nil
	}
	return b.flush()
}

// flush writes the manifest lines and proofs of the pending entries: their log entries in
// one query, their proof nodes in two.
func (b *writer) flush() error {
	if len(b.pending) == 0 {
		return nil
	}
	indexes := make([]int64, len(b.pending))
	for i, p := range b.pending {
		indexes[i] = p.leaf
	}
	type logEntry struct {
		id   int64
		hash string
	}
	leaves := make(map[int64]logEntry, len(indexes))
	rows, _ := b.tx.Query(b.ctx, `SELECT leaf_index, audit_log_id, event_hash FROM audit_leaf
		WHERE organization_id = $1 AND leaf_index = ANY($2)`, b.org, indexes)
	var index int64
	var le logEntry
	if _, err := pgx.ForEachRow(rows, []any{&index, &le.id, &le.hash}, func() error {
		leaves[index] = le
		return nil
	}); err != nil {
		return fmt.Errorf("bundle: log entries: %w", err)
	}
	paths, err := merkle.InclusionPaths(b.ctx, b.tx, b.org, b.cp.TreeSize, indexes)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	for i, p := range b.pending {
		le, ok := leaves[p.leaf]
		if !ok || le.id != p.id {
			return fmt.Errorf("bundle: event %d says it is log entry %d, which the log holds for event %d", p.id, p.leaf, le.id)
		}
		m := ManifestEntry{ID: p.id, LeafIndex: p.leaf, Hash: le.hash, HashAlgorithm: p.algorithm, State: p.state, Archive: p.archive}
		if p.algorithm != "" {
			b.algorithms[p.algorithm] = true
		}
		if r := p.removed; r != nil {
			m.Reason, m.Policy, m.RunID, m.Timestamp = r.reason, r.policy, r.runID, &r.ts
		}
		if err := b.manifest.enc.Encode(&m); err != nil {
			return err
		}
		pl := ProofLine{ID: p.id, LeafIndex: p.leaf, Hashes: make([]string, len(paths[i]))}
		for j, h := range paths[i] {
			pl.Hashes[j] = hex.EncodeToString(h)
		}
		if err := b.proofs.enc.Encode(&pl); err != nil {
			return err
		}
	}
	b.pending = b.pending[:0]
	return nil
}

// spool is a temporary file of JSON lines, copied into the zip once the events are in.
type spool struct {
	f   *os.File
	buf *bufio.Writer
	enc *json.Encoder
}

func newSpool() (*spool, error) {
	f, err := os.CreateTemp("", "auditdb-bundle-*")
	if err != nil {
		return nil, fmt.Errorf("bundle: temporary file: %w", err)
	}
	s := &spool{f: f, buf: bufio.NewWriterSize(f, 256<<10)}
	s.enc = json.NewEncoder(s.buf)
	s.enc.SetEscapeHTML(false)
	return s, nil
}

func (s *spool) copyTo(w io.Writer) error {
	if err := s.buf.Flush(); err != nil {
		return fmt.Errorf("bundle: temporary file: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("bundle: temporary file: %w", err)
	}
	if _, err := io.Copy(w, bufio.NewReaderSize(s.f, 256<<10)); err != nil {
		return fmt.Errorf("bundle: copy: %w", err)
	}
	return nil
}

func (s *spool) close() {
	s.f.Close()
	os.Remove(s.f.Name())
}

// Service makes bundles for the console: Write and Check over one database and log.
type Service struct {
	db     *gorm.DB
	log    *merkle.Log
	sealer *models.Sealer
}

// NewService returns the bundle service over db and lg, checking redactions with sealer.
func NewService(db *gorm.DB, lg *merkle.Log, sealer *models.Sealer) *Service {
	return &Service{db: db, log: lg, sealer: sealer}
}

// Check is the package's Check.
func (s *Service) Check(ctx context.Context, org string, f models.EventFilter) error {
	return Check(ctx, s.db, org, f)
}

// Write is the package's Write.
func (s *Service) Write(ctx context.Context, org string, f models.EventFilter, w io.Writer) (Summary, error) {
	return Write(ctx, s.db, s.log, s.sealer, org, f, w)
}
