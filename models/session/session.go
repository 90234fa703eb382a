// Package session keeps signed-in console sessions (stored hashed in PostgreSQL, cached per
// instance and invalidated through PostgreSQL notifications) and the sign-in throttle.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
)

// Session lifetimes for the console.
const (
	IdleTimeout     = 30 * time.Minute
	AbsoluteTimeout = 12 * time.Hour
	// sessionTouchEvery bounds how often a request writes last_seen_at. It also bounds how
	// long a session stays cached, so that write and the expiry checks keep happening.
	sessionTouchEvery = time.Minute
)

// sessionCacheSize bounds the session cache; a full cache is emptied.
const sessionCacheSize = 10_000

// Session is a signed-in console session. Only the SHA-256 of its token is stored, so a
// database leak does not hand out live sessions.
type Session struct {
	TokenHash      []byte     `gorm:"column:token_hash;primaryKey"`
	UserID         int64      `gorm:"column:user_id"`
	OrganizationID *string    `gorm:"column:organization_id"`
	CSRFSecret     []byte     `gorm:"column:csrf_secret"`
	IP             string     `gorm:"column:ip"`
	UserAgent      string     `gorm:"column:user_agent"`
	CreatedAt      time.Time  `gorm:"column:created_at"`
	LastSeenAt     time.Time  `gorm:"column:last_seen_at"`
	ExpiresAt      time.Time  `gorm:"column:expires_at"`
	RevokedAt      *time.Time `gorm:"column:revoked_at"`
	// User is the session's user and Orgs the organizations it may work in (all of them
	// for a superadmin), loaded with the session by Lookup.
	User *models.User       `gorm:"-"`
	Orgs []models.OrgAccess `gorm:"-"`
}

// TableName maps Session to sessions.
func (Session) TableName() string { return "sessions" }

// Org returns the session's current organization, or "".
func (s *Session) Org() string {
	if s.OrganizationID == nil {
		return ""
	}
	return *s.OrganizationID
}

// clone returns a deep copy of the session, so a caller may change what it got without
// touching the cache.
func (s *Session) clone() *Session {
	c := *s
	c.TokenHash = slices.Clone(s.TokenHash)
	c.CSRFSecret = slices.Clone(s.CSRFSecret)
	if s.OrganizationID != nil {
		org := *s.OrganizationID
		c.OrganizationID = &org
	}
	if s.RevokedAt != nil {
		at := *s.RevokedAt
		c.RevokedAt = &at
	}
	if s.User != nil {
		u := *s.User
		c.User = &u
	}
	c.Orgs = slices.Clone(s.Orgs)
	return &c
}

// ended reports whether the session is over at now: its user is disabled, it was revoked,
// or it is past its absolute lifetime or idle for longer than IdleTimeout.
func (s *Session) ended(now time.Time) bool {
	return s.User.Disabled || s.RevokedAt != nil || !now.Before(s.ExpiresAt) ||
		now.Sub(s.LastSeenAt) > IdleTimeout
}

// Store keeps console sessions in PostgreSQL, so they survive a restart and a Redis
// outage and can be revoked at once on every instance.
//
// While the store Follows the database's change signals, looked-up sessions are cached
// in process (for at most sessionTouchEvery). Any change to sessions, users, memberships or
// organizations, by any writer, empties every instance's cache on commit; so does losing or
// regaining the notification connection, during which nothing is cached.
type Store struct {
	db  *gorm.DB
	now func() time.Time

	live  atomic.Bool   // the change notifications are followed: the cache may be used
	gen   atomic.Uint64 // bumped by every flush, under mu
	reads atomic.Int64  // sessions read from the database, for tests
	heard atomic.Value  // the payload of the last notification handled, for tests
	mu    sync.Mutex
	cache map[[sha256.Size]byte]cachedSession
	// afterRead, set by tests only, runs between a database read and its caching.
	afterRead func()
}

type cachedSession struct {
	sess  *Session
	until time.Time
}

