package models

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"
)

// copyColumns are the audit_log columns written by COPY after the id, in order.
var copyColumns = []string{
	"timestamp", "ttl", "principal_id", "organization_id", "action", "target_resource_type",
	"target_resource_id", "status", "outcome_description", "hash", "hash_algorithm", "event_version",
	"correlation_id", "data_classification", "retention_policy", "processing_latency", "details",
	"subject_salt", "subject_digest", "signature",
}

// CopyColumns returns the audit_log columns a COPY of events writes (all but the id), in
// the order of CopyRow.
func CopyColumns() []string { return append([]string(nil), copyColumns...) }

// CopyRow returns ev's values for CopyColumns.
func CopyRow(ev *Event) []any { return copyRow(ev) }

// copyRow is ev's values for copyColumns.
func copyRow(ev *Event) []any {
	var details any
	if len(ev.Details) > 0 {
		details = string(ev.Details)
	}
	return []any{
		ev.Timestamp.UTC(), ev.TTL, ev.PrincipalID, ev.OrganizationID, ev.Action, ev.TargetResourceType,
		ev.TargetResourceID, ev.Status, ev.OutcomeDescription, ev.Hash, ev.HashAlgorithm, ev.EventVersion,
		ev.CorrelationID, ev.DataClassification, ev.RetentionPolicy, ev.ProcessingLatency, details,
		ev.SubjectSalt, ev.SubjectDigest, ev.Signature,
	}
}

// WithPgx runs fn on one pooled connection as a native pgx connection, for what GORM
// cannot do (COPY).
func WithPgx(ctx context.Context, db *gorm.DB, fn func(*pgx.Conn) error) error {
	sqlDB, err := db.DB()
	if err != nil {
		return fmt.Errorf("models: pool: %w", err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("models: acquire connection: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("models: driver connection is %T, not pgx", driverConn)
		}
		return fn(c.Conn())
	})
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

// insertEventsSQL writes events (ids assigned) and queues them for the Merkle sequencer in
// one statement, from one array per column: one queue row per organization.
const insertEventsSQL = `WITH ins AS (
	INSERT INTO audit_log (id, "timestamp", ttl, principal_id, organization_id, action, target_resource_type,
		target_resource_id, status, outcome_description, hash, hash_algorithm, event_version, correlation_id,
		data_classification, retention_policy, processing_latency, details, subject_salt, subject_digest, signature)
	SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
		$17::integer[], $18::jsonb[], $19::bytea[], $20::text[], $21::text[])
	RETURNING id, organization_id, "timestamp", hash)
INSERT INTO audit_leaf_queue (organization_id, audit_log_ids, event_timestamps, hashes)
	SELECT organization_id, array_agg(id ORDER BY id), array_agg("timestamp" ORDER BY id), array_agg(hash ORDER BY id)
	FROM ins GROUP BY organization_id`

// insertEvents writes events (ids assigned) and queues them for the Merkle sequencer with
// one statement, committed on its own.
func insertEvents(ctx context.Context, conn *pgx.Conn, events []*Event) error {
	n := len(events)
	ids, ts, orgs, actions, statuses := make([]int64, n), make([]time.Time, n), make([]string, n), make([]string, n), make([]string, n)
	ttl, principal, rtype, rid, outcome, corr := make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
	hash, algo, version, class, policy, digest, sig := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	latency, details, salt := make([]*int32, n), make([]*string, n), make([][]byte, n)
	var orgSet []string // the distinct organizations: each gets one queue row
	for i, ev := range events {
		if !slices.Contains(orgSet, ev.OrganizationID) {
			orgSet = append(orgSet, ev.OrganizationID)
		}
		ids[i], ts[i], orgs[i], actions[i], statuses[i] = ev.ID, ev.Timestamp.UTC(), ev.OrganizationID, ev.Action, ev.Status
		ttl[i], principal[i], rtype[i], rid[i], outcome[i], corr[i] = ev.TTL, ev.PrincipalID, ev.TargetResourceType, ev.TargetResourceID, ev.OutcomeDescription, ev.CorrelationID
		hash[i], algo[i], version[i], class[i], policy[i], digest[i], sig[i] = ev.Hash, ev.HashAlgorithm, ev.EventVersion, ev.DataClassification, ev.RetentionPolicy, ev.SubjectDigest, ev.Signature
		latency[i], salt[i] = ev.ProcessingLatency, ev.SubjectSalt
		if len(ev.Details) > 0 {
			d := string(ev.Details)
			details[i] = &d
		}
	}
	tag, err := conn.Exec(ctx, insertEventsSQL, ids, ts, ttl, principal, orgs, actions, rtype, rid, statuses, outcome, hash,
		algo, version, corr, class, policy, latency, details, salt, digest, sig)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != int64(len(orgSet)) {
		return fmt.Errorf("models: queued %d of %d organizations' events for the log", tag.RowsAffected(), len(orgSet))
	}
	return nil
}

// copyEvents writes events (ids assigned) into audit_log with one COPY, and queues them for
// the Merkle sequencer with another, inside tx.
func copyEvents(ctx context.Context, tx pgx.Tx, events []*Event) error {
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_log"}, append([]string{"id"}, copyColumns...),
		pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
			return append([]any{events[i].ID}, copyRow(events[i])...), nil
		}))
	if err != nil {
		return err
	}
	rows := queueRows(events)
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"audit_leaf_queue"}, leafQueueColumns,
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			r := rows[i]
			return []any{r.org, r.ids, r.timestamps, r.hashes}, nil
		}))
	return err
}

