package querycache_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/pgtest"
	"auditdb/models/querycache"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// alertCount is a cached read whose true answer the test can change: the organization's
// alerts (a write to alerts bumps the organization's cache version).
type alertCount struct {
	db    *gorm.DB
	loads atomic.Int64
}

func (a *alertCount) read(org string) func(context.Context) (int64, error) {
	return func(ctx context.Context) (int64, error) {
		a.loads.Add(1)
		var n int64
		err := a.db.WithContext(ctx).Raw(`SELECT count(*) FROM alerts WHERE organization_id = ?`, org).Scan(&n).Error
		return n, err
	}
}

func raise(t *testing.T, db *gorm.DB, org, id string) {
	t.Helper()
	if err := db.Exec(`INSERT INTO alerts (id, organization_id, severity, type, title) VALUES (?, ?, 'HIGH', 'SECURITY', 'cache probe')`,
		id, org).Error; err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, c *querycache.Cache, src *alertCount, org string) int64 {
	t.Helper()
	n, err := querycache.Get(context.Background(), c, org, "alerts", src.read(org))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func prefix(t *testing.T) string { return "test:" + pgtest.OrgID(t, "p") + ":" }

func TestHitAfterMiss(t *testing.T) {
	db := pgtest.DB(t)
	org := pgtest.NewOrg(t, "a")
	raise(t, db, org, org+"-1")
	c := querycache.New(db, pgtest.Redis(t), querycache.Config{Prefix: prefix(t)}, nil)
	src := &alertCount{db: db}
	if n := get(t, c, src, org); n != 1 {
		t.Fatalf("first read: %d alerts, want 1", n)
	}
	if n := get(t, c, src, org); n != 1 {
		t.Fatalf("second read: %d alerts, want 1", n)
	}
	if src.loads.Load() != 1 {
		t.Fatalf("the database was read %d times, want once (a hit after the miss)", src.loads.Load())
	}
	st := c.Stats()
	if st.Hits != 1 || st.Misses != 1 || st.Entries != 1 {
		t.Fatalf("stats %+v, want 1 hit, 1 miss, 1 entry", st)
	}
	if h, m := c.CacheStats(); h != 1 || m != 1 {
		t.Fatalf("CacheStats = %d, %d", h, m)
	}
}

// TestWriteInvalidatesEveryInstance: two instances on one database and one Redis, one
// following the database's announcements and one reading the version each time; a write on
// neither of them retires the answer on both, and both then answer the new count.
func TestWriteInvalidatesEveryInstance(t *testing.T) {
	db := pgtest.DB(t)
	org := pgtest.NewOrg(t, "a")
	raise(t, db, org, org+"-1")
	rdb, p := pgtest.Redis(t), prefix(t)
	a := querycache.New(db, rdb, querycache.Config{Prefix: p}, nil)
	b := querycache.New(db, rdb, querycache.Config{Prefix: p}, nil)
	sig := models.NewSignals(pgtest.DSN(t), nil)
	a.Follow(sig)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sig.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the signals to be live", sig.Live)

	src := &alertCount{db: db}
	if get(t, a, src, org) != 1 || get(t, b, src, org) != 1 {
		t.Fatal("want 1 alert on both instances")
	}
	if src.loads.Load() != 1 {
		t.Fatalf("%d loads: the second instance should have been served by Redis", src.loads.Load())
	}
	if b.Stats().L2Hits != 1 {
		t.Fatalf("instance b stats %+v, want one L2 hit", b.Stats())
	}
	raise(t, db, org, org+"-2") // a write by a third party (plain SQL)
	if n := get(t, b, src, org); n != 2 {
		t.Fatalf("instance b after the write: %d alerts, want 2", n)
	}
	waitFor(t, "instance a to answer the new count", func() bool { return get(t, a, src, org) == 2 })
	if err := db.Exec(`DELETE FROM alerts WHERE organization_id = ?`, org).Error; err != nil {
		t.Fatal(err)
	}
	if n := get(t, b, src, org); n != 0 {
		t.Fatalf("instance b after the delete: %d alerts, want 0", n)
	}
	waitFor(t, "instance a to answer the delete", func() bool { return get(t, a, src, org) == 0 })
}

// TestRedisDownRunsOnL1: with Redis unreachable the cache still hits in process, answers
// right after a write, and does not wait on Redis for every read.
func TestRedisDownRunsOnL1(t *testing.T) {
	db := pgtest.DB(t)
	org := pgtest.NewOrg(t, "a")
	raise(t, db, org, org+"-1")
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { dead.Close() })
	c := querycache.New(db, dead, querycache.Config{Prefix: prefix(t)}, nil)
	src := &alertCount{db: db}
	if get(t, c, src, org) != 1 || get(t, c, src, org) != 1 {
		t.Fatal("want 1 alert")
	}
	if src.loads.Load() != 1 {
		t.Fatalf("%d loads, want 1: L1 should serve the second read", src.loads.Load())
	}
	if c.Stats().RedisAvailable {
		t.Fatal("Redis reported available while unreachable")
	}
	raise(t, db, org, org+"-2")
	start := time.Now()
	if n := get(t, c, src, org); n != 2 {
		t.Fatalf("after a write: %d alerts, want 2", n)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a read took %v with Redis down: it should skip Redis while it is down", d)
	}
}

