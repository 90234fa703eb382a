package models

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// Free text is a substring LIKE over SearchText, which no index serves in the tenant
// transaction (lower() and LIKE are not leakproof) and which a trigram index made ingest
// about 60 % slower. A word that matches nothing therefore read the whole range. Search
// sketches answer the cheaper question "can this word occur on this day?": per organization
// and UTC day, a Bloom filter with one hash of every byte trigram of the day's search text,
// built off the ingest path by an hourly job (SearchSketches.Build).
//
// Why byte trigrams are a sound necessary condition: the list's condition is
// SearchText LIKE '%' || escaped(w) || '%', where SearchText is PostgreSQL's lower() of the
// text and w the word as Go lower-cases it; the sketch is built from PostgreSQL's own lower()
// of the text (read from the database, never re-lowered in Go) and looked up with the
// trigrams of that same Go-lowered w. With the wildcards escaped, the pattern matches a text
// exactly when w's characters occur contiguously in it; in UTF-8 (a self-synchronizing
// encoding) that is exactly when w's bytes occur contiguously in the text's bytes, and then
// every three consecutive bytes of w occur in the text, so their bits are set in the day's
// sketch. A day whose sketch lacks one of them holds no match. Differences between Go's and
// PostgreSQL's lower-casing do not matter: both sides use what the LIKE compares.
//
// A sketch covers the events of its day visible when it was built; it records below_leaf,
// the organization's Merkle log size in that snapshot. Every event reaches the Merkle log
// through the leaf queue row its ingest transaction writes, and the sequencer appends an
// organization's leaves one transaction at a time, numbering on from the log's size. So an
// event not in the build's snapshot (committed later, even with a smaller id) is still in
// the queue, or gets a leaf at or after below_leaf: a search reads those events themselves
// (pendingMatchDays) besides trusting the sketch, and a late event is never missed. Leaf
// numbers are used rather than audit_log ids because ids are drawn before commit: an id
// below every id in the snapshot can still commit afterwards.

// SketchBits is the size of a search sketch in bits (8 KiB). On the demo data a day of the
// largest organization sets 8.5 % of them on average, 9.4 % at most (see docs/benchmarks.md),
// so a word of w distinct trigrams passes a day that lacks it with a probability of about
// 0.09^w.
const SketchBits = 1 << 16

// MaxSketchRanges is the most time ranges a free-text search is narrowed to; a word that can
// occur on days spread over more ranges is searched over the whole range, as before.
const MaxSketchRanges = 31

// TimeRange is [From, To).
type TimeRange struct {
	From, To time.Time
}

// trigramBit is the sketch bit of the byte trigram a b c: the top 16 bits of a
// multiplicative hash of its 24 bits.
func trigramBit(a, b, c byte) uint32 {
	return (uint32(a)<<16 | uint32(b)<<8 | uint32(c)) * 2654435761 >> 16
}

// sketch is a SketchBits-bit search sketch; bit p is bit p%8 of byte p/8, as
// auditdb_search_sketch_has (migration 0054) reads it.
type sketch []byte

func newSketch() sketch { return make(sketch, SketchBits/8) }

// add sets the bits of every byte trigram of text.
func (s sketch) add(text []byte) {
	for i := 0; i+3 <= len(text); i++ {
		p := trigramBit(text[i], text[i+1], text[i+2])
		s[p>>3] |= 1 << (p & 7)
	}
}

// merge ORs o into s.
func (s sketch) merge(o sketch) {
	for i := range s {
		s[i] |= o[i]
	}
}

// fill is the share of s's bits that are set.
func (s sketch) fill() float64 {
	n := 0
	for _, b := range s {
		n += bits.OnesCount8(b)
	}
	return float64(n) / SketchBits
}

// wordBits returns the distinct sketch bits of the byte trigrams of word, lower-cased as the
// LIKE pattern is (queryTermSQL).
func wordBits(word string) []uint32 {
	w := strings.ToLower(word)
	var ps []uint32
	for i := 0; i+3 <= len(w); i++ {
		ps = append(ps, trigramBit(w[i], w[i+1], w[i+2]))
	}
	slices.Sort(ps)
	return slices.Compact(ps)
}

