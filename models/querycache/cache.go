// Package querycache keeps the answers of the console's expensive reads: an in-process L1
// (otter, bounded by bytes and entries) in front of a Redis L2 shared by every instance.
// Every key holds the organization and the organization's cache version, which the data
// layer bumps in the same transaction as any write that changes a cached answer (see the
// query_cache_versions migration); a version change therefore retires every answer of that
// organization on every instance at commit, with or without Redis. Values are JSON,
// zstd-compressed when over CompressAbove bytes.
package querycache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"auditdb/models"
)

// ChannelCache carries "<organization>:<version>" after a write bumped the organization's
// cache version.
const ChannelCache = "auditdb_cache"

// Defaults of Config.
const (
	DefaultTTL           = 300 * time.Second
	DefaultMaxBytes      = 100 << 20
	DefaultMaxEntries    = 1000
	CompressAbove        = 1024
	defaultRedisBackoff  = 5 * time.Second
	defaultRedisDeadline = 250 * time.Millisecond
)

// Config bounds a cache; zero fields take the defaults.
type Config struct {
	TTL        time.Duration // how long an answer is kept (300 s)
	MaxBytes   int64         // L1's bound on the bytes of its values (100 MB)
	MaxEntries int           // L1's bound on its entries (1,000)
	// Prefix starts every Redis key ("auditdb:").
	Prefix string
	// Disabled turns the cache off: every read goes to the database (the benchmark's
	// baseline, and AUDITDB_QUERY_CACHE=off).
	Disabled bool
}

// Stats are a cache's counters since it started.
type Stats struct {
	Hits, Misses   uint64 // answers served from L1 or L2; answers read from the database
	L2Hits         uint64 // the part of Hits served by Redis
	Evictions      uint64 // L1 entries pushed out by the size bounds or the TTL
	Entries        int    // L1 entries now
	Bytes          uint64 // L1 value bytes now (compressed as stored)
	MaxBytes       int64
	MaxEntries     int
	Compressed     uint64 // values stored compressed
	RedisAvailable bool   // Redis configured and not in its back-off after a failure
	Enabled        bool
}

// HitRatio is Hits / (Hits + Misses), 0 before any read.
func (s Stats) HitRatio() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

// Cache is the two-level query cache. Its zero value is not usable; see New.
type Cache struct {
	db  *gorm.DB
	rdb *redis.Client // nil: L1 only
	cfg Config
	log *slog.Logger

	l1    *otter.Cache[string, []byte]
	stats *stats.Counter

	hits, misses, l2hits, compressed atomic.Uint64
	redisDownUntil                   atomic.Int64

	// versions are the organizations' cache versions as announced by the database, kept
	// only while its notifications are followed (live); otherwise every read asks the
	// database for the version.
	mu       sync.Mutex
	versions map[string]int64
	live     bool
	gen      uint64 // counts Resets: a version read across one is not kept
}

var (
	encoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	decoder, _ = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(256<<20))
)

// Value encodings: the first byte of a stored value says how the rest is kept.
const (
	plainJSON byte = 'j'
	zstdJSON  byte = 'z'
)

// New returns a cache over db (where the versions live) and rdb (nil: L1 only).
func New(db *gorm.DB, rdb *redis.Client, cfg Config, log *slog.Logger) *Cache {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "auditdb:"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{db: db, rdb: rdb, cfg: cfg, log: log, stats: stats.NewCounter(), versions: map[string]int64{}}
	// otter bounds by entries or by weight, not both: every entry weighs at least
	// MaxBytes/MaxEntries, so the weight bound also holds the entries to MaxEntries, and
	// the bytes held never exceed MaxBytes.
	floor := uint64(cfg.MaxBytes) / uint64(cfg.MaxEntries)
	c.l1 = otter.Must(&otter.Options[string, []byte]{
		MaximumWeight: uint64(cfg.MaxBytes),
		Weigher: func(k string, v []byte) uint32 {
			w := uint64(len(k) + len(v))
			return uint32(min(max(w, floor), 1<<32-1))
		},
		ExpiryCalculator: otter.ExpiryWriting[string, []byte](cfg.TTL),
		StatsRecorder:    c.stats,
	})
	return c
}

// Enabled says whether the cache keeps answers at all.
func (c *Cache) Enabled() bool { return c != nil && !c.cfg.Disabled }

