package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/pgtest"
)

func testPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := models.OpenPool(context.Background(), pgtest.DSN(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// startWriter returns a started writer over the package database, closed at cleanup.
func startWriter(t *testing.T, cfg ingest.WriterConfig) *ingest.Writer {
	t.Helper()
	db := pgtest.DB(t)
	w := ingest.NewWriter(testPool(t), models.NewPartitionManager(db), ingest.NewDeadLetterStore(db), cfg,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.Start()
	t.Cleanup(func() { w.Close(context.Background()) })
	return w
}

// sealed returns n sealed events of org with distinct actions prefix-0, prefix-1, ….
func sealed(t *testing.T, org, prefix string, n int) []models.Event {
	t.Helper()
	s := pgtest.Sealer(t)
	out := make([]models.Event, n)
	for i := range out {
		out[i] = models.Event{OrganizationID: org, Timestamp: time.Now().UTC(), Action: prefix + "-" + strconv.Itoa(i), Status: "success",
			DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0"}
		if err := s.Seal(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestWriterGroupsConcurrentRequests(t *testing.T) {
	w := startWriter(t, ingest.WriterConfig{MaxDelay: 20 * time.Millisecond, MaxBatch: 1000})
	org := pgtest.OrgID(t, "")
	const requests = 40
	var wg sync.WaitGroup
	results := make([]ingest.WriteResult, requests)
	errs := make([]error, requests)
	received := time.Now()
	for i := 0; i < requests; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i], errs[i] = w.Write(context.Background(), ingest.WriteRequest{Org: org,
				Events: sealed(t, org, "req"+strconv.Itoa(i), 1+i%3), Received: received})
		}(i)
	}
	wg.Wait()
	ids := map[int64]bool{}
	total := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if len(results[i].Receipts) != 1+i%3 {
			t.Fatalf("request %d: %d receipts", i, len(results[i].Receipts))
		}
		for _, r := range results[i].Receipts {
			if r.ID == 0 || ids[r.ID] || len(r.Hash) != 64 {
				t.Fatalf("bad or duplicate receipt %+v", r)
			}
			ids[r.ID] = true
			total++
		}
	}
	if _, batches := w.Stats(); batches >= requests {
		t.Errorf("%d transactions for %d concurrent requests: nothing was grouped", batches, requests)
	}
	if n := countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ?`, org); n != int64(total) {
		t.Fatalf("%d rows, want %d", n, total)
	}
	if n := countWhere(t, `SELECT coalesce(sum(cardinality(audit_log_ids)), 0) FROM audit_leaf_queue WHERE organization_id = ?`, org); n != int64(total) {
		t.Fatalf("%d queued for the log, want %d", n, total)
	}
	if n := countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND processing_latency >= 0`, org); n != int64(total) {
		t.Fatalf("processing_latency missing on %d rows", int64(total)-n)
	}
}

func TestWriterIdempotencyKeys(t *testing.T) {
	w := startWriter(t, ingest.WriterConfig{MaxDelay: 20 * time.Millisecond})
	answers := ingest.NewIdempotencyStore(pgtest.DB(t))
	ctx := context.Background()
	org := pgtest.OrgID(t, "")
	claim := func(key, body string) *ingest.IdempotencyClaim {
		return &ingest.IdempotencyClaim{Key: key, RequestHash: []byte(body)}
	}

	t.Run("the first answer is stored with the events", func(t *testing.T) {
		res, err := w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "k1", 2), Received: time.Now(), Idempotency: claim("k1", "a")})
		if err != nil {
			t.Fatal(err)
		}
		got, err := answers.Lookup(ctx, org, "k1")
		if err != nil || got == nil || got.Status != 201 || string(got.RequestHash) != "a" || len(got.Receipts) != 2 ||
			got.Receipts[0].ID != res.Receipts[0].ID || !got.Receipts[1].Timestamp.Equal(res.Receipts[1].Timestamp) {
			t.Fatalf("stored %+v, %v; want the receipts %+v", got, err, res.Receipts)
		}
		if other, _ := answers.Lookup(ctx, pgtest.OrgID(t, "other"), "k1"); other != nil {
			t.Fatal("a key is per organization")
		}
	})
	t.Run("a second request with the key writes nothing", func(t *testing.T) {
		_, err := w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "k1-again", 1), Received: time.Now(), Idempotency: claim("k1", "b")})
		if !errors.Is(err, ingest.ErrIdempotencyConflict) {
			t.Fatalf("err = %v, want ErrIdempotencyConflict", err)
		}
		first, _ := answers.Lookup(ctx, org, "k1")
		res, err := w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "k1-same", 2), Received: time.Now(), Idempotency: claim("k1", "a")})
		if err != nil || !res.Replayed || len(res.Receipts) != 2 || res.Receipts[0].ID != first.Receipts[0].ID {
			t.Fatalf("the same request again: %+v, %v; want a replay of %+v", res, err, first.Receipts)
		}
		if n := countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND (action LIKE 'k1-again%' OR action LIKE 'k1-same%')`, org); n != 0 {
			t.Fatalf("%d events written under a taken key", n)
		}
	})
	t.Run("concurrent requests with one key: exactly one writes, the others replay it", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, 8)
		results := make([]ingest.WriteResult, len(errs))
		for i := range errs {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				results[i], errs[i] = w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "race", 1), Received: time.Now(), Idempotency: claim("race", "x")})
			}(i)
		}
		wg.Wait()
		fresh := 0
		for i, err := range errs {
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if !results[i].Replayed {
				fresh++
			}
			if len(results[i].Receipts) != 1 || results[i].Receipts[0] != results[0].Receipts[0] {
				t.Fatalf("request %d got %+v, request 0 %+v", i, results[i].Receipts, results[0].Receipts)
			}
		}
		if n := countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND action LIKE 'race-%'`, org); fresh != 1 || n != 1 {
			t.Fatalf("%d requests wrote and %d events were written; want 1 and 1", fresh, n)
		}
	})
	t.Run("a different request racing the key gets a conflict", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				_, errs[i] = w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "mixed", 1), Received: time.Now(),
					Idempotency: claim("mixed", strconv.Itoa(i%2))})
			}(i)
		}
		wg.Wait()
		ok, conflicts := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ingest.ErrIdempotencyConflict):
				conflicts++
			default:
				t.Fatalf("unexpected error %v", err)
			}
		}
		if ok != 3 || conflicts != 3 {
			t.Fatalf("%d answered, %d conflicts; want 3 and 3 (one body wins, its twins replay)", ok, conflicts)
		}
		if n := countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND action LIKE 'mixed-%'`, org); n != 1 {
			t.Fatalf("%d events written, want 1", n)
		}
	})
	t.Run("client and internal keys do not meet", func(t *testing.T) {
		if _, err := w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "scope-client", 1), Received: time.Now(), Idempotency: claim("shared", "c")}); err != nil {
			t.Fatal(err)
		}
		res, err := w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "scope-internal", 1), Received: time.Now(), Idempotency: ingest.InternalClaim("shared", []byte("i"))})
		if err != nil || res.Replayed {
			t.Fatalf("an internal key should not see the client's: %+v, %v", res, err)
		}
		if got, _ := answers.Lookup(ctx, org, "shared"); got == nil || string(got.RequestHash) != "c" {
			t.Fatalf("the client's answer: %+v", got)
		}
		if n := countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND action LIKE 'scope-%'`, org); n != 2 {
			t.Fatalf("%d events written, want 2", n)
		}
	})
	t.Run("an expired key is taken over", func(t *testing.T) {
		if err := pgtest.DB(t).Exec(`INSERT INTO api_idempotency (organization_id, idempotency_key, request_hash, status, response, created_at)
			VALUES (?, 'old', 'x', 201, '{"receipts":[]}', now() - interval '25 hours')`, org).Error; err != nil {
			t.Fatal(err)
		}
		if got, _ := answers.Lookup(ctx, org, "old"); got != nil {
			t.Fatal("an expired answer should not be returned")
		}
		if _, err := w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "old", 1), Received: time.Now(), Idempotency: claim("old", "y")}); err != nil {
			t.Fatalf("expired key not taken over: %v", err)
		}
		if got, _ := answers.Lookup(ctx, org, "old"); got == nil || string(got.RequestHash) != "y" {
			t.Fatalf("stored %+v", got)
		}
	})
}

