package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"auditdb/models"
	"auditdb/models/metrics"
)

// WriterConfig tunes the group-commit writer. Zero members take the defaults.
type WriterConfig struct {
	// MaxBatch is how many events one transaction gathers (a request is never split, so a
	// larger request goes alone). Default 2000.
	MaxBatch int
	// MaxDelay is how long a flusher waits for more requests once it has taken all that were
	// waiting. Default 100 µs: under load the queue fills while the other flusher writes, so
	// a longer wait adds latency (and idle CPUs) without making gatherings much larger, and
	// a much shorter one makes gatherings smaller.
	MaxDelay time.Duration
	// MaxQueued is how many events may wait for their commit before requests get 429.
	// Default 20000; it must hold the largest batch a request may carry.
	MaxQueued int
	// Flushers is how many transactions run at once. Default 2.
	Flushers int
	// HoldBelow: while another gathering is being written, a flusher holding fewer events
	// than this keeps gathering until that write ends (or HoldFor passes) instead of
	// writing a small one beside it. Each transaction costs PostgreSQL a fixed ~0.3 ms on
	// top of its rows, so at high concurrency fewer, larger gatherings leave more CPU for
	// the requests. Default 40; negative disables it.
	HoldBelow int
	// HoldFor bounds that wait. Default 2 ms.
	HoldFor time.Duration
	// TxTimeout bounds one transaction, commit included. Default 15 s.
	TxTimeout time.Duration
	// DetectionFeed writes, with the events, what detection reads of them into its feed
	// (models.DetectionFeedSQL), so detection need not read them back from audit_log. On
	// where this instance runs detection; its cost is detection's.
	DetectionFeed bool
}

func (c WriterConfig) withDefaults() WriterConfig {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 2000
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 100 * time.Microsecond
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = 20_000
	}
	if c.Flushers <= 0 {
		c.Flushers = 2
	}
	if c.HoldBelow == 0 {
		c.HoldBelow = 40
	}
	if c.HoldFor <= 0 {
		c.HoldFor = 2 * time.Millisecond
	}
	if c.TxTimeout <= 0 {
		c.TxTimeout = 15 * time.Second
	}
	return c
}

// Receipt acknowledges one durable event. Its JSON form, which Idempotency-Key answers and
// replayed dead letters keep, is {"id", "hash", "timestamp"} with the time in
// models.TimestampLayout.
type Receipt struct {
	ID        int64
	Hash      string
	Timestamp time.Time
}

// receiptJSON is Receipt's JSON form.
type receiptJSON struct {
	ID        int64  `json:"id"`
	Hash      string `json:"hash"`
	Timestamp string `json:"timestamp"`
}

// MarshalJSON encodes r in its JSON form; it fails only if encoding/json does.
func (r Receipt) MarshalJSON() ([]byte, error) {
	return json.Marshal(receiptJSON{ID: r.ID, Hash: r.Hash, Timestamp: r.Timestamp.UTC().Format(models.TimestampLayout)})
}

// UnmarshalJSON decodes r from its JSON form; it returns an error for malformed JSON or a
// timestamp not in models.TimestampLayout.
func (r *Receipt) UnmarshalJSON(b []byte) error {
	var j receiptJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	ts, err := time.Parse(models.TimestampLayout, j.Timestamp)
	if err != nil {
		return fmt.Errorf("ingest: receipt %d: %w", j.ID, err)
	}
	*r = Receipt{ID: j.ID, Hash: j.Hash, Timestamp: ts}
	return nil
}

// WriteRequest is one request's events, validated and sealed, to be written atomically.
type WriteRequest struct {
	Org         string
	Events      []models.Event
	Received    time.Time
	Idempotency *IdempotencyClaim
	// KeepDeadLetter keeps events the database refuses in archive_dlq_event and reports the
	// dead letter in the result; without it the refusal is returned as an error (replays).
	KeepDeadLetter bool
	// Source names where the events came from ("api", "replay"), for the dead letter.
	Source string
}

// WriteResult is the outcome of a write that did not fail: receipts for committed events,
// or the dead letter that keeps events the database refused. Replayed says the receipts
// are the first answer to the request's Idempotency-Key, recorded by another request.
type WriteResult struct {
	Receipts   []Receipt
	DeadLetter *DeadLetter
	Replayed   bool
}

