package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// API key scopes: an ingest key posts events, a read key reads, verifies and proves them,
// a gdpr key files data-subject requests and reads their state (a privacy portal's key).
const (
	ScopeIngest = "ingest"
	ScopeRead   = "read"
	ScopeGDPR   = "gdpr"
)

// apiKeyPrefix starts every key, so a leaked key is recognizable (and scannable) as ours.
const apiKeyPrefix = "adb_"

// apiKeyLength is the prefix plus 32 random bytes in unpadded base64url.
const apiKeyLength = len(apiKeyPrefix) + 43

// shownPrefix is how much of a key the console keeps showing after creation.
const shownPrefix = 12

// apiKeyCacheTTL bounds how long an instance trusts a cached key. Revocations reach every
// instance at once through PostgreSQL's notifications; the TTL only matters if one were
// lost while the connection looked healthy.
const apiKeyCacheTTL = 30 * time.Second

// lastUsedEvery bounds how often a key's last-used time is written.
const lastUsedEvery = time.Minute

// APIKey is a row of api_keys. The key itself is never stored, only its SHA-256.
type APIKey struct {
	ID             int64      `gorm:"column:id;primaryKey"`
	OrganizationID string     `gorm:"column:organization_id"`
	Name           string     `gorm:"column:name"`
	Prefix         string     `gorm:"column:prefix"`
	KeyHash        []byte     `gorm:"column:key_hash"`
	Scope          string     `gorm:"column:scope"`
	CreatedAt      time.Time  `gorm:"column:created_at"`
	CreatedBy      string     `gorm:"column:created_by"`
	LastUsedAt     *time.Time `gorm:"column:last_used_at"`
	RevokedAt      *time.Time `gorm:"column:revoked_at"`
	RevokedBy      *string    `gorm:"column:revoked_by"`
}

// TableName maps APIKey to api_keys.
func (APIKey) TableName() string { return "api_keys" }

// ErrBadAPIKey is returned for an unknown and a revoked key alike.
var ErrBadAPIKey = Unauthorized("the API key is unknown or revoked")

// APIKeyStore creates, lists, revokes and authenticates API keys. Authenticated keys are
// cached in-process only while the instance follows the database's revocation signals
// (ChannelAPIKeys, fired by a trigger on api_keys), so a revocation by any writer stops a
// key at once on every instance; while the signals are not followed every request reads
// the database (one indexed lookup).
type APIKeyStore struct {
	db    *gorm.DB
	trail *AuditTrail
	now   func() time.Time

	live  atomic.Bool   // the revocation signals are followed: the cache may be used
	gen   atomic.Uint64 // bumped by every forget and flush, under mu
	mu    sync.Mutex
	cache map[[32]byte]cachedKey
}

type cachedKey struct {
	key   APIKey
	until time.Time
}

// NewAPIKeyStore returns a store over db. Creations and revocations are self-audited
// through trail (nil only where keys are just authenticated). Keys are cached only once
// the store is subscribed to signals (Follow) and those are live.
func NewAPIKeyStore(db *gorm.DB, trail *AuditTrail) *APIKeyStore {
	return &APIKeyStore{db: db, trail: trail, now: time.Now, cache: map[[32]byte]cachedKey{}}
}

// Create makes a key for org and returns it in clear (to be shown once) with its row; the
// creation is self-audited (never the key) in the same transaction. It returns KindInvalid
// for a bad name or scope and KindNotFound for an unknown organization.
func (s *APIKeyStore) Create(ctx context.Context, org, name, scope string, by Actor) (string, *APIKey, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name) {
		return "", nil, Invalid("name", "must be 1-100 characters")
	}
	if HasFormatChar(name) {
		return "", nil, FormatCharError("name", name)
	}
	if scope != ScopeIngest && scope != ScopeRead && scope != ScopeGDPR {
		return "", nil, Invalid("scope", "must be ingest, read or gdpr")
	}
	raw := apiKeyPrefix + RandomToken(32)
	sum := sha256.Sum256([]byte(raw))
	k := &APIKey{OrganizationID: org, Name: name, Prefix: raw[:shownPrefix], KeyHash: sum[:], Scope: scope,
		CreatedBy: by.Principal(), CreatedAt: s.now().UTC()}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(k).Error; err != nil {
			if errors.Is(err, gorm.ErrForeignKeyViolated) {
				return NotFound("organization")
			}
			return fmt.Errorf("models: create API key: %w", err)
		}
		entry := APIKeyCreated(by, org, strconv.FormatInt(k.ID, 10), k.Name)
		entry.Change = &ConfigChange{Field: "api_key." + strconv.FormatInt(k.ID, 10),
			New: map[string]any{"name": k.Name, "scope": k.Scope, "prefix": k.Prefix}}
		return s.trail.RecordTx(ctx, tx, entry)
	})
	if err != nil {
		return "", nil, err
	}
	return raw, k, nil
}