// sketchWords returns the free-text words of f a sketch can rule days out for: positive, of
// at least three bytes.
func sketchWords(f EventFilter) []string {
	var words []string
	for _, t := range f.Query.Terms {
		if t.Field == "" && !t.Negate && len(strings.ToLower(t.Value)) >= 3 {
			words = append(words, t.Value)
		}
	}
	return words
}

// utcDay is the UTC midnight starting t's UTC day.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// resolveText returns f with its free text looked up in org's search sketches
// (TextResolved): Within narrowed to the days where every word can occur, or TextNowhere
// when no day of the range can hold a match. Days without a sketch (today, days not built
// yet) and the events no sketch covers yet always stay candidates.
func (s *EventStore) resolveText(ctx context.Context, org string, f EventFilter) (EventFilter, error) {
	words := sketchWords(f)
	if len(words) == 0 || f.TextResolved {
		return f, nil
	}
	var excluded []time.Time
	var sketched bool
	err := WithPgx(ctx, s.db, func(conn *pgx.Conn) error {
		// One snapshot for the sketches and the events they do not cover: an erasure or a
		// build between the two reads cannot make a day look covered when it is not.
		return pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
			func(tx pgx.Tx) error {
				var err error
				excluded, sketched, err = excludedDays(ctx, tx, org, f.From, f.To, words)
				return err
			})
	})
	if err != nil {
		return f, fmt.Errorf("models: look up free text in search sketches: %w", err)
	}
	f.TextResolved = true
	if !sketched {
		return f, nil // no sketch in the range: nothing to rule out
	}
	ranges := candidateRanges(f.From, f.To, excluded)
	switch {
	case len(ranges) == 0:
		f.TextNowhere = true
	case len(ranges) == 1 && ranges[0].From.Equal(f.From) && ranges[0].To.Equal(f.To):
		// Every day can match: the query stays exactly as without sketches.
	case len(ranges) <= MaxSketchRanges:
		f.Within = ranges
	}
	return f, nil
}

// excludedDays returns, oldest first, the UTC days of [from, to) whose sketch rules out one of
// the words and that no event the sketches may not cover matches on; sketched is false when
// no day of the range has a sketch. Its work follows the sketches found, not the range's
// length: a range from year 1 to 9999 is one query over the organization's sketch rows.
func excludedDays(ctx context.Context, tx pgx.Tx, org string, from, to time.Time, words []string) (excluded []time.Time, sketched bool, err error) {
	first, last := utcDay(from), utcDay(to.Add(-time.Microsecond))
	// A day can hold a match when its sketch has every bit of every word's trigrams. Only the
	// bit positions go to the database, not a year of 8 KiB sketches to the server.
	var ps []int32
	for _, w := range words {
		for _, p := range wordBits(w) {
			ps = append(ps, int32(p))
		}
	}
	rows, _ := tx.Query(ctx, `SELECT day, below_leaf, length(bits) <> $4 OR auditdb_search_sketch_has(bits, $5)
		FROM search_sketches WHERE organization_id = $1 AND day >= $2::date AND day <= $3::date ORDER BY day`,
		org, first.Format(time.DateOnly), last.Format(time.DateOnly), SketchBits/8, ps)
	minLeaf := int64(-1)
	var day time.Time
	var below int64
	var can bool
	_, err = pgx.ForEachRow(rows, []any{&day, &below, &can}, func() error {
		sketched = true
		if !can {
			excluded = append(excluded, utcDay(day))
			if minLeaf < 0 || below < minLeaf {
				minLeaf = below
			}
		}
		return nil
	})
	if err != nil || len(excluded) == 0 {
		return nil, sketched, err
	}
	pending, err := pendingMatchDays(ctx, tx, org, from, to, minLeaf, words)
	if err != nil {
		return nil, sketched, err
	}
	matched := map[time.Time]bool{}
	for _, d := range pending {
		matched[utcDay(d)] = true
	}
	excluded = slices.DeleteFunc(excluded, func(d time.Time) bool { return matched[d] })
	return excluded, sketched, nil
}

