package models

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"
)

// Detection reads committed events in the order of each organization's Merkle log
// (audit_leaf: append-only, gap-free per organization) from a persisted cursor. One
// transaction per organization and batch locks the cursor row (FOR UPDATE SKIP LOCKED, so
// two instances never process the same organization at once), reads the batch's events,
// records the rules' hits, raises alerts, adds the events to the hourly and daily counts
// and advances the cursor: a crash rolls all of it back, so no event is missed or counted
// twice.
//
// On first start over an existing database the cursor begins at the first leaf: the
// counts include every event of the log, but a rule only records events and raises alerts
// for events inside its window relative to now (no flood of stale alerts for old history).
// The same holds for events that reach the log late: one older than its rule's window when
// detection reads it is counted, not alerted on.
//
// A batch takes its events' values from detection's feed where the ingest writer left them
// there (detectfeed.go), and reads the rest from audit_log.

// DetectionSource is the source of the alerts detection raises.
const DetectionSource = "detection"

// DedupWindow is how long the same alert (organization, rule, principal, severity) is not
// raised again.
const DedupWindow = 300 * time.Second

// maxAlertEvents caps the triggering event ids an alert stores (the newest ones).
const maxAlertEvents = 100

// defaultDetectBatch is how many leaves one transaction processes per organization. A
// batch costs PostgreSQL about 9 ms whatever its size (its counts and hit runs follow the
// organization's principals more than its events; pg_stat_statements in docs/benchmarks.md):
// under heavy ingest the serving detector (WithHold) reads half a batch at a time, and
// 25,000 events share that cost instead of 10,000, for a detection lag p95 of 0.9 – 1.1 s.
const defaultDetectBatch = 50000

// purgeEvery is how often, at most, a detector purges an organization's expired hits.
const purgeEvery = time.Minute

// DefaultDetectHold is how long the serving detector lets an organization's newly logged
// events gather before it reads fewer than half a batch of them (see WithHold).
const DefaultDetectHold = time.Second

// Detector runs detection passes.
type Detector struct {
	db    *gorm.DB
	now   func() time.Time
	batch int
	hold  time.Duration

	mu        sync.Mutex
	lastPurge map[string]time.Time
}

// NewDetector returns a detector over db reading the time from now (time.Now when nil).
func NewDetector(db *gorm.DB, now func() time.Time) *Detector {
	if now == nil {
		now = time.Now
	}
	return &Detector{db: db, now: now, batch: defaultDetectBatch, lastPurge: map[string]time.Time{}}
}

// WithBatch sets how many leaves one transaction processes per organization (n > 0).
func (d *Detector) WithBatch(n int) *Detector {
	if n > 0 {
		d.batch = n
	}
	return d
}

// WithHold makes a pass leave an organization alone while it has fewer than half a batch
// of unread leaves and the oldest of them was logged less than hold ago (by the database's
// clock). Under heavy ingest detection then reads fewer, larger batches: most of its cost
// is per batch and per group a batch touches (hit runs written, counts upserted, windows
// read), not per event. Detection lag stays under hold plus the job's interval plus one
// pass. 0 (the default) reads every pending leaf at once.
func (d *Detector) WithHold(hold time.Duration) *Detector {
	if hold >= 0 {
		d.hold = hold
	}
	return d
}

// DetectResult is what a pass did.
type DetectResult struct {
	Orgs   int // organizations with a batch processed
	Events int // events processed
	Alerts int // alerts raised
}

// Pass processes one batch of every organization with unprocessed leaves whose cursor no
// other instance holds. It returns the first error; batches committed before it stay.
func (d *Detector) Pass(ctx context.Context) (DetectResult, error) {
	var res DetectResult
	db := d.db.WithContext(ctx)
	if err := db.Exec(`INSERT INTO detection_cursor (organization_id)
		SELECT id FROM organizations o WHERE NOT EXISTS (SELECT 1 FROM detection_cursor c WHERE c.organization_id = o.id)
		ON CONFLICT DO NOTHING`).Error; err != nil {
		return res, fmt.Errorf("models: detection cursors: %w", err)
	}
	// One query over every organization: those with a leaf to read (and, with a hold,
	// half a batch of them or one logged hold ago). The log is gap-free, so the leaf at
	// cursor + n - 1 exists exactly when n leaves are pending. Each cursor's leaf is looked
	// up by itself (LATERAL … LIMIT 1, which PostgreSQL does not flatten into a join), and
	// the statement is planned on every pass: as a prepared join, the plan made while
	// audit_leaf was small (a hash join over a sequential scan of it) stayed cached as the
	// log grew, and every pass read the whole log, 60 ms a pass at 1,200,000 events,
	// detection's costliest statement (docs/benchmarks.md).
	var orgs []string
	err := WithPgx(ctx, d.db, func(conn *pgx.Conn) error {
		// The simple protocol: planned afresh on every pass, for the log's size then.
		rows, _ := conn.Query(ctx, detectionBacklogSQL, pgx.QueryExecModeSimpleProtocol, d.hold.Microseconds(),
			d.hold.Microseconds(), max(d.batch/2, 1))
		var err error
		orgs, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return res, fmt.Errorf("models: detection backlog: %w", err)
	}
	for _, org := range orgs {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		n, alerts, err := d.processOrg(ctx, org)
		if err != nil {
			return res, err
		}
		if n > 0 {
			res.Orgs++
			res.Events += n
			res.Alerts += alerts
		}
	}
	return res, nil
}

// detectionBacklogSQL lists the organizations a pass processes: $1 and $2 the hold in
// microseconds, $3 half a batch (see Pass).
const detectionBacklogSQL = `SELECT c.organization_id FROM detection_cursor c
	CROSS JOIN LATERAL (SELECT p.sequenced_at FROM audit_leaf p
		WHERE p.organization_id = c.organization_id AND p.leaf_index = c.leaf_index LIMIT 1) p
	WHERE $1::bigint = 0 OR p.sequenced_at <= clock_timestamp() - make_interval(secs => $2::bigint / 1e6)
		OR EXISTS (SELECT 1 FROM audit_leaf l WHERE l.organization_id = c.organization_id AND l.leaf_index = c.leaf_index + $3::bigint - 1)
	ORDER BY c.organization_id`

// detectLeaf is one leaf of the batch.
type detectLeaf struct {
	LeafIndex      int64
	AuditLogID     int64
	EventTimestamp time.Time
}

// detectEvent is what the rules and counts read of an event ("" for NULL).
type detectEvent struct {
	ID                 int64
	Timestamp          time.Time
	PrincipalID        string
	Action             string
	Status             string
	OutcomeDescription string
	TargetResourceType string
	IPAddress          string
}

// detectHit is one event matched by one rule.
type detectHit struct {
	rule, group, resource string
	at                    time.Time
	id                    int64
}

// processOrg processes org's next batch in one transaction and returns how many events it
// processed (0 when another instance holds the cursor or nothing is pending) and how many
// alerts it raised.
func (d *Detector) processOrg(ctx context.Context, org string) (int, int, error) {
	var processed, raised int
	var fed []int64 // last ids of the feed rows the batch finished
	// The batch is read with pgx on the transaction's own connection (see batchReader).
	err := d.db.WithContext(ctx).Connection(func(c *gorm.DB) error {
		conn, ok := c.Statement.ConnPool.(*sql.Conn)
		if !ok {
			return fmt.Errorf("models: detection's connection is %T", c.Statement.ConnPool)
		}
		if err := c.Transaction(func(tx *gorm.DB) (err error) {
			processed, raised, fed, err = d.processBatch(ctx, conn, tx, org)
			return err
		}); err != nil {
			return err
		}
		// Committed: the feed rows it finished, and the runs below the cursor, are of no more
		// use. Deleted after the commit, not inside the batch's transaction, which holds the
		// organization's cache version from its counts on (see processBatch); one left behind
		// (this failing) is never read again, since its events are all below the cursor, and
		// the trim job deletes it.
		if processed == 0 {
			return nil
		}
		return consumeFeed(c, org, fed)
	})
	if err != nil {
		return 0, 0, err
	}
	return processed, raised, nil
}

// processBatch is processOrg's work in its transaction tx, whose connection is conn. It
// returns how many leaves it processed, how many alerts it raised and the last ids of the
// feed rows it finished.
func (d *Detector) processBatch(ctx context.Context, conn *sql.Conn, tx *gorm.DB, org string) (int, int, []int64, error) {
	var cur []int64
	if err := tx.Raw(`SELECT leaf_index FROM detection_cursor WHERE organization_id = ? FOR UPDATE SKIP LOCKED`,
		org).Scan(&cur).Error; err != nil {
		return 0, 0, nil, fmt.Errorf("models: lock detection cursor: %w", err)
	}
	if len(cur) == 0 {
		return 0, 0, nil, nil // another instance is on it
	}
	var b detectBatch
	err := conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("models: driver connection is %T, not pgx", driverConn)
		}
		var err error
		b, err = readBatch(ctx, c.Conn(), org, cur[0], d.batch)
		return err
	})
	if err != nil || b.leaves == 0 {
		return 0, 0, nil, err
	}
	now := d.now().UTC()
	rules, err := listAlertRules(tx, org)
	if err != nil {
		return 0, 0, nil, err
	}
	loc, err := orgLocation(tx, org)
	if err != nil {
		return 0, 0, nil, err
	}
	hits := matchRules(b.events, rules, loc, now)
	n, err := d.evaluate(tx, org, rules, hits, loc, now)
	if err != nil {
		return 0, 0, nil, err
	}
	if err := d.purgeHits(tx, org, rules, now); err != nil {
		return 0, 0, nil, err
	}
	// Last before the cursor: the counts' upserts bump the organization's cache version,
	// whose row lock the sequencer's next leaves wait for until this commits.
	if err := addEventCounts(tx, org, b.events); err != nil {
		return 0, 0, nil, err
	}
	if err := tx.Exec(`UPDATE detection_cursor SET leaf_index = ?, updated_at = ? WHERE organization_id = ?`,
		cur[0]+int64(b.leaves), now, org).Error; err != nil {
		return 0, 0, nil, fmt.Errorf("models: advance detection cursor: %w", err)
	}
	return b.leaves, n, b.fed, nil
}