// leafQueueColumns are the columns of one audit_leaf_queue row: the events of one write of
// one organization, in parallel arrays.
var leafQueueColumns = []string{"organization_id", "audit_log_ids", "event_timestamps", "hashes"}

// queueRow is one audit_leaf_queue row.
type queueRow struct {
	org        string
	ids        []int64
	timestamps []time.Time
	hashes     []string
}

// queueRows groups events (ids assigned) into queue rows, one per organization, in the
// order the organizations first appear.
func queueRows(events []*Event) []queueRow {
	var rows []queueRow
	for _, ev := range events {
		i := len(rows) - 1
		if i < 0 || rows[i].org != ev.OrganizationID {
			i = slices.IndexFunc(rows, func(r queueRow) bool { return r.org == ev.OrganizationID })
			if i < 0 {
				rows = append(rows, queueRow{org: ev.OrganizationID})
				i = len(rows) - 1
			}
		}
		r := &rows[i]
		r.ids, r.timestamps, r.hashes = append(r.ids, ev.ID), append(r.timestamps, ev.Timestamp.UTC()), append(r.hashes, ev.Hash)
	}
	return rows
}

// CopyEvents writes sealed events into audit_log with one COPY inside one transaction,
// creating any missing monthly partition first and queueing the events for the Merkle log.
// It sets each event's ID and returns the number of rows written; on error nothing is
// written. Requests from the API go through the Writer instead, which batches them.
func (s *EventStore) CopyEvents(ctx context.Context, parts *PartitionManager, events []Event) (int64, error) {
	if len(events) == 0 {
		return 0, nil
	}
	months := map[time.Time]bool{}
	var times []time.Time
	ptrs := make([]*Event, len(events))
	for i := range events {
		if events[i].Hash == "" || events[i].Signature == "" {
			return 0, fmt.Errorf("models: event %d is not sealed", i)
		}
		if m := MonthStart(events[i].Timestamp); !months[m] {
			months[m] = true
			times = append(times, m)
		}
		ptrs[i] = &events[i]
	}
	if err := parts.EnsureFor(ctx, "audit_log", times...); err != nil {
		return 0, err
	}
	err := WithPgx(ctx, s.db, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			ids, err := allocateIDs(ctx, tx, len(events))
			if err != nil {
				return err
			}
			for i := range events {
				events[i].ID = ids[i]
			}
			return copyEvents(ctx, tx, ptrs)
		})
	})
	if err != nil {
		for i := range events {
			events[i].ID = 0
		}
		return 0, fmt.Errorf("models: copy events: %w", err)
	}
	return int64(len(events)), nil
}
