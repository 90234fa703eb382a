package session

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Throttle counts failures per key (an account, an address) in a fixed window and says when
// a key has failed too often. Counts live in Redis so every instance shares them; when
// Redis is unreachable it falls back to counting in this process, so a Redis outage never
// opens the door wider than one instance's limit.
type Throttle struct {
	rdb    *redis.Client
	prefix string
	limit  int
	window time.Duration
	now    func() time.Time

	mu  sync.Mutex
	mem map[string]memCount
}

type memCount struct {
	n     int
	until time.Time
}

// NewThrottle allows limit failures per key within window. rdb may be nil.
func NewThrottle(rdb *redis.Client, prefix string, limit int, window time.Duration) *Throttle {
	return &Throttle{rdb: rdb, prefix: prefix, limit: limit, window: window, now: time.Now, mem: map[string]memCount{}}
}

// Blocked reports whether key has reached the limit.
func (t *Throttle) Blocked(ctx context.Context, key string) bool {
	if t.rdb != nil {
		n, err := t.rdb.Get(ctx, t.prefix+key).Int()
		if err == nil || err == redis.Nil {
			return n >= t.limit || t.memCount(key) >= t.limit
		}
	}
	return t.memCount(key) >= t.limit
}

// Fail records one failure for key.
func (t *Throttle) Fail(ctx context.Context, key string) {
	if t.rdb != nil {
		pipe := t.rdb.TxPipeline()
		pipe.Incr(ctx, t.prefix+key)
		pipe.ExpireNX(ctx, t.prefix+key, t.window)
		if _, err := pipe.Exec(ctx); err == nil {
			return
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	c := t.mem[key]
	if now.After(c.until) {
		c = memCount{until: now.Add(t.window)}
	}
	c.n++
	t.mem[key] = c
	if len(t.mem) > 100_000 { // bound memory under a spray of keys
		for k, v := range t.mem {
			if now.After(v.until) {
				delete(t.mem, k)
			}
		}
	}
}

// Reset forgets key's failures (after a success).
func (t *Throttle) Reset(ctx context.Context, key string) {
	if t.rdb != nil {
		t.rdb.Del(ctx, t.prefix+key)
	}
	t.mu.Lock()
	delete(t.mem, key)
	t.mu.Unlock()
}

func (t *Throttle) memCount(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.mem[key]
	if !ok || t.now().After(c.until) {
		return 0
	}
	return c.n
}

// String describes the limit for messages.
func (t *Throttle) String() string {
	return fmt.Sprintf("%d failures per %s", t.limit, t.window)
}
