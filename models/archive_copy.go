package models

import (
	"context"
	"encoding/hex"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// insertArchiveRow inserts archive a (its metadata JSON meta and compressed bytes content)
// into archive_storage by COPY, streaming content as it is hex-encoded: a bound parameter
// would copy the whole archive twice more in memory (the encoded argument and the protocol
// message), which at 50,000 events per part is tens of MiB of the run's peak RSS.
func insertArchiveRow(ctx context.Context, tx pgx.Tx, a *Archive, meta string, content []byte, runID int64, now time.Time) error {
	var b strings.Builder
	field := func(s string) {
		b.WriteString(copyTextEscaper.Replace(s))
		b.WriteByte('\t')
	}
	num := func(n int64) { field(strconv.FormatInt(n, 10)) }
	ts := func(t time.Time) { field(t.UTC().Format(time.RFC3339Nano)) }
	field(a.ID)
	field(a.OrganizationID)
	field(meta)
	field(a.Encoding)
	field(a.Policy)
	field(a.Month.Format("2006-01-02"))
	num(int64(a.Part))
	num(a.EventCount)
	ts(a.FirstEventAt)
	ts(a.LastEventAt)
	num(a.MinEventID)
	num(a.MaxEventID)
	num(a.MinLeafIndex)
	num(a.MaxLeafIndex)
	num(a.OriginalSize)
	num(a.CompressedSize)
	field(a.SHA256Original)
	field(a.SHA256Compressed)
	num(runID)
	ts(now)
	b.WriteString(`\\x`) // bytea's hex input, its backslash escaped for COPY's text format
	r := io.MultiReader(strings.NewReader(b.String()), &hexReader{src: content}, strings.NewReader("\n"))
	_, err := tx.Conn().PgConn().CopyFrom(ctx, r, `COPY archive_storage (id, organization_id, metadata, encoding, policy, month,
		part, event_count, first_event_at, last_event_at, min_event_id, max_event_id, min_leaf_index, max_leaf_index,
		original_size, compressed_size, sha256_original, sha256_compressed, run_id, created_at, content) FROM STDIN`)
	return err
}

// copyTextEscaper escapes a value for COPY's text format.
var copyTextEscaper = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)

// hexReader reads src hex-encoded.
type hexReader struct{ src []byte }

func (h *hexReader) Read(p []byte) (int, error) {
	if len(h.src) == 0 {
		return 0, io.EOF
	}
	n := min(len(p)/2, len(h.src))
	if n == 0 {
		return 0, io.ErrShortBuffer
	}
	hex.Encode(p, h.src[:n])
	h.src = h.src[n:]
	return 2 * n, nil
}