// pendingIDSQL is the first id of org's events that a sketch built at log size $2 may not
// cover: events with a leaf at or after $2, and events still in the leaf queue (NULL: none).
// The leaves are materialized first so that PostgreSQL reads them by leaf index.
const pendingIDSQL = `WITH pending AS MATERIALIZED (
		SELECT l.audit_log_id AS id FROM audit_leaf l WHERE l.organization_id = $1 AND l.leaf_index >= $2
		UNION ALL
		SELECT q.id FROM audit_leaf_queue, unnest(audit_log_ids) AS q(id) WHERE organization_id = $1)
	SELECT min(id) FROM pending`

// pendingMatchDays returns the UTC days of the events of org in [from, to) that the sketches
// built at log size below may not cover and that match every word, read through the primary
// key from the first such id on: few rows when the job has run.
func pendingMatchDays(ctx context.Context, tx pgx.Tx, org string, from, to time.Time, below int64, words []string) ([]time.Time, error) {
	var since *int64
	if err := tx.QueryRow(ctx, pendingIDSQL, org, below).Scan(&since); err != nil || since == nil {
		return nil, err
	}
	where, args := FilterSQL(org, EventFilter{From: from, To: to, Query: EventQuery{Terms: freeTextTerms(words)}})
	args = append(args, *since)
	rows, _ := tx.Query(ctx, fmt.Sprintf(`SELECT DISTINCT ("timestamp" AT TIME ZONE 'UTC')::date FROM audit_log
		WHERE %s AND id >= $%d`, where, len(args)), args...)
	return pgx.CollectRows(rows, pgx.RowTo[time.Time])
}

func freeTextTerms(words []string) []QueryTerm {
	terms := make([]QueryTerm, len(words))
	for i, w := range words {
		terms[i] = QueryTerm{Value: w}
	}
	return terms
}

// candidateRanges returns [from, to) without the excluded days (UTC days, oldest first), as
// ranges oldest first.
func candidateRanges(from, to time.Time, excluded []time.Time) []TimeRange {
	var out []TimeRange
	cur := from
	for _, d := range excluded {
		if end := minTime(d, to); cur.Before(end) {
			out = append(out, TimeRange{From: cur, To: end})
		}
		cur = maxTime(cur, d.AddDate(0, 0, 1))
	}
	if cur.Before(to) {
		out = append(out, TimeRange{From: cur, To: to})
	}
	return out
}

// narrowPlan reports whether f's free text was narrowed to ranges covering at most a
// quarter of [From, To). For a word on few days (a correlation id over a year at 1,000,000
// events: 25 ranges) the plan for its values took 0.24 – 0.4 s against 2.8 – 3.8 s for the
// generic plan; for a word on most days ("break the glass": 8 ranges over two thirds of the
// year) the plan for its values took 1.7 – 2.4 s against 0.06 – 0.12 s for the generic one,
// which stops at the page's last match.
func narrowPlan(f EventFilter) bool {
	if len(f.Within) == 0 {
		return false
	}
	var covered time.Duration
	for _, r := range f.Within {
		covered += r.To.Sub(r.From)
	}
	return covered <= f.To.Sub(f.From)/4
}

// withinSQL adds the condition that keeps the events inside f.Within: the ranges' hull,
// which PostgreSQL prunes partitions and bounds index scans with, and, for more than one
// range, each range.
func withinSQL(within []TimeRange, add func(cond string, vs ...any)) {
	if len(within) == 0 {
		return
	}
	add(`"timestamp" >= $%d AND "timestamp" < $%d`, within[0].From.UTC(), within[len(within)-1].To.UTC())
	if len(within) == 1 {
		return
	}
	parts := make([]string, len(within))
	vs := make([]any, 0, 2*len(within))
	for i, r := range within {
		parts[i] = `"timestamp" >= $%d AND "timestamp" < $%d`
		vs = append(vs, r.From.UTC(), r.To.UTC())
	}
	add("("+strings.Join(parts, " OR ")+")", vs...)
}

