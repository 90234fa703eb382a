package session_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"auditdb/models/pgtest"
	"auditdb/models/session"
)

var throttleRun atomic.Int64

// throttles returns throttles as two instances would hold them (one with Redis, one
// without: neither uses it), sharing one prefix, so they count in the same rows.
func throttles(t *testing.T, limit int) []*session.Throttle {
	t.Helper()
	prefix := fmt.Sprintf("auditdb:test:throttle:%d:%d:", time.Now().UnixNano(), throttleRun.Add(1))
	db := pgtest.DB(t)
	return []*session.Throttle{
		session.NewThrottle(db, prefix, limit, time.Minute),
		session.NewThrottle(db, prefix, limit, time.Minute),
	}
}

// TestThrottleReservesAtomically: forty attempts at once on one key, spread over two
// instances, get exactly the limit of reservations between them (reserve, then act: none
// slips in between a check and a count, and no instance counts apart).
func TestThrottleReservesAtomically(t *testing.T) {
	instances := throttles(t, 5)
	var granted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if instances[i%2].Reserve(context.Background(), "acct:victim@example.test") {
				granted.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if g := granted.Load(); g != 5 {
		t.Fatalf("%d of 40 parallel attempts over two instances were let through, want exactly 5", g)
	}
	if !instances[0].Reserve(context.Background(), "acct:other@example.test") {
		t.Fatal("another key is limited too")
	}
}

// TestThrottleRelease: a released reservation is given back (a successful sign-in), a
// refused attempt stays counted, and other keys are not touched.
func TestThrottleRelease(t *testing.T) {
	ctx := context.Background()
	th := throttles(t, 2)[0]
	if !th.Reserve(ctx, "k") || !th.Reserve(ctx, "k") {
		t.Fatal("the first two attempts are refused")
	}
	if th.Reserve(ctx, "k") {
		t.Fatal("a third attempt within the window is let through")
	}
	th.Release(ctx, "k")
	if th.Reserve(ctx, "k") {
		t.Fatal("releasing one reservation undid the refused attempt's count too")
	}
	if !th.Reserve(ctx, "other") {
		t.Fatal("another key is limited too")
	}
}