// NewStore returns a store over db; now may be nil for the wall clock.
func NewStore(db *gorm.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now, cache: map[[sha256.Size]byte]cachedSession{}}
}

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// Create starts a session for user in org (may be "") and returns its token, which is
// shown to nobody but the browser's cookie.
func (s *Store) Create(ctx context.Context, userID int64, org, ip, userAgent string) (string, *Session, error) {
	token := models.RandomToken(32)
	now := s.now().UTC()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", nil, fmt.Errorf("session: csrf secret: %w", err)
	}
	sess := &Session{TokenHash: hashToken(token), UserID: userID, CSRFSecret: secret, IP: models.Truncate(ip, 64),
		UserAgent: models.Truncate(userAgent, 512), CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(AbsoluteTimeout)}
	if org != "" {
		sess.OrganizationID = &org
	}
	if err := s.db.WithContext(ctx).Create(sess).Error; err != nil {
		return "", nil, fmt.Errorf("session: create session: %w", err)
	}
	return token, sess, nil
}

// ErrNoSession is returned for a missing, expired, idle or revoked session, or a disabled user.
var ErrNoSession = models.Unauthorized("your session has ended; sign in again")

// Lookup returns the live session for token (a copy the caller may change) and records
// the activity; while Listen is live it is served from the cache when it can be. It
// returns ErrNoSession when the session is unknown, revoked, past its absolute lifetime or
// idle for longer than IdleTimeout, or its user is disabled, and a KindUnavailable
// error when the database cannot be read or updated.
func (s *Store) Lookup(ctx context.Context, token string) (*Session, error) {
	if token == "" || len(token) > 128 {
		return nil, ErrNoSession
	}
	key := sha256.Sum256([]byte(token))
	if s.live.Load() {
		now := s.now().UTC()
		s.mu.Lock()
		c, ok := s.cache[key]
		s.mu.Unlock()
		if ok && now.Before(c.until) && now.Sub(c.sess.LastSeenAt) < sessionTouchEvery && !c.sess.ended(now) {
			return c.sess.clone(), nil
		}
	}
	// The generation is taken before the read: a flush after this point (a change committed
	// while the read runs) keeps the result out of the cache.
	gen := s.gen.Load()
	sess, err := s.read(ctx, key[:])
	if s.afterRead != nil {
		s.afterRead()
	}
	if err != nil {
		if err == ErrNoSession {
			s.forget(key)
		}
		return nil, err
	}
	s.keep(key, gen, sess)
	return sess, nil
}

// read returns the live session whose token hashes to hash, recording the activity.
func (s *Store) read(ctx context.Context, hash []byte) (*Session, error) {
	s.reads.Add(1)
	// One round trip for the session, its user and the user's organizations: this runs on
	// every console request.
	var row struct {
		Session
		Email       string
		Name        string
		Superadmin  bool
		Disabled    bool
		UserCreated time.Time
		// MustChangePassword: the user still has a one-time password.
		MustChangePassword bool
		TimeZone           *string
		OrgsJSON           string
	}
	err := s.db.WithContext(ctx).Raw(`SELECT s.*, u.email, u.name, u.superadmin, u.disabled,
			u.created_at AS user_created, u.must_change_password, u.time_zone,
			CASE WHEN u.superadmin THEN
				(SELECT coalesce(json_agg(json_build_object('id', o.id, 'name', o.name, 'role', 'superadmin')
					ORDER BY o.name, o.id), '[]') FROM organizations o)
			ELSE
				(SELECT coalesce(json_agg(json_build_object('id', o.id, 'name', o.name, 'role', m.role)
					ORDER BY o.name, o.id), '[]')
				 FROM memberships m JOIN organizations o ON o.id = m.organization_id WHERE m.user_id = u.id)
			END AS orgs_json
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`, hash).Scan(&row).Error
	if err != nil {
		return nil, models.Unavailable("cannot read the session store", err)
	}
	if row.TokenHash == nil {
		return nil, ErrNoSession
	}
	sess := row.Session
	sess.User = &models.User{ID: sess.UserID, Email: row.Email, Name: row.Name, Superadmin: row.Superadmin,
		Disabled: row.Disabled, CreatedAt: row.UserCreated, MustChangePassword: row.MustChangePassword, TimeZone: row.TimeZone}
	if err := json.Unmarshal([]byte(row.OrgsJSON), &sess.Orgs); err != nil {
		return nil, fmt.Errorf("session: read session organizations: %w", err)
	}
	now := s.now().UTC()
	if sess.ended(now) {
		return nil, ErrNoSession
	}
	if now.Sub(sess.LastSeenAt) >= sessionTouchEvery {
		err := s.db.WithContext(ctx).Model(&Session{}).Where("token_hash = ?", sess.TokenHash).
			Update("last_seen_at", now).Error
		if err != nil {
			return nil, models.Unavailable("cannot update the session store", err)
		}
		sess.LastSeenAt = now
	}
	return &sess, nil
}