// SearchSketches builds the per-day search sketches of free text (see the top of this file).
type SearchSketches struct {
	db  *gorm.DB
	now func() time.Time
}

// NewSearchSketches returns a builder over db whose clock is now.
func NewSearchSketches(db *gorm.DB, now func() time.Time) *SearchSketches {
	return &SearchSketches{db: db, now: now}
}

// SketchBuildResult tells what one build did.
type SketchBuildResult struct {
	Orgs      int     // organizations looked at
	Built     int     // day sketches built
	Refreshed int     // day sketches that took in events added after they were built
	Events    int64   // events read
	MaxFill   float64 // the largest share of set bits among the sketches built
	Took      time.Duration
}

// Build builds, for org (every organization when ""), the sketch of each closed UTC day
// (before today) from its first event on that has none, after taking into every existing
// sketch the events sequenced since it was built. It returns an error when the database
// cannot be read or written; what was built until then stays.
func (s *SearchSketches) Build(ctx context.Context, org string) (SketchBuildResult, error) {
	start := time.Now()
	var res SketchBuildResult
	orgs := []string{org}
	if org == "" {
		if err := s.db.WithContext(ctx).Raw(`SELECT id FROM organizations ORDER BY id`).Scan(&orgs).Error; err != nil {
			return res, fmt.Errorf("models: search sketches: list organizations: %w", err)
		}
	}
	today := utcDay(s.now())
	err := WithPgx(ctx, s.db, func(conn *pgx.Conn) error {
		for _, o := range orgs {
			res.Orgs++
			if err := buildOrgSketches(ctx, conn, o, today, &res); err != nil {
				return fmt.Errorf("organization %s: %w", o, err)
			}
		}
		return nil
	})
	res.Took = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("models: build search sketches: %w", err)
	}
	return res, nil
}

// sketchLockSQL serializes the builders of one organization's sketches (the job on one
// instance, the command, the benchmark): a second builder waits, then finds the days built.
// It is taken outside the builders' transactions, so their snapshots see the first one's work.
const sketchLockSQL = `SELECT pg_advisory_lock(` + sketchLockKey + `)`

// sketchLockKey is organization $1's sketch lock.
const sketchLockKey = `hashtextextended('auditdb.search_sketches:' || $1::text, 0)`

func buildOrgSketches(ctx context.Context, conn *pgx.Conn, org string, today time.Time, res *SketchBuildResult) error {
	if _, err := conn.Exec(ctx, sketchLockSQL, org); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+sketchLockKey+`)`, org)
	if err := retrySerialization(ctx, conn, func(tx pgx.Tx) error { return refreshSketches(ctx, tx, org, res) }); err != nil {
		return err
	}
	var first *time.Time
	if err := conn.QueryRow(ctx, `SELECT min("timestamp") FROM audit_log WHERE organization_id = $1`, org).Scan(&first); err != nil || first == nil {
		return err
	}
	rows, _ := conn.Query(ctx, `SELECT day FROM search_sketches WHERE organization_id = $1`, org)
	have, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return err
	}
	built := map[time.Time]bool{}
	for _, d := range have {
		built[utcDay(d)] = true
	}
	for d := utcDay(*first); d.Before(today); d = d.AddDate(0, 0, 1) {
		if built[d] {
			continue
		}
		if err := retrySerialization(ctx, conn, func(tx pgx.Tx) error { return buildDaySketch(ctx, tx, org, d, res) }); err != nil {
			return err
		}
	}
	return nil
}

// LogSizeSQL is the size of organization $1's Merkle log (its leaves, numbered from 0
// without gaps) in the statement's snapshot.
const LogSizeSQL = `SELECT coalesce((SELECT leaf_index + 1 FROM audit_leaf WHERE organization_id = $1
	ORDER BY leaf_index DESC LIMIT 1), 0)`

// touchGuardSQL writes org's row of search_sketch_changes without changing it: in the
// builder's repeatable-read transaction it fails with a serialization error when a rewrite of
// org's events (whose trigger bumps the row) committed after the builder's snapshot, and
// waits for one still running.
const touchGuardSQL = `INSERT INTO search_sketch_changes (organization_id) VALUES ($1)
	ON CONFLICT (organization_id) DO UPDATE SET changed_at = search_sketch_changes.changed_at`

