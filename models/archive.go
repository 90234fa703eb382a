package models

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"gorm.io/gorm"
)

// ArchiveEncoding is the encoding of every archive this version writes: JSON Lines, one
// event per line, compressed with zstd.
const ArchiveEncoding = "jsonl+zstd"

// ArchiveLine is one archived event as stored in audit_log: every column, so that its hash,
// subject digest and signature can be recomputed from the line alone, plus its place in the
// organization's Merkle log.
type ArchiveLine struct {
	ID                 int64           `json:"id"`
	Timestamp          time.Time       `json:"timestamp"`
	TTL                *string         `json:"ttl,omitempty"`
	PrincipalID        *string         `json:"principalId,omitempty"`
	OrganizationID     string          `json:"organizationId"`
	Action             string          `json:"action"`
	TargetResourceType *string         `json:"targetResourceType,omitempty"`
	TargetResourceID   *string         `json:"targetResourceId,omitempty"`
	Status             string          `json:"status"`
	OutcomeDescription *string         `json:"outcomeDescription,omitempty"`
	Hash               string          `json:"hash"`
	HashAlgorithm      string          `json:"hashAlgorithm"`
	EventVersion       string          `json:"eventVersion"`
	CorrelationID      *string         `json:"correlationId,omitempty"`
	DataClassification string          `json:"dataClassification"`
	RetentionPolicy    string          `json:"retentionPolicy"`
	ProcessingLatency  *int32          `json:"processingLatency,omitempty"`
	ArchivedAt         *time.Time      `json:"archivedAt,omitempty"`
	Details            json.RawMessage `json:"details,omitempty"`
	SubjectSalt        []byte          `json:"subjectSalt,omitempty"`
	SubjectDigest      string          `json:"subjectDigest"`
	Signature          string          `json:"signature"`
	// FieldCommitments are a sha256-jcs-v2/-v3 event's per-field commitments, or a
	// never-redacted v3 event's compact form (absent for v1).
	FieldCommitments json.RawMessage `json:"fieldCommitments,omitempty"`
	LeafIndex        int64           `json:"leafIndex"`
}

// Event returns the line as the audit_log row it was.
func (l *ArchiveLine) Event() *Event {
	return &Event{ID: l.ID, Timestamp: l.Timestamp, TTL: l.TTL, PrincipalID: l.PrincipalID, OrganizationID: l.OrganizationID,
		Action: l.Action, TargetResourceType: l.TargetResourceType, TargetResourceID: l.TargetResourceID, Status: l.Status,
		OutcomeDescription: l.OutcomeDescription, Hash: l.Hash, HashAlgorithm: l.HashAlgorithm, EventVersion: l.EventVersion,
		CorrelationID: l.CorrelationID, DataClassification: l.DataClassification, RetentionPolicy: l.RetentionPolicy,
		ProcessingLatency: l.ProcessingLatency, ArchivedAt: l.ArchivedAt, Details: l.Details, SubjectSalt: l.SubjectSalt,
		SubjectDigest: l.SubjectDigest, Signature: l.Signature, FieldCommitments: l.FieldCommitments}
}

// Archive is the metadata of one row of archive_storage.
type Archive struct {
	ID               string     `gorm:"column:id;primaryKey"`
	OrganizationID   string     `gorm:"column:organization_id"`
	Encoding         string     `gorm:"column:encoding"`
	Policy           string     `gorm:"column:policy"`
	Month            time.Time  `gorm:"column:month"`
	Part             int        `gorm:"column:part"`
	EventCount       int64      `gorm:"column:event_count"`
	FirstEventAt     time.Time  `gorm:"column:first_event_at"`
	LastEventAt      time.Time  `gorm:"column:last_event_at"`
	MinEventID       int64      `gorm:"column:min_event_id"`
	MaxEventID       int64      `gorm:"column:max_event_id"`
	MinLeafIndex     int64      `gorm:"column:min_leaf_index"`
	MaxLeafIndex     int64      `gorm:"column:max_leaf_index"`
	OriginalSize     int64      `gorm:"column:original_size"`
	CompressedSize   int64      `gorm:"column:compressed_size"`
	SHA256Original   string     `gorm:"column:sha256_original"`
	SHA256Compressed string     `gorm:"column:sha256_compressed"`
	RunID            *int64     `gorm:"column:run_id"`
	CreatedAt        time.Time  `gorm:"column:created_at"`
	DeletedAt        *time.Time `gorm:"column:deleted_at"`
	RetrievedCount   int64      `gorm:"column:retrieved_count"`
	LastRetrievedAt  *time.Time `gorm:"column:last_retrieved_at"`
}

