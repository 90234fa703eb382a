package session_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"auditdb/models/pgtest"
	"auditdb/models/session"
)

var throttleRun atomic.Int64

// throttles returns a Redis-backed throttle and one whose Redis is unreachable (so it
// counts in PostgreSQL), each with a prefix of its own.
func throttles(t *testing.T, limit int) map[string]*session.Throttle {
	t.Helper()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { dead.Close() })
	prefix := func() string {
		return fmt.Sprintf("auditdb:test:throttle:%d:%d:", time.Now().UnixNano(), throttleRun.Add(1))
	}
	db := pgtest.DB(t)
	return map[string]*session.Throttle{
		"redis":      session.NewThrottle(pgtest.Redis(t), db, prefix(), limit, time.Minute),
		"postgresql": session.NewThrottle(dead, db, prefix(), limit, time.Minute),
	}
}

// TestThrottleReservesAtomically: forty attempts at once on one key get exactly the limit
// of reservations, in Redis and in PostgreSQL alike (reserve, then act: none slips in
// between a check and a count).
func TestThrottleReservesAtomically(t *testing.T) {
	for name, th := range throttles(t, 5) {
		t.Run(name, func(t *testing.T) {
			var granted atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if th.Reserve(context.Background(), "acct:victim@example.test") {
						granted.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			if g := granted.Load(); g != 5 {
				t.Fatalf("%d of 40 parallel attempts were let through, want exactly 5", g)
			}
			if th.Reserve(context.Background(), "acct:other@example.test") != true {
				t.Fatal("another key is limited too")
			}
		})
	}
}

// TestThrottleReleaseAndForget: a released reservation is given back (a successful
// sign-in from an address), a forgotten key starts over (a successful sign-in to an
// account), and a refused attempt stays counted.
func TestThrottleReleaseAndForget(t *testing.T) {
	ctx := context.Background()
	for name, th := range throttles(t, 2) {
		t.Run(name, func(t *testing.T) {
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
			th.Forget(ctx, "k")
			if !th.Reserve(ctx, "k") {
				t.Fatal("a forgotten key is still limited")
			}
		})
	}
}

// TestThrottleWithRedisDownIsQuick: after Redis failed once, the throttle leaves it alone
// for a while, so sign-ins during an outage do not each wait for a dial.
func TestThrottleWithRedisDownIsQuick(t *testing.T) {
	slow := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 300 * time.Millisecond, MaxRetries: -1})
	defer slow.Close()
	th := session.NewThrottle(slow, pgtest.DB(t), fmt.Sprintf("auditdb:test:quick:%d:", time.Now().UnixNano()), 100, time.Minute)
	th.Reserve(context.Background(), "warm") // the one failed dial
	start := time.Now()
	for i := range 20 {
		if !th.Reserve(context.Background(), fmt.Sprint("k", i)) {
			t.Fatal("refused while counting in PostgreSQL")
		}
	}
	// Each of the 20 would take at least one failed dial without the backoff.
	if took := time.Since(start); took > 20*time.Millisecond*10 {
		t.Fatalf("20 attempts with Redis down took %s: the throttle keeps dialling Redis", took)
	}
}

// TestThrottleKeysCarryThePrefix: two deployments sharing one Redis keep apart.
func TestThrottleKeysCarryThePrefix(t *testing.T) {
	rdb := pgtest.Redis(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("deploy-%d:", time.Now().UnixNano())
	a := session.NewThrottle(rdb, pgtest.DB(t), prefix+"a:", 1, time.Minute)
	b := session.NewThrottle(rdb, pgtest.DB(t), prefix+"b:", 1, time.Minute)
	if !a.Reserve(ctx, "k") || !b.Reserve(ctx, "k") {
		t.Fatal("one deployment's count reached the other")
	}
	if n, err := rdb.Exists(ctx, prefix+"a:k", prefix+"b:k").Result(); err != nil || n != 2 {
		t.Fatalf("prefixed keys in Redis: %d %v", n, err)
	}
	rdb.Del(ctx, prefix+"a:k", prefix+"b:k")
}
