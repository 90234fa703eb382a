package gdpr

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/export"
)

// Export formats.
const (
	FormatJSON = "json"
	FormatCSV  = "csv"
	FormatXML  = "xml"
)

// Formats are the export formats in the order the form offers them.
var Formats = []string{FormatJSON, FormatCSV, FormatXML}

// ExportLinkTTL is how long an export's download link works.
const ExportLinkTTL = 7 * 24 * time.Hour

var contentTypes = map[string]string{
	FormatJSON: "application/json",
	FormatCSV:  "text/csv; charset=utf-8",
	FormatXML:  "application/xml",
}

// ValidFormat returns a KindInvalid error for anything but json, csv or xml.
func ValidFormat(f string) error {
	if _, ok := contentTypes[f]; !ok {
		return models.Invalid("format", "must be json, csv or xml")
	}
	return nil
}

// ExportFile is a stored export of a request.
type ExportFile struct {
	Format      string
	Name        string
	ContentType string
	Events      int64
	Size        int64
	StoredSize  int64
	SHA256      string
	Complete    bool
	CreatedAt   time.Time
}

// Columns are an exported event's fields, in the order the CSV writes them.
var Columns = []string{"id", "timestamp", "action", "status", "principal_id", "target_resource_type", "target_resource_id",
	"outcome_description", "correlation_id", "data_classification", "retention_policy", "event_version", "details",
	"hash_algorithm", "hash"}

// exportSQL selects every event of the subject in org (as principal or as target), oldest
// first, each column already text. It leaves out the subjects under another request's
// restriction: the request's own restriction does not hide its own export.
const exportSQL = `SELECT id::text, to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), action, status,
	principal_id, target_resource_type, target_resource_id, outcome_description, correlation_id, data_classification,
	retention_policy, event_version, details::text, hash_algorithm, hash
	FROM audit_log WHERE organization_id = $1 AND (principal_id = $2 OR (target_resource_type = $3 AND target_resource_id = $4))
	AND NOT EXISTS (SELECT 1 FROM gdpr_restrictions r WHERE r.organization_id = audit_log.organization_id
		AND r.lifted_at IS NULL AND r.request_id <> $5 AND (r.principal_id = audit_log.principal_id
		OR (r.resource_type = audit_log.target_resource_type AND r.resource_id = audit_log.target_resource_id)))
	ORDER BY "timestamp", id`

// ExportSQL is the export's query and arguments, for the benchmark's COPY of the same rows.
func ExportSQL(org, requestID string, s Subject) (string, []any) {
	return exportSQL, []any{org, nullable(s.PrincipalID), nullable(s.ResourceType), nullable(s.ResourceID), requestID}
}

// streamSubject hands each event of the subject to row as text cells (nil for NULL) straight
// from the database cursor; the slice is reused between calls.
func streamSubject(ctx context.Context, db *gorm.DB, org, requestID string, s Subject, row func([][]byte) error) (int64, error) {
	query, args := ExportSQL(org, requestID, s)
	var n int64
	err := models.QueryInTenant(ctx, db, org, query, args, func(r pgx.Rows) error {
		for r.Next() {
			if err := row(r.RawValues()); err != nil {
				return err
			}
			n++
		}
		return r.Err()
	})
	if err != nil {
		return n, fmt.Errorf("gdpr: read the subject's events: %w", err)
	}
	return n, nil
}

// eventWriter writes one format's document an event at a time.
type eventWriter interface {
	begin(meta exportMeta) error
	event(cells [][]byte) error
	end(count int64) error
}

type exportMeta struct {
	Organization string    `json:"organization" xml:"organization,attr"`
	Request      string    `json:"request" xml:"request,attr"`
	Generated    time.Time `json:"generated_at" xml:"generated,attr"`
	Subject      struct {
		PrincipalID  string `json:"principal_id,omitempty" xml:"principalId,attr,omitempty"`
		ResourceType string `json:"resource_type,omitempty" xml:"resourceType,attr,omitempty"`
		ResourceID   string `json:"resource_id,omitempty" xml:"resourceId,attr,omitempty"`
	} `json:"subject" xml:"subject"`
}

