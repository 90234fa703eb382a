package models

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// Detection's feed: the ingest writer, when asked to (ingest.WriterConfig.DetectionFeed),
// hands detection what its rules and counts read of each event in the transaction that
// writes the events, as one detection_feed row per write and organization (migration
// 0058). Detection then reads a batch's events from a few feed rows instead of from
// audit_log, where reading them back was half of its cost: on a busy server a tenth to a
// sixth of the freshly written heap pages have left PostgreSQL's buffers by the time
// detection reads them (docs/benchmarks.md). The feed is only a shortcut: an event it lacks
// (written another way, its row trimmed, or its address not a plain string) is read from
// audit_log as before, so the feed holds nothing detection needs to be correct.
//
// A feed row is exactly what audit_log held for its events when they committed. A GDPR
// change of events, and any update of events, deletes every feed row in its own
// transaction (triggers on audit_log and each partition, migration 0058), so no row
// outlives the values it copied. Retention's deletions do not: detection counts every
// event that was committed to the log, including one retention deleted seconds later, as
// it counts one retention deletes after detection read it. Rows detection does not finish
// (detection stopped, or a write's events split oddly across batches) are deleted by
// TrimDetectionFeed once FeedTTL old. The table is unlogged (a crash empties it; detection
// then reads audit_log) and the database owner's only, like the rollups.

// feedVersion starts every encoded feed row.
const feedVersion = 1

// feedIPUnknown marks an event the feed does not hold, in place of its address: one
// without a principal whose details.ipAddress is not a JSON string or null (PostgreSQL's
// text for it, details->>'ipAddress', is not worked out here), or one whose values are
// longer than feedMaxValues. Detection reads that event from audit_log.
const feedIPUnknown = 1

// feedMaxValues bounds the bytes of an event's values the feed holds: a longer event (a
// long outcome or address) is left to audit_log, so a write of large events does not
// write them a second time.
const feedMaxValues = 1024

// FeedTTL is how long a detection feed row is kept (TrimDetectionFeed).
const FeedTTL = 2 * time.Minute

// DetectionFeedSQL returns the INSERT statements that feed events (ids assigned) to
// detection, one row per organization, values written in like LeafQueueSQL's (a simple
// query cannot carry parameters): the organization id checked, the rest numbers and hex.
// It returns a KindInvalid error for an organization id of another shape.
func DetectionFeedSQL(events []*Event) (string, error) {
	groups := byOrganization(events)
	var b []byte
	for gi, g := range groups {
		org := g[0].OrganizationID
		if !orgIDPattern.MatchString(org) {
			return "", Invalid("organizationId", fmt.Sprintf("%q is not an organization id", org))
		}
		first, last := g[0].ID, g[0].ID
		for _, ev := range g {
			first, last = min(first, ev.ID), max(last, ev.ID)
		}
		enc := encodeFeed(g)
		if gi == 0 {
			b = make([]byte, 0, 2*len(enc)+256*len(groups))
		}
		b = append(b, ";\nINSERT INTO detection_feed (organization_id, first_id, last_id, events) VALUES ('"...)
		b = append(b, org...)
		b = append(b, "', "...)
		b = strconv.AppendInt(b, first, 10)
		b = append(b, ", "...)
		b = strconv.AppendInt(b, last, 10)
		b = append(b, ", decode('"...)
		b = hex.AppendEncode(b, enc)
		b = append(b, "', 'hex'))"...)
	}
	return string(b), nil
}

