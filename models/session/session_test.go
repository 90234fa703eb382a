package session_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/pgtest"
	"auditdb/models/session"
)

// testClock is a settable clock for a session store.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now().UTC()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sessionFixture is a signed-in user: a member of org (current) and other, or a superadmin.
type sessionFixture struct {
	userID     int64
	org, other string
	token      string
}

func newSessionFixture(t *testing.T, store *session.Store, superadmin bool) sessionFixture {
	t.Helper()
	ctx := context.Background()
	f := sessionFixture{org: pgtest.NewOrg(t, "a"), other: pgtest.NewOrg(t, "b")}
	nu := models.NewUser{Email: f.org + "@example.test", Password: goodPassword, OrgID: f.org, Role: "org:member"}
	if superadmin {
		nu = models.NewUser{Email: f.org + "@example.test", Password: goodPassword, Superadmin: true}
	}
	users := models.NewUserStore(pgtest.DB(t))
	u, err := users.Create(ctx, nu)
	if err != nil {
		t.Fatal(err)
	}
	if !superadmin {
		if err := users.AddMembership(ctx, u.ID, f.other, "org:member"); err != nil {
			t.Fatal(err)
		}
	}
	f.userID = u.ID
	if f.token, _, err = store.Create(ctx, u.ID, f.org, "127.0.0.1", "test"); err != nil {
		t.Fatal(err)
	}
	return f
}

// listen runs change signals on dsn that store follows, until the test ends or stop is
// called, and waits until they are live. idle, when given, is how long a quiet connection
// goes before it is pinged.
func listen(t *testing.T, store *session.Store, dsn string, idle ...time.Duration) (stop func()) {
	t.Helper()
	sig := models.NewSignals(dsn, nil)
	if len(idle) > 0 {
		sig.SetIdle(idle[0])
	}
	store.Follow(sig)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sig.Run(ctx)
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	within(t, 2*time.Second, "the session listener to go live", store.Live)
	return stop
}

// within polls cond for up to d.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle waits until store's listener has handled every change committed so far: it sends
// a notification of its own and waits for its flush (notifications arrive in commit order).
var settles atomic.Int64

func settle(t *testing.T, store *session.Store) {
	t.Helper()
	// Notifications arrive in commit order: once this one is handled, so are those of
	// every change committed before it (waiting for any flush could be satisfied by an
	// earlier one, leaving this one to empty the cache later).
	marker := fmt.Sprintf("settle-%d", settles.Add(1))
	if err := pgtest.DB(t).Exec("SELECT pg_notify('auditdb_sessions', ?)", marker).Error; err != nil {
		t.Fatal(err)
	}
	within(t, 2*time.Second, "the listener to catch up", func() bool { return store.SessionHeard() == marker })
}

