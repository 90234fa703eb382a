// Package policy authorizes requests: a Casbin RBAC-with-domains model (model.conf,
// embedded), an adapter that loads it from organization_role and memberships and stores
// Casbin API writes back there, and Engine, which answers "may this subject do this action
// on this resource in this organization" with a two-level decision cache and keeps every
// running instance's policy current.
package policy

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"auditdb/models"
)

//go:embed model.conf
var modelText string

// Subject is who asks: a Casbin subject name (see UserSubject) and whether it is a
// superadmin, which bypasses the policy explicitly.
type Subject struct {
	Name       string
	Superadmin bool
}

// UserOf returns the subject of a console user.
func UserOf(u *models.User) Subject {
	return Subject{Name: UserSubject(u.ID), Superadmin: u.Superadmin}
}

// Options tune an Engine; zero values take the defaults.
type Options struct {
	// DecisionTTL is how long a decision stays in Redis (5 minutes).
	DecisionTTL time.Duration
	// LocalTTL and LocalSize bound the in-process decision cache (1 minute, 10,000).
	LocalTTL  time.Duration
	LocalSize int
	// PollInterval is how often the engine compares its policy version with the database's,
	// a safety net for missed pub/sub signals and changes made outside the console (30 s;
	// negative disables it).
	PollInterval time.Duration
	// RedisBackoff is how long Redis is left alone after it failed (5 s).
	RedisBackoff time.Duration
	// Channel is the Redis pub/sub channel prefix ("auditdb:policy").
	Channel string
}

func (o Options) withDefaults() Options {
	if o.DecisionTTL == 0 {
		o.DecisionTTL = 5 * time.Minute
	}
	if o.LocalTTL == 0 {
		o.LocalTTL = time.Minute
	}
	if o.LocalSize == 0 {
		o.LocalSize = 10_000
	}
	if o.PollInterval == 0 {
		o.PollInterval = 30 * time.Second
	}
	if o.RedisBackoff == 0 {
		o.RedisBackoff = 5 * time.Second
	}
	if o.Channel == "" {
		o.Channel = "auditdb:policy"
	}
	return o
}

// Engine answers authorization questions from the Casbin policy.
//
// Decisions are cached in two levels: a small in-process map, then Redis (shared by every
// instance, 5-minute TTL). Both are keyed by the policy version, so a change makes every
// older decision unreachable at once. After a change the writer calls Changed, which
// reloads the policy here and publishes the new version on Redis; every other instance's
// Run reloads on the signal. When Redis is down decisions come straight from the enforcer
// and a periodic version check still catches changes.
type Engine struct {
	db      *gorm.DB
	rdb     *redis.Client // may be nil
	log     *slog.Logger
	opts    Options
	adapter *Adapter

	reloadMu sync.Mutex // one reload at a time
	mu       sync.RWMutex
	enf      *casbin.SyncedEnforcer
	version  int64
	ns       string

	local          localCache
	redisDownUntil atomic.Int64 // unix nanoseconds
	reloads        atomic.Int64
}

// New returns an engine over db (the policy) and rdb (shared decisions and change
// signals; nil runs without). The policy is loaded on first use or by Load.
func New(db *gorm.DB, rdb *redis.Client, roles RoleEditor, members MemberEditor, log *slog.Logger, opts Options) *Engine {
	opts = opts.withDefaults()
	return &Engine{db: db, rdb: rdb, log: log, opts: opts, adapter: NewAdapter(db, roles, members),
		local: localCache{ttl: opts.LocalTTL, size: opts.LocalSize}}
}