func TestWriterDeadLettersWhatTheDatabaseRefuses(t *testing.T) {
	db := pgtest.DB(t)
	// A constraint the validation does not know about stands for any refusal after
	// acceptance.
	if err := db.Exec(`ALTER TABLE audit_log ADD CONSTRAINT test_refuse_poison CHECK (action <> 'poison-0')`).Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec(`ALTER TABLE audit_log DROP CONSTRAINT test_refuse_poison`) })
	w := startWriter(t, ingest.WriterConfig{MaxDelay: 50 * time.Millisecond})
	var sunk []models.ErrorRecord
	var sinkMu sync.Mutex
	w.ErrorSink = func(_ context.Context, rec models.ErrorRecord) {
		sinkMu.Lock()
		defer sinkMu.Unlock()
		sunk = append(sunk, rec)
	}
	ctx := context.Background()
	org := pgtest.OrgID(t, "")

	var wg sync.WaitGroup
	var good, bad ingest.WriteResult
	var goodErr, badErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		good, goodErr = w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "fine", 3), Received: time.Now(), KeepDeadLetter: true})
	}()
	go func() {
		defer wg.Done()
		bad, badErr = w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "poison", 2), Received: time.Now(),
			KeepDeadLetter: true, Source: "api"})
	}()
	wg.Wait()
	if goodErr != nil || len(good.Receipts) != 3 {
		t.Fatalf("the good request sank with the bad one: %v %+v", goodErr, good)
	}
	if badErr != nil || bad.DeadLetter == nil || len(bad.Receipts) != 0 {
		t.Fatalf("bad request: %v %+v; want a dead letter", badErr, bad)
	}
	dl, err := ingest.NewDeadLetterStore(db).Get(ctx, org, bad.DeadLetter.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dl.FailureReason, "test_refuse_poison") || dl.EventCount() != 2 || dl.Action != "batch of 2 events" {
		t.Fatalf("dead letter = %+v", dl)
	}
	if n := countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND action LIKE 'poison-%'`, org); n != 0 {
		t.Fatalf("%d events of the refused request were written; a request is atomic", n)
	}
	sinkMu.Lock()
	if len(sunk) != 1 || sunk[0].Kind != models.ErrorKindDeadLetter || sunk[0].Org != org || sunk[0].Operation != "ingest api" ||
		sunk[0].Context["dead_letter_id"] != bad.DeadLetter.ID || !strings.Contains(sunk[0].Message, "test_refuse_poison") {
		t.Fatalf("error log got %+v, want one dead-letter record", sunk)
	}
	sinkMu.Unlock()

	_, err = w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "poison", 1), Received: time.Now()})
	if models.KindOf(err) != models.KindInvalid || !strings.Contains(err.Error(), "test_refuse_poison") {
		t.Fatalf("without KeepDeadLetter: err = %v, want KindInvalid with the reason", err)
	}
}

func TestWriterQueueFullAndOutage(t *testing.T) {
	db := pgtest.DB(t)
	w := startWriter(t, ingest.WriterConfig{MaxQueued: 3, MaxBatch: 1, Flushers: 1, MaxDelay: time.Millisecond})
	ctx := context.Background()
	org := pgtest.OrgID(t, "")
	if _, err := w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "warm", 1), Received: time.Now()}); err != nil {
		t.Fatal(err)
	}

	// Block the writer: it waits for the lock on the leaf queue.
	blocker := db.Begin()
	if err := blocker.Exec(`LOCK TABLE audit_leaf_queue IN ACCESS EXCLUSIVE MODE`).Error; err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func(i int) {
			_, err := w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "blocked"+strconv.Itoa(i), 1), Received: time.Now()})
			first <- err
		}(i)
	}
	waitFor(t, "the writer to wait on the lock", func() bool {
		return countWhere(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) > 0
	})
	waitFor(t, "the queue to fill", func() bool {
		_, err := w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "overflow", 1), Received: time.Now()})
		return models.KindOf(err) == models.KindTooMany && models.RetryAfterOf(err) > 0
	})

	// Kill the writer's connection mid-transaction: an outage as the writer sees it.
	if err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock'`).Error; err != nil {
		t.Fatal(err)
	}
	blocker.Rollback()
	outage := 0
	for i := 0; i < 3; i++ {
		if err := <-first; err != nil {
			if models.KindOf(err) != models.KindUnavailable || models.RetryAfterOf(err) < time.Second {
				t.Fatalf("err = %v, want KindUnavailable with a Retry-After", err)
			}
			outage++
		}
	}
	if outage == 0 {
		t.Fatal("no request saw the outage")
	}
	waitFor(t, "the writer to recover by itself", func() bool {
		_, err := w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "after", 1), Received: time.Now()})
		return err == nil
	})
	if n := countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND action LIKE 'overflow%'`, org); n != 0 {
		t.Fatalf("%d events refused with 429 were written", n)
	}
}

// TestWriterPaths covers gatherings of every size, with and without an Idempotency-Key (a
// key adds a transaction around the write that stores the answer).
func TestWriterPaths(t *testing.T) {
	w := startWriter(t, ingest.WriterConfig{})
	org := pgtest.OrgID(t, "")
	cases := []struct {
		name  string
		n     int
		claim *ingest.IdempotencyClaim
	}{
		{"one event", 1, nil},
		{"a few events", 20, nil},
		{"many events", 1500, nil},
		{"a few events with a key", 3, &ingest.IdempotencyClaim{Key: "paths", RequestHash: []byte("h")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs := sealed(t, org, tc.name, tc.n)
			res, err := w.Write(context.Background(), ingest.WriteRequest{Org: org, Events: evs, Received: time.Now(), Idempotency: tc.claim})
			if err != nil || len(res.Receipts) != tc.n {
				t.Fatalf("%d receipts, err %v", len(res.Receipts), err)
			}
			for i, r := range res.Receipts {
				var got models.Event
				if err := pgtest.DB(t).Where("organization_id = ? AND id = ?", org, r.ID).Take(&got).Error; err != nil {
					t.Fatalf("receipt %d: %v", i, err)
				}
				if got.Hash != evs[i].Hash || got.Action != evs[i].Action || !got.Timestamp.Equal(evs[i].Timestamp) {
					t.Fatalf("receipt %d names another event", i)
				}
				if v, err := pgtest.Sealer(t).Verify(&got); err != nil || !v.HashOK || !v.SignatureOK {
					t.Fatalf("stored event %d does not verify", i)
				}
			}
			if n := countWhere(t, `SELECT count(*) FROM audit_leaf_queue q, unnest(q.audit_log_ids) AS u(id)
				JOIN audit_log e ON e.id = u.id WHERE e.organization_id = ? AND e.action LIKE ?`, org, tc.name+"-%"); n != int64(tc.n) {
				t.Fatalf("%d events queued for the log, want %d", n, tc.n)
			}
		})
	}
}

// While one gathering is being written, a flusher with a small one keeps gathering until
// that write ends, then writes everything it gathered in one transaction; HoldFor bounds
// the wait.
func TestWriterHoldsSmallGatheringsWhileAnotherIsWritten(t *testing.T) {
	for _, tc := range []struct {
		name    string
		holdFor time.Duration
		waiters int64 // writes waiting on the lock while the first is blocked
	}{
		{"held until the write ends", time.Minute, 1},
		{"held at most HoldFor", 50 * time.Millisecond, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := pgtest.DB(t)
			w := startWriter(t, ingest.WriterConfig{Flushers: 2, HoldBelow: 100, HoldFor: tc.holdFor, MaxDelay: time.Millisecond})
			ctx := context.Background()
			org := pgtest.OrgID(t, "")
			if _, err := w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "warm", 1), Received: time.Now()}); err != nil {
				t.Fatal(err)
			}
			_, before := w.Stats()
			blocker := db.Begin()
			defer blocker.Rollback()
			if err := blocker.Exec(`LOCK TABLE audit_leaf_queue IN ACCESS EXCLUSIVE MODE`).Error; err != nil {
				t.Fatal(err)
			}
			waiting := func() int64 {
				return countWhere(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
			}
			errs := make(chan error, 31)
			write := func(prefix string) {
				_, err := w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, prefix, 1), Received: time.Now()})
				errs <- err
			}
			go write("first")
			waitFor(t, "the first write to wait on the lock", func() bool { return waiting() == 1 })
			for i := 0; i < 30; i++ {
				go write("held" + strconv.Itoa(i))
			}
			time.Sleep(300 * time.Millisecond)
			if got := waiting(); got != tc.waiters {
				t.Fatalf("%d writes waiting on the lock, want %d", got, tc.waiters)
			}
			blocker.Rollback()
			for i := 0; i < 31; i++ {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if n := countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND action LIKE 'held%'`, org); n != 30 {
				t.Fatalf("%d held events written, want 30", n)
			}
			if _, after := w.Stats(); tc.waiters == 1 && after-before != 2 {
				t.Fatalf("%d transactions for the blocked write and 30 held requests, want 2", after-before)
			}
		})
	}
}

