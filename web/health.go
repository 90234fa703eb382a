package web

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/querycache"
)

// basicHealth is the performance page's health panel until the full health report is
// wired: the database (SELECT 1; critical when down), Redis (degraded when down: the
// console runs without it) and the query cache (warning when its hit ratio is 50 % or
// less over at least ClearMinReads reads); the worst state wins.
type basicHealth struct {
	db    *gorm.DB
	rdb   *redis.Client
	cache *querycache.Cache
}

// Health reports each component's state.
func (h basicHealth) Health(ctx context.Context) models.HealthReport {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var r models.HealthReport
	if err := models.Pinger(h.db)(ctx); err != nil {
		r.Components = append(r.Components, models.HealthComponent{Name: "database", State: models.HealthCritical, Detail: "SELECT 1 failed"})
	} else {
		r.Components = append(r.Components, models.HealthComponent{Name: "database", State: models.HealthOK, Detail: "answers"})
	}
	switch {
	case h.rdb == nil:
		r.Components = append(r.Components, models.HealthComponent{Name: "redis", State: models.HealthDegraded, Detail: "not configured: caches run in process"})
	case h.rdb.Ping(ctx).Err() != nil:
		r.Components = append(r.Components, models.HealthComponent{Name: "redis", State: models.HealthDegraded, Detail: "unreachable: caches run in process"})
	default:
		r.Components = append(r.Components, models.HealthComponent{Name: "redis", State: models.HealthOK, Detail: "answers"})
	}
	if h.cache != nil && h.cache.Enabled() {
		st := h.cache.Stats()
		c := models.HealthComponent{Name: "cache", State: models.HealthOK,
			Detail: fmt.Sprintf("hit ratio %.1f %% over %d reads", st.HitRatio()*100, st.Hits+st.Misses)}
		if st.Hits+st.Misses >= models.ClearMinReads && st.HitRatio() <= 0.5 {
			c.State = models.HealthWarning
		}
		r.Components = append(r.Components, c)
	}
	r.Worst()
	return r
}