// Ratio is how many times smaller the compressed bytes are than the original ones (0 for
// an emptied archive).
func (a Archive) Ratio() float64 {
	if a.CompressedSize <= 0 {
		return 0
	}
	return float64(a.OriginalSize) / float64(a.CompressedSize)
}

// TableName is archive_storage.
func (Archive) TableName() string { return "archive_storage" }

// archiveColumns are the metadata columns, without the content.
const archiveColumns = `id, organization_id, encoding, policy, month, part, event_count, first_event_at, last_event_at,
	min_event_id, max_event_id, min_leaf_index, max_leaf_index, original_size, compressed_size, sha256_original,
	sha256_compressed, run_id, created_at, deleted_at, retrieved_count, last_retrieved_at`

// ErrArchiveCorrupt is wrapped by every checksum or format mismatch of an archive.
var ErrArchiveCorrupt = errors.New("models: archive corrupt")

// archiveWriter builds one archive in memory: lines go through SHA-256 and zstd; only the
// compressed bytes are kept. Lines are encoded by appendArchiveLine into a pending buffer
// handed to the hash and the compressor in 64 KiB chunks. A writer is reused from part to
// part (reset), so its buffers and compressor are allocated once per run.
type archiveWriter struct {
	buf      bytes.Buffer
	enc      *zstd.Encoder
	orig     hash.Hash
	origSize int64
	pending  []byte
	scratch  bytes.Buffer
	count    int64
	// jsonb: the lines' details and field commitments come from audit_log's jsonb columns
	// (retention), so appendArchiveLine need not validate them again.
	jsonb   bool
	firstAt time.Time // for the ranges
	lastAt  time.Time
	minID   int64
	maxID   int64
	minLeaf int64
	maxLeaf int64
	// The (retention_policy, data_classification) pairs of the lines: which policies can
	// govern them, so a run can tell without decoding whether anything in it may be due.
	pairs map[[2]string]bool
}

// linePairs returns w's (retention_policy, data_classification) pairs, sorted.
func (w *archiveWriter) linePairs() [][2]string {
	out := make([][2]string, 0, len(w.pairs))
	for p := range w.pairs {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0]+"\x00"+out[i][1] < out[j][0]+"\x00"+out[j][1] })
	return out
}

// archiveFlushSize is how many encoded bytes gather before they go to the hash and compressor.
const archiveFlushSize = 64 << 10

func newArchiveWriter() (*archiveWriter, error) {
	w := &archiveWriter{orig: sha256.New(), pending: make([]byte, 0, archiveFlushSize+4096)}
	// SpeedFastest: archival is bound by the CPU, and the level costs a little ratio (see
	// docs/benchmarks.md); readers decode every level alike. A 2 MiB window (the default is
	// 8 MiB): the encoder keeps twice its window as history, and JSON Lines repeat within far
	// less than 2 MiB, so the smaller window keeps 12 MiB off the run's live heap.
	enc, err := zstd.NewWriter(&w.buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(2<<20))
	if err != nil {
		return nil, fmt.Errorf("models: zstd: %w", err)
	}
	w.enc = enc
	return w, nil
}

// reset readies w for the next archive; the bytes finish returned are overwritten.
func (w *archiveWriter) reset() {
	w.buf.Reset()
	w.enc.Reset(&w.buf)
	w.orig.Reset()
	w.origSize, w.count, w.pending = 0, 0, w.pending[:0]
	clear(w.pairs)
}