// cached looks token up twice and fails unless the second lookup came from the cache.
// Notifications of the test's own setup are handled first, so they cannot empty the cache
// in between.
func cached(t *testing.T, store *session.Store, token string) *session.Session {
	t.Helper()
	ctx := context.Background()
	settle(t, store)
	if _, err := store.Lookup(ctx, token); err != nil {
		t.Fatal(err)
	}
	reads := store.SessionReads()
	sess, err := store.Lookup(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if got := store.SessionReads(); got != reads {
		t.Fatalf("second lookup read the database (%d reads, want %d)", got, reads)
	}
	return sess
}

func hasOrg(sess *session.Session, id, name, role string) bool {
	return slices.ContainsFunc(sess.Orgs, func(o models.OrgAccess) bool {
		return o.ID == id && (name == "" || o.Name == name) && (role == "" || o.Role == role)
	})
}

func TestSessionCacheServesRepeatLookupsWithoutSQL(t *testing.T) {
	db := pgtest.DB(t)
	store := session.NewStore(db, nil)
	f := newSessionFixture(t, store, false)
	ctx := context.Background()

	// Without the listener every lookup reads the database.
	for range 2 {
		if _, err := store.Lookup(ctx, f.token); err != nil {
			t.Fatal(err)
		}
	}
	if got := store.SessionReads(); got != 2 {
		t.Fatalf("%d reads without the listener, want 2", got)
	}

	listen(t, store, pgtest.DSN(t))
	settle(t, store)
	first, err := store.Lookup(ctx, f.token)
	if err != nil {
		t.Fatal(err)
	}
	reads := store.SessionReads()
	sess, err := store.Lookup(ctx, f.token)
	if err != nil || store.SessionReads() != reads {
		t.Fatalf("second lookup: %v, read the database: %v", err, store.SessionReads() != reads)
	}
	if sess.Org() != f.org || sess.User.ID != f.userID || !hasOrg(sess, f.other, "", "org:member") {
		t.Fatalf("cached session %+v, user %+v", sess, sess.User)
	}

	// What callers do to their copies (the one read and the one cached) stays out of the
	// cache.
	for _, s := range []*session.Session{first, sess} {
		changed := "elsewhere"
		s.OrganizationID = &changed
		s.User.Superadmin = true
		s.Orgs[0].Role = "superadmin"
		s.CSRFSecret[0] ^= 0xff
	}
	again, err := store.Lookup(ctx, f.token)
	if err != nil || store.SessionReads() != reads {
		t.Fatalf("third lookup: %v, read the database: %v", err, store.SessionReads() != reads)
	}
	if again.Org() != f.org || again.User.Superadmin || slices.ContainsFunc(again.Orgs, func(o models.OrgAccess) bool {
		return o.Role == "superadmin"
	}) || again.CSRFSecret[0] == sess.CSRFSecret[0] {
		t.Fatalf("a caller's changes reached the cache: %+v", again)
	}
}

// TestSessionCacheInvalidation changes what a cached session carries from outside the
// store (another instance's store, or plain SQL) and expects the next lookups to see it
// within moments, long before a cache entry would lapse.
func TestSessionCacheInvalidation(t *testing.T) {
	db := pgtest.DB(t)
	store := session.NewStore(db, nil)
	other := session.NewStore(db, nil) // another instance
	listen(t, store, pgtest.DSN(t))
	ctx := context.Background()

	ended := func(sess *session.Session, err error, _ sessionFixture) bool { return err == session.ErrNoSession }
	cases := []struct {
		name       string
		superadmin bool
		change     func(t *testing.T, f sessionFixture) error
		seen       func(sess *session.Session, err error, f sessionFixture) bool
	}{
		{"revoked on another instance", false,
			func(t *testing.T, f sessionFixture) error { return other.Revoke(ctx, f.token) }, ended},
		{"user signed out everywhere on another instance", false,
			func(t *testing.T, f sessionFixture) error { _, err := other.RevokeUser(ctx, f.userID); return err }, ended},
		{"revoked by SQL", false,
			func(t *testing.T, f sessionFixture) error {
				return db.Exec("UPDATE sessions SET revoked_at = now() WHERE user_id = ?", f.userID).Error
			}, ended},
		{"deleted by SQL", false,
			func(t *testing.T, f sessionFixture) error {
				return db.Exec("DELETE FROM sessions WHERE user_id = ?", f.userID).Error
			}, ended},
		{"user disabled by SQL", false,
			func(t *testing.T, f sessionFixture) error {
				return db.Exec("UPDATE users SET disabled = true WHERE id = ?", f.userID).Error
			}, ended},
		{"membership removed by SQL", false,
			func(t *testing.T, f sessionFixture) error {
				return db.Exec("DELETE FROM memberships WHERE user_id = ? AND organization_id = ?", f.userID, f.other).Error
			},
			func(sess *session.Session, err error, f sessionFixture) bool {
				return err == nil && !hasOrg(sess, f.other, "", "") && hasOrg(sess, f.org, "", "")
			}},
		{"role changed by SQL", false,
			func(t *testing.T, f sessionFixture) error {
				return db.Exec("UPDATE memberships SET role = 'org:admin' WHERE user_id = ? AND organization_id = ?", f.userID, f.other).Error
			},
			func(sess *session.Session, err error, f sessionFixture) bool {
				return err == nil && hasOrg(sess, f.other, "", "org:admin")
			}},
		{"organization renamed by SQL", false,
			func(t *testing.T, f sessionFixture) error {
				return db.Exec("UPDATE organizations SET name = 'Renamed' WHERE id = ?", f.other).Error
			},
			func(sess *session.Session, err error, f sessionFixture) bool {
				return err == nil && hasOrg(sess, f.other, "Renamed", "")
			}},
		{"organization switched on another instance", false,
			func(t *testing.T, f sessionFixture) error { return other.SetOrg(ctx, f.token, f.other) },
			func(sess *session.Session, err error, f sessionFixture) bool {
				return err == nil && sess.Org() == f.other
			}},
		{"organization created, seen by a superadmin", true,
			func(t *testing.T, f sessionFixture) error {
				_, err := models.NewOrgStore(db).Create(ctx, f.org+"-new", "New")
				return err
			},
			func(sess *session.Session, err error, f sessionFixture) bool {
				return err == nil && hasOrg(sess, f.org+"-new", "New", "superadmin")
			}},
		{"organization deleted by SQL, seen by a superadmin", true,
			func(t *testing.T, f sessionFixture) error {
				return db.Exec("DELETE FROM organizations WHERE id = ?", f.other).Error
			},
			func(sess *session.Session, err error, f sessionFixture) bool {
				return err == nil && !hasOrg(sess, f.other, "", "") && hasOrg(sess, f.org, "", "")
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newSessionFixture(t, store, tc.superadmin)
			before := cached(t, store, f.token)
			if tc.seen(before, nil, f) {
				t.Fatal("the change is already visible before it is made")
			}
			if err := tc.change(t, f); err != nil {
				t.Fatal(err)
			}
			within(t, 2*time.Second, "the change to reach the cached session", func() bool {
				sess, err := store.Lookup(ctx, f.token)
				return tc.seen(sess, err, f)
			})
		})
	}
}

func TestSessionTouchDoesNotFlush(t *testing.T) {
	db := pgtest.DB(t)
	clock := newTestClock()
	store := session.NewStore(db, clock.Now)
	f := newSessionFixture(t, store, false)
	listen(t, store, pgtest.DSN(t))
	ctx := context.Background()
	cached(t, store, f.token)
	flushes, reads := store.SessionFlushes(), store.SessionReads()

	// A minute on, the lookup goes to the database and writes last_seen_at.
	clock.Advance(time.Minute)
	sess, err := store.Lookup(ctx, f.token)
	if err != nil {
		t.Fatal(err)
	}
	if store.SessionReads() != reads+1 || !sess.LastSeenAt.Equal(clock.Now()) {
		t.Fatalf("after a minute: %d reads (want %d), last seen %v (want %v)", store.SessionReads(), reads+1, sess.LastSeenAt, clock.Now())
	}
	// Notifications arrive in commit order: once settle's has flushed, a notification from
	// the touch would have too.
	settle(t, store)
	if got := store.SessionFlushes(); got != flushes+1 {
		t.Fatalf("%d flushes after a last-seen touch and one notification, want 1", got-flushes)
	}
}

func TestSessionCacheOffWhileListenerDown(t *testing.T) {
	db := pgtest.DB(t)
	store := session.NewStore(db, nil)
	f := newSessionFixture(t, store, false)
	stop := listen(t, store, pgtest.DSN(t))
	cached(t, store, f.token)

	stop()
	if store.Live() {
		t.Fatal("live after the listener stopped")
	}
	reads := store.SessionReads()
	for range 3 {
		if _, err := store.Lookup(context.Background(), f.token); err != nil {
			t.Fatal(err)
		}
	}
	if got := store.SessionReads() - reads; got != 3 {
		t.Fatalf("%d database reads for 3 lookups with the listener down, want 3", got)
	}
}

// TestSessionCacheReconnects ends the listener's connection on the server: the cache is off
// until the listener is back, which it is at once.
func TestSessionCacheReconnects(t *testing.T) {
	db := pgtest.DB(t)
	store := session.NewStore(db, nil)
	f := newSessionFixture(t, store, false)
	// Pings between notifications every 20 ms.
	listen(t, store, pgtest.DSN(t)+"&application_name=session_cache_test", 20*time.Millisecond)
	cached(t, store, f.token)
	flushes := store.SessionFlushes()
	time.Sleep(100 * time.Millisecond) // several quiet periods, each ended by a ping
	if !store.Live() || store.SessionFlushes() != flushes {
		t.Fatalf("quiet periods: live %v, %d flushes (a reconnect flushes), want none", store.Live(), store.SessionFlushes()-flushes)
	}
	cached(t, store, f.token)

	err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'session_cache_test' AND datname = current_database()`).Error
	if err != nil {
		t.Fatal(err)
	}
	within(t, 2*time.Second, "the listener to notice", func() bool { return !store.Live() })
	reads := store.SessionReads()
	if _, err := store.Lookup(context.Background(), f.token); err != nil || store.SessionReads() != reads+1 {
		t.Fatalf("lookup while the listener is down: %v, served from the cache: %v", err, store.SessionReads() == reads)
	}
	within(t, 2*time.Second, "the listener to come back", store.Live)
	cached(t, store, f.token)
	if err := db.Exec("UPDATE users SET disabled = true WHERE id = ?", f.userID).Error; err != nil {
		t.Fatal(err)
	}
	within(t, 2*time.Second, "a change to reach the reconnected listener", func() bool {
		_, err := store.Lookup(context.Background(), f.token)
		return err == session.ErrNoSession
	})
}

// TestSessionReadRacingAChange changes a session after Lookup read it from the database but
// before it cached it: the stale read must not be cached.
func TestSessionReadRacingAChange(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	// afterFirstRead makes fn run once, between Lookup's first read and its caching.
	afterFirstRead := func(store *session.Store, fn func()) {
		var once sync.Once
		store.SetSessionAfterRead(func() { once.Do(fn) })
	}
	// endedUncached fails unless the session has ended, as read from the database.
	endedUncached := func(t *testing.T, store *session.Store, token string) {
		t.Helper()
		reads := store.SessionReads()
		if _, err := store.Lookup(ctx, token); err != session.ErrNoSession {
			t.Fatalf("lookup after the change = %v, want ErrNoSession", err)
		}
		if store.SessionReads() != reads+1 {
			t.Fatal("the lookup after the change was served from the cache")
		}
	}

	t.Run("revoked on another instance, notification handled before caching", func(t *testing.T) {
		store, other := session.NewStore(db, nil), session.NewStore(db, nil)
		f := newSessionFixture(t, store, false)
		listen(t, store, pgtest.DSN(t))
		settle(t, store)
		afterFirstRead(store, func() {
			flushes := store.SessionFlushes()
			if err := other.Revoke(ctx, f.token); err != nil {
				t.Error(err)
			}
			within(t, 2*time.Second, "the revocation's notification", func() bool { return store.SessionFlushes() > flushes })
		})
		if _, err := store.Lookup(ctx, f.token); err != nil {
			t.Fatalf("the racing lookup itself: %v", err) // it read before the revocation
		}
		endedUncached(t, store, f.token)
	})
	t.Run("user disabled while the listener was down, listener up before caching", func(t *testing.T) {
		store := session.NewStore(db, nil)
		f := newSessionFixture(t, store, false)
		afterFirstRead(store, func() {
			if err := db.Exec("UPDATE users SET disabled = true WHERE id = ?", f.userID).Error; err != nil {
				t.Error(err)
			}
			listen(t, store, pgtest.DSN(t)) // the change was made before it listened: nobody hears it
		})
		if _, err := store.Lookup(ctx, f.token); err != nil {
			t.Fatalf("the racing lookup itself: %v", err)
		}
		endedUncached(t, store, f.token)
	})
}

func TestSessionTimeoutsWithCachedEntry(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()

	t.Run("idle", func(t *testing.T) {
		clock := newTestClock()
		store := session.NewStore(db, clock.Now)
		f := newSessionFixture(t, store, false)
		listen(t, store, pgtest.DSN(t))
		cached(t, store, f.token)
		clock.Advance(session.IdleTimeout + time.Second)
		if _, err := store.Lookup(ctx, f.token); err != session.ErrNoSession {
			t.Fatalf("after %v idle: %v, want ErrNoSession", session.IdleTimeout, err)
		}
	})
	t.Run("an entry lives a minute even when last seen is ahead of this clock", func(t *testing.T) {
		clock := newTestClock()
		store := session.NewStore(db, clock.Now)
		f := newSessionFixture(t, store, false)
		listen(t, store, pgtest.DSN(t))
		clock.Advance(-10 * time.Minute) // another instance, ahead by ten minutes, wrote last_seen_at
		cached(t, store, f.token)
		reads := store.SessionReads()
		clock.Advance(time.Minute)
		if _, err := store.Lookup(ctx, f.token); err != nil || store.SessionReads() != reads+1 {
			t.Fatalf("a minute after caching: %v, read the database: %v", err, store.SessionReads() == reads+1)
		}
	})
	t.Run("absolute", func(t *testing.T) {
		clock := newTestClock()
		store := session.NewStore(db, clock.Now)
		f := newSessionFixture(t, store, false)
		listen(t, store, pgtest.DSN(t))
		// Keep the session busy until half a minute before its absolute end, cached.
		for elapsed := time.Duration(0); elapsed < session.AbsoluteTimeout-30*time.Second; {
			step := min(20*time.Minute, session.AbsoluteTimeout-30*time.Second-elapsed)
			clock.Advance(step)
			elapsed += step
			if _, err := store.Lookup(ctx, f.token); err != nil {
				t.Fatalf("at %v: %v", elapsed, err)
			}
		}
		cached(t, store, f.token)
		clock.Advance(31 * time.Second)
		if _, err := store.Lookup(ctx, f.token); err != session.ErrNoSession {
			t.Fatalf("past the absolute lifetime: %v, want ErrNoSession", err)
		}
	})
}