// buildDaySketch builds org's sketch of day from every event of the day in the snapshot.
func buildDaySketch(ctx context.Context, tx pgx.Tx, org string, day time.Time, res *SketchBuildResult) error {
	var below int64
	if err := tx.QueryRow(ctx, LogSizeSQL, org).Scan(&below); err != nil {
		return err
	}
	sk := newSketch()
	rows, err := tx.Query(ctx, `SELECT `+SearchText+` FROM audit_log
		WHERE organization_id = $1 AND "timestamp" >= $2 AND "timestamp" < $3`, org, day, day.AddDate(0, 0, 1))
	if err != nil {
		return err
	}
	var n int64
	for rows.Next() {
		sk.add(rows.RawValues()[0])
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, touchGuardSQL, org); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO search_sketches (organization_id, day, bits, events, below_leaf)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (organization_id, day) DO UPDATE SET bits = excluded.bits, events = excluded.events,
			below_leaf = excluded.below_leaf, built_at = now()`, org, day.Format(time.DateOnly), []byte(sk), n, below)
	res.Built++
	res.Events += n
	res.MaxFill = max(res.MaxFill, sk.fill())
	return err
}

// refreshSketches ORs into org's sketches the events sequenced since the oldest of them was
// built (leaves from its below_leaf to the log's size now), and moves every sketch's
// below_leaf to that size: a search then reads only the events sequenced after this run.
func refreshSketches(ctx context.Context, tx pgx.Tx, org string, res *SketchBuildResult) error {
	var size int64
	var oldest *int64
	err := tx.QueryRow(ctx, `SELECT (`+LogSizeSQL+`), (SELECT min(below_leaf) FROM search_sketches WHERE organization_id = $1)`,
		org).Scan(&size, &oldest)
	if err != nil || oldest == nil || *oldest >= size {
		return err
	}
	// SearchText's columns are audit_log's alone: no column of audit_leaf shares a name.
	rows, _ := tx.Query(ctx, `SELECT (e."timestamp" AT TIME ZONE 'UTC')::date, `+SearchText+`
		FROM audit_leaf l JOIN audit_log e ON e.id = l.audit_log_id AND e."timestamp" = l.event_timestamp
		WHERE l.organization_id = $1 AND l.leaf_index >= $2 AND l.leaf_index < $3 AND e.organization_id = $1`,
		org, *oldest, size)
	added := map[time.Time]sketch{}
	var day time.Time
	var text []byte
	_, err = pgx.ForEachRow(rows, []any{&day, &text}, func() error {
		d := utcDay(day)
		if added[d] == nil {
			added[d] = newSketch()
		}
		added[d].add(text)
		res.Events++
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, touchGuardSQL, org); err != nil {
		return err
	}
	for d, sk := range added {
		var old []byte
		err := tx.QueryRow(ctx, `SELECT bits FROM search_sketches WHERE organization_id = $1 AND day = $2`,
			org, d.Format(time.DateOnly)).Scan(&old)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && len(old) != len(sk) {
			continue // no sketch of that day (yet): it is built whole
		}
		if err != nil {
			return err
		}
		sk.merge(old)
		if _, err := tx.Exec(ctx, `UPDATE search_sketches SET bits = $3, built_at = now() WHERE organization_id = $1 AND day = $2`,
			org, d.Format(time.DateOnly), []byte(sk)); err != nil {
			return err
		}
		res.Refreshed++
	}
	_, err = tx.Exec(ctx, `UPDATE search_sketches SET below_leaf = $2 WHERE organization_id = $1 AND below_leaf < $2`, org, size)
	return err
}

// retrySerialization runs fn in a repeatable-read transaction, again (up to five times) when
// it ends in a serialization failure: a rewrite of the organization's events committed after
// its snapshot.
func retrySerialization(ctx context.Context, conn *pgx.Conn, fn func(pgx.Tx) error) error {
	var err error
	for range 5 {
		err = pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, fn)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "40001" {
			return err
		}
	}
	return err
}
