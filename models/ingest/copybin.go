package ingest

import (
	"encoding/binary"
	"time"

	"auditdb/models"
)

// PostgreSQL's binary COPY format, written by hand for audit_log rows: the writer sends a
// gathering of events and its queue row in one simple query, without the extra round trip
// pgx's CopyFrom spends to look up the column types.

// copySignature starts every binary COPY stream (signature, flags, header extension length).
var copySignature = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// copyTrailer ends a binary COPY stream.
var copyTrailer = []byte{0xff, 0xff}

// pgEpochMicros is 2000-01-01T00:00:00Z, where PostgreSQL's binary timestamps count from,
// in Unix microseconds.
var pgEpochMicros = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

type copyRowBuf []byte

func (b copyRowBuf) null() copyRowBuf { return binary.BigEndian.AppendUint32(b, 0xffffffff) }

func (b copyRowBuf) text(s string) copyRowBuf {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func (b copyRowBuf) optText(s *string) copyRowBuf {
	if s == nil {
		return b.null()
	}
	return b.text(*s)
}

// nonEmptyText writes "" as NULL (the subject digest of a sha256-jcs-v2 event).
func (b copyRowBuf) nonEmptyText(s string) copyRowBuf {
	if s == "" {
		return b.null()
	}
	return b.text(s)
}

func (b copyRowBuf) int8(v int64) copyRowBuf {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

func (b copyRowBuf) optInt4(v *int32) copyRowBuf {
	if v == nil {
		return b.null()
	}
	b = binary.BigEndian.AppendUint32(b, 4)
	return binary.BigEndian.AppendUint32(b, uint32(*v))
}

func (b copyRowBuf) timestamptz(t time.Time) copyRowBuf {
	return b.int8(t.UnixMicro() - pgEpochMicros)
}

// jsonb is format version 1 followed by the JSON text.
func (b copyRowBuf) jsonb(raw []byte) copyRowBuf {
	if len(raw) == 0 {
		return b.null()
	}
	b = binary.BigEndian.AppendUint32(b, uint32(1+len(raw)))
	b = append(b, 1)
	return append(b, raw...)
}

func (b copyRowBuf) bytea(v []byte) copyRowBuf {
	if v == nil {
		return b.null()
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// appendCopyEvent appends ev (id assigned) as one binary COPY tuple of the id followed by
// copyColumns.
func appendCopyEvent(buf []byte, ev *models.Event) []byte {
	b := copyRowBuf(binary.BigEndian.AppendUint16(buf, uint16(1+len(copyColumns))))
	b = b.int8(ev.ID).timestamptz(ev.Timestamp).optText(ev.TTL).optText(ev.PrincipalID).text(ev.OrganizationID).
		text(ev.Action).optText(ev.TargetResourceType).optText(ev.TargetResourceID).text(ev.Status).
		optText(ev.OutcomeDescription).text(ev.Hash).text(ev.HashAlgorithm).text(ev.EventVersion).
		optText(ev.CorrelationID).text(ev.DataClassification).text(ev.RetentionPolicy).optInt4(ev.ProcessingLatency).
		jsonb(ev.Details).bytea(ev.SubjectSalt).nonEmptyText(ev.SubjectDigest).text(ev.Signature).jsonb(ev.FieldCommitments)
	return b
}