// detectBatch is a batch of an organization's log: how many leaves from the cursor on, their
// events, and the last ids of the feed rows it finishes.
type detectBatch struct {
	leaves int
	events []detectEvent
	fed    []int64
}

// readBatch reads up to n leaves of org's log from the leaf from on: from detection's runs
// and feed when a whole run starts there (readRunBatch), else the leaves themselves, up to
// the next whole run, and their events.
func readBatch(ctx context.Context, conn *pgx.Conn, org string, from int64, n int) (detectBatch, error) {
	b, limit, err := readRunBatch(ctx, conn, org, from, n)
	if err != nil || b.leaves > 0 {
		return b, err
	}
	leaves, err := readLeaves(ctx, conn, org, from, limit)
	if err != nil {
		return detectBatch{}, err
	}
	// The log is gap-free; stop at a gap rather than skip a leaf.
	for i := range leaves {
		if leaves[i].LeafIndex != from+int64(i) {
			leaves = leaves[:i]
			break
		}
	}
	if len(leaves) == 0 {
		return detectBatch{}, nil
	}
	b = detectBatch{leaves: len(leaves)}
	b.events, b.fed, err = readBatchEvents(ctx, conn, org, leaves)
	return b, err
}

// readBatchEvents returns the leaves' events: from the detection feed where it holds them,
// the others from audit_log (readDetectEvents). It also returns the last ids of the feed
// rows whose last event is a leaf of this batch: the rows the batch finishes (a write's
// events are sequenced as one run of leaves, in id order), and of those it could not decode.
func readBatchEvents(ctx context.Context, conn *pgx.Conn, org string, leaves []detectLeaf) ([]detectEvent, []int64, error) {
	minID, maxID := leaves[0].AuditLogID, leaves[0].AuditLogID
	for _, l := range leaves {
		minID, maxID = min(minID, l.AuditLogID), max(maxID, l.AuditLogID)
	}
	want := newIDSet(minID, maxID, len(leaves))
	for _, l := range leaves {
		want.add(l.AuditLogID)
	}
	batch := want.clone() // want gives ids up as their events are found
	fed, lasts, bad, err := readFeed(ctx, conn, org, minID, maxID, want.has)
	if err != nil {
		return nil, nil, err
	}
	events := make([]detectEvent, 0, len(leaves))
	for _, e := range fed {
		if want.take(e.ID) { // an id is one event, even if two rows held it
			events = append(events, e)
		}
	}
	done := bad // rows that cannot be decoded go too
	for _, last := range lasts {
		if batch.has(last) {
			done = append(done, last)
		}
	}
	if len(events) == len(leaves) {
		return events, done, nil
	}
	rest := make([]detectLeaf, 0, len(leaves)-len(events))
	for _, l := range leaves {
		if want.has(l.AuditLogID) {
			rest = append(rest, l)
		}
	}
	more, err := readDetectEvents(ctx, conn, org, rest)
	if err != nil {
		return nil, nil, err
	}
	return append(events, more...), done, nil
}

// consumeFeed deletes the feed rows a batch finished (their last ids) and org's runs below
// its cursor. Rows another transaction holds are left to it (an erasure's trigger deleting
// every feed row, the trim job), so detection never waits on one.
func consumeFeed(db *gorm.DB, org string, lasts []int64) error {
	if err := db.Exec(`WITH runs AS (DELETE FROM detection_run WHERE ctid = ANY(ARRAY(SELECT ctid FROM detection_run
			WHERE organization_id = @org AND first_leaf < (SELECT leaf_index FROM detection_cursor WHERE organization_id = @org)
			FOR UPDATE SKIP LOCKED)))
		DELETE FROM detection_feed WHERE ctid = ANY(ARRAY(SELECT ctid FROM detection_feed
		WHERE organization_id = @org AND last_id = ANY(CAST(@lasts AS bigint[])) FOR UPDATE SKIP LOCKED))`,
		sql.Named("org", org), sql.Named("lasts", pgArray(lasts))).Error; err != nil {
		return fmt.Errorf("models: consume the detection feed: %w", err)
	}
	return nil
}

