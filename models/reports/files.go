package reports

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"github.com/klauspost/compress/zstd"
	"gorm.io/gorm"

	"auditdb/models"
)

// chunkSize is the most compressed bytes one row of report_file_chunks holds.
const chunkSize = 1 << 20

// fileWriter stores one file of an execution as it is written: it counts and hashes the
// bytes, compresses them with zstd and inserts each full chunk, so memory stays at one
// chunk whatever the file's size.
type fileWriter struct {
	ctx        context.Context
	db         *gorm.DB
	exec, form string
	sum        hash.Hash
	size       int64
	stored     int64
	seq        int
	buf        bytes.Buffer
	zw         *zstd.Encoder
}

// createFile registers the file and returns its writer; Close completes it.
func createFile(ctx context.Context, db *gorm.DB, org, exec, format, name, contentType string) (*fileWriter, error) {
	err := db.WithContext(ctx).Exec(`INSERT INTO report_files (execution_id, format, organization_id, name, content_type)
		VALUES (?, ?, ?, ?, ?)`, exec, format, org, name, contentType).Error
	if err != nil {
		return nil, fmt.Errorf("reports: create file: %w", err)
	}
	w := &fileWriter{ctx: ctx, db: db, exec: exec, form: format, sum: sha256.New()}
	w.zw, err = zstd.NewWriter(chunkSink{w}, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	return w, nil
}

// chunkSink receives the compressed stream and stores it a chunk at a time.
type chunkSink struct{ w *fileWriter }

func (s chunkSink) Write(p []byte) (int, error) {
	s.w.buf.Write(p)
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
	err := w.db.WithContext(w.ctx).Exec(`INSERT INTO report_file_chunks (execution_id, format, seq, data) VALUES (?, ?, ?, ?)`,
		w.exec, w.form, w.seq, data).Error
	if err != nil {
		return fmt.Errorf("reports: store file chunk: %w", err)
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

// Close flushes the last chunk and records the file's size and SHA-256.
func (w *fileWriter) Close() (File, error) {
	if err := w.zw.Close(); err != nil {
		return File{}, err
	}
	if err := w.flushChunk(w.buf.Bytes()); err != nil {
		return File{}, err
	}
	sum := hex.EncodeToString(w.sum.Sum(nil))
	var f File
	err := w.db.WithContext(w.ctx).Raw(`UPDATE report_files SET size = ?, stored_size = ?, sha256 = ?, complete = true
		WHERE execution_id = ? AND format = ? RETURNING format, name, content_type, size, stored_size, sha256`,
		w.size, w.stored, sum, w.exec, w.form).Scan(&f).Error
	if err != nil {
		return File{}, fmt.Errorf("reports: complete file: %w", err)
	}
	return f, nil
}

// OpenFile returns org's completed file of execution exec in format, decompressed as it is
// read, one stored chunk at a time; a KindNotFound error when there is none (another
// organization's included). Close the reader.
func (s *Store) OpenFile(ctx context.Context, org, exec, format string) (*File, io.ReadCloser, error) {
	var files []File
	err := s.db.WithContext(ctx).Raw(`SELECT f.format, f.name, f.content_type, f.size, f.stored_size, f.sha256,
			coalesce((SELECT x->>'withdrawn' FROM report_executions e, jsonb_array_elements(CASE WHEN
					jsonb_typeof(e.export_result) = 'array' THEN e.export_result ELSE '[]' END) AS x
				WHERE e.id = f.execution_id AND e.organization_id = f.organization_id AND x->>'format' = f.format
				LIMIT 1), '') AS withdrawn
		FROM report_files f
		WHERE f.organization_id = ? AND f.execution_id = ? AND f.format = ? AND f.complete`, org, exec, format).Scan(&files).Error
	if err != nil {
		return nil, nil, fmt.Errorf("reports: open file: %w", err)
	}
	if len(files) == 0 {
		return nil, nil, models.NotFound("report file")
	}
	if files[0].Withdrawn != "" {
		return &files[0], nil, &WithdrawnError{Note: files[0].Withdrawn}
	}
	chunks := &models.ChunkReader{Ctx: ctx, DB: s.db, What: "a report file", Args: []any{exec, format},
		Query: `SELECT data FROM report_file_chunks WHERE execution_id = ? AND format = ? AND seq = ?`}
	zr, err := zstd.NewReader(chunks, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, nil, err
	}
	return &files[0], models.ZstdCloser{Decoder: zr}, nil
}

// WithdrawnError is OpenFile's answer for a file whose content was withdrawn (by an
// erasure); Note says why. The file's metadata is returned beside it.
type WithdrawnError struct{ Note string }

func (e *WithdrawnError) Error() string { return "this report file was " + e.Note }