// newEnforcer builds an enforcer of the embedded model with auditdb's matching functions.
func newEnforcer(a *Adapter) (*casbin.SyncedEnforcer, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("policy: model: %w", err)
	}
	e, err := casbin.NewSyncedEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("policy: enforcer: %w", err)
	}
	e.AddFunction("resourceMatch", func(args ...any) (any, error) {
		return models.ResourceMatches(args[0].(string), args[1].(string)), nil
	})
	e.AddFunction("actionMatch", func(args ...any) (any, error) {
		return models.ActionMatches(args[0].(string), args[1].(string)), nil
	})
	// Role links stored in the "*" domain (the defaults' inheritance) hold in every domain.
	e.AddNamedDomainMatchingFunc("g", "globalDomain", func(domain, pattern string) bool {
		return pattern == models.GlobalOrg
	})
	if a != nil {
		e.SetAdapter(a)
		if err := e.LoadPolicy(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Load (re)reads the whole policy from the database and makes it current, dropping every
// cached decision of older versions.
func (e *Engine) Load(ctx context.Context) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	enf, err := newEnforcer(e.adapter)
	if err != nil {
		return fmt.Errorf("policy: load: %w", err)
	}
	version, ns := e.adapter.Loaded()
	e.mu.Lock()
	e.enf, e.version, e.ns = enf, version, ns
	e.mu.Unlock()
	e.local.clear()
	e.reloads.Add(1)
	return nil
}

// loadIfBehind reloads unless the engine already has version or newer.
func (e *Engine) loadIfBehind(ctx context.Context, version int64) error {
	if e.Version() >= version && version > 0 {
		return nil
	}
	return e.Load(ctx)
}

func (e *Engine) current(ctx context.Context) (*casbin.SyncedEnforcer, int64, string, error) {
	e.mu.RLock()
	enf, v, ns := e.enf, e.version, e.ns
	e.mu.RUnlock()
	if enf != nil {
		return enf, v, ns, nil
	}
	if err := e.Load(ctx); err != nil {
		return nil, 0, "", err
	}
	return e.current(ctx)
}

// Version returns the policy version in use (0 before the first load).
func (e *Engine) Version() int64 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.version
}

// Reloads returns how many times the policy was loaded (for tests and metrics).
func (e *Engine) Reloads() int64 { return e.reloads.Load() }

// Allowed reports whether sub may do act on resource in org. A superadmin may do
// everything (the explicit bypass); anyone else needs a policy line, so an unknown
// subject, organization, resource or action is denied. It returns an error only when the
// policy cannot be loaded; the decision is then false.
func (e *Engine) Allowed(ctx context.Context, sub Subject, org, resource, action string) (bool, error) {
	if sub.Superadmin {
		return true, nil
	}
	if sub.Name == "" || org == "" || org == models.GlobalOrg || resource == "" || action == "" {
		return false, nil
	}
	enf, version, ns, err := e.current(ctx)
	if err != nil {
		return false, err
	}
	key := strconv.FormatInt(version, 10) + ":" + org + ":" + sub.Name + ":" + resource + ":" + action
	if d, ok := e.local.get(key); ok {
		return d, nil
	}
	rkey := "auditdb:authz:" + ns + ":" + key
	if e.redisUsable() {
		v, err := e.rdb.Get(ctx, rkey).Result()
		switch {
		case err == nil && (v == "1" || v == "0"):
			d := v == "1"
			e.local.put(key, d)
			return d, nil
		case err != nil && !errors.Is(err, redis.Nil):
			e.redisFailed(err)
		}
	}
	d, err := enf.Enforce(sub.Name, org, resource, action)
	if err != nil {
		return false, fmt.Errorf("policy: enforce: %w", err)
	}
	e.local.put(key, d)
	if e.redisUsable() {
		v := "0"
		if d {
			v = "1"
		}
		if err := e.rdb.Set(ctx, rkey, v, e.opts.DecisionTTL).Err(); err != nil {
			e.redisFailed(err)
		}
	}
	return d, nil
}

func (e *Engine) redisUsable() bool {
	return e.rdb != nil && time.Now().UnixNano() >= e.redisDownUntil.Load()
}

func (e *Engine) redisFailed(err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return // the request gave up, not Redis
	}
	e.redisDownUntil.Store(time.Now().Add(e.opts.RedisBackoff).UnixNano())
	e.log.Warn("policy: Redis unavailable; deciding from the enforcer alone", "err", err)
}