// Rows the writer itself cannot write (an organization id that could not be written into
// the queue's SQL) are refused as invalid, not taken for an outage: the next request goes
// through at once.
func TestWriterRefusesUnwritableRowsWithoutAnOutage(t *testing.T) {
	w := startWriter(t, ingest.WriterConfig{})
	ctx := context.Background()
	evs := sealed(t, "x", "odd", 1)
	evs[0].OrganizationID = "Not an org'"
	_, err := w.Write(ctx, ingest.WriteRequest{Org: evs[0].OrganizationID, Events: evs, Received: time.Now()})
	if models.KindOf(err) != models.KindInvalid {
		t.Fatalf("err = %v, want KindInvalid", err)
	}
	org := pgtest.OrgID(t, "")
	if _, err := w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "next", 1), Received: time.Now()}); err != nil {
		t.Fatalf("the next request: %v (the writer took the refusal for an outage)", err)
	}
}

// TestReceiptJSON: a receipt's JSON form, as Idempotency-Key answers and replayed dead
// letters keep it, and back.
func TestReceiptJSON(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.FixedZone("CET", 3600))
	r := ingest.Receipt{ID: 7, Hash: strings.Repeat("ab", 32), Timestamp: at}
	b, err := json.Marshal([]ingest.Receipt{r})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"id":7,"hash":"` + r.Hash + `","timestamp":"2026-11-26T09:00:00.123456Z"}]`
	if string(b) != want {
		t.Fatalf("JSON = %s, want %s", b, want)
	}
	var back []ingest.Receipt
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != 1 || back[0].ID != 7 || back[0].Hash != r.Hash || !back[0].Timestamp.Equal(at) {
		t.Fatalf("decoded %+v, want %+v", back, r)
	}
	if err := json.Unmarshal([]byte(`[{"id":1,"hash":"x","timestamp":"yesterday"}]`), &back); err == nil {
		t.Fatal("a timestamp not in TimestampLayout decoded without error")
	}
}

// A request the database refuses whose dead letter it refuses too (details PostgreSQL's
// numeric cannot hold) is answered as invalid, not as an outage the client should retry
// forever; the next request goes through at once.
func TestWriterRefusesAnUnstorableDeadLetterWithoutAnOutage(t *testing.T) {
	w := startWriter(t, ingest.WriterConfig{})
	ctx := context.Background()
	org := pgtest.NewOrg(t, "")
	evs := sealed(t, org, "unstorable", 1)
	evs[0].Details = []byte(`{"one":1.` + strings.Repeat("0", 20000) + `}`)
	_, err := w.Write(ctx, ingest.WriteRequest{Org: org, Events: evs, Received: time.Now(), KeepDeadLetter: true})
	if models.KindOf(err) != models.KindInvalid {
		t.Fatalf("err = %v, want KindInvalid", err)
	}
	if _, err := w.Write(ctx, ingest.WriteRequest{Org: org, Events: sealed(t, org, "next", 1), Received: time.Now()}); err != nil {
		t.Fatalf("the next request: %v (the writer took the refusal for an outage)", err)
	}
}

// A partition the writer knew of, dropped by another process (a retention run emptying a
// past month), is created again when an event of that month arrives, instead of the event
// being refused.
func TestWriterRecreatesAPartitionDroppedElsewhere(t *testing.T) {
	w := startWriter(t, ingest.WriterConfig{})
	org := pgtest.OrgID(t, "")
	db := pgtest.DB(t)
	month := time.Date(2019, time.March, 1, 0, 0, 0, 0, time.UTC)
	write := func(action string) error {
		ev := sealed(t, org, action, 1)
		ev[0].Timestamp = month.Add(36 * time.Hour)
		if err := pgtest.Sealer(t).Seal(&ev[0]); err != nil {
			t.Fatal(err)
		}
		_, err := w.Write(context.Background(), ingest.WriteRequest{Org: org, Events: ev, Received: time.Now()})
		return err
	}
	if err := write("first"); err != nil {
		t.Fatal(err)
	}
	// Another process empties and drops the month; this writer still remembers it.
	if err := db.Exec(`DROP TABLE ` + models.PartitionName("audit_log", month)).Error; err != nil {
		t.Fatal(err)
	}
	if err := write("after-drop"); err != nil {
		t.Fatalf("an event of a month whose partition was dropped elsewhere: %v", err)
	}
	if n := countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND action LIKE 'after-drop-%'`, org); n != 1 {
		t.Fatalf("%d events stored after the drop, want 1", n)
	}
}