// Writer is the group-commit writer: requests from many goroutines queue up, a few flushers
// gather them (bounded by MaxBatch events and MaxDelay) and write each gathering with one
// COPY into audit_log and one INSERT into the Merkle leaf queue, in one transaction and one
// round trip. A request is answered only after its transaction commits. While the database
// is unreachable every request gets a KindUnavailable error at once; the writer retries by
// itself as requests keep coming.
type Writer struct {
	pool  *pgxpool.Pool
	parts *models.PartitionManager
	dead  *DeadLetterStore
	cfg   WriterConfig
	log   *slog.Logger
	now   func() time.Time

	queue     chan *pendingWrite
	ids       idBlock
	queued    atomic.Int64 // events accepted and not yet answered
	downUntil atomic.Int64 // unix nanoseconds; requests fail fast until then
	failures  atomic.Int32 // consecutive transient failures, for the backoff

	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup

	committedEvents  atomic.Int64
	committedBatches atomic.Int64

	writing  atomic.Int32  // gatherings being written
	wroteOne chan struct{} // a token after each written gathering, for a flusher holding a small one

	// ErrorSink, when set (before Start), receives a record of every request the
	// database refused: kept as a dead letter or refused again. It must not block.
	ErrorSink func(ctx context.Context, rec models.ErrorRecord)
}

type pendingWrite struct {
	req  WriteRequest
	done chan writeOutcome
}

type writeOutcome struct {
	res WriteResult
	err error
}

// NewWriter returns a writer over pool; call Start before Write and Close at shutdown.
func NewWriter(pool *pgxpool.Pool, parts *models.PartitionManager, dead *DeadLetterStore, cfg WriterConfig, log *slog.Logger) *Writer {
	cfg = cfg.withDefaults()
	return &Writer{pool: pool, parts: parts, dead: dead, cfg: cfg, log: log, now: time.Now,
		queue: make(chan *pendingWrite, cfg.MaxQueued), wroteOne: make(chan struct{}, 1)}
}

// Start launches the flushers.
func (w *Writer) Start() {
	for i := 0; i < w.cfg.Flushers; i++ {
		w.wg.Add(1)
		go w.run()
	}
}

// Close stops accepting requests and waits until every queued one is answered, or ctx
// ends.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ingest: writer: %d events still queued at shutdown: %w", w.queued.Load(), ctx.Err())
	}
}

// Queued returns how many events the writer has accepted and not yet answered.
func (w *Writer) Queued() int64 { return w.queued.Load() }

// Stats returns how many events and transactions the writer has committed.
func (w *Writer) Stats() (events, batches int64) {
	return w.committedEvents.Load(), w.committedBatches.Load()
}

// Write queues req and waits for its outcome. It returns KindTooMany when the queue is
// full, KindUnavailable while the database is down or the writer is closing (both with a
// RetryAfter), and, without KeepDeadLetter, KindInvalid when the database refuses the
// events. A request whose Idempotency-Key another request recorded (committed before, or
// committing now: the write waits for it) gets that request's receipts, Replayed, or
// ErrIdempotencyConflict when the other request differs.
func (w *Writer) Write(ctx context.Context, req WriteRequest) (WriteResult, error) {
	n := len(req.Events)
	if n == 0 {
		return WriteResult{}, models.Invalid("events", "there is nothing to write")
	}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return WriteResult{}, unavailable("the server is shutting down", nil, 5*time.Second)
	}
	if d := w.downFor(); d > 0 {
		w.mu.RUnlock()
		return WriteResult{}, unavailable("the database is unavailable", nil, d)
	}
	if total := w.queued.Add(int64(n)); total > int64(w.cfg.MaxQueued) && total != int64(n) {
		w.queued.Add(-int64(n))
		w.mu.RUnlock()
		return WriteResult{}, &models.Error{Kind: models.KindTooMany, Message: "the ingest queue is full; retry shortly", RetryAfter: time.Second}
	}
	metrics.WriterQueued(n)
	p := &pendingWrite{req: req, done: make(chan writeOutcome, 1)}
	w.queue <- p // never blocks: the channel holds MaxQueued requests of at least one event
	w.mu.RUnlock()
	out := <-p.done // the writer always answers, within TxTimeout of picking the request up
	return out.res, out.err
}