// List returns org's keys, live ones first, newest first.
func (s *APIKeyStore) List(ctx context.Context, org string) ([]APIKey, error) {
	var keys []APIKey
	err := s.db.WithContext(ctx).Where("organization_id = ?", org).
		Order("revoked_at IS NOT NULL, created_at DESC, id DESC").Find(&keys).Error
	if err != nil {
		return nil, fmt.Errorf("models: list API keys: %w", err)
	}
	return keys, nil
}

// Revoke ends key id of org at once: locally, and on every other instance through Redis;
// the revocation is self-audited. Revoking a revoked key is not an error; another
// organization's key is KindNotFound.
func (s *APIKeyStore) Revoke(ctx context.Context, org string, id int64, by Actor) error {
	var k APIKey
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Where("organization_id = ? AND id = ?", org, id).Take(&k).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return NotFound("API key")
		}
		if err != nil {
			return fmt.Errorf("models: look up API key: %w", err)
		}
		if k.RevokedAt != nil {
			return nil
		}
		now := s.now().UTC()
		if err := tx.Model(&APIKey{}).Where("id = ?", id).Updates(map[string]any{"revoked_at": now, "revoked_by": by.Principal()}).Error; err != nil {
			return fmt.Errorf("models: revoke API key: %w", err)
		}
		entry := APIKeyRevoked(by, org, strconv.FormatInt(k.ID, 10), k.Name)
		entry.Change = &ConfigChange{Field: "api_key." + strconv.FormatInt(k.ID, 10),
			Previous: map[string]any{"name": k.Name, "revoked": false}, New: map[string]any{"name": k.Name, "revoked": true}}
		return s.trail.RecordTx(ctx, tx, entry)
	})
	if err != nil {
		return err
	}
	// The trigger's notification tells every instance, this one included; forgetting
	// here as well makes the revocation hold for this instance's very next request.
	s.forget(hex.EncodeToString(k.KeyHash))
	return nil
}

// Authenticate returns the live key raw stands for. It returns a KindUnauthorized error for
// a malformed, unknown or revoked key, and records the key's last use (at most once a
// minute).
func (s *APIKeyStore) Authenticate(ctx context.Context, raw string) (*APIKey, error) {
	if !wellFormedKey(raw) {
		return nil, Unauthorized("the API key is malformed")
	}
	sum := sha256.Sum256([]byte(raw))
	now := s.now()
	if s.live.Load() {
		s.mu.Lock()
		c, ok := s.cache[sum]
		s.mu.Unlock()
		if ok && now.Before(c.until) {
			k := c.key
			return &k, nil
		}
	}
	// The generation is taken before the read: a revocation signalled after this point
	// keeps what this read found out of the cache.
	gen := s.gen.Load()
	var k APIKey
	err := s.db.WithContext(ctx).Where("key_hash = ?", sum[:]).Take(&k).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrBadAPIKey
	}
	if err != nil {
		return nil, Unavailable("cannot read API keys", err)
	}
	if k.RevokedAt != nil {
		return nil, ErrBadAPIKey
	}
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) >= lastUsedEvery {
		t := now.UTC()
		err := s.db.WithContext(ctx).Model(&APIKey{}).Where("id = ? AND revoked_at IS NULL", k.ID).
			Update("last_used_at", t).Error
		if err != nil {
			return nil, Unavailable("cannot update API keys", err)
		}
		k.LastUsedAt = &t
	}
	s.mu.Lock()
	if s.live.Load() && s.gen.Load() == gen {
		if len(s.cache) > 10_000 {
			clear(s.cache)
		}
		// Cached until the last-used time is due again, so that write keeps happening.
		s.cache[sum] = cachedKey{key: k, until: now.Add(min(apiKeyCacheTTL, lastUsedEvery-now.Sub(*k.LastUsedAt)))}
	}
	s.mu.Unlock()
	return &k, nil
}

// Follow subscribes the store to the revocation signals; its cache is used only while
// they are live.
func (s *APIKeyStore) Follow(sig *Signals) { sig.Subscribe(ChannelAPIKeys, apiKeySignals{s}) }

// apiKeySignals adapts the store to Subscriber without adding those methods to its API.
type apiKeySignals struct{ s *APIKeyStore }

func (a apiKeySignals) Notified(hexHash string) { a.s.forget(hexHash) }

func (a apiKeySignals) Reset(live bool) {
	if !live {
		a.s.live.Store(false)
	}
	a.s.flush()
	if live {
		a.s.live.Store(true)
	}
}

// Live reports whether revocations are being followed (and the cache is in use).
func (s *APIKeyStore) Live() bool { return s.live.Load() }

func (s *APIKeyStore) forget(hexHash string) {
	raw, err := hex.DecodeString(hexHash)
	if err != nil || len(raw) != sha256.Size {
		s.flush()
		return
	}
	s.mu.Lock()
	delete(s.cache, [32]byte(raw))
	s.gen.Add(1)
	s.mu.Unlock()
}

func (s *APIKeyStore) flush() {
	s.mu.Lock()
	clear(s.cache)
	s.gen.Add(1)
	s.mu.Unlock()
}

func wellFormedKey(raw string) bool {
	if len(raw) != apiKeyLength || !strings.HasPrefix(raw, apiKeyPrefix) {
		return false
	}
	for _, c := range raw[len(apiKeyPrefix):] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