// add appends one event line.
func (w *archiveWriter) add(l *ArchiveLine) error {
	var err error
	if w.pending, err = appendArchiveLine(w.pending, &w.scratch, l, w.jsonb); err != nil {
		return fmt.Errorf("models: archive line of event %d: %w", l.ID, err)
	}
	w.pending = append(w.pending, '\n')
	if len(w.pending) >= archiveFlushSize {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if w.count == 0 {
		w.firstAt, w.lastAt = l.Timestamp, l.Timestamp
		w.minID, w.maxID, w.minLeaf, w.maxLeaf = l.ID, l.ID, l.LeafIndex, l.LeafIndex
	}
	if l.Timestamp.Before(w.firstAt) {
		w.firstAt = l.Timestamp
	}
	if l.Timestamp.After(w.lastAt) {
		w.lastAt = l.Timestamp
	}
	w.minID, w.maxID = min(w.minID, l.ID), max(w.maxID, l.ID)
	w.minLeaf, w.maxLeaf = min(w.minLeaf, l.LeafIndex), max(w.maxLeaf, l.LeafIndex)
	if w.pairs == nil {
		w.pairs = map[[2]string]bool{}
	}
	w.pairs[[2]string{l.RetentionPolicy, l.DataClassification}] = true
	w.count++
	return nil
}

func (w *archiveWriter) flush() error {
	if len(w.pending) == 0 {
		return nil
	}
	w.orig.Write(w.pending)
	w.origSize += int64(len(w.pending))
	if _, err := w.enc.Write(w.pending); err != nil {
		return fmt.Errorf("models: compress: %w", err)
	}
	w.pending = w.pending[:0]
	return nil
}

// archivePipe feeds an archiveWriter from a goroutine of its own, so that the caller reads
// and scans the next rows from PostgreSQL while the lines before them are encoded, hashed
// and compressed: about half each of archival's time in this process, run one after the
// other before (see docs/benchmarks.md, "Retention"). Lines travel in batches; a batch's
// buffer returns to the caller once encoded. The caller adds lines and then waits for the
// writer before it touches it; wait reports the writer's first error.
type archivePipe struct {
	w      *archiveWriter
	batch  []ArchiveLine
	full   chan []ArchiveLine
	free   chan []ArchiveLine
	done   chan error
	waited bool // wait has run; err is its answer
	err    error
}

// archivePipeBatch is how many lines travel together; archivePipeDepth how many batches
// may wait for the encoder (the memory held is depth + 2 batches of lines).
const (
	archivePipeBatch = 256
	archivePipeDepth = 4
)

// startArchivePipe starts the encoding goroutine for w.
func startArchivePipe(w *archiveWriter) *archivePipe {
	p := &archivePipe{w: w, full: make(chan []ArchiveLine, archivePipeDepth),
		free: make(chan []ArchiveLine, archivePipeDepth+1), done: make(chan error, 1)}
	p.batch = make([]ArchiveLine, 0, archivePipeBatch)
	go func() {
		var err error
		for b := range p.full {
			for i := range b {
				if err == nil {
					err = w.add(&b[i])
				}
			}
			select {
			case p.free <- b[:0]:
			default:
			}
		}
		p.done <- err
	}()
	return p
}

// add queues a copy of l (its strings and byte slices are shared, not copied: the caller
// must not change them afterwards, which pgx's scans into fresh values never do).
func (p *archivePipe) add(l *ArchiveLine) {
	p.batch = append(p.batch, *l)
	if len(p.batch) == cap(p.batch) {
		p.full <- p.batch
		select {
		case p.batch = <-p.free:
		default:
			p.batch = make([]ArchiveLine, 0, archivePipeBatch)
		}
	}
}

// wait hands over the last lines, waits until every line is in the writer and returns the
// writer's first error. Lines cannot be added afterwards; waiting again returns the same.
func (p *archivePipe) wait() error {
	if p.waited {
		return p.err
	}
	if len(p.batch) > 0 {
		p.full <- p.batch
	}
	close(p.full)
	p.waited, p.err = true, <-p.done
	return p.err
}

// finish closes the compressor and fills a's sizes, checksums and ranges.
func (w *archiveWriter) finish(a *Archive) ([]byte, error) {
	if err := w.flush(); err != nil {
		return nil, err
	}
	if err := w.enc.Close(); err != nil {
		return nil, fmt.Errorf("models: compress: %w", err)
	}
	content := w.buf.Bytes()
	sum := sha256.Sum256(content)
	a.Encoding = ArchiveEncoding
	a.EventCount = w.count
	a.FirstEventAt, a.LastEventAt = w.firstAt, w.lastAt
	a.MinEventID, a.MaxEventID, a.MinLeafIndex, a.MaxLeafIndex = w.minID, w.maxID, w.minLeaf, w.maxLeaf
	a.OriginalSize, a.CompressedSize = w.origSize, int64(len(content))
	a.SHA256Original, a.SHA256Compressed = hex.EncodeToString(w.orig.Sum(nil)), hex.EncodeToString(sum[:])
	return content, nil
}

// ArchiveReader reads the lines of one archive. The compressed bytes' SHA-256 is checked
// when it opens; the original bytes' SHA-256 and the line count when the last line has been
// read (Next returns io.EOF only when both match).
type ArchiveReader struct {
	meta  Archive
	dec   *zstd.Decoder
	sc    *bufio.Reader
	orig  hash.Hash
	size  int64
	count int64
}

// OpenArchiveContent checks content against meta's compressed checksum and returns a reader
// of its lines. A mismatch is an ErrArchiveCorrupt.
func OpenArchiveContent(meta Archive, content []byte) (*ArchiveReader, error) {
	sum := sha256.Sum256(content)
	if got := hex.EncodeToString(sum[:]); got != meta.SHA256Compressed || int64(len(content)) != meta.CompressedSize {
		return nil, fmt.Errorf("%w: archive %s: the compressed bytes' SHA-256 is %s, the recorded one %s",
			ErrArchiveCorrupt, meta.ID, got, meta.SHA256Compressed)
	}
	dec, err := zstd.NewReader(bytes.NewReader(content), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, fmt.Errorf("%w: archive %s: %v", ErrArchiveCorrupt, meta.ID, err)
	}
	return &ArchiveReader{meta: meta, dec: dec, sc: bufio.NewReaderSize(dec, 64<<10), orig: sha256.New()}, nil
}

// OpenArchive loads archive id of org and opens it; KindNotFound for another organization's
// archive or a deleted one.
func OpenArchive(ctx context.Context, db *gorm.DB, org, id string) (*ArchiveReader, error) {
	var meta Archive
	err := db.WithContext(ctx).Raw(`SELECT `+archiveColumns+` FROM archive_storage
		WHERE id = ? AND organization_id = ? AND deleted_at IS NULL`, id, org).Scan(&meta).Error
	if err != nil {
		return nil, fmt.Errorf("models: archive %s: %w", id, err)
	}
	if meta.ID == "" {
		return nil, NotFound("archive")
	}
	// Read under the same conditions as the metadata: a second, unscoped read could see the
	// content a concurrent deletion emptied and report a sound archive as corrupt.
	var content []byte
	if err := db.WithContext(ctx).Raw(`SELECT content FROM archive_storage WHERE id = ? AND organization_id = ? AND deleted_at IS NULL`,
		id, org).Row().Scan(&content); errors.Is(err, sql.ErrNoRows) {
		return nil, NotFound("archive") // deleted since the metadata was read
	} else if err != nil {
		return nil, fmt.Errorf("models: archive %s: %w", id, err)
	}
	return OpenArchiveContent(meta, content)
}

// Next returns the next line. At the end it checks the original bytes' SHA-256 and count
// and returns io.EOF, or an ErrArchiveCorrupt when they differ from the metadata.
func (r *ArchiveReader) Next() (*ArchiveLine, error) {
	b, err := r.sc.ReadBytes('\n')
	r.orig.Write(b)
	r.size += int64(len(b))
	if err == io.EOF {
		if len(b) > 0 {
			return nil, fmt.Errorf("%w: archive %s: the last line is cut short", ErrArchiveCorrupt, r.meta.ID)
		}
		if got := hex.EncodeToString(r.orig.Sum(nil)); got != r.meta.SHA256Original || r.size != r.meta.OriginalSize {
			return nil, fmt.Errorf("%w: archive %s: the decompressed bytes' SHA-256 is %s, the recorded one %s",
				ErrArchiveCorrupt, r.meta.ID, got, r.meta.SHA256Original)
		}
		if r.count != r.meta.EventCount {
			return nil, fmt.Errorf("%w: archive %s holds %d events, its metadata says %d", ErrArchiveCorrupt, r.meta.ID, r.count, r.meta.EventCount)
		}
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("%w: archive %s: %v", ErrArchiveCorrupt, r.meta.ID, err)
	}
	var l ArchiveLine
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%w: archive %s: line %d: %v", ErrArchiveCorrupt, r.meta.ID, r.count+1, err)
	}
	r.count++
	return &l, nil
}