func unavailable(msg string, cause error, retry time.Duration) error {
	return &models.Error{Kind: models.KindUnavailable, Message: msg, Err: cause, RetryAfter: max(retry, time.Second)}
}

func (w *Writer) downFor() time.Duration {
	until := w.downUntil.Load()
	if until == 0 {
		return 0
	}
	return time.Until(time.Unix(0, until))
}

// markDown makes requests fail fast for a backoff that grows with consecutive failures
// (250 ms doubling to 5 s) and returns it.
func (w *Writer) markDown() time.Duration {
	f := w.failures.Add(1)
	backoff := min(250*time.Millisecond<<min(f-1, 5), 5*time.Second)
	w.downUntil.Store(w.now().Add(backoff).UnixNano())
	return backoff
}

func (w *Writer) markUp() {
	if w.failures.Load() != 0 {
		w.failures.Store(0)
		w.downUntil.Store(0)
	}
}

// run is one flusher: it gathers requests and writes them until the queue is closed and
// drained.
func (w *Writer) run() {
	defer w.wg.Done()
	var carry *pendingWrite
	for {
		first := carry
		carry = nil
		if first == nil {
			p, ok := <-w.queue
			if !ok {
				return
			}
			first = p
		}
		var batch []*pendingWrite
		batch, carry = w.gather(first)
		w.writing.Add(1)
		w.flush(batch)
		w.writing.Add(-1)
		select {
		case w.wroteOne <- struct{}{}:
		default:
		}
	}
}

// gather collects a gathering that starts with first: every request already waiting, then
// whatever arrives within MaxDelay of that (or, for a small gathering while another one is
// being written, until that write ends), up to MaxBatch events. A request that does not
// fit is returned as carry, to start the next gathering. Under load the queue fills while
// the other flushers write, so gatherings grow without anyone waiting on a timer.
func (w *Writer) gather(first *pendingWrite) (batch []*pendingWrite, carry *pendingWrite) {
	batch = []*pendingWrite{first}
	n := len(first.req.Events)
	var timeout <-chan time.Time // set once everything waiting has been taken
	var hold <-chan time.Time
	expired := false
	for n < w.cfg.MaxBatch {
		var p *pendingWrite
		var ok bool
		select {
		case p, ok = <-w.queue:
		default:
			if expired {
				return batch, nil
			}
			// Wait for more: a small gathering while another one is being written (the
			// database is busy anyway) until that write ends or HoldFor passes, any other
			// for MaxDelay.
			holding := n < w.cfg.HoldBelow && w.writing.Load() > 0
			if holding && hold == nil {
				select { // a token from a write that ended before this wait is stale
				case <-w.wroteOne:
				default:
				}
				if holding = w.writing.Load() > 0; holding {
					timer := time.NewTimer(w.cfg.HoldFor)
					defer timer.Stop()
					hold = timer.C
				}
			}
			end, wrote := hold, w.wroteOne
			if !holding {
				if timeout == nil {
					timer := time.NewTimer(w.cfg.MaxDelay)
					defer timer.Stop()
					timeout = timer.C
				}
				end, wrote = timeout, nil // a nil channel never delivers
			}
			select {
			case p, ok = <-w.queue:
			case <-wrote:
				expired = true // take what is waiting now, then go
				continue
			case <-end:
				expired = true
				continue
			}
		}
		if !ok { // closed: run sees it on its next receive
			return batch, nil
		}
		if n+len(p.req.Events) > w.cfg.MaxBatch {
			return batch, p
		}
		batch = append(batch, p)
		n += len(p.req.Events)
	}
	return batch, nil
}

// flush writes one gathering and answers every request in it.
func (w *Writer) flush(batch []*pendingWrite) {
	outs := make([]writeOutcome, len(batch))
	events := 0
	for _, p := range batch {
		events += len(p.req.Events)
	}
	metrics.WriterGathering(events)
	if d := w.downFor(); d > 0 {
		for i := range outs {
			outs[i].err = unavailable("the database is unavailable", nil, d)
		}
	} else {
		w.writeGroup(batch, outs)
	}
	w.queued.Add(-int64(events))
	metrics.WriterQueued(-events)
	for i, p := range batch {
		p.done <- outs[i]
	}
}

