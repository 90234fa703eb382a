package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"auditdb/models"
)

// StoredAnswer is the first answer to a request that carried an Idempotency-Key.
type StoredAnswer struct {
	RequestHash []byte
	Status      int
	Receipts    []Receipt
}

// IdempotencyStore reads the answers the writer stored under Idempotency-Keys.
type IdempotencyStore struct{ db *gorm.DB }

// NewIdempotencyStore returns a store over db.
func NewIdempotencyStore(db *gorm.DB) *IdempotencyStore { return &IdempotencyStore{db: db} }

// Lookup returns the answer stored for org's key within IdempotencyTTL, or nil when there
// is none. It returns a KindUnavailable error when the database cannot be read.
func (s *IdempotencyStore) Lookup(ctx context.Context, org, key string) (*StoredAnswer, error) {
	var row struct {
		RequestHash []byte
		Status      int
		Response    []byte
	}
	err := s.db.WithContext(ctx).Raw(`SELECT request_hash, status, response FROM api_idempotency
		WHERE organization_id = ? AND idempotency_key = ? AND created_at >= now() - make_interval(secs => ?)`,
		org, key, IdempotencyTTL.Seconds()).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, models.Unavailable("cannot read idempotency records", err)
	}
	var body storedAnswer
	if err := json.Unmarshal(row.Response, &body); err != nil {
		return nil, fmt.Errorf("ingest: stored answer of %q: %w", key, err)
	}
	ans := &StoredAnswer{RequestHash: row.RequestHash, Status: row.Status, Receipts: body.Receipts}
	return ans, nil
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