// Changed is called after a role, membership or organization change has committed: it
// reloads the policy here and tells every other instance to do the same. A failed signal
// is logged; the other instances' version check catches up.
func (e *Engine) Changed(ctx context.Context) {
	if err := e.Load(ctx); err != nil {
		e.log.Error("policy: reload after a change", "err", err)
		return
	}
	if e.rdb == nil || !e.redisUsable() {
		return
	}
	_, _, ns, _ := e.current(ctx)
	if err := e.rdb.Publish(ctx, e.channel(ns), strconv.FormatInt(e.Version(), 10)).Err(); err != nil {
		e.redisFailed(err)
	}
}

func (e *Engine) channel(ns string) string { return e.opts.Channel + ":" + ns }

// Enforcer returns the live Casbin enforcer, for the Casbin API: its writes store back
// through the adapter. Call Changed afterwards so every instance reloads.
func (e *Engine) Enforcer(ctx context.Context) (*casbin.SyncedEnforcer, error) {
	enf, _, _, err := e.current(ctx)
	return enf, err
}

// NewEnforcer returns a standalone enforcer of the model over adapter a, or with no policy
// at all when a is nil (for table tests that add lines by hand).
func NewEnforcer(a *Adapter) (*casbin.SyncedEnforcer, error) { return newEnforcer(a) }

// Run keeps the policy current until ctx ends: it reloads on every change signal from
// Redis (and after each (re)subscription, since signals may have been missed while
// disconnected) and, every PollInterval, when the database's version moved on. It returns
// nil when ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	if _, _, _, err := e.current(ctx); err != nil {
		e.log.Error("policy: first load", "err", err)
	}
	var wg sync.WaitGroup
	if e.opts.PollInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.poll(ctx)
		}()
	}
	if e.rdb != nil {
		e.listen(ctx)
	}
	wg.Wait()
	return nil
}

func (e *Engine) poll(ctx context.Context) {
	t := time.NewTicker(e.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var v int64
		if err := e.db.WithContext(ctx).Raw("SELECT version FROM policy_version").Scan(&v).Error; err != nil {
			if ctx.Err() == nil {
				e.log.Warn("policy: version check", "err", err)
			}
			continue
		}
		if v != e.Version() {
			if err := e.Load(ctx); err != nil && ctx.Err() == nil {
				e.log.Error("policy: reload after version check", "err", err)
			}
		}
	}
}

func (e *Engine) listen(ctx context.Context) {
	_, _, ns, err := e.current(ctx)
	if err != nil {
		// Without a namespace there is no channel; the version check still runs.
		return
	}
	ps := e.rdb.Subscribe(ctx, e.channel(ns))
	// A blocked Receive does not watch ctx; closing the subscription ends it.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	defer ps.Close()
	for {
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// go-redis reconnects and resubscribes on the next Receive; do not spin.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				// (Re)subscribed: changes may have gone by unheard meanwhile.
				if err := e.Load(ctx); err != nil && ctx.Err() == nil {
					e.log.Error("policy: reload after resubscribing", "err", err)
				}
			}
		case *redis.Message:
			v, _ := strconv.ParseInt(strings.TrimSpace(m.Payload), 10, 64)
			if err := e.loadIfBehind(ctx, v); err != nil && ctx.Err() == nil {
				e.log.Error("policy: reload on signal", "err", err)
			}
		}
	}
}

// localCache is the in-process decision cache: a map with a TTL per entry, emptied
// whole when full (decisions are cheap to recompute; a policy change empties it anyway).
type localCache struct {
	ttl  time.Duration
	size int
	mu   sync.RWMutex
	m    map[string]localEntry
}

type localEntry struct {
	allowed bool
	expires int64
}

func (c *localCache) get(key string) (bool, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || time.Now().UnixNano() > e.expires {
		return false, false
	}
	return e.allowed, true
}

func (c *localCache) put(key string, allowed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= c.size {
		c.m = make(map[string]localEntry, 256)
	}
	c.m[key] = localEntry{allowed: allowed, expires: time.Now().Add(c.ttl).UnixNano()}
}

func (c *localCache) clear() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}