// writeGroup commits batch in one transaction. When the database refuses it for a reason
// other than an outage, each request is retried alone so one bad request cannot sink the
// others, and a request refused alone becomes a dead letter.
func (w *Writer) writeGroup(batch []*pendingWrite, outs []writeOutcome) {
	err := w.commit(batch, outs)
	if err == nil {
		w.markUp()
		return
	}
	if transient(err) {
		retry := w.markDown()
		w.log.Warn("ingest write failed; the database looks unavailable", "err", err, "retry_in", retry)
		for i := range outs {
			if outs[i].err == nil {
				outs[i] = writeOutcome{err: unavailable("the database is unavailable", err, retry)}
			}
		}
		return
	}
	if len(batch) > 1 {
		for i := range batch {
			if outs[i].err == nil {
				w.writeGroup(batch[i:i+1], outs[i:i+1])
			}
		}
		return
	}
	outs[0] = w.refused(batch[0].req, err)
}

// refused answers a request the database would not take: a dead letter when asked for one.
func (w *Writer) refused(req WriteRequest, cause error) writeOutcome {
	reason := refusalReason(cause)
	w.log.Error("the database refused an ingest request", "org", req.Org, "events", len(req.Events), "err", cause)
	if !req.KeepDeadLetter {
		return writeOutcome{err: &models.Error{Kind: models.KindInvalid, Message: "the database refused the events: " + reason, Err: cause}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.TxTimeout)
	defer cancel()
	dl, err := w.dead.Add(ctx, req, reason)
	if err != nil {
		if !transient(err) {
			// The dead letter holds the same values the database just refused: retrying
			// would fail the same way forever, so this is bad input, not an outage.
			w.log.Error("the database refused the dead letter too", "org", req.Org, "err", err)
			w.recordDeadLetter(ctx, req, "the database refused the events and their dead letter: "+reason, nil)
			return writeOutcome{err: &models.Error{Kind: models.KindInvalid, Message: "the database refused the events: " + reason, Err: cause}}
		}
		return writeOutcome{err: unavailable("cannot keep the refused events", err, 5*time.Second)}
	}
	w.recordDeadLetter(ctx, req, "the database refused the events, kept as a dead letter: "+reason, dl)
	return writeOutcome{res: WriteResult{DeadLetter: dl}}
}

// recordDeadLetter hands a refused request to the error log, if there is one.
func (w *Writer) recordDeadLetter(ctx context.Context, req WriteRequest, message string, dl *DeadLetter) {
	if w.ErrorSink == nil {
		return
	}
	rec := models.ErrorRecord{Kind: models.ErrorKindDeadLetter, Component: "ingest", Operation: "ingest " + req.Source,
		Org: req.Org, Message: message, Context: map[string]any{"events": len(req.Events)}}
	if dl != nil {
		rec.Context["dead_letter_id"] = dl.ID
	}
	w.ErrorSink(ctx, rec)
}

// commit writes batch in one transaction and fills outs with receipts (or, for requests
// whose Idempotency-Key another request recorded, its answer). On error nothing was
// written and outs is untouched.
func (w *Writer) commit(batch []*pendingWrite, outs []writeOutcome) error {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.TxTimeout)
	defer cancel()
	total := 0
	var months []time.Time
	for _, p := range batch {
		total += len(p.req.Events)
		for i := range p.req.Events {
			months = append(months, p.req.Events[i].Timestamp)
		}
	}
	if err := w.parts.EnsureFor(ctx, "audit_log", months...); err != nil {
		return err
	}
	// Ids are taken up front, so the receipts (and the stored idempotent answers) are known
	// before anything is written.
	ids, err := w.ids.take(ctx, w.pool, total)
	if err != nil {
		return err
	}
	err = w.write(ctx, batch, outs, ids)
	if models.MissingPartition(err) {
		// A partition this instance knew of was dropped by another process (retention
		// empties and drops past months): look the months up again, once.
		w.parts.Forget("audit_log")
		if err = w.parts.EnsureFor(ctx, "audit_log", months...); err != nil {
			return err
		}
		err = w.write(ctx, batch, outs, ids)
	}
	return err
}

