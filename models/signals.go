package models

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// The PostgreSQL notification channels the data layer fires from triggers (see the
// migrations): every cache an instance keeps of these tables listens to one of them, so a
// change made anywhere (another instance, the CLI, plain SQL) reaches every instance on
// commit, with or without Redis.
const (
	// ChannelSessions carries an empty payload on any change a cached session depends on.
	ChannelSessions = "auditdb_sessions"
	// ChannelPolicy carries the new policy version after a role, membership or
	// organization change.
	ChannelPolicy = "auditdb_policy"
	// ChannelAPIKeys carries the hex SHA-256 of a revoked or deleted API key.
	ChannelAPIKeys = "auditdb_apikeys"
)

// Subscriber is a cache that follows one notification channel.
type Subscriber interface {
	// Notified is called with the payload of each notification on the channel.
	Notified(payload string)
	// Reset is called whenever the listening connection is established (live true) or lost
	// (live false): notifications may have been missed in between, so a subscriber drops
	// what it cached, and caches only while live.
	Reset(live bool)
}

// Signals follows the data layer's notifications on one PostgreSQL connection of its own
// and hands each to the subscribers of its channel. It is the one path by which caches
// learn of changes; Redis never carries correctness.
type Signals struct {
	dsn  string
	log  *slog.Logger
	idle time.Duration // how long a quiet connection goes before it is pinged

	mu   sync.Mutex
	subs map[string][]Subscriber
	live atomic.Bool
}

// NewSignals returns signals that will listen on dsn once Run starts.
func NewSignals(dsn string, log *slog.Logger) *Signals {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Signals{dsn: dsn, log: log, idle: 15 * time.Second, subs: map[string][]Subscriber{}}
}

// SetIdle sets how long a quiet connection goes before it is pinged (for tests).
func (s *Signals) SetIdle(d time.Duration) { s.idle = d }

// Subscribe registers sub for channel. Call it before Run; a subscriber added later hears
// from the next (re)connection on.
func (s *Signals) Subscribe(channel string, sub Subscriber) {
	s.mu.Lock()
	s.subs[channel] = append(s.subs[channel], sub)
	s.mu.Unlock()
}

// Live reports whether the notifications are being followed right now.
func (s *Signals) Live() bool { return s.live.Load() }

// Run follows the notifications until ctx ends, reconnecting with a growing pause while
// the database is unreachable. It returns when ctx ends.
func (s *Signals) Run(ctx context.Context) {
	FollowUntilDone(ctx, s.follow)
}

func (s *Signals) snapshot() map[string][]Subscriber {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]Subscriber, len(s.subs))
	for ch, subs := range s.subs {
		out[ch] = append([]Subscriber(nil), subs...)
	}
	return out
}

func (s *Signals) reset(subs map[string][]Subscriber, live bool) {
	s.live.Store(live)
	for _, list := range subs {
		for _, sub := range list {
			sub.Reset(live)
		}
	}
}

// follow runs one LISTEN connection until it fails; it reports whether it was ever
// confirmed.
func (s *Signals) follow(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := pgx.Connect(cctx, s.dsn)
	cancel()
	if err != nil {
		return false
	}
	subs := s.snapshot()
	confirmed := false
	defer func() {
		if confirmed {
			s.reset(subs, false)
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		conn.Close(cctx)
		cancel()
	}()
	for ch := range subs {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return false
		}
	}
	confirmed = true
	s.reset(subs, true)
	for {
		wctx, cancel := context.WithTimeout(ctx, s.idle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if n != nil {
			for _, sub := range subs[n.Channel] {
				sub.Notified(n.Payload)
			}
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			if ctx.Err() == nil {
				s.log.Warn("models: change notifications interrupted; caches are off until they resume", "err", err)
			}
			return true
		}
		// Quiet for a while: make sure the server is still there, since a connection
		// that died silently would hear nothing.
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return true
		}
	}
}

// PolicyRefresh is what a store that changes the policy tables (roles, memberships,
// organizations) calls after its change has committed, so this instance decides by the
// change from its very next request; the other instances hear the database's signal. Its
// zero value does nothing (a store used by the CLI or a test without an engine).
type PolicyRefresh struct {
	fn atomic.Pointer[func(context.Context)]
}

// Set makes fn the refresh to run (policy.Engine.Refresh in serve).
func (r *PolicyRefresh) Set(fn func(context.Context)) { r.fn.Store(&fn) }

// done runs the refresh when err is nil (the change committed) and returns err.
func (r *PolicyRefresh) done(ctx context.Context, err error) error {
	if err == nil {
		if fn := r.fn.Load(); fn != nil {
			(*fn)(context.WithoutCancel(ctx))
		}
	}
	return err
}