func newEventWriter(format string, w io.Writer) eventWriter {
	switch format {
	case FormatCSV:
		return &csvEvents{w: export.NewCSV(w)}
	case FormatXML:
		return &xmlEvents{w: w}
	}
	return &jsonEvents{w: bufio.NewWriterSize(w, 32<<10)}
}

// csvEvents writes a header and a row per event through the one export writer (formula
// cells neutralized).
type csvEvents struct {
	w   *export.CSV
	row []string
}

func (c *csvEvents) begin(exportMeta) error { return c.w.Write(Columns) }
func (c *csvEvents) event(cells [][]byte) error {
	if c.row == nil {
		c.row = make([]string, len(cells))
	}
	for i, v := range cells {
		c.row[i] = string(v)
	}
	return c.w.Write(c.row)
}
func (c *csvEvents) end(int64) error { return c.w.Flush() }

// jsonEvent is an exported event in JSON and XML.
type jsonEvent struct {
	XMLName            xml.Name        `json:"-" xml:"event"`
	ID                 string          `json:"id" xml:"id,attr"`
	Timestamp          string          `json:"timestamp" xml:"timestamp"`
	Action             string          `json:"action" xml:"action"`
	Status             string          `json:"status" xml:"status"`
	PrincipalID        *string         `json:"principalId,omitempty" xml:"principalId,omitempty"`
	TargetResourceType *string         `json:"targetResourceType,omitempty" xml:"targetResourceType,omitempty"`
	TargetResourceID   *string         `json:"targetResourceId,omitempty" xml:"targetResourceId,omitempty"`
	OutcomeDescription *string         `json:"outcomeDescription,omitempty" xml:"outcomeDescription,omitempty"`
	CorrelationID      *string         `json:"correlationId,omitempty" xml:"correlationId,omitempty"`
	DataClassification string          `json:"dataClassification" xml:"dataClassification"`
	RetentionPolicy    string          `json:"retentionPolicy" xml:"retentionPolicy"`
	EventVersion       string          `json:"eventVersion" xml:"eventVersion"`
	Details            json.RawMessage `json:"details,omitempty" xml:"-"`
	DetailsText        *string         `json:"-" xml:"details,omitempty"`
	HashAlgorithm      string          `json:"hashAlgorithm" xml:"hashAlgorithm"`
	Hash               string          `json:"hash" xml:"hash"`
}