// write is commit's transaction, with the ids taken.
func (w *Writer) write(ctx context.Context, batch []*pendingWrite, outs []writeOutcome, ids []int64) error {
	claims := false
	for _, p := range batch {
		claims = claims || p.req.Idempotency != nil
	}
	now := w.now()
	k := 0
	include := make([]bool, len(batch))
	var events []*models.Event
	for i, p := range batch {
		include[i] = true
		latency := int32(min(now.Sub(p.req.Received).Milliseconds(), math.MaxInt32))
		for j := range p.req.Events {
			p.req.Events[j].ID = ids[k]
			p.req.Events[j].ProcessingLatency = &latency
			events = append(events, &p.req.Events[j])
			k++
		}
	}
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var settled []writeOutcome // answers of the requests whose key was recorded by another
	if !claims {
		// One round trip: the COPY and the queue rows commit together (see copyEvents).
		err = copyEvents(ctx, conn.Conn(), events, w.cfg.DetectionFeed)
	} else {
		err = pgx.BeginFunc(ctx, conn.Conn(), func(tx pgx.Tx) error {
			if include, settled, err = w.claimKeys(ctx, tx, batch); err != nil {
				return err
			}
			events = events[:0]
			for i, p := range batch {
				for j := range p.req.Events {
					if include[i] {
						events = append(events, &p.req.Events[j])
					}
				}
			}
			if len(events) == 0 {
				return nil
			}
			return copyEvents(ctx, tx.Conn(), events, w.cfg.DetectionFeed)
		})
	}
	if err != nil {
		// A refusal from the server means nothing was written. Without one, the commit's
		// acknowledgement may be what was lost: look.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) || len(events) == 0 || !w.committedAnyway(events[0]) {
			return err
		}
		w.log.Warn("ingest commit reported an error but the events are in the table", "err", err)
	}
	for i, p := range batch {
		if include[i] {
			outs[i] = writeOutcome{res: WriteResult{Receipts: receipts(p.req.Events)}}
		} else {
			outs[i] = settled[i]
		}
	}
	w.committedEvents.Add(int64(len(events)))
	w.committedBatches.Add(1)
	metrics.IngestCommitted(len(events))
	return nil
}

// claimKeys stores the answers of the requests that carry an Idempotency-Key, inside the
// events' transaction, and reports which requests go ahead. A request whose key another
// request holds is settled instead: a replay of that request's receipts when it is the
// same request, ErrIdempotencyConflict otherwise. The other request may be earlier in
// this batch, committed, or still committing in another transaction (the INSERT waits
// for that one's outcome, so the loser replays its answer rather than failing). A key
// older than IdempotencyTTL is taken over. Keys are inserted in order, so two
// transactions cannot deadlock on each other's keys.
func (w *Writer) claimKeys(ctx context.Context, tx pgx.Tx, batch []*pendingWrite) ([]bool, []writeOutcome, error) {
	include := make([]bool, len(batch))
	settled := make([]writeOutcome, len(batch))
	var orgs, scopes, keys []string
	var hashes [][]byte
	var bodies []string
	first := map[string]int{} // org, scope, key → the batch's first request with it
	leader := make([]int, len(batch))
	for i, p := range batch {
		include[i], leader[i] = true, i
		c := p.req.Idempotency
		if c == nil {
			continue
		}
		id := p.req.Org + "\x00" + c.scope() + "\x00" + c.Key
		if j, dup := first[id]; dup {
			include[i], leader[i] = false, j
			continue
		}
		first[id] = i
		body, err := json.Marshal(storedAnswer{Receipts: receipts(p.req.Events)})
		if err != nil {
			return nil, nil, err
		}
		orgs, scopes, keys = append(orgs, p.req.Org), append(scopes, c.scope()), append(keys, c.Key)
		hashes, bodies = append(hashes, c.RequestHash), append(bodies, string(body))
	}
	if len(keys) == 0 {
		return include, settled, nil
	}
	rows, _ := tx.Query(ctx, `INSERT INTO api_idempotency (organization_id, scope, idempotency_key, request_hash, status, response)
		SELECT o, s, k, h, 201, r FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::jsonb[]) AS t(o, s, k, h, r)
		ORDER BY o, s, k
		ON CONFLICT (organization_id, scope, idempotency_key) DO UPDATE
			SET request_hash = EXCLUDED.request_hash, status = EXCLUDED.status, response = EXCLUDED.response, created_at = now()
			WHERE api_idempotency.created_at < now() - make_interval(secs => $6)
		RETURNING organization_id, scope, idempotency_key`, orgs, scopes, keys, hashes, bodies, IdempotencyTTL.Seconds())
	won, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var o, s, k string
		err := r.Scan(&o, &s, &k)
		return o + "\x00" + s + "\x00" + k, err
	})
	if err != nil {
		return nil, nil, err
	}
	for _, id := range won {
		delete(first, id)
	}
	// What is left in first lost its key to a committed request: read that one's answer.
	prior := map[string]*StoredAnswer{}
	if len(first) > 0 {
		orgs, scopes, keys = orgs[:0], scopes[:0], keys[:0]
		for _, i := range first {
			p := batch[i]
			orgs, scopes, keys = append(orgs, p.req.Org), append(scopes, p.req.Idempotency.scope()), append(keys, p.req.Idempotency.Key)
		}
		rows, _ := tx.Query(ctx, `SELECT a.organization_id, a.scope, a.idempotency_key, a.request_hash, a.status, a.response
			FROM api_idempotency a JOIN unnest($1::text[], $2::text[], $3::text[]) AS t(o, s, k)
			ON a.organization_id = t.o AND a.scope = t.s AND a.idempotency_key = t.k`, orgs, scopes, keys)
		var o, s, k string
		var hash, response []byte
		var status int
		_, err := pgx.ForEachRow(rows, []any{&o, &s, &k, &hash, &status, &response}, func() error {
			a, err := decodeAnswer(k, hash, status, response)
			prior[o+"\x00"+s+"\x00"+k] = a
			return err
		})
		if err != nil {
			return nil, nil, err
		}
	}
	for i, p := range batch {
		c := p.req.Idempotency
		if c == nil {
			continue
		}
		l := batch[leader[i]]
		id := p.req.Org + "\x00" + c.scope() + "\x00" + c.Key
		if _, lost := first[id]; !lost {
			if leader[i] != i { // the batch's own winner: its receipts are the answer
				a := StoredAnswer{RequestHash: l.req.Idempotency.RequestHash, Status: 201, Receipts: receipts(l.req.Events)}
				settled[i].res, settled[i].err = a.replayFor(c)
			}
			continue
		}
		include[i] = false
		if a := prior[id]; a != nil {
			settled[i].res, settled[i].err = a.replayFor(c)
		} else {
			settled[i].err = errIdempotencyVanished
		}
	}
	return include, settled, nil
}