// TestOrganizationsNeverShareAnswers: the same read of two organizations, with identical
// versions (no writes yet) and names, gets each organization's own answer; a key without
// the organization would serve the first organization's count to the second.
func TestOrganizationsNeverShareAnswers(t *testing.T) {
	db := pgtest.DB(t)
	a, b := pgtest.NewOrg(t, "a"), pgtest.NewOrg(t, "b")
	rdb, p := pgtest.Redis(t), prefix(t)
	c := querycache.New(db, rdb, querycache.Config{Prefix: p}, nil)
	other := querycache.New(db, rdb, querycache.Config{Prefix: p}, nil) // L2 only for b's read
	for _, id := range []string{"1", "2", "3"} {
		raise(t, db, a, a+"-"+id)
	}
	if err := db.Exec(`UPDATE query_cache_versions SET version = 7 WHERE organization_id IN (?, ?)`, a, b).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(`INSERT INTO query_cache_versions VALUES (?, 7) ON CONFLICT DO NOTHING`, b).Error; err != nil {
		t.Fatal(err)
	}
	src := &alertCount{db: db}
	if n := get(t, c, src, a); n != 3 {
		t.Fatalf("org a: %d, want 3", n)
	}
	if n := get(t, c, src, b); n != 0 {
		t.Fatalf("org b got %d alerts from L1, want its own 0", n)
	}
	if n := get(t, other, src, b); n != 0 {
		t.Fatalf("org b got %d alerts from Redis, want its own 0", n)
	}
	if _, err := querycache.Get(context.Background(), c, "", "alerts", src.read("")); err == nil {
		t.Fatal("a read without an organization was answered")
	}
}

type big struct {
	Rows []string
}

func TestCompressionRoundTrips(t *testing.T) {
	var v big
	for i := range 400 {
		v.Rows = append(v.Rows, strings.Repeat("principal-", 3)+string(rune('a'+i%26)))
	}
	plain, _ := json.Marshal(v)
	raw, err := querycache.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	if raw[0] != 'z' || len(raw) >= len(plain)/2 {
		t.Fatalf("a %d-byte value stored as %d bytes with encoding %q: want compressed", len(plain), len(raw), raw[0])
	}
	var back big
	if err := querycache.Decode(raw, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Rows) != len(v.Rows) || back.Rows[399] != v.Rows[399] {
		t.Fatal("the decompressed value differs")
	}
	small, _ := querycache.Encode(big{Rows: []string{"x"}})
	if small[0] != 'j' {
		t.Fatalf("a small value was stored with encoding %q, want plain", small[0])
	}
	if err := querycache.Decode(append([]byte{'z'}, plain...), &back); err == nil {
		t.Fatal("a corrupt compressed value decoded")
	}

	// Through the cache: what Redis holds is the compressed form, and a second instance
	// reads it back whole.
	db := pgtest.DB(t)
	org := pgtest.NewOrg(t, "a")
	rdb, p := pgtest.Redis(t), prefix(t)
	c := querycache.New(db, rdb, querycache.Config{Prefix: p}, nil)
	load := func(context.Context) (big, error) { return v, nil }
	if _, err := querycache.Get(context.Background(), c, org, "big", load); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(context.Background(), p+"*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("redis keys %v, %v", keys, err)
	}
	stored, _ := rdb.Get(context.Background(), keys[0]).Bytes()
	if stored[0] != 'z' || len(stored) >= len(plain) {
		t.Fatalf("redis holds %d bytes (encoding %q) for a %d-byte value", len(stored), stored[0], len(plain))
	}
	fresh := querycache.New(db, rdb, querycache.Config{Prefix: p}, nil)
	got, err := querycache.Get(context.Background(), fresh, org, "big", func(context.Context) (big, error) {
		t.Fatal("loaded instead of reading Redis")
		return big{}, nil
	})
	if err != nil || len(got.Rows) != 400 || got.Rows[7] != v.Rows[7] {
		t.Fatalf("read back %d rows, %v", len(got.Rows), err)
	}
	if c.Stats().Compressed != 1 {
		t.Fatalf("stats %+v: want one compressed value", c.Stats())
	}
	if err := c.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	if keys, _ := rdb.Keys(context.Background(), p+"*").Result(); len(keys) != 0 || c.Stats().Entries != 0 {
		t.Fatalf("after Clear: redis %v, L1 %d entries", keys, c.Stats().Entries)
	}
}