func optionalCell(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

func eventOf(c [][]byte) jsonEvent {
	e := jsonEvent{ID: string(c[0]), Timestamp: string(c[1]), Action: string(c[2]), Status: string(c[3]),
		PrincipalID: optionalCell(c[4]), TargetResourceType: optionalCell(c[5]), TargetResourceID: optionalCell(c[6]),
		OutcomeDescription: optionalCell(c[7]), CorrelationID: optionalCell(c[8]), DataClassification: string(c[9]),
		RetentionPolicy: string(c[10]), EventVersion: string(c[11]), HashAlgorithm: string(c[13]), Hash: string(c[14])}
	if c[12] != nil {
		e.Details = json.RawMessage(bytes.Clone(c[12]))
		e.DetailsText = optionalCell(c[12])
	}
	return e
}

// jsonEvents writes {"organization":…,"events":[…],"count":n}, one event at a time.
type jsonEvents struct {
	w     *bufio.Writer
	first bool
}

func (j *jsonEvents) begin(m exportMeta) error {
	head, err := json.Marshal(m)
	if err != nil {
		return err
	}
	j.w.Write(head[:len(head)-1]) // the object stays open for the events
	_, err = j.w.WriteString(`,"events":[`)
	j.first = true
	return err
}

func (j *jsonEvents) event(cells [][]byte) error {
	b, err := json.Marshal(eventOf(cells))
	if err != nil {
		return err
	}
	if !j.first {
		j.w.WriteByte(',')
	}
	j.first = false
	j.w.WriteString("\n")
	_, err = j.w.Write(b)
	return err
}

func (j *jsonEvents) end(count int64) error {
	fmt.Fprintf(j.w, "\n],\"count\":%d}\n", count)
	return j.w.Flush()
}

// xmlEvents writes <gdprExport …><subject/><event/>…</gdprExport>.
type xmlEvents struct {
	w   io.Writer
	enc *xml.Encoder
}

func (x *xmlEvents) begin(m exportMeta) error {
	if _, err := io.WriteString(x.w, xml.Header); err != nil {
		return err
	}
	x.enc = xml.NewEncoder(x.w)
	x.enc.Indent("", "  ")
	start := xml.StartElement{Name: xml.Name{Local: "gdprExport"}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "organization"}, Value: m.Organization}, {Name: xml.Name{Local: "request"}, Value: m.Request},
		{Name: xml.Name{Local: "generated"}, Value: m.Generated.Format(time.RFC3339)}}}
	if err := x.enc.EncodeToken(start); err != nil {
		return err
	}
	return x.enc.EncodeElement(m.Subject, xml.StartElement{Name: xml.Name{Local: "subject"}})
}

func (x *xmlEvents) event(cells [][]byte) error { return x.enc.Encode(eventOf(cells)) }

func (x *xmlEvents) end(count int64) error {
	if err := x.enc.EncodeToken(xml.EndElement{Name: xml.Name{Local: "gdprExport"}}); err != nil {
		return err
	}
	if err := x.enc.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(x.w, "\n")
	return err
}