// Close releases the decompressor.
func (r *ArchiveReader) Close() { r.dec.Close() }

// ArchivedEvent returns the archive that holds event id of org, or KindNotFound.
func ArchivedEvent(ctx context.Context, db *gorm.DB, org string, id int64) (string, error) {
	var archiveID string
	err := db.WithContext(ctx).Raw(`SELECT archive_id FROM archived_events WHERE organization_id = ? AND audit_log_id = ?`,
		org, id).Scan(&archiveID).Error
	if err != nil {
		return "", fmt.Errorf("models: archived event: %w", err)
	}
	if archiveID == "" {
		return "", NotFound("event")
	}
	return archiveID, nil
}

// ArchiveProblem returns err's message without the package prefix, for reports.
func ArchiveProblem(err error) string {
	return strings.TrimPrefix(err.Error(), "models: ")
}

// ArchivedEvent returns the id of the archive that holds event id of org, once retention
// moved it out of audit_log; KindNotFound when no archive holds it.
func (s *EventStore) ArchivedEvent(ctx context.Context, org string, id int64) (string, error) {
	return ArchivedEvent(ctx, s.db, org, id)
}

// Verify reads the rest of the archive without decoding its lines and checks the original
// bytes' SHA-256, size and line count against the metadata: nil when they match, an
// ErrArchiveCorrupt otherwise. The reader is spent afterwards.
func (r *ArchiveReader) Verify() error {
	buf := make([]byte, 64<<10)
	var last byte = '\n'
	for {
		n, err := r.sc.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			r.orig.Write(chunk)
			r.size += int64(n)
			r.count += int64(bytes.Count(chunk, []byte{'\n'}))
			last = chunk[n-1]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: archive %s: %v", ErrArchiveCorrupt, r.meta.ID, err)
		}
	}
	if last != '\n' {
		return fmt.Errorf("%w: archive %s: the last line is cut short", ErrArchiveCorrupt, r.meta.ID)
	}
	if got := hex.EncodeToString(r.orig.Sum(nil)); got != r.meta.SHA256Original || r.size != r.meta.OriginalSize {
		return fmt.Errorf("%w: archive %s: the decompressed bytes' SHA-256 is %s, the recorded one %s",
			ErrArchiveCorrupt, r.meta.ID, got, r.meta.SHA256Original)
	}
	if r.count != r.meta.EventCount {
		return fmt.Errorf("%w: archive %s holds %d events, its metadata says %d", ErrArchiveCorrupt, r.meta.ID, r.count, r.meta.EventCount)
	}
	return nil
}