// keep caches a copy of sess under key, unless the notifications are not followed or the
// cache was flushed since generation gen was read.
func (s *Store) keep(key [sha256.Size]byte, gen uint64, sess *Session) {
	if !s.live.Load() {
		return
	}
	c := cachedSession{sess: sess.clone(), until: s.now().UTC().Add(sessionTouchEvery)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.live.Load() || s.gen.Load() != gen {
		return
	}
	if len(s.cache) >= sessionCacheSize {
		clear(s.cache)
	}
	s.cache[key] = c
}

func (s *Store) forget(key [sha256.Size]byte) {
	s.mu.Lock()
	delete(s.cache, key)
	s.mu.Unlock()
}

// flush empties the cache and moves to a new generation, so reads already under way are
// not cached either.
func (s *Store) flush() {
	s.mu.Lock()
	clear(s.cache)
	s.gen.Add(1)
	s.mu.Unlock()
}

// Live reports whether the change notifications are being followed (and the cache is in
// use).
func (s *Store) Live() bool { return s.live.Load() }

// Follow subscribes the store to the database's session signals (models.ChannelSessions).
// Sessions are cached only while the signals are live; the cache is emptied on every
// notification, and whenever the connection drops or is established, since changes may
// have been missed in between.
func (s *Store) Follow(sig *models.Signals) { sig.Subscribe(models.ChannelSessions, sessionSignals{s}) }

// sessionSignals adapts the store to models.Subscriber.
type sessionSignals struct{ s *Store }

func (a sessionSignals) Notified(payload string) {
	a.s.flush()
	a.s.heard.Store(payload)
}

func (a sessionSignals) Reset(live bool) {
	if !live {
		a.s.live.Store(false)
	}
	a.s.flush()
	if live {
		a.s.live.Store(true)
	}
}

// SetOrg switches the session's current organization. The caller checks access first.
func (s *Store) SetOrg(ctx context.Context, token, org string) error {
	err := s.db.WithContext(ctx).Model(&Session{}).Where("token_hash = ?", hashToken(token)).
		Update("organization_id", org).Error
	if err != nil {
		return fmt.Errorf("session: switch organization: %w", err)
	}
	s.flush() // the trigger's notification tells the other instances
	return nil
}

// Revoke ends the session for token at once. Revoking an unknown token is not an error.
func (s *Store) Revoke(ctx context.Context, token string) error {
	err := s.db.WithContext(ctx).Model(&Session{}).Where("token_hash = ? AND revoked_at IS NULL", hashToken(token)).
		Update("revoked_at", s.now().UTC()).Error
	if err != nil {
		return fmt.Errorf("session: revoke session: %w", err)
	}
	s.flush()
	return nil
}

// RevokeUser ends every session of a user (after a password change or removal) and
// returns how many were live.
func (s *Store) RevokeUser(ctx context.Context, userID int64) (int64, error) {
	res := s.db.WithContext(ctx).Model(&Session{}).Where("user_id = ? AND revoked_at IS NULL", userID).
		Update("revoked_at", s.now().UTC())
	if res.Error != nil {
		return 0, fmt.Errorf("session: revoke sessions: %w", res.Error)
	}
	s.flush()
	return res.RowsAffected, nil
}

// PurgeExpired deletes sessions that ended more than a day ago and returns how many.
func (s *Store) PurgeExpired(ctx context.Context) (int64, error) {
	cut := s.now().UTC().Add(-24 * time.Hour)
	res := s.db.WithContext(ctx).Where("expires_at < ? OR revoked_at < ? OR last_seen_at < ?",
		cut, cut, cut.Add(-IdleTimeout)).Delete(&Session{})
	if res.Error != nil {
		return 0, fmt.Errorf("session: purge sessions: %w", res.Error)
	}
	return res.RowsAffected, nil
}
