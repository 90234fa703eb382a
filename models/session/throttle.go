package session

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"
)

// Throttle limits attempts per key (an account, an address) in a fixed window. It counts
// an attempt before the password is checked (Reserve), so however many requests arrive at
// once, at most limit of them per window get to try one: the count is taken atomically and
// only then acted on. A successful attempt gives its reservation back (Release); a failed
// one keeps it.
//
// Counts live in PostgreSQL, one atomic upsert per attempt in an unlogged table: every
// instance counts in the same row whether or not it can reach Redis. (Counting in Redis while
// it is up and in PostgreSQL while it is down split the count between instances that saw
// Redis differently, so two instances let twice the limit through.) Sign-in attempts are
// few; the upsert costs about a millisecond.
type Throttle struct {
	db     *gorm.DB
	prefix string
	limit  int
	window time.Duration
	log    *slog.Logger
}

// NewThrottle allows limit attempts per key within window, counting in db. prefix starts
// every key, so that several limiters can share the table.
func NewThrottle(db *gorm.DB, prefix string, limit int, window time.Duration) *Throttle {
	return &Throttle{db: db, prefix: prefix, limit: limit, window: window, log: slog.New(slog.DiscardHandler)}
}

// WithLog returns t logging its failures to log.
func (t *Throttle) WithLog(log *slog.Logger) *Throttle {
	t.log = log
	return t
}

// Reserve counts one attempt for key and reports whether it is within the limit. An
// attempt refused here must not be tried. When the database cannot count,
// it refuses: a limiter that cannot count must not open the door.
func (t *Throttle) Reserve(ctx context.Context, key string) bool {
	n, err := t.add(ctx, key, 1)
	if err != nil {
		t.log.Error("session: cannot count sign-in attempts; refusing", "err", err)
		return false
	}
	return n <= int64(t.limit)
}

// Release gives back one reservation of key (after a successful attempt that should not
// count against the key, such as a sign-in from an address).
func (t *Throttle) Release(ctx context.Context, key string) {
	if _, err := t.add(ctx, key, -1); err != nil {
		t.log.Warn("session: release a sign-in attempt", "err", err)
	}
}

// add changes key's count by delta (within the current window) and returns the new count.
func (t *Throttle) add(ctx context.Context, key string, delta int64) (int64, error) {
	k := t.prefix + key
	// One statement, so concurrent attempts on every instance are counted atomically; a
	// window that has ended starts over.
	var n int64
	err := t.db.WithContext(ctx).Raw(`
		INSERT INTO login_attempts AS a (key, n, until) VALUES (?, greatest(?, 0), now() + ?::interval)
		ON CONFLICT (key) DO UPDATE SET
			n     = CASE WHEN a.until <= now() THEN greatest(EXCLUDED.n, 0) ELSE greatest(a.n + ?, 0) END,
			until = CASE WHEN a.until <= now() THEN EXCLUDED.until ELSE a.until END
		RETURNING n`, k, delta, fmt.Sprintf("%d milliseconds", t.window.Milliseconds()), delta).Scan(&n).Error
	if err != nil {
		return 0, fmt.Errorf("session: count attempts: %w", err)
	}
	return n, nil
}

// PurgeExpired deletes the database's counts whose window has ended and returns how many.
func (t *Throttle) PurgeExpired(ctx context.Context) (int64, error) {
	res := t.db.WithContext(ctx).Exec(`DELETE FROM login_attempts WHERE until <= now()`)
	if res.Error != nil {
		return 0, fmt.Errorf("session: purge sign-in attempts: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// String describes the limit for messages.
func (t *Throttle) String() string {
	return fmt.Sprintf("%d attempts per %s", t.limit, t.window)
}