// Get returns the answer named name of org: from L1, else from Redis, else from load,
// whose answer is then kept under org's current cache version. name must say everything
// the answer depends on besides the organization and its version (the query and its
// parameters). A failure of load is returned as is; Redis failures only skip L2.
func Get[T any](ctx context.Context, c *Cache, org, name string, load func(context.Context) (T, error)) (T, error) {
	return GetIf(ctx, c, org, name, load, nil)
}

// GetIf is Get keeping a loaded answer only when keep (nil: always) says so: for answers
// that also depend on something no version covers (see Dashboard).
func GetIf[T any](ctx context.Context, c *Cache, org, name string, load func(context.Context) (T, error), keep func(T) bool) (T, error) {
	var zero T
	if !c.Enabled() {
		return load(ctx)
	}
	if org == "" {
		return zero, models.NotFound("organization")
	}
	version, err := c.version(ctx, org)
	if err != nil {
		return zero, err
	}
	key := c.key(org, version, name)
	if raw, ok := c.l1.GetIfPresent(key); ok {
		var v T
		if err := decode(raw, &v); err == nil {
			c.hits.Add(1)
			return v, nil
		}
		c.l1.Invalidate(key)
	}
	if c.redisUsable() {
		rctx, cancel := context.WithTimeout(ctx, defaultRedisDeadline)
		raw, err := c.rdb.Get(rctx, key).Bytes()
		cancel()
		switch {
		case err == nil:
			var v T
			if decode(raw, &v) == nil {
				c.hits.Add(1)
				c.l2hits.Add(1)
				c.l1.Set(key, raw)
				return v, nil
			}
		case !errors.Is(err, redis.Nil):
			c.redisFailed(ctx, err)
		}
	}
	c.misses.Add(1)
	v, err := load(ctx)
	if err != nil {
		return zero, err
	}
	if keep != nil && !keep(v) {
		return v, nil
	}
	raw, err := c.encode(v)
	if err != nil {
		return v, nil // not cacheable; the answer itself is fine
	}
	c.l1.Set(key, raw)
	if c.redisUsable() {
		rctx, cancel := context.WithTimeout(ctx, defaultRedisDeadline)
		if err := c.rdb.Set(rctx, key, raw, c.cfg.TTL).Err(); err != nil {
			c.redisFailed(ctx, err)
		}
		cancel()
	}
	return v, nil
}

// key is the Redis and L1 key of an answer. The organization is quoted so that no
// organization id can run into the version or the name.
func (c *Cache) key(org string, version int64, name string) string {
	return c.cfg.Prefix + "qc:" + strconv.Quote(org) + ":" + strconv.FormatInt(version, 10) + ":" + name
}

// version returns org's cache version: the one last announced while the database's
// notifications are followed, else read from the database (0 when nothing was written yet).
func (c *Cache) version(ctx context.Context, org string) (int64, error) {
	c.mu.Lock()
	v, ok := c.versions[org]
	live, gen := c.live, c.gen
	c.mu.Unlock()
	if ok && live {
		return v, nil
	}
	var got []int64
	if err := c.db.WithContext(ctx).Raw(`SELECT version FROM query_cache_versions WHERE organization_id = ?`, org).
		Scan(&got).Error; err != nil {
		return 0, fmt.Errorf("querycache: read version: %w", err)
	}
	if len(got) == 1 {
		v = got[0]
	}
	if live {
		c.seen(org, v, gen)
	}
	return v, nil
}

// seen records org's version v, read or announced during generation gen, unless a newer
// one is known or the notifications were re-established since (a change may have gone
// unheard in between).
func (c *Cache) seen(org string, v int64, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || gen != c.gen {
		return
	}
	if cur, ok := c.versions[org]; !ok || v > cur {
		c.versions[org] = v
	}
}

// Follow subscribes the cache to the database's version announcements; without them (or
// while they are interrupted) every read asks the database for the version.
func (c *Cache) Follow(sig *models.Signals) { sig.Subscribe(ChannelCache, signals{c}) }

type signals struct{ c *Cache }

func (s signals) Notified(payload string) {
	i := strings.LastIndexByte(payload, ':')
	if i < 0 {
		return
	}
	v, err := strconv.ParseInt(payload[i+1:], 10, 64)
	if err != nil {
		return
	}
	s.c.mu.Lock()
	gen := s.c.gen
	s.c.mu.Unlock()
	s.c.seen(payload[:i], v, gen)
}

func (s signals) Reset(live bool) {
	s.c.mu.Lock()
	s.c.live = live
	s.c.gen++
	s.c.versions = map[string]int64{}
	s.c.mu.Unlock()
}