// committedAnyway settles a commit whose acknowledgement was lost: it looks for the first
// event of the transaction. It returns false when the event is absent or the database
// cannot be asked (the caller then reports the outage; a client retry with the same
// Idempotency-Key stays safe either way).
func (w *Writer) committedAnyway(ev *models.Event) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var n int
	err := w.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE id = $1 AND "timestamp" = $2`, ev.ID, ev.Timestamp.UTC()).Scan(&n)
	return err == nil && n == 1
}

func receipts(events []models.Event) []Receipt {
	out := make([]Receipt, len(events))
	for i := range events {
		out[i] = Receipt{ID: events[i].ID, Hash: events[i].Hash, Timestamp: events[i].Timestamp}
	}
	return out
}

// transient reports whether err means the database is unreachable or overloaded (retry
// later) rather than refusing these rows (retrying would fail again).
func transient(err error) bool {
	var refused *models.Error
	if errors.As(err, &refused) && refused.Kind == models.KindInvalid {
		return false // the writer itself found the rows unwritable
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", // connection exception
			"53", // insufficient resources
			"55", // object not in prerequisite state (lock not available)
			"57", // operator intervention: shutdown, cancel
			"58", // system error
			"40": // serialization failure, deadlock
			return true
		}
		return false
	}
	// Without an SQLSTATE the error came from the connection (refused, reset, closed, timed
	// out) or the context: the server gave no verdict on the rows themselves.
	return true
}

// refusalReason is the database's words for a refusal, kept for the dead letter.
func refusalReason(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		r := pgErr.Code + ": " + pgErr.Message
		if pgErr.Detail != "" {
			r += " (" + pgErr.Detail + ")"
		}
		return models.Truncate(r, 2000)
	}
	return models.Truncate(err.Error(), 2000)
}

// IdempotencyTTL is how long an Idempotency-Key's first answer is kept.
const IdempotencyTTL = 24 * time.Hour

// storedAnswer is the JSON kept in api_idempotency.response and, for replays, in
// archive_dlq_event.replay_result.
type storedAnswer struct {
	Receipts []Receipt `json:"receipts"`
}