// TestBoundedByEntries: the entry bound holds (the weight floor keeps otter under it).
func TestBoundedByEntries(t *testing.T) {
	db := pgtest.DB(t)
	org := pgtest.NewOrg(t, "a")
	c := querycache.New(db, nil, querycache.Config{MaxEntries: 10, MaxBytes: 1 << 20}, nil)
	for i := range 50 {
		if _, err := querycache.Get(context.Background(), c, org, "n"+string(rune('A'+i)), func(context.Context) (int, error) { return i, nil }); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the bound to be enforced", func() bool { return c.Stats().Entries <= 10 })
	if st := c.Stats(); st.Evictions < 40 {
		t.Fatalf("stats %+v: want at least 40 evictions", st)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countingSource answers the dashboard with Recorded as set, counting its reads.
type countingSource struct {
	reads    int
	recorded bool
}

func (s *countingSource) Overview(ctx context.Context, org string, now time.Time) (*models.DashboardOverview, error) {
	s.reads++
	return &models.DashboardOverview{Recorded: s.recorded, LogSize: int64(s.reads)}, nil
}

// TestDashboardKeepsNoEmptyAnswer: "never recorded an event" depends on audit_log, which
// no version covers, so it is never kept; a recorded organization's answer is.
func TestDashboardKeepsNoEmptyAnswer(t *testing.T) {
	db := pgtest.DB(t)
	org := pgtest.NewOrg(t, "a")
	src := &countingSource{}
	d := querycache.Dashboard{Source: src, Cache: querycache.New(db, nil, querycache.Config{}, nil)}
	now := time.Now()
	for range 2 {
		if _, err := d.Overview(context.Background(), org, now); err != nil {
			t.Fatal(err)
		}
	}
	if src.reads != 2 {
		t.Fatalf("an empty answer was served from the cache (%d reads)", src.reads)
	}
	src.recorded = true
	for range 2 {
		o, err := d.Overview(context.Background(), org, now)
		if err != nil || o.Empty() || o.LogSize != 3 {
			t.Fatalf("overview %+v, %v", o, err)
		}
	}
	if src.reads != 3 {
		t.Fatalf("%d reads: the recorded answer should be kept", src.reads)
	}
}

// TestDropOrg: an organization's answers leave L1 and Redis; another organization's stay.
func TestDropOrg(t *testing.T) {
	db := pgtest.DB(t)
	a, b := pgtest.NewOrg(t, "a"), pgtest.NewOrg(t, "b")
	rdb := pgtest.Redis(t)
	p := prefix(t)
	c := querycache.New(db, rdb, querycache.Config{Prefix: p}, nil)
	src := &alertCount{db: db}
	get(t, c, src, a)
	get(t, c, src, b)
	if err := c.DropOrg(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(context.Background(), p+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !strings.Contains(keys[0], b) {
		t.Fatalf("redis keys after dropping %s: %v", a, keys)
	}
	if st := c.Stats(); st.Entries != 1 {
		t.Fatalf("L1 holds %d entries, want 1", st.Entries)
	}
	get(t, c, src, a)
	if src.loads.Load() != 3 {
		t.Fatalf("the database was read %d times, want 3 (a's answer read again)", src.loads.Load())
	}
}
