package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"auditdb/models"
)

// IdempotencyClaim is the Idempotency-Key a request carried and the digest of the request;
// the writer stores the answer under it in the events' own transaction. Keys a client
// sends live in the client scope; the server's own keys (a dead letter's replay) live in
// an internal scope that no client key can name.
type IdempotencyClaim struct {
	Key         string
	RequestHash []byte
	internal    bool
}

// Idempotency scopes, the scope column of api_idempotency.
const (
	scopeClient   = "client"
	scopeInternal = "internal"
)

func (c *IdempotencyClaim) scope() string {
	if c.internal {
		return scopeInternal
	}
	return scopeClient
}

// ErrIdempotencyConflict is returned when an Idempotency-Key that answered one request
// comes back with a different request.
var ErrIdempotencyConflict = models.Conflict("Idempotency-Key", "Idempotency-Key reused with a different request")

// errIdempotencyVanished is returned in the rare case that a key's winning answer was
// purged between losing the key and reading the answer.
var errIdempotencyVanished = models.Conflict("Idempotency-Key", "a request with this key is still in progress; retry it shortly")

// StoredAnswer is the first answer to a request that carried an Idempotency-Key.
type StoredAnswer struct {
	RequestHash []byte
	Status      int
	Receipts    []Receipt
}

// replayFor answers claim's request with a: a replay of its receipts when claim is the
// same request, ErrIdempotencyConflict otherwise.
func (a *StoredAnswer) replayFor(claim *IdempotencyClaim) (WriteResult, error) {
	if string(a.RequestHash) != string(claim.RequestHash) {
		return WriteResult{}, ErrIdempotencyConflict
	}
	return WriteResult{Receipts: a.Receipts, Replayed: true}, nil
}

// IdempotencyStore keeps the answers the writer stored under Idempotency-Keys.
type IdempotencyStore struct{ db *gorm.DB }

// NewIdempotencyStore returns a store over db.
func NewIdempotencyStore(db *gorm.DB) *IdempotencyStore { return &IdempotencyStore{db: db} }

// Idempotent runs write at most once per claim and returns its result, or the first
// answer to claim's key. Without a claim it is write(nil), with no extra round trip.
// With one it reads the key's answer: the same request gets a replay of it
// (WriteResult.Replayed), a different one ErrIdempotencyConflict; a new key runs
// write(claim), whose writer stores the answer with the events. Requests with one new
// key that race each other are settled by the writer: one writes, the others wait for its
// commit and get its answer replayed. It returns a KindUnavailable error when the
// database cannot be read.
func (s *IdempotencyStore) Idempotent(ctx context.Context, org string, claim *IdempotencyClaim, write func(*IdempotencyClaim) (WriteResult, error)) (WriteResult, error) {
	if claim == nil {
		return write(nil)
	}
	prior, err := s.lookup(ctx, org, claim.scope(), claim.Key)
	if err != nil {
		return WriteResult{}, err
	}
	if prior != nil {
		return prior.replayFor(claim)
	}
	return write(claim)
}

// Lookup returns the answer stored for org's client key within IdempotencyTTL, or nil
// when there is none. It returns a KindUnavailable error when the database cannot be
// read.
func (s *IdempotencyStore) Lookup(ctx context.Context, org, key string) (*StoredAnswer, error) {
	return s.lookup(ctx, org, scopeClient, key)
}

func (s *IdempotencyStore) lookup(ctx context.Context, org, scope, key string) (*StoredAnswer, error) {
	var row struct {
		RequestHash []byte
		Status      int
		Response    []byte
	}
	err := s.db.WithContext(ctx).Raw(`SELECT request_hash, status, response FROM api_idempotency
		WHERE organization_id = ? AND scope = ? AND idempotency_key = ? AND created_at >= now() - make_interval(secs => ?)`,
		org, scope, key, IdempotencyTTL.Seconds()).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, models.Unavailable("cannot read idempotency records", err)
	}
	return decodeAnswer(key, row.RequestHash, row.Status, row.Response)
}

func decodeAnswer(key string, hash []byte, status int, response []byte) (*StoredAnswer, error) {
	var body storedAnswer
	if err := json.Unmarshal(response, &body); err != nil {
		return nil, fmt.Errorf("ingest: stored answer of %q: %w", key, err)
	}
	return &StoredAnswer{RequestHash: hash, Status: status, Receipts: body.Receipts}, nil
}

// PurgeExpired deletes answers older than IdempotencyTTL and returns how many.
func (s *IdempotencyStore) PurgeExpired(ctx context.Context) (int64, error) {
	res := s.db.WithContext(ctx).Exec(`DELETE FROM api_idempotency WHERE created_at < now() - make_interval(secs => ?)`,
		IdempotencyTTL.Seconds())
	if res.Error != nil {
		return 0, fmt.Errorf("ingest: purge idempotency records: %w", res.Error)
	}
	return res.RowsAffected, nil
}
