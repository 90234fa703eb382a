package models

import (
	"context"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"gorm.io/gorm"
)

// ZstdCloser closes a zstd decoder as an io.ReadCloser.
type ZstdCloser struct{ *zstd.Decoder }

// Close releases the decoder; it never fails.
func (z ZstdCloser) Close() error { z.Decoder.Close(); return nil }

// ChunkReader reads a file stored as numbered chunks (a bytea column "data" with a
// sequence number from 0) in order, one row at a time, so memory stays one chunk: Query
// selects the data of one chunk, its last placeholder the sequence number after Args.
type ChunkReader struct {
	Ctx   context.Context
	DB    *gorm.DB
	Query string
	Args  []any
	What  string // names the file in errors
	seq   int
	cur   []byte
	done  bool
}

func (r *ChunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.done {
			return 0, io.EOF
		}
		var data [][]byte
		err := r.DB.WithContext(r.Ctx).Raw(r.Query, append(append([]any{}, r.Args...), r.seq)...).Pluck("data", &data).Error
		if err != nil {
			return 0, fmt.Errorf("models: read a chunk of %s: %w", r.What, err)
		}
		if len(data) == 0 {
			r.done = true
			continue
		}
		r.cur = data[0]
		r.seq++
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}