// encodeFeed encodes one organization's events: the version, the event count, a table of
// the distinct strings, then per event its id and timestamp (microseconds, as audit_log
// stores it) as deltas from the previous event's, and references into the table (0 for
// none) to its principal, action, status, resource type, outcome (failures only) and
// address (events without a principal only), or, for an event the feed does not hold, five
// zeros and feedIPUnknown.
func encodeFeed(events []*Event) []byte {
	refs := map[string]uint64{}
	table, body := make([]byte, 0, 4096), make([]byte, 0, 12*len(events))
	// Per field, the last value and its reference: a write's statuses, actions and resource
	// types mostly repeat, and comparing with the last one costs less than a map lookup.
	type lastRef struct {
		s string
		r uint64
	}
	var lasts [6]lastRef
	ref := func(field int, s string) uint64 {
		if s == "" {
			return 0
		}
		if l := &lasts[field]; l.r != 0 && l.s == s {
			return l.r
		}
		r, ok := refs[s]
		if !ok {
			table = binary.AppendUvarint(table, uint64(len(s)))
			table = append(table, s...)
			r = uint64(len(refs) + 1)
			refs[s] = r
		}
		lasts[field] = lastRef{s, r}
		return r
	}
	var prevID, prevTS int64
	for _, ev := range events {
		ts := ev.Timestamp.UnixMicro() // as the COPY writes it
		body = binary.AppendVarint(body, ev.ID-prevID)
		body = binary.AppendVarint(body, ts-prevTS)
		prevID, prevTS = ev.ID, ts
		principal, outcome, resource := deref(ev.PrincipalID), "", deref(ev.TargetResourceType)
		if ev.Status == "failure" {
			outcome = deref(ev.OutcomeDescription)
		}
		addr, addrOK := "", true
		if principal == "" {
			addr, addrOK = detailsIPAddress(ev.Details)
		}
		if !addrOK || len(principal)+len(ev.Action)+len(ev.Status)+len(resource)+len(outcome)+len(addr) > feedMaxValues {
			body = append(body, 0, 0, 0, 0, 0, feedIPUnknown)
			continue
		}
		body = binary.AppendUvarint(body, ref(0, principal))
		body = binary.AppendUvarint(body, ref(1, ev.Action))
		body = binary.AppendUvarint(body, ref(2, ev.Status))
		body = binary.AppendUvarint(body, ref(3, resource))
		body = binary.AppendUvarint(body, ref(4, outcome))
		var ip uint64
		if addr != "" {
			ip = 1 + ref(5, addr)
		}
		body = binary.AppendUvarint(body, ip)
	}
	out := make([]byte, 0, 16+len(table)+len(body))
	out = append(out, feedVersion)
	out = binary.AppendUvarint(out, uint64(len(events)))
	out = binary.AppendUvarint(out, uint64(len(refs)))
	out = append(out, table...)
	return append(out, body...)
}

var ipAddressKey = []byte("ipAddress")

