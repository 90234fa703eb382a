package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Session lifetimes for the console.
const (
	SessionIdleTimeout     = 30 * time.Minute
	SessionAbsoluteTimeout = 12 * time.Hour
	// sessionTouchEvery bounds how often a request writes last_seen_at.
	sessionTouchEvery = time.Minute
)

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
	User *User       `gorm:"-"`
	Orgs []OrgAccess `gorm:"-"`
}

// TableName maps Session to sessions.
func (Session) TableName() string { return "sessions" }

// CSRFToken returns the token forms of this session must carry.
func (s *Session) CSRFToken() string { return base64.RawURLEncoding.EncodeToString(s.CSRFSecret) }

// Org returns the session's current organization, or "".
func (s *Session) Org() string {
	if s.OrganizationID == nil {
		return ""
	}
	return *s.OrganizationID
}

// SessionStore keeps console sessions in PostgreSQL, so they survive a restart and a Redis
// outage and can be revoked at once on every instance.
type SessionStore struct {
	db  *gorm.DB
	now func() time.Time
}

// NewSessionStore returns a store over db; now may be nil for the wall clock.
func NewSessionStore(db *gorm.DB, now func() time.Time) *SessionStore {
	if now == nil {
		now = time.Now
	}
	return &SessionStore{db: db, now: now}
}

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// RandomToken returns n random bytes, URL-safe base64 encoded.
func RandomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("models: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Create starts a session for user in org (may be "") and returns its token, which is
// shown to nobody but the browser's cookie.
func (s *SessionStore) Create(ctx context.Context, userID int64, org, ip, userAgent string) (string, *Session, error) {
	token := RandomToken(32)
	now := s.now().UTC()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", nil, fmt.Errorf("models: csrf secret: %w", err)
	}
	sess := &Session{TokenHash: hashToken(token), UserID: userID, CSRFSecret: secret, IP: truncate(ip, 64),
		UserAgent: truncate(userAgent, 512), CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(SessionAbsoluteTimeout)}
	if org != "" {
		sess.OrganizationID = &org
	}
	if err := s.db.WithContext(ctx).Create(sess).Error; err != nil {
		return "", nil, fmt.Errorf("models: create session: %w", err)
	}
	return token, sess, nil
}

// ErrNoSession is returned for a missing, expired, idle or revoked session, or a disabled user.
var ErrNoSession = Unauthorized("your session has ended; sign in again")

// Lookup returns the live session for token and records the activity. It returns
// ErrNoSession when the session is unknown, revoked, past its absolute lifetime or idle for
// longer than SessionIdleTimeout.
func (s *SessionStore) Lookup(ctx context.Context, token string) (*Session, error) {
	if token == "" || len(token) > 128 {
		return nil, ErrNoSession
	}
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
		OrgsJSON           string
	}
	err := s.db.WithContext(ctx).Raw(`SELECT s.*, u.email, u.name, u.superadmin, u.disabled,
			u.created_at AS user_created, u.must_change_password,
			CASE WHEN u.superadmin THEN
				(SELECT coalesce(json_agg(json_build_object('id', o.id, 'name', o.name, 'role', 'superadmin')
					ORDER BY o.name, o.id), '[]') FROM organizations o)
			ELSE
				(SELECT coalesce(json_agg(json_build_object('id', o.id, 'name', o.name, 'role', m.role)
					ORDER BY o.name, o.id), '[]')
				 FROM memberships m JOIN organizations o ON o.id = m.organization_id WHERE m.user_id = u.id)
			END AS orgs_json
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`, hashToken(token)).Scan(&row).Error
	if err != nil {
		return nil, Unavailable("cannot read the session store", err)
	}
	if row.TokenHash == nil {
		return nil, ErrNoSession
	}
	sess := row.Session
	sess.User = &User{ID: sess.UserID, Email: row.Email, Name: row.Name, Superadmin: row.Superadmin,
		Disabled: row.Disabled, CreatedAt: row.UserCreated, MustChangePassword: row.MustChangePassword}
	if err := json.Unmarshal([]byte(row.OrgsJSON), &sess.Orgs); err != nil {
		return nil, fmt.Errorf("models: read session organizations: %w", err)
	}
	now := s.now().UTC()
	if sess.User.Disabled || sess.RevokedAt != nil || !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeenAt) > SessionIdleTimeout {
		return nil, ErrNoSession
	}
	if now.Sub(sess.LastSeenAt) >= sessionTouchEvery {
		err := s.db.WithContext(ctx).Model(&Session{}).Where("token_hash = ?", sess.TokenHash).
			Update("last_seen_at", now).Error
		if err != nil {
			return nil, Unavailable("cannot update the session store", err)
		}
		sess.LastSeenAt = now
	}
	return &sess, nil
}

// SetOrg switches the session's current organization. The caller checks access first.
func (s *SessionStore) SetOrg(ctx context.Context, token, org string) error {
	err := s.db.WithContext(ctx).Model(&Session{}).Where("token_hash = ?", hashToken(token)).
		Update("organization_id", org).Error
	if err != nil {
		return fmt.Errorf("models: switch organization: %w", err)
	}
	return nil
}

// Revoke ends the session for token at once. Revoking an unknown token is not an error.
func (s *SessionStore) Revoke(ctx context.Context, token string) error {
	err := s.db.WithContext(ctx).Model(&Session{}).Where("token_hash = ? AND revoked_at IS NULL", hashToken(token)).
		Update("revoked_at", s.now().UTC()).Error
	if err != nil {
		return fmt.Errorf("models: revoke session: %w", err)
	}
	return nil
}

// RevokeUser ends every session of a user (after a password change or removal) and
// returns how many were live.
func (s *SessionStore) RevokeUser(ctx context.Context, userID int64) (int64, error) {
	res := s.db.WithContext(ctx).Model(&Session{}).Where("user_id = ? AND revoked_at IS NULL", userID).
		Update("revoked_at", s.now().UTC())
	if res.Error != nil {
		return 0, fmt.Errorf("models: revoke sessions: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// PurgeExpired deletes sessions that ended more than a day ago and returns how many.
func (s *SessionStore) PurgeExpired(ctx context.Context) (int64, error) {
	cut := s.now().UTC().Add(-24 * time.Hour)
	res := s.db.WithContext(ctx).Where("expires_at < ? OR revoked_at < ? OR last_seen_at < ?",
		cut, cut, cut.Add(-SessionIdleTimeout)).Delete(&Session{})
	if res.Error != nil {
		return 0, fmt.Errorf("models: purge sessions: %w", res.Error)
	}
	return res.RowsAffected, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