// WriteExport writes every event of r's subject in org to w in format and returns how many
// it wrote; progress, when not nil, gets the count every few thousand events. Memory stays
// at one row whatever the number of events.
func WriteExport(ctx context.Context, db *gorm.DB, r *Request, format string, w io.Writer, now time.Time,
	progress func(int64)) (int64, error) {
	if err := ValidFormat(format); err != nil {
		return 0, err
	}
	ew := newEventWriter(format, w)
	var m exportMeta
	m.Organization, m.Request, m.Generated = r.Org, r.ID, now.UTC().Truncate(time.Second)
	m.Subject.PrincipalID, m.Subject.ResourceType, m.Subject.ResourceID = r.Subject.PrincipalID, r.Subject.ResourceType, r.Subject.ResourceID
	if err := ew.begin(m); err != nil {
		return 0, err
	}
	var written int64
	n, err := streamSubject(ctx, db, r.Org, r.ID, r.Subject, func(cells [][]byte) error {
		if err := ew.event(cells); err != nil {
			return err
		}
		if written++; progress != nil && written%5000 == 0 {
			progress(written)
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if progress != nil {
		progress(n)
	}
	return n, ew.end(n)
}

// chunkSize is the most compressed bytes one row of gdpr_export_chunks holds.
var chunkSize = 1 << 20

// fileWriter stores an export as it is written: it counts and hashes the bytes, compresses
// them with zstd and inserts each full chunk, so memory stays at one chunk.
type fileWriter struct {
	ctx         context.Context
	db          *gorm.DB
	id, format  string
	sum         hash.Hash
	size        int64
	stored      int64
	seq         int
	buf         bytes.Buffer
	zw          *zstd.Encoder
	maxBuffered int // the most compressed bytes held at once (tests check it stays bounded)
}

func createExportFile(ctx context.Context, db *gorm.DB, r *Request, format string) (*fileWriter, error) {
	name := fmt.Sprintf("gdpr-export-%s.%s", r.ID, format)
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`DELETE FROM gdpr_exports WHERE request_id = ? AND format = ?`, r.ID, format).Error; err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO gdpr_exports (request_id, format, organization_id, principal_id, resource_type, resource_id,
			name, content_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, format, r.Org, nullable(r.Subject.PrincipalID),
			nullable(r.Subject.ResourceType), nullable(r.Subject.ResourceID), name, contentTypes[format]).Error
	})
	if err != nil {
		return nil, fmt.Errorf("gdpr: create export: %w", err)
	}
	w := &fileWriter{ctx: ctx, db: db, id: r.ID, format: format, sum: sha256.New()}
	w.zw, err = zstd.NewWriter(chunkSink{w}, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	return w, nil
}

type chunkSink struct{ w *fileWriter }

func (s chunkSink) Write(p []byte) (int, error) {
	s.w.buf.Write(p)
	s.w.maxBuffered = max(s.w.maxBuffered, s.w.buf.Len())
	for s.w.buf.Len() >= chunkSize {
		if err := s.w.flushChunk(s.w.buf.Next(chunkSize)); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (w *fileWriter) flushChunk(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	err := w.db.WithContext(w.ctx).Exec(`INSERT INTO gdpr_export_chunks (request_id, format, seq, data) VALUES (?, ?, ?, ?)`,
		w.id, w.format, w.seq, data).Error
	if err != nil {
		return fmt.Errorf("gdpr: store export chunk: %w", err)
	}
	w.seq++
	w.stored += int64(len(data))
	return nil
}

func (w *fileWriter) Write(p []byte) (int, error) {
	w.sum.Write(p)
	w.size += int64(len(p))
	return w.zw.Write(p)
}

// close flushes the last chunk and records the export's size, events and SHA-256.
func (w *fileWriter) close(events int64) error {
	if err := w.zw.Close(); err != nil {
		return err
	}
	if err := w.flushChunk(w.buf.Bytes()); err != nil {
		return err
	}
	err := w.db.WithContext(w.ctx).Exec(`UPDATE gdpr_exports SET size = ?, stored_size = ?, sha256 = ?, events = ?, complete = true
		WHERE request_id = ? AND format = ?`, w.size, w.stored, hex.EncodeToString(w.sum.Sum(nil)), events, w.id, w.format).Error
	if err != nil {
		return fmt.Errorf("gdpr: complete export: %w", err)
	}
	return nil
}

// Exports returns the stored exports of org's request id.
func (s *Store) Exports(ctx context.Context, org, id string) ([]ExportFile, error) {
	var out []ExportFile
	err := s.db.WithContext(ctx).Raw(`SELECT format, name, content_type, events, size, stored_size, sha256, complete, created_at
		FROM gdpr_exports WHERE organization_id = ? AND request_id = ? ORDER BY format`, org, id).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("gdpr: exports: %w", err)
	}
	return out, nil
}

// OpenExport returns org's complete export of request id in format, decompressed as it is
// read, one stored chunk at a time; KindNotFound when there is none (another
// organization's included). Close the reader.
func (s *Store) OpenExport(ctx context.Context, org, id, format string) (*ExportFile, io.ReadCloser, error) {
	var files []ExportFile
	err := s.db.WithContext(ctx).Raw(`SELECT format, name, content_type, events, size, stored_size, sha256, complete, created_at
		FROM gdpr_exports WHERE organization_id = ? AND request_id = ? AND format = ? AND complete`, org, id, format).Scan(&files).Error
	if err != nil {
		return nil, nil, fmt.Errorf("gdpr: open export: %w", err)
	}
	if len(files) == 0 {
		return nil, nil, models.NotFound("GDPR export")
	}
	zr, err := zstd.NewReader(&models.ChunkReader{Ctx: ctx, DB: s.db, What: "a GDPR export", Args: []any{id, format},
		Query: `SELECT data FROM gdpr_export_chunks WHERE request_id = ? AND format = ? AND seq = ?`},
		zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, nil, err
	}
	return &files[0], models.ZstdCloser{Decoder: zr}, nil
}