// detailsIPAddress returns what details->>'ipAddress' gives for details as stored (NULL as
// ""), and false when that is not a JSON string or null (a number or object, whose text
// PostgreSQL normalizes) or details cannot be read.
func detailsIPAddress(details []byte) (string, bool) {
	if len(details) == 0 || !bytes.Contains(details, ipAddressKey) && bytes.IndexByte(details, '\\') < 0 {
		return "", true // no such key, not even escaped
	}
	if bytes.TrimSpace(details)[0] != '{' {
		return "", true // ->> of anything but an object is NULL
	}
	var m map[string]json.RawMessage // duplicate keys: the last wins, as in jsonb
	if err := json.Unmarshal(details, &m); err != nil {
		return "", false
	}
	raw, ok := m["ipAddress"]
	if !ok || string(raw) == "null" {
		return "", true
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// errFeed is a feed row detection cannot decode.
var errFeed = errors.New("malformed detection feed row")

// decodeFeed decodes an encoded feed row and returns the events keep wants (keep sees each
// id once), and, apart, the id and time of those of them whose values the row does not hold
// (see feedIPUnknown), to be read from audit_log. A malformed row returns an error and no
// event.
func decodeFeed(b []byte, keep func(id int64) bool) ([]detectEvent, []detectLeaf, error) {
	if len(b) == 0 || b[0] != feedVersion {
		return nil, nil, errFeed
	}
	r := feedReader{b: b[1:]}
	count, nStrings := r.uvarint(), r.uvarint()
	if r.bad || nStrings > uint64(len(r.b)) || count > uint64(len(r.b)) {
		return nil, nil, errFeed
	}
	strs := make([]string, 1, nStrings+1) // strs[0] is ""
	for range nStrings {
		strs = append(strs, string(r.bytes(r.uvarint())))
	}
	str := func(ref uint64) string {
		if ref >= uint64(len(strs)) {
			r.bad = true
			return ""
		}
		return strs[ref]
	}
	var events []detectEvent
	var held []detectLeaf
	var id, ts int64
	for range count {
		id += r.varint()
		ts += r.varint()
		e := detectEvent{ID: id}
		e.PrincipalID, e.Action, e.Status = str(r.uvarint()), str(r.uvarint()), str(r.uvarint())
		e.TargetResourceType, e.OutcomeDescription = str(r.uvarint()), str(r.uvarint())
		ip := r.uvarint()
		if ip > feedIPUnknown {
			e.IPAddress = str(ip - 1)
		}
		if r.bad {
			return nil, nil, errFeed
		}
		switch {
		case !keep(id):
		case ip == feedIPUnknown:
			held = append(held, detectLeaf{AuditLogID: id, EventTimestamp: time.UnixMicro(ts).UTC()})
		default:
			e.Timestamp = time.UnixMicro(ts).UTC()
			events = append(events, e)
		}
	}
	if r.bad || len(r.b) != 0 {
		return nil, nil, errFeed
	}
	return events, held, nil
}

// feedReader reads an encoded feed row; the first malformed or missing value sets bad, and
// every read after it gives zero.
type feedReader struct {
	b   []byte
	bad bool
}

func (r *feedReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || r.bad {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

// varint reads a signed varint (binary.AppendVarint's zig-zag form).
func (r *feedReader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (r *feedReader) bytes(n uint64) []byte {
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// readFeed reads org's feed rows overlapping the ids [minID, maxID] and returns the events
// of them keep wants (see decodeFeed), the rows' last ids, and the last ids of the rows it
// could not decode. A row that cannot be decoded is a fault of the writer; its events are
// read from audit_log like any the feed lacks, and the row is to be deleted.
func readFeed(ctx context.Context, conn *pgx.Conn, org string, minID, maxID int64, keep func(id int64) bool) (
	events []detectEvent, lasts, bad []int64, err error) {
	rows, err := conn.Query(ctx, `SELECT last_id, events FROM detection_feed
		WHERE organization_id = $1 AND last_id >= $2 AND first_id <= $3`,
		pgx.QueryResultFormats{pgx.BinaryFormatCode}, org, minID, maxID)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("models: read detection feed: %w", err)
	}
	defer rows.Close()
	var r batchReader
	for rows.Next() {
		v := rows.RawValues()
		last := r.int8(v[0])
		if r.err != nil {
			return nil, nil, nil, fmt.Errorf("models: read detection feed: %w", r.err)
		}
		evs, _, err := decodeFeed(v[1], keep) // the events it does not hold stay wanted
		if err != nil {
			bad = append(bad, last)
			continue
		}
		events = append(events, evs...)
		lasts = append(lasts, last)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, nil, fmt.Errorf("models: read detection feed: %w", err)
	}
	return events, lasts, bad, nil
}

// detectRun is a row of detection_run (migration 0060): the Merkle sequencer appended the
// events of the writes whose feed rows end at lasts as the leaves [first, first+leaves) of
// the organization's log, their ids summing (wrapping) to idSum.
type detectRun struct {
	first  int64
	leaves int
	lasts  []int64
	idSum  int64
}

// fedWrite is one decoded feed row: the events it holds, the ones it left to audit_log,
// and their count and id sum (wrapping).
type fedWrite struct {
	events []detectEvent
	held   []detectLeaf
	n      int
	idSum  int64
}

// whole reports whether the feed rows writes holds the run's events and nothing else: each of
// its rows once, as many events as the run has leaves, summing to its id sum. The rows are
// the server's own (owner-only), so this guards against a run and rows that do not belong
// together (a row trimmed, a run of writes fed by an older version), not against forgery.
func (r detectRun) whole(writes map[int64]*fedWrite) bool {
	n, sum := 0, int64(0)
	for i, last := range r.lasts {
		w := writes[last]
		if w == nil || slices.Contains(r.lasts[:i], last) {
			return false
		}
		n, sum = n+w.n, sum+w.idSum
	}
	return n == r.leaves && sum == r.idSum
}

// readRunBatch takes up to n leaves of org's log from the leaf from on out of detection's
// runs and feed: the whole runs (see detectRun.whole) that follow on from it, their events
// from their feed rows, and those the rows do not hold from audit_log. Without the leaves'
// index read, that is about half of detection's PostgreSQL time per event
// (docs/benchmarks.md). It returns an empty batch when no whole run starts at from, with how
// many leaves to read from audit_leaf instead: up to the next whole run, so the batch after
// that one takes the runs again.
func readRunBatch(ctx context.Context, conn *pgx.Conn, org string, from int64, n int) (detectBatch, int, error) {
	rows, _ := conn.Query(ctx, `SELECT first_leaf, leaves, feed_last_ids, id_sum FROM detection_run
		WHERE organization_id = $1 AND first_leaf >= $2 AND first_leaf < $3 ORDER BY first_leaf`, org, from, from+int64(n))
	runs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (detectRun, error) {
		var r detectRun
		err := row.Scan(&r.first, &r.leaves, &r.lasts, &r.idSum)
		return r, err
	})
	if err != nil {
		return detectBatch{}, 0, fmt.Errorf("models: read detection runs: %w", err)
	}
	if len(runs) == 0 {
		return detectBatch{}, n, nil
	}
	var lasts []int64
	for _, r := range runs {
		lasts = append(lasts, r.lasts...)
	}
	writes, err := readFedWrites(ctx, conn, org, lasts)
	if err != nil {
		return detectBatch{}, 0, err
	}
	var b detectBatch
	for _, r := range runs {
		if r.first != from+int64(b.leaves) || b.leaves+r.leaves > n || !r.whole(writes) {
			break
		}
		b.fed = append(b.fed, r.lasts...)
		b.leaves += r.leaves
	}
	if b.leaves == 0 {
		limit := n
		for _, r := range runs {
			if r.first > from && r.whole(writes) {
				limit = int(r.first - from)
				break
			}
		}
		return detectBatch{}, limit, nil
	}
	var held []detectLeaf
	b.events = make([]detectEvent, 0, b.leaves) // an event is 128 bytes: copied once
	for _, last := range b.fed {
		b.events = append(b.events, writes[last].events...)
		held = append(held, writes[last].held...)
	}
	if len(held) > 0 {
		more, err := readDetectEvents(ctx, conn, org, held)
		if err != nil {
			return detectBatch{}, 0, err
		}
		b.events = append(b.events, more...)
	}
	return b, 0, nil
}

// readFedWrites reads and decodes org's feed rows with the given last ids, by last id. A
// row that cannot be decoded, or a last id two rows share, is left out.
func readFedWrites(ctx context.Context, conn *pgx.Conn, org string, lasts []int64) (map[int64]*fedWrite, error) {
	rows, err := conn.Query(ctx, `SELECT last_id, events FROM detection_feed WHERE organization_id = $1 AND last_id = ANY($2)`,
		pgx.QueryResultFormats{pgx.BinaryFormatCode}, org, lasts)
	if err != nil {
		return nil, fmt.Errorf("models: read detection feed: %w", err)
	}
	defer rows.Close()
	writes := map[int64]*fedWrite{}
	twice := map[int64]bool{}
	all := func(int64) bool { return true }
	var r batchReader
	for rows.Next() {
		v := rows.RawValues()
		last := r.int8(v[0])
		if r.err != nil {
			return nil, fmt.Errorf("models: read detection feed: %w", r.err)
		}
		events, held, err := decodeFeed(v[1], all)
		if err != nil || twice[last] {
			continue
		}
		if _, ok := writes[last]; ok {
			delete(writes, last)
			twice[last] = true
			continue
		}
		w := &fedWrite{events: events, held: held, n: len(events) + len(held)}
		for _, e := range events {
			w.idSum += e.ID
		}
		for _, h := range held {
			w.idSum += h.AuditLogID
		}
		writes[last] = w
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("models: read detection feed: %w", err)
	}
	return writes, nil
}

// TrimDetectionFeed deletes the detection feed rows older than FeedTTL (by the database's
// clock), skipping rows another transaction holds, and returns how many it deleted; it
// deletes the runs as old too.
func TrimDetectionFeed(ctx context.Context, db *gorm.DB) (int64, error) {
	res := db.WithContext(ctx).Exec(`WITH runs AS (DELETE FROM detection_run WHERE ctid = ANY(ARRAY(SELECT ctid FROM detection_run
			WHERE written_at < now() - make_interval(secs => @ttl) FOR UPDATE SKIP LOCKED)))
		DELETE FROM detection_feed WHERE ctid = ANY(ARRAY(SELECT ctid FROM detection_feed
		WHERE written_at < now() - make_interval(secs => @ttl) FOR UPDATE SKIP LOCKED))`, sql.Named("ttl", FeedTTL.Seconds()))
	if res.Error != nil {
		return 0, fmt.Errorf("models: trim the detection feed: %w", res.Error)
	}
	return res.RowsAffected, nil
}