// readDetectEvents reads the leaves' events, bounded by their time range (so PostgreSQL
// prunes audit_log's partitions) and their id range; the few events of those ranges that
// are not leaves of this batch are dropped here. (An id list in SQL, id = ANY($1), is
// searched element by element once PostgreSQL caches a generic plan for the statement:
// 20,000 ids cost about 400 million comparisons per batch.) An event no longer there
// (removed by retention) is skipped here; one the feed held is counted all the same
// (detectfeed.go). The address is read from details only for events
// without a principal, and the outcome only for failures: the only ones that use them.
// Rows are decoded from their binary form by batchReader (see there).
func readDetectEvents(ctx context.Context, conn *pgx.Conn, org string, leaves []detectLeaf) ([]detectEvent, error) {
	lo, hi := leaves[0].EventTimestamp, leaves[0].EventTimestamp
	minID, maxID := leaves[0].AuditLogID, leaves[0].AuditLogID
	for _, l := range leaves {
		lo, hi = minTime(lo, l.EventTimestamp), maxTime(hi, l.EventTimestamp)
		minID, maxID = min(minID, l.AuditLogID), max(maxID, l.AuditLogID)
	}
	want := newIDSet(minID, maxID, len(leaves))
	for _, l := range leaves {
		want.add(l.AuditLogID)
	}
	rows, err := conn.Query(ctx, `SELECT id, "timestamp", principal_id, action, status,
			CASE WHEN status = 'failure' THEN outcome_description END AS outcome_description, target_resource_type,
			CASE WHEN coalesce(principal_id, '') = '' THEN details->>'ipAddress' END AS ip_address
		FROM audit_log WHERE organization_id = $1 AND "timestamp" >= $2 AND "timestamp" <= $3 AND id >= $4 AND id <= $5`,
		pgx.QueryResultFormats{pgx.BinaryFormatCode}, org, lo, hi, minID, maxID)
	if err != nil {
		return nil, fmt.Errorf("models: read events for detection: %w", err)
	}
	defer rows.Close()
	r := batchReader{seen: map[string]string{}}
	events := make([]detectEvent, 0, len(leaves))
	for rows.Next() {
		v := rows.RawValues()
		e := detectEvent{ID: r.int8(v[0]), Timestamp: r.timestamptz(v[1]), PrincipalID: r.text(v[2]), Action: r.text(v[3]),
			Status: r.text(v[4]), OutcomeDescription: r.text(v[5]), TargetResourceType: r.text(v[6]), IPAddress: r.text(v[7])}
		if r.err != nil {
			return nil, fmt.Errorf("models: read events for detection: %w", r.err)
		}
		if want.take(e.ID) { // an id is one event
			events = append(events, e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("models: read events for detection: %w", err)
	}
	return events, nil
}

// readLeaves returns up to n leaves of org's log from index from on, in order. A closed
// range, not LIMIT: with a backlog, an open one made PostgreSQL read and sort every
// pending leaf to return the first batch.
func readLeaves(ctx context.Context, conn *pgx.Conn, org string, from int64, n int) ([]detectLeaf, error) {
	rows, err := conn.Query(ctx, `SELECT leaf_index, audit_log_id, event_timestamp FROM audit_leaf
		WHERE organization_id = $1 AND leaf_index >= $2 AND leaf_index < $3 ORDER BY leaf_index`,
		pgx.QueryResultFormats{pgx.BinaryFormatCode}, org, from, from+int64(n))
	if err != nil {
		return nil, fmt.Errorf("models: read leaves: %w", err)
	}
	defer rows.Close()
	var r batchReader
	leaves := make([]detectLeaf, 0, n)
	for rows.Next() {
		v := rows.RawValues()
		leaves = append(leaves, detectLeaf{LeafIndex: r.int8(v[0]), AuditLogID: r.int8(v[1]), EventTimestamp: r.timestamptz(v[2])})
		if r.err != nil {
			return nil, fmt.Errorf("models: read leaves: %w", r.err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("models: read leaves: %w", err)
	}
	return leaves, nil
}

// idSet is the batch's event ids, taken out as their events are read: a bitmap over the
// id range when it is at most 64 ids per leaf wide (one organization's batch among the
// events of a few others), else a map. Its lookups were a third of reading a batch.
type idSet struct {
	lo   int64
	bits []uint64
	ids  map[int64]struct{}
}

func newIDSet(lo, hi int64, n int) idSet {
	if span := hi - lo + 1; span <= 64*int64(n) {
		return idSet{lo: lo, bits: make([]uint64, span/64+1)}
	}
	return idSet{ids: make(map[int64]struct{}, n)}
}

func (s idSet) add(id int64) {
	if s.ids != nil {
		s.ids[id] = struct{}{}
		return
	}
	i := id - s.lo
	s.bits[i/64] |= 1 << (i % 64)
}

func (s idSet) clone() idSet {
	return idSet{lo: s.lo, bits: slices.Clone(s.bits), ids: maps.Clone(s.ids)}
}

// has reports whether id is in the set.
func (s idSet) has(id int64) bool {
	if s.ids != nil {
		_, ok := s.ids[id]
		return ok
	}
	i := id - s.lo
	return i >= 0 && i/64 < int64(len(s.bits)) && s.bits[i/64]&(1<<(i%64)) != 0
}

// take reports whether id is in the set and removes it.
func (s idSet) take(id int64) bool {
	if s.ids != nil {
		_, ok := s.ids[id]
		delete(s.ids, id)
		return ok
	}
	i := id - s.lo
	if i < 0 || i/64 >= int64(len(s.bits)) || s.bits[i/64]&(1<<(i%64)) == 0 {
		return false
	}
	s.bits[i/64] &^= 1 << (i % 64)
	return true
}

// batchReader decodes the binary columns of detection's reads straight from the wire: a
// bigint, a timestamptz (microseconds since 2000-01-01 UTC) and text, a NULL text as "".
// Text values are interned per read: a batch's actions, statuses, principals and resource
// types repeat, and one string per value instead of one per row halved detection's CPU
// time in Go (pgx's Scan through database/sql converted and allocated every column;
// docs/benchmarks.md). The first malformed value sets err.
type batchReader struct {
	seen map[string]string
	err  error
}

func (r *batchReader) int8(b []byte) int64 {
	if len(b) != 8 {
		r.fail("bigint", b)
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

func (r *batchReader) timestamptz(b []byte) time.Time {
	us := r.int8(b)
	if us == math.MaxInt64 || us == math.MinInt64 {
		r.fail("finite timestamptz", b)
	}
	return time.UnixMicro(pgEpoch.UnixMicro() + us).UTC()
}

func (r *batchReader) text(b []byte) string {
	if b == nil {
		return ""
	}
	if s, ok := r.seen[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	r.seen[s] = s
	return s
}

func (r *batchReader) fail(want string, b []byte) {
	if r.err == nil {
		r.err = fmt.Errorf("a %d-byte value where a binary %s was expected", len(b), want)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// orgLocation is org's time zone (UTC when unset, unknown or not a zone name ValidTimeZone
// accepts, as one saved before that check was strict may be).
func orgLocation(tx *gorm.DB, org string) (*time.Location, error) {
	var tz []string
	if err := tx.Raw(`SELECT time_zone FROM organizations WHERE id = ?`, org).Scan(&tz).Error; err != nil {
		return nil, fmt.Errorf("models: read time zone: %w", err)
	}
	if len(tz) == 1 {
		if loc, err := ValidTimeZone(tz[0]); err == nil {
			return loc, nil
		}
	}
	return time.UTC, nil
}

// The rules' predicates (the seed's, see DefaultAlertRules) look for words in an event's
// action; actionWords finds them once per distinct action of a batch.
type actionWords uint8

const (
	actionLoginFailure actionWords = 1 << iota // auth.login.failure
	actionDataRead                             // data.read or fhir.
	actionBulk                                 // data.export, data.import or bulk
	actionData                                 // data. or fhir.
)

func wordsOf(action string) actionWords {
	var w actionWords
	if strings.Contains(action, "auth.login.failure") {
		w |= actionLoginFailure
	}
	fhir := strings.Contains(action, "fhir.")
	if strings.Contains(action, "data.read") || fhir {
		w |= actionDataRead
	}
	if strings.Contains(action, "data.export") || strings.Contains(action, "data.import") || strings.Contains(action, "bulk") {
		w |= actionBulk
	}
	if strings.Contains(action, "data.") || fhir {
		w |= actionData
	}
	return w
}

func isFailedLogin(e *detectEvent, w actionWords) bool {
	return e.Status == "failure" && w&actionLoginFailure != 0
}

func isUnauthorized(e *detectEvent, denials map[string]bool) bool {
	if e.Status != "failure" || e.OutcomeDescription == "" {
		return false
	}
	denied, ok := denials[e.OutcomeDescription]
	if !ok {
		o := strings.ToLower(e.OutcomeDescription)
		denied = strings.Contains(o, "unauthorized") || strings.Contains(o, "access denied") || strings.Contains(o, "forbidden")
		denials[e.OutcomeDescription] = denied
	}
	return denied
}

func isDataRead(e *detectEvent, w actionWords) bool {
	return e.Status == "success" && (w&actionDataRead != 0 || e.TargetResourceType != "")
}

func isBulk(w actionWords) bool { return w&actionBulk != 0 }

func isDataAccess(e *detectEvent, w actionWords) bool {
	return e.Status == "success" && w&actionData != 0
}

// OffHours reports whether t falls in [22:00, 06:00) of loc.
func OffHours(t time.Time, loc *time.Location) bool {
	h := t.In(loc).Hour()
	return h >= 22 || h < 6
}

// who is the group key of a per-principal rule: the principal, else the address.
func who(e *detectEvent) string {
	if e.PrincipalID != "" {
		return Truncate(e.PrincipalID, 255)
	}
	return Truncate(e.IPAddress, 255)
}

// matchRules returns the hits of the enabled rules among events, leaving out events too
// old to count in their rule's window any more.
func matchRules(events []detectEvent, rules []AlertRule, loc *time.Location, now time.Time) []detectHit {
	enabled := slices.DeleteFunc(slices.Clone(rules), func(r AlertRule) bool { return !r.Enabled })
	if len(enabled) == 0 {
		return nil
	}
	cutoffs := make([]time.Time, len(enabled)) // per rule: older events count in no window
	for i, r := range enabled {
		cutoffs[i] = now.Add(-2 * r.Window)
	}
	hits := make([]detectHit, 0, len(events)) // most events match one rule at most
	words := map[string]actionWords{}
	denials := map[string]bool{} // by outcome: a batch's outcomes repeat
	for i := range events {
		e := &events[i]
		w, ok := words[e.Action]
		if !ok {
			w = wordsOf(e.Action)
			words[e.Action] = w
		}
		group := "" // who(e), worked out once it is needed
		for i, r := range enabled {
			if e.Timestamp.Before(cutoffs[i]) {
				continue
			}
			var ok bool
			switch r.Rule {
			case RuleFailedLogins:
				ok = isFailedLogin(e, w)
			case RuleUnauthorizedAccess:
				ok = isUnauthorized(e, denials)
			case RuleDataAccessVelocity:
				ok = isDataRead(e, w)
			case RuleBulkOperations:
				ok = isBulk(w)
			case RuleOffHoursAccess:
				ok = isDataAccess(e, w) && OffHours(e.Timestamp, loc)
			}
			if !ok {
				continue
			}
			h := detectHit{rule: r.Rule, at: e.Timestamp.UTC(), id: e.ID, resource: Truncate(e.TargetResourceType, 255)}
			if r.Rule != RuleBulkOperations { // the organization's rule: no group
				if group == "" {
					group = who(e)
				}
				h.group = group
			}
			hits = append(hits, h)
		}
	}
	return hits
}

// storedHit is a hit read back from detection_hit_run.
type storedHit struct {
	GroupKey     string
	EventTime    time.Time
	EventID      int64
	ResourceType *string
}

// evaluate records hits, then for every (rule, group) they touch counts the hits in each
// of the rule's windows that holds a new hit, and raises an alert for the latest window that
// reaches the threshold (unless the same alert was raised within DedupWindow). It returns
// how many alerts it raised.
//
// A hit no future window can count is not recorded: while a group is quiet (its own alert,
// or the rule's alert storm, within DedupWindow) it cannot alert, and the first window it
// can alert for after that ends no earlier than a window before the quiet ends, so it holds
// no hit older than two windows before then. Under sustained load, where the busy groups
// alert once and stay quiet, that is most hits of the velocity rule.
func (d *Detector) evaluate(tx *gorm.DB, org string, rules []AlertRule, hits []detectHit, loc *time.Location, now time.Time) (int, error) {
	if len(hits) == 0 {
		return 0, nil
	}
	quiets := make(map[string]quiet, len(rules))
	for _, r := range rules {
		if !slices.ContainsFunc(hits, func(h detectHit) bool { return h.rule == r.Rule }) {
			continue
		}
		q, err := quietGroups(tx, org, r, now)
		if err != nil {
			return 0, err
		}
		quiets[r.Rule] = q
	}
	if err := insertHits(tx, org, countable(hits, rules, quiets)); err != nil {
		return 0, err
	}
	raised := 0
	for _, r := range rules {
		q, ok := quiets[r.Rule]
		if !ok {
			continue
		}
		fresh := map[string]map[int64]bool{} // group → new event ids
		var lo, hi time.Time
		for _, h := range hits {
			if h.rule != r.Rule || q.until(h.group).After(now) {
				continue // a quiet group raises nothing now: its window is not read
			}
			if fresh[h.group] == nil {
				fresh[h.group] = map[int64]bool{}
			}
			fresh[h.group][h.id] = true
			if lo.IsZero() || h.at.Before(lo) {
				lo = h.at
			}
			if h.at.After(hi) {
				hi = h.at
			}
		}
		if len(fresh) == 0 {
			continue
		}
		groups := make([]string, 0, len(fresh))
		for g := range fresh {
			groups = append(groups, g)
		}
		sort.Strings(groups)
		stored, err := readWindows(tx, org, r, groups, lo.Add(-r.Window), hi.Add(r.Window))
		if err != nil {
			return 0, err
		}
		for len(stored) > 0 {
			n := 1
			for n < len(stored) && stored[n].GroupKey == stored[0].GroupKey {
				n++
			}
			group := stored[:n]
			stored = stored[n:]
			w, ok := latestWindow(group, fresh[group[0].GroupKey], r, now)
			if !ok {
				continue
			}
			ok, err := d.raise(tx, org, r, group[0].GroupKey, w, loc, now)
			if err != nil {
				return 0, err
			}
			if ok {
				raised++
			}
		}
	}
	return raised, nil
}

// quiet is until when the groups of one rule cannot raise an alert: a group until
// DedupWindow after its own alert of the rule's severity, every group while the rule's storm
// alert stands (MaxAlertsPerRule alerts of the rule within DedupWindow, one of them the storm
// alert). The zero time means "not quiet".
type quiet struct {
	all    time.Time            // the storm's end
	groups map[string]time.Time // each group's own alert's end
}

func (q quiet) until(group string) time.Time {
	if g := q.groups[group]; g.After(q.all) {
		return g
	}
	return q.all
}

// quietGroups reads r's alerts within DedupWindow of now into its quiet. Alerts are only
// added within the pass (and only by the pass holding the organization's cursor), so a
// group quiet here stays quiet at least until the time given: raise would refuse it.
func quietGroups(tx *gorm.DB, org string, r AlertRule, now time.Time) (quiet, error) {
	var recent []struct {
		Principal *string
		Severity  string
		Source    string
		CreatedAt time.Time
	}
	if err := tx.Raw(`SELECT principal, severity, source, created_at FROM alerts
		WHERE organization_id = ? AND rule = ? AND created_at > ? ORDER BY created_at`,
		org, r.Rule, now.Add(-DedupWindow)).Scan(&recent).Error; err != nil {
		return quiet{}, fmt.Errorf("models: look up recent alerts: %w", err)
	}
	q := quiet{groups: map[string]time.Time{}}
	var storm time.Time
	for _, a := range recent {
		end := a.CreatedAt.Add(DedupWindow)
		if a.Source == StormSource && end.After(storm) {
			storm = end
		}
		if a.Severity != r.Severity {
			continue
		}
		group := "" // the organization's group, or a storm alert
		if a.Principal != nil {
			group = *a.Principal
		}
		if end.After(q.groups[group]) {
			q.groups[group] = end
		}
	}
	// The storm holds while it stands and MaxAlertsPerRule alerts are within DedupWindow:
	// with no new alert, until the (n − MaxAlertsPerRule + 1)-th oldest of the n leaves it.
	if n := len(recent); !storm.IsZero() && n >= MaxAlertsPerRule {
		q.all = recent[n-MaxAlertsPerRule].CreatedAt.Add(DedupWindow)
		if storm.Before(q.all) {
			q.all = storm
		}
	}
	return q, nil
}

// countable returns the hits some future window of their rule can still count: those not
// older than two windows before their group's quiet ends (see evaluate).
func countable(hits []detectHit, rules []AlertRule, quiets map[string]quiet) []detectHit {
	windows := make(map[string]time.Duration, len(rules))
	for _, r := range rules {
		windows[r.Rule] = r.Window
	}
	kept := make([]detectHit, 0, len(hits))
	for _, h := range hits {
		if h.at.Before(quiets[h.rule].until(h.group).Add(-2 * windows[h.rule])) {
			continue
		}
		kept = append(kept, h)
	}
	return kept
}

// latestWindow returns the latest window of r (the hits in (t - Window, t] for a hit at
// t) that holds at least r.Threshold hits, one of them new, and false when there is none
// (or it ended more than a window before now). Events reach the log out of timestamp
// order, so a new hit may complete a window that ends at an older, later-timed hit.
func latestWindow(group []storedHit, fresh map[int64]bool, r AlertRule, now time.Time) ([]storedHit, bool) {
	newBefore := make([]int, len(group)+1) // new hits in group[:k]
	for k, h := range group {
		newBefore[k+1] = newBefore[k]
		if fresh[h.EventID] {
			newBefore[k+1]++
		}
	}
	var best []storedHit
	start := 0
	for end := 0; end < len(group); end++ {
		t := group[end].EventTime
		if end+1 < len(group) && group[end+1].EventTime.Equal(t) {
			continue // the window ends after every hit at the same instant
		}
		for !group[start].EventTime.After(t.Add(-r.Window)) {
			start++
		}
		if end-start+1 < r.Threshold || newBefore[end+1]-newBefore[start] == 0 || t.Before(now.Add(-r.Window)) {
			continue
		}
		best = group[start : end+1]
	}
	return best, best != nil
}

// readWindows returns the recorded hits of r's groups in (from, to), ordered by group, time
// and event id, leaving out every group whose runs there hold fewer hits than r.Threshold
// in all: no window inside the range can reach the threshold, so its hits are not read.
func readWindows(tx *gorm.DB, org string, r AlertRule, groups []string, from, to time.Time) ([]storedHit, error) {
	var stored []storedHit
	err := tx.Raw(`WITH runs AS (
			SELECT group_key, hits, event_times, event_ids, resource_types FROM detection_hit_run
			WHERE organization_id = ? AND rule = ? AND group_key IN ? AND last_time > ? AND first_time < ?
		), reachable AS (
			SELECT group_key FROM runs GROUP BY group_key HAVING sum(hits) >= ?
		)
		SELECT runs.group_key, u.event_time, u.event_id, u.resource_type
		FROM runs JOIN reachable USING (group_key)
		CROSS JOIN LATERAL unnest(runs.event_times, runs.event_ids, runs.resource_types) AS u (event_time, event_id, resource_type)
		WHERE u.event_time > ? AND u.event_time < ?
		ORDER BY runs.group_key, u.event_time, u.event_id`,
		org, r.Rule, groups, from, to, r.Threshold, from, to).Scan(&stored).Error
	if err != nil {
		return nil, fmt.Errorf("models: read detection window: %w", err)
	}
	// A hit is recorded once (a batch commits with its cursor), but a window must never
	// count an event twice, so a repeated (time, event) is dropped here too.
	kept := stored[:0]
	for i, h := range stored {
		if i > 0 && h.EventID == stored[i-1].EventID && h.GroupKey == stored[i-1].GroupKey && h.EventTime.Equal(stored[i-1].EventTime) {
			continue
		}
		kept = append(kept, h)
	}
	return kept, nil
}

// insertHits records hits as one run per (rule, group): a row with the group's hits of
// this batch, in (time, event id) order. The hits are grouped and sorted here and sent as
// binary arrays, each run a slice of them (resource types as indexes into the batch's
// distinct types, so every slice is of fixed-width elements): PostgreSQL neither parses
// text literals nor sorts each group for its aggregates, which was most of detection's time
// in the database.
func insertHits(tx *gorm.DB, org string, hits []detectHit) error {
	if len(hits) == 0 {
		return nil
	}
	// Hits come in log order, which is nearly time order: bucket them by (rule, group) and
	// sort only the buckets that are not in order yet.
	type runKey struct{ rule, group string }
	index := map[runKey]int{}
	var buckets [][]detectHit
	for _, h := range hits {
		k := runKey{h.rule, h.group}
		i, ok := index[k]
		if !ok {
			i = len(buckets)
			index[k] = i
			buckets = append(buckets, nil)
		}
		buckets[i] = append(buckets[i], h)
	}
	byTime := func(a, b detectHit) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	}
	hits = make([]detectHit, 0, len(hits))
	for _, b := range buckets {
		if !slices.IsSortedFunc(b, byTime) {
			slices.SortFunc(b, byTime)
		}
		hits = append(hits, b...)
	}
	times, ids, res := make([]time.Time, len(hits)), make([]int64, len(hits)), make([]int32, len(hits))
	types := []pgtype.Text{{}} // index 1 (PostgreSQL's first) is no type
	typeIndex := map[string]int32{}
	var rules, groups []string
	var firsts, lasts []time.Time
	var counts, los, his []int32
	for i, h := range hits {
		times[i], ids[i], res[i] = h.at, h.id, 1
		if h.resource != "" {
			k, ok := typeIndex[h.resource]
			if !ok {
				types = append(types, pgtype.Text{String: h.resource, Valid: true})
				k = int32(len(types))
				typeIndex[h.resource] = k
			}
			res[i] = k
		}
		if i == 0 || h.rule != hits[i-1].rule || h.group != hits[i-1].group {
			rules, groups, firsts = append(rules, h.rule), append(groups, h.group), append(firsts, h.at)
			lasts, counts, los, his = append(lasts, h.at), append(counts, 0), append(los, int32(i+1)), append(his, 0)
		}
		k := len(rules) - 1
		counts[k]++
		his[k] = int32(i + 1)
		lasts[k] = h.at
	}
	err := tx.Exec(`INSERT INTO detection_hit_run (organization_id, rule, group_key, first_time, last_time, hits,
			event_times, event_ids, resource_types)
		SELECT ?, r.rule, r.group_key, r.first_time, r.last_time, r.hits, h.t[r.lo:r.hi], h.id[r.lo:r.hi],
			ARRAY(SELECT h.types[x] FROM unnest(h.res[r.lo:r.hi]) WITH ORDINALITY AS u (x, n) ORDER BY n)
		FROM (SELECT ?::timestamptz[] AS t, ?::bigint[] AS id, ?::int[] AS res, ?::text[] AS types) h,
			unnest(?::text[], ?::text[], ?::timestamptz[], ?::timestamptz[], ?::int[], ?::int[], ?::int[])
				AS r (rule, group_key, first_time, last_time, hits, lo, hi)`,
		org, pgArray(times), pgArray(ids), pgArray(res), pgArray(types),
		pgArray(rules), pgArray(groups), pgArray(firsts), pgArray(lasts), pgArray(counts), pgArray(los), pgArray(his)).Error
	if err != nil {
		return fmt.Errorf("models: record detection hits: %w", err)
	}
	return nil
}

// pgArray is s as one array parameter, sent in binary (GORM expands a plain slice into a
// list of parameters, and a text literal costs building here and parsing there).
func pgArray[T any](s []T) pgtype.Array[T] {
	a := pgtype.Array[T]{Elements: s, Valid: true}
	if len(s) > 0 {
		a.Dims = []pgtype.ArrayDimension{{Length: int32(len(s)), LowerBound: 1}}
	}
	return a
}

// raise inserts the alert of window w unless the same alert was raised within
// DedupWindow of now; it reports whether it raised one.
// MaxAlertsPerRule bounds the alerts one rule raises for one organization within the dedup
// window; past it, one storm alert stands for the rest.
const MaxAlertsPerRule = 20

// StormSource is the source of a rule's storm alert (it has no principal).
const StormSource = "detection-storm"

func (d *Detector) raise(tx *gorm.DB, org string, r AlertRule, group string, w []storedHit, loc *time.Location, now time.Time) (bool, error) {
	var recent []int
	if err := tx.Raw(`SELECT 1 FROM alerts WHERE organization_id = ? AND rule = ? AND principal IS NOT DISTINCT FROM NULLIF(?, '')
		AND severity = ? AND created_at > ? LIMIT 1`, org, r.Rule, group, r.Severity, now.Add(-DedupWindow)).Scan(&recent).Error; err != nil {
		return false, fmt.Errorf("models: look up recent alert: %w", err)
	}
	if len(recent) > 0 {
		return false, nil
	}
	// An alert storm (one client inventing principals, each just over the threshold) is
	// capped per organization and rule: past MaxAlertsPerRule within the dedup window,
	// one storm alert says so instead of one alert (and its notifications) per principal.
	var raised int64
	if err := tx.Raw(`SELECT count(*) FROM alerts WHERE organization_id = ? AND rule = ? AND created_at > ?`,
		org, r.Rule, now.Add(-DedupWindow)).Scan(&raised).Error; err != nil {
		return false, fmt.Errorf("models: count recent alerts: %w", err)
	}
	a := describeDetection(org, r, group, w, loc)
	if raised >= MaxAlertsPerRule {
		var storm []int
		if err := tx.Raw(`SELECT 1 FROM alerts WHERE organization_id = ? AND rule = ? AND source = ? AND created_at > ? LIMIT 1`,
			org, r.Rule, StormSource, now.Add(-DedupWindow)).Scan(&storm).Error; err != nil {
			return false, fmt.Errorf("models: look up alert storm: %w", err)
		}
		if len(storm) > 0 {
			return false, nil
		}
		a.Principal, a.Source = "", StormSource
		a.Title = fmt.Sprintf("Alert storm: rule %s raised %d alerts in %s; more are suppressed", r.Name, raised, humanDuration(DedupWindow))
		a.Description = fmt.Sprintf("More than %d principals reached the threshold of %s within %s. Further alerts of this rule "+
			"are held back until the storm ends; the last one held back was about %s. Look at the events of this rule's action "+
			"in the events list.", MaxAlertsPerRule, r.Name, humanDuration(DedupWindow), group)
		if m, ok := a.Metadata.(map[string]any); ok {
			m["suppressed"] = true
		}
	}
	meta, err := json.Marshal(a.Metadata)
	if err != nil {
		return false, fmt.Errorf("models: alert metadata: %w", err)
	}
	err = tx.Exec(`INSERT INTO alerts (id, organization_id, severity, type, title, description, source,
		metadata, rule, principal, event_ids, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, ''), ?, ?, ?)`,
		"alert_"+RandomToken(12), org, a.Severity, a.Type, Truncate(a.Title, 500), a.Description, a.Source, string(meta),
		a.Rule, a.Principal, pq64(a.EventIDs), now, now).Error
	if err != nil {
		return false, fmt.Errorf("models: raise alert: %w", err)
	}
	return true, nil
}

// describeDetection is the alert of window w: a title that says what happened ("5 failed
// sign-ins for dr.smith in 5 min"), the details, and the newest triggering events.
func describeDetection(org string, r AlertRule, group string, w []storedHit, loc *time.Location) NewAlert {
	n := len(w)
	first, last := w[0].EventTime, w[n-1].EventTime
	who := group
	if who == "" {
		who = "an unknown principal"
	}
	span := humanDuration(r.Window)
	var title, typ string
	var types []string
	switch r.Rule {
	case RuleFailedLogins:
		title, typ = fmt.Sprintf("%d failed sign-ins for %s in %s", n, who, span), "SECURITY"
	case RuleUnauthorizedAccess:
		title, typ = fmt.Sprintf("%d unauthorized access attempts by %s in %s", n, who, span), "SECURITY"
	case RuleDataAccessVelocity:
		typ = "COMPLIANCE"
		seen := map[string]bool{}
		for _, h := range w {
			if h.ResourceType != nil && *h.ResourceType != "" && !seen[*h.ResourceType] {
				seen[*h.ResourceType] = true
				types = append(types, *h.ResourceType)
			}
		}
		sort.Strings(types)
		title = fmt.Sprintf("%d data reads by %s in %s", n, who, span)
	case RuleBulkOperations:
		title, typ = fmt.Sprintf("%d bulk operations in %s", n, span), "COMPLIANCE"
	case RuleOffHoursAccess:
		typ = "COMPLIANCE"
		if n == 1 {
			title = fmt.Sprintf("Data access off hours by %s at %s %s", who, last.In(loc).Format("15:04"), loc.String())
		} else {
			title = fmt.Sprintf("%d data accesses off hours by %s in %s", n, who, span)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d matching events between %s and %s (threshold %d in %s).", ruleName(r.Rule), n,
		first.UTC().Format("2006-01-02 15:04:05 UTC"), last.UTC().Format("2006-01-02 15:04:05 UTC"), r.Threshold, span)
	if r.Rule == RuleOffHoursAccess {
		fmt.Fprintf(&b, " Off hours are 22:00 to 06:00 in %s.", loc.String())
	}
	if len(types) > 0 {
		fmt.Fprintf(&b, " Resource types touched: %s.", strings.Join(types, ", "))
	}
	tail := w
	if len(tail) > maxAlertEvents {
		tail = tail[len(tail)-maxAlertEvents:]
	}
	ids := make([]int64, len(tail))
	for i, h := range tail {
		ids[i] = h.EventID
	}
	meta := map[string]any{"rule": r.Rule, "count": n, "threshold": r.Threshold, "window_seconds": int(r.Window / time.Second),
		"first_event_at": first.UTC(), "last_event_at": last.UTC()}
	if group != "" {
		meta["group"] = group
	}
	if types != nil {
		meta["resource_types"] = types
	}
	return NewAlert{Org: org, Severity: r.Severity, Type: typ, Title: title, Description: b.String(), Source: DetectionSource,
		Metadata: meta, Rule: r.Rule, Principal: group, EventIDs: ids}
}

func ruleName(rule string) string {
	if r, ok := DefaultAlertRule(rule); ok {
		return r.Name
	}
	return rule
}

// humanDuration writes d as "5 min", "1 h", "90 s" or "1 h 30 min".
func humanDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + " h"
	case d%time.Minute == 0 && d > time.Hour:
		return fmt.Sprintf("%d h %d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
	case d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + " min"
	}
	return strconv.Itoa(int(d/time.Second)) + " s"
}

// purgeHits deletes org's hit runs that can no longer fall into a window that raises: those
// whose newest hit is older than twice their rule's window (a late event inside the window
// of now may still count hits up to one window before it). It runs at most every
// purgeEvery per organization, as one statement over every rule. A run that straddles the
// cutoff is kept whole until all of it is past: window reads bound hits by time, so its old
// hits are never counted, and rewriting it would scan every run of the rule and leave a dead
// copy of each rewritten one.
func (d *Detector) purgeHits(tx *gorm.DB, org string, rules []AlertRule, now time.Time) error {
	d.mu.Lock()
	due := now.Sub(d.lastPurge[org]) >= purgeEvery
	if due {
		d.lastPurge[org] = now
	}
	d.mu.Unlock()
	if !due || len(rules) == 0 {
		return nil
	}
	names, cutoffs := make([]string, len(rules)), make([]time.Time, len(rules))
	for i, r := range rules {
		names[i], cutoffs[i] = r.Rule, now.Add(-2*r.Window)
	}
	if err := tx.Exec(`DELETE FROM detection_hit_run h USING unnest(?::text[], ?::timestamptz[]) AS c (rule, cutoff)
		WHERE h.organization_id = ? AND h.rule = c.rule AND h.last_time < c.cutoff`,
		pgArray(names), pgArray(cutoffs), org).Error; err != nil {
		return fmt.Errorf("models: purge detection hits: %w", err)
	}
	return nil
}

// addEventCounts adds events to event_counts_hourly (the UTC hour of their timestamp) and
// event_counts_daily (the UTC day, by action and by principal; events without a principal
// are left out of the principals), one upsert per table.
func addEventCounts(tx *gorm.DB, org string, events []detectEvent) error {
	if len(events) == 0 {
		return nil
	}
	type tally struct{ events, failures int64 }
	// Hours and days as whole Unix hours and days (UTC's are whole multiples of them): map
	// keys that hash as one integer, not a time.Time.
	hourly := map[int64]*tally{}
	type dayKey struct {
		day       int64
		principal bool // else the action
		value     string
	}
	daily := map[dayKey]*tally{}
	add := func(t *tally, failed bool) {
		t.events++
		if failed {
			t.failures++
		}
	}
	count := func(k dayKey, failed bool) {
		t := daily[k]
		if t == nil {
			t = &tally{}
			daily[k] = t
		}
		add(t, failed)
	}
	lastHour, last := int64(math.MinInt64), (*tally)(nil) // a batch's events mostly share their hour
	for i := range events {
		e := &events[i]
		sec := e.Timestamp.Unix()
		failed := e.Status == "failure"
		if h := floorDiv(sec, 3600); h != lastHour {
			if last = hourly[h]; last == nil {
				last = &tally{}
				hourly[h] = last
			}
			lastHour = h
		}
		add(last, failed)
		day := floorDiv(sec, 86400)
		count(dayKey{day, false, e.Action}, failed)
		if e.PrincipalID != "" {
			count(dayKey{day, true, e.PrincipalID}, failed)
		}
	}
	var hours []time.Time
	var hEvents, hFailures []int64
	for h, t := range hourly {
		hours, hEvents, hFailures = append(hours, time.Unix(h*3600, 0).UTC()), append(hEvents, t.events), append(hFailures, t.failures)
	}
	err := tx.Exec(`INSERT INTO event_counts_hourly (organization_id, hour, events, failures)
		SELECT ?, * FROM unnest(?::timestamptz[], ?::bigint[], ?::bigint[])
		ON CONFLICT (organization_id, hour) DO UPDATE SET events = event_counts_hourly.events + EXCLUDED.events,
			failures = event_counts_hourly.failures + EXCLUDED.failures`,
		org, pgArray(hours), pgArray(hEvents), pgArray(hFailures)).Error
	if err != nil {
		return fmt.Errorf("models: count events per hour: %w", err)
	}
	// Values are cut to the column's width after counting (once per key, not per event);
	// two values that differ only past the cut add up under the cut one.
	cut := make(map[dayKey]*tally, len(daily))
	for k, t := range daily {
		k.value = Truncate(k.value, 255)
		if c := cut[k]; c != nil {
			c.events, c.failures = c.events+t.events, c.failures+t.failures
		} else {
			cut[k] = t
		}
	}
	daily = cut
	keys := make([]dayKey, 0, len(daily))
	for k := range daily {
		keys = append(keys, k)
	}
	// A stable order keeps concurrent upserts of the same rows from deadlocking.
	slices.SortFunc(keys, func(a, b dayKey) int {
		if c := cmp.Compare(a.day, b.day); c != 0 {
			return c
		}
		if a.principal != b.principal { // "action" before "principal"
			if a.principal {
				return 1
			}
			return -1
		}
		return strings.Compare(a.value, b.value)
	})
	days, kinds, values := make([]time.Time, len(keys)), make([]string, len(keys)), make([]string, len(keys))
	dEvents, dFailures := make([]int64, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		days[i], kinds[i], values[i] = time.Unix(k.day*86400, 0).UTC(), "action", k.value
		if k.principal {
			kinds[i] = "principal"
		}
		dEvents[i], dFailures[i] = daily[k].events, daily[k].failures
	}
	err = tx.Exec(`INSERT INTO event_counts_daily (organization_id, day, kind, value, events, failures)
		SELECT ?, * FROM unnest(?::date[], ?::text[], ?::text[], ?::bigint[], ?::bigint[])
		ON CONFLICT (organization_id, day, kind, value) DO UPDATE SET events = event_counts_daily.events + EXCLUDED.events,
			failures = event_counts_daily.failures + EXCLUDED.failures`,
		org, pgArray(days), pgArray(kinds), pgArray(values), pgArray(dEvents), pgArray(dFailures)).Error
	if err != nil {
		return fmt.Errorf("models: count events per day: %w", err)
	}
	return nil
}

// Lag returns how long org's oldest unprocessed leaf has been in the log (0 when detection
// is caught up) and whether detection has read org's log yet, from the cursor and the one
// leaf it points at (a count of the log's leaves walks back over every leaf the sequencer is
// writing and has not committed yet: 3.6 ms a call during sustained ingest).
func (d *Detector) Lag(ctx context.Context, org string) (time.Duration, bool, error) {
	var rows []struct {
		UpdatedAt   *time.Time
		SequencedAt *time.Time
	}
	err := d.db.WithContext(ctx).Raw(`SELECT c.updated_at, l.sequenced_at FROM detection_cursor c
		LEFT JOIN audit_leaf l ON l.organization_id = c.organization_id AND l.leaf_index = c.leaf_index
		WHERE c.organization_id = ?`, org).Scan(&rows).Error
	if err != nil {
		return 0, false, fmt.Errorf("models: detection lag: %w", err)
	}
	if len(rows) == 0 {
		return 0, false, nil
	}
	var lag time.Duration
	if at := rows[0].SequencedAt; at != nil {
		lag = max(d.now().Sub(*at), 0)
	}
	return lag, rows[0].UpdatedAt != nil, nil
}

// MaxLag returns the largest lag over every organization (see Lag), for the metrics and
// the performance page, which read it on every scrape and sample: from each cursor's own
// leaf, without Overview's count of each log.
func (d *Detector) MaxLag(ctx context.Context) (time.Duration, error) {
	var row struct{ Oldest *time.Time }
	err := d.db.WithContext(ctx).Raw(`SELECT min(l.sequenced_at) AS oldest FROM detection_cursor c
		JOIN audit_leaf l ON l.organization_id = c.organization_id AND l.leaf_index = c.leaf_index`).Scan(&row).Error
	if err != nil {
		return 0, fmt.Errorf("models: detection lag: %w", err)
	}
	if row.Oldest == nil {
		return 0, nil
	}
	return max(d.now().Sub(*row.Oldest), 0), nil
}

// DetectionOverview is detection's state over every organization, for /healthz.
type DetectionOverview struct {
	Pending    int64         // leaves not processed yet
	OrgsBehind int           // organizations with unprocessed leaves
	MaxLag     time.Duration // the largest organization lag
}

// Overview returns detection's state over every organization with a cursor. It returns an
// error when the database cannot be read.
func (d *Detector) Overview(ctx context.Context) (DetectionOverview, error) {
	var rows []struct {
		Cursor      int64
		Leaves      int64
		SequencedAt *time.Time
	}
	err := d.db.WithContext(ctx).Raw(`SELECT c.leaf_index AS cursor, n.leaves, p.sequenced_at
		FROM detection_cursor c
		CROSS JOIN LATERAL (SELECT leaf_index + 1 AS leaves FROM audit_leaf l
			WHERE l.organization_id = c.organization_id ORDER BY leaf_index DESC LIMIT 1) n
		LEFT JOIN audit_leaf p ON p.organization_id = c.organization_id AND p.leaf_index = c.leaf_index
		WHERE n.leaves > c.leaf_index`).Scan(&rows).Error
	if err != nil {
		return DetectionOverview{}, fmt.Errorf("models: detection overview: %w", err)
	}
	var o DetectionOverview
	now := d.now()
	for _, r := range rows {
		o.Pending += r.Leaves - r.Cursor
		o.OrgsBehind++
		if r.SequencedAt != nil {
			o.MaxLag = max(o.MaxLag, now.Sub(*r.SequencedAt))
		}
	}
	return o, nil
}

// floorDiv is a / b rounded down (b > 0), for times before 1970 too.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}
