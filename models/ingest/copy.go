package ingest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"gorm.io/gorm"

	"auditdb/models"
)

// copyColumns are the audit_log columns written by COPY after the id, in order.
var copyColumns = []string{
	"timestamp", "ttl", "principal_id", "organization_id", "action", "target_resource_type",
	"target_resource_id", "status", "outcome_description", "hash", "hash_algorithm", "event_version",
	"correlation_id", "data_classification", "retention_policy", "processing_latency", "details",
	"subject_salt", "subject_digest", "signature", "field_commitments",
}

// CopyColumns returns the audit_log columns a COPY of events writes (all but the id), in
// the order of CopyRow.
func CopyColumns() []string { return append([]string(nil), copyColumns...) }

// CopyRow returns ev's values for CopyColumns.
func CopyRow(ev *models.Event) []any { return copyRow(ev) }

// copyRow is ev's values for copyColumns.
func copyRow(ev *models.Event) []any {
	var details, commitments, digest any
	if len(ev.Details) > 0 {
		details = string(ev.Details)
	}
	if len(ev.FieldCommitments) > 0 {
		commitments = string(ev.FieldCommitments)
	}
	if ev.SubjectDigest != "" { // NULL for sha256-jcs-v2 events
		digest = ev.SubjectDigest
	}
	return []any{
		ev.Timestamp.UTC(), ev.TTL, ev.PrincipalID, ev.OrganizationID, ev.Action, ev.TargetResourceType,
		ev.TargetResourceID, ev.Status, ev.OutcomeDescription, ev.Hash, ev.HashAlgorithm, ev.EventVersion,
		ev.CorrelationID, ev.DataClassification, ev.RetentionPolicy, ev.ProcessingLatency, details,
		ev.SubjectSalt, digest, ev.Signature, commitments,
	}
}

// allocateIDs takes n event ids from audit_log's identity sequence.
func allocateIDs(ctx context.Context, tx pgx.Tx, n int) ([]int64, error) {
	rows, _ := tx.Query(ctx, `SELECT nextval('audit_log_id_seq') FROM generate_series(1, $1)`, n)
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// idBlock hands out audit_log ids taken from its identity sequence a block at a time, so
// most transactions need no round trip for them. Ids still unused when the process stops
// are skipped, as with a sequence's own cache.
type idBlock struct {
	mu  sync.Mutex
	ids []int64
}

// idBlockSize is how many ids one refill takes.
const idBlockSize = 4096

// take returns n fresh ids.
func (b *idBlock) take(ctx context.Context, pool *pgxpool.Pool, n int) ([]int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ids) < n {
		rows, _ := pool.Query(ctx, `SELECT nextval('audit_log_id_seq') FROM generate_series(1, $1)`, max(n-len(b.ids), idBlockSize))
		more, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, err
		}
		b.ids = append(b.ids, more...)
	}
	out := append([]int64(nil), b.ids[:n]...)
	b.ids = b.ids[n:]
	return out, nil
}

// copyEvents writes events (ids assigned) into audit_log and queues them for the Merkle
// sequencer, one queue row per organization, in one round trip: a simple query holding a
// binary COPY of the rows and the INSERT of the queue rows (and, with feed, of the rows of
// detection's feed: models.DetectionFeedSQL). Outside a transaction block
// the two statements run as one implicit transaction; inside one (a writer transaction
// that also stores Idempotency-Keys) they join it. Either way, on error neither took
// effect.
func copyEvents(ctx context.Context, conn *pgx.Conn, events []*models.Event, feed bool) error {
	queue, err := models.LeafQueueSQL(events)
	if err != nil {
		return err
	}
	if feed {
		more, err := models.DetectionFeedSQL(events)
		if err != nil {
			return err
		}
		queue += more
	}
	stream := make([]byte, 0, len(copySignature)+len(copyTrailer)+len(events)*1024)
	stream = append(stream, copySignature...)
	for _, ev := range events {
		stream = appendCopyEvent(stream, ev)
	}
	stream = append(stream, copyTrailer...)
	_, err = conn.PgConn().CopyFrom(ctx, bytes.NewReader(stream), copyEventsSQL+";\n"+queue)
	return err
}

// copyEventsSQL starts the binary COPY of appendCopyEvent's rows.
var copyEventsSQL = "COPY audit_log (id, " + strings.Join(quotedColumns(copyColumns), ", ") + ") FROM STDIN (FORMAT binary)"

func quotedColumns(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = pgx.Identifier{c}.Sanitize()
	}
	return out
}

// CopyEvents writes sealed events into audit_log with one COPY inside one transaction,
// creating any missing monthly partition first and queueing the events for the Merkle log.
// It sets each event's ID and returns the number of rows written; on error nothing is
// written. Requests from the API go through the Writer instead, which batches them.
func CopyEvents(ctx context.Context, db *gorm.DB, parts *models.PartitionManager, events []models.Event) (int64, error) {
	if len(events) == 0 {
		return 0, nil
	}
	months := map[time.Time]bool{}
	var times []time.Time
	ptrs := make([]*models.Event, len(events))
	for i := range events {
		if events[i].Hash == "" || events[i].Signature == "" {
			return 0, fmt.Errorf("ingest: event %d is not sealed", i)
		}
		if m := models.MonthStart(events[i].Timestamp); !months[m] {
			months[m] = true
			times = append(times, m)
		}
		ptrs[i] = &events[i]
	}
	if err := parts.EnsureFor(ctx, "audit_log", times...); err != nil {
		return 0, err
	}
	err := models.WithPgx(ctx, db, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			ids, err := allocateIDs(ctx, tx, len(events))
			if err != nil {
				return err
			}
			for i := range events {
				events[i].ID = ids[i]
			}
			return copyEvents(ctx, tx.Conn(), ptrs, false)
		})
	})
	if err != nil {
		for i := range events {
			events[i].ID = 0
		}
		return 0, fmt.Errorf("ingest: copy events: %w", err)
	}
	return int64(len(events)), nil
}
