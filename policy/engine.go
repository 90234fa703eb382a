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
	// PollInterval is how often the engine compares its policy version with the database's
	// while it follows the database's change signals: a safety net for a lost
	// notification (30 s; negative disables every check).
	PollInterval time.Duration
	// UnfollowedPoll is how often it compares while the signals are not followed (the
	// listening connection is down or there is none): 1 s, so a change reaches this
	// instance within a second even then.
	UnfollowedPoll time.Duration
	// RedisBackoff is how long Redis is left alone after it failed (5 s).
	RedisBackoff time.Duration
	// KeyPrefix starts every Redis key of the shared decision cache ("auditdb:"), so two
	// deployments may share one Redis.
	KeyPrefix string
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
	if o.UnfollowedPoll == 0 {
		o.UnfollowedPoll = time.Second
	}
	if o.RedisBackoff == 0 {
		o.RedisBackoff = 5 * time.Second
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = "auditdb:"
	}
	return o
}

// Engine answers authorization questions from the Casbin policy.
//
// Decisions are cached in two levels: a small in-process map, then Redis (shared by every
// instance, 5-minute TTL). Both are keyed by the policy version, so a change makes every
// older decision unreachable at once. The database announces every change itself: the
// trigger that bumps policy_version notifies models.ChannelPolicy with the new version,
// and every instance that Follows the signals reloads on it, whoever made the change (an
// instance, the CLI, plain SQL) and whether or not Redis is up. The instance that made the
// change also reloads at once through Refresh, which the stores call after committing.
// While the signals are not followed, Run compares versions every second instead.
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
	following      atomic.Bool // the database's change signals are live
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
	rkey := e.opts.KeyPrefix + "authz:" + ns + ":" + key
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

// Refresh brings this instance's policy up to date at once; the stores call it after a
// role, membership or organization change has committed, so the instance that made the
// change decides by it from its very next request (the other instances hear the
// database's signal). A failure is logged; the version checks catch up.
func (e *Engine) Refresh(ctx context.Context) {
	if err := e.Load(ctx); err != nil {
		e.log.Error("policy: reload after a change", "err", err)
	}
}

// Follow subscribes the engine to the database's policy signals.
func (e *Engine) Follow(sig *models.Signals) { sig.Subscribe(models.ChannelPolicy, policySignals{e}) }

// policySignals adapts the engine to models.Subscriber.
type policySignals struct{ e *Engine }

func (p policySignals) Notified(payload string) {
	v, _ := strconv.ParseInt(strings.TrimSpace(payload), 10, 64)
	if err := p.e.loadIfBehind(context.Background(), v); err != nil {
		p.e.log.Error("policy: reload on signal", "err", err)
	}
}

func (p policySignals) Reset(live bool) {
	p.e.following.Store(live)
	if live {
		// (Re)connected: changes may have gone by unheard meanwhile.
		if err := p.e.Load(context.Background()); err != nil {
			p.e.log.Error("policy: reload after following signals", "err", err)
		}
	}
}

// Enforcer returns the live Casbin enforcer, for the Casbin API: its writes store back
// through the adapter, whose tables' triggers tell every instance.
func (e *Engine) Enforcer(ctx context.Context) (*casbin.SyncedEnforcer, error) {
	enf, _, _, err := e.current(ctx)
	return enf, err
}

// NewEnforcer returns a standalone enforcer of the model over adapter a, or with no policy
// at all when a is nil (for table tests that add lines by hand).
func NewEnforcer(a *Adapter) (*casbin.SyncedEnforcer, error) { return newEnforcer(a) }

// Run keeps the policy current until ctx ends: it compares the policy version with the
// database's every PollInterval while the change signals are followed, and every
// UnfollowedPoll while they are not, and reloads when the database's moved on. It
// returns nil when ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	if _, _, _, err := e.current(ctx); err != nil && ctx.Err() == nil {
		e.log.Error("policy: first load", "err", err)
	}
	if e.opts.PollInterval < 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(e.opts.UnfollowedPoll)
	defer t.Stop()
	var lastCheck time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if e.following.Load() && time.Since(lastCheck) < e.opts.PollInterval {
			continue
		}
		lastCheck = time.Now()
		e.checkVersion(ctx)
	}
}

// checkVersion reloads when the database's policy version differs from the one in use.
func (e *Engine) checkVersion(ctx context.Context) {
	var v int64
	if err := e.db.WithContext(ctx).Raw("SELECT version FROM policy_version").Scan(&v).Error; err != nil {
		if ctx.Err() == nil {
			e.log.Warn("policy: version check", "err", err)
		}
		return
	}
	if v != e.Version() {
		if err := e.Load(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("policy: reload after version check", "err", err)
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