// Clear drops every kept answer, in L1 and in Redis (the auto-optimization's remedy for a
// cache that does not pay). It returns Redis's error, if any; L1 is cleared regardless.
func (c *Cache) Clear(ctx context.Context) error {
	c.l1.InvalidateAll()
	if !c.redisUsable() {
		return nil
	}
	iter := c.rdb.Scan(ctx, 0, c.cfg.Prefix+"qc:*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := c.rdb.Unlink(ctx, batch...).Err(); err != nil {
				return fmt.Errorf("querycache: clear redis: %w", err)
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("querycache: clear redis: %w", err)
	}
	if len(batch) > 0 {
		if err := c.rdb.Unlink(ctx, batch...).Err(); err != nil {
			return fmt.Errorf("querycache: clear redis: %w", err)
		}
	}
	return nil
}

// ResetStats starts the hit and miss counts afresh (after a clear, so the next ratio
// judges the cache as it is now).
func (c *Cache) ResetStats() {
	c.hits.Store(0)
	c.misses.Store(0)
	c.l2hits.Store(0)
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	return Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), L2Hits: c.l2hits.Load(),
		Evictions: c.stats.Snapshot().Evictions, Entries: c.l1.EstimatedSize(), Bytes: c.bytes(),
		MaxBytes: c.cfg.MaxBytes, MaxEntries: c.cfg.MaxEntries, Compressed: c.compressed.Load(),
		RedisAvailable: c.redisUsable(), Enabled: c.Enabled(),
	}
}

// CacheStats returns the hits and misses, for the health report.
func (c *Cache) CacheStats() (hits, misses uint64) {
	s := c.Stats()
	return s.Hits, s.Misses
}

func (c *Cache) bytes() uint64 {
	var n uint64
	for k, v := range c.l1.All() {
		n += uint64(len(k) + len(v))
	}
	return n
}

func (c *Cache) redisUsable() bool {
	return c.rdb != nil && time.Now().UnixNano() >= c.redisDownUntil.Load()
}

func (c *Cache) redisFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // the request gave up, not Redis
	}
	c.redisDownUntil.Store(time.Now().Add(defaultRedisBackoff).UnixNano())
	c.log.Warn("querycache: Redis unavailable; caching in process only", "err", err)
}

// encode stores v as JSON, zstd-compressed when longer than CompressAbove.
func (c *Cache) encode(v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(body) <= CompressAbove {
		return append([]byte{plainJSON}, body...), nil
	}
	c.compressed.Add(1)
	return encoder.EncodeAll(body, []byte{zstdJSON}), nil
}

// Encode is the stored form of v (exported for the compression test).
func Encode(v any) ([]byte, error) { return (&Cache{}).encode(v) }

// Decode reads a stored value into v.
func Decode(raw []byte, v any) error { return decode(raw, v) }

func decode(raw []byte, v any) error {
	if len(raw) == 0 {
		return errors.New("querycache: empty value")
	}
	body := raw[1:]
	switch raw[0] {
	case plainJSON:
	case zstdJSON:
		var err error
		if body, err = decoder.DecodeAll(body, nil); err != nil {
			return fmt.Errorf("querycache: decompress: %w", err)
		}
	default:
		return errors.New("querycache: unknown encoding")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	return dec.Decode(v)
}

// DropOrg drops every answer kept for org, in L1 and in Redis, whatever its version (GDPR
// erasure: the version bump retires them at once, this removes their bytes too). Other
// instances' L1 entries are retired by the version and expire with their TTL. It returns
// Redis's error, if any.
func (c *Cache) DropOrg(ctx context.Context, org string) error {
	if !c.Enabled() {
		return nil
	}
	prefix := c.cfg.Prefix + "qc:" + strconv.Quote(org) + ":"
	for k := range c.l1.Keys() {
		if strings.HasPrefix(k, prefix) {
			c.l1.Invalidate(k)
		}
	}
	if !c.redisUsable() {
		return nil
	}
	var batch []string
	iter := c.rdb.Scan(ctx, 0, escapeGlob(prefix)+"*", 500).Iterator()
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := c.rdb.Unlink(ctx, batch...).Err(); err != nil {
				return fmt.Errorf("querycache: drop %s: %w", org, err)
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("querycache: drop %s: %w", org, err)
	}
	if len(batch) > 0 {
		if err := c.rdb.Unlink(ctx, batch...).Err(); err != nil {
			return fmt.Errorf("querycache: drop %s: %w", org, err)
		}
	}
	return nil
}

// escapeGlob escapes Redis SCAN MATCH's special characters in s.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
