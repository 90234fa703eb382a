package reports

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"auditdb/models/querycache"
)

// Builder builds a report's figures (its preview: summary, days, tables and integrity
// summary; the CSV streams the rows themselves). Generator builds them from the database,
// Cached through the query cache.
type Builder interface {
	Build(ctx context.Context, org string, c Criteria, now time.Time) (*Report, error)
}

// Cached builds report previews through the query cache: an answer is kept under the
// organization, its cache version and the criteria, so any write that changes a report's
// figures retires it (the version triggers cover every table a report reads, see the
// report_cache_versions migration). Ingest is the exception: its INSERT does not bump the
// version (that would cost every batch); its events wait in the Merkle leaf queue until the
// sequencer moves them to audit_leaf, which bumps. So while an event of the report's period
// waits in the queue, the preview is built from the database and not kept.
type Cached struct {
	Gen   Builder
	DB    *gorm.DB
	Cache *querycache.Cache
}

// Build returns org's report for c: kept, or built and kept when no event of the period
// waits for the sequencer. GeneratedAt is now either way (the figures are those of now:
// nothing they depend on has changed since they were read). Errors are the generator's
// or the database's.
func (k Cached) Build(ctx context.Context, org string, c Criteria, now time.Time) (*Report, error) {
	if !k.Cache.Enabled() {
		return k.Gen.Build(ctx, org, c, now)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var waiting bool
	if err := k.DB.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM audit_leaf_queue q, unnest(q.event_timestamps) ts
		WHERE q.organization_id = ? AND ts >= ? AND ts < ?)`, org, c.From.UTC(), c.To.UTC()).Scan(&waiting).Error; err != nil {
		return nil, fmt.Errorf("reports: leaf queue: %w", err)
	}
	if waiting {
		return k.Gen.Build(ctx, org, c, now)
	}
	name, err := previewKey(c)
	if err != nil {
		return k.Gen.Build(ctx, org, c, now)
	}
	r, err := querycache.Get(ctx, k.Cache, org, name, func(ctx context.Context) (*Report, error) {
		return k.Gen.Build(ctx, org, c, now)
	})
	if err != nil {
		return nil, err
	}
	r.criteria = c
	r.GeneratedAt = now.UTC().Truncate(time.Second)
	return r, nil
}

// previewKey names a report preview in the cache: "report:" and the SHA-256 of the
// criteria (every field, times in UTC), so two criteria share an answer only when equal.
func previewKey(c Criteria) (string, error) {
	c.From, c.To = c.From.UTC(), c.To.UTC()
	body, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(body)
	return "report:" + hex.EncodeToString(sum[:]), nil
}