// WriteJSONArray writes the rest of the archive to w as one JSON array of its lines (each
// line is one JSON object), line by line, and checks the checksums at the end: on a
// mismatch it stops before the closing bracket and returns the ErrArchiveCorrupt, so a
// reader never takes a cut array for a whole one.
func (r *ArchiveReader) WriteJSONArray(w io.Writer) error {
	if _, err := io.WriteString(w, "["); err != nil {
		return err
	}
	for first := true; ; first = false {
		b, err := r.sc.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: gather it whole.
			rest, rerr := r.sc.ReadBytes('\n')
			b, err = append(append([]byte(nil), b...), rest...), rerr
		}
		r.orig.Write(b)
		r.size += int64(len(b))
		if err == io.EOF && len(b) == 0 {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: archive %s: %v", ErrArchiveCorrupt, r.meta.ID, err)
		}
		r.count++
		sep := ",\n"
		if first {
			sep = "\n"
		}
		if _, err := io.WriteString(w, sep); err != nil {
			return err
		}
		if _, err := w.Write(b[:len(b)-1]); err != nil {
			return err
		}
	}
	if got := hex.EncodeToString(r.orig.Sum(nil)); got != r.meta.SHA256Original || r.size != r.meta.OriginalSize || r.count != r.meta.EventCount {
		return fmt.Errorf("%w: archive %s: the decompressed bytes do not match the recorded SHA-256, size or count", ErrArchiveCorrupt, r.meta.ID)
	}
	_, err := io.WriteString(w, "\n]\n")
	return err
}
