package querycache

import (
	"context"
	"strconv"
	"time"

	"auditdb/models"
)

// DashboardSource reads an organization's dashboard figures (models.DashboardStore).
type DashboardSource interface {
	Overview(ctx context.Context, org string, now time.Time) (*models.DashboardOverview, error)
}

// DashboardSlot is how long one cached dashboard answer serves: the figures depend on the
// clock (the current hour, the last five minutes' ingest) as well as on the writes that
// bump the version, so an answer is kept for the clock's current 10-second slot at most.
const DashboardSlot = 10 * time.Second

// Dashboard answers the dashboard's figures through the cache.
type Dashboard struct {
	Source DashboardSource
	Cache  *Cache
}

// Overview returns org's figures at now, from the cache when an answer of the same
// 10-second slot and cache version is kept; errors are the source's. An answer saying the
// organization never recorded an event is not kept: that one is read from audit_log, whose
// writes (ingest) do not bump the version, so the first event shows at once.
func (d Dashboard) Overview(ctx context.Context, org string, now time.Time) (*models.DashboardOverview, error) {
	slot := now.UTC().Truncate(DashboardSlot).Unix()
	return GetIf(ctx, d.Cache, org, "dashboard:"+strconv.FormatInt(slot, 10), func(ctx context.Context) (*models.DashboardOverview, error) {
		return d.Source.Overview(ctx, org, now)
	}, func(o *models.DashboardOverview) bool { return o != nil && !o.Empty() })
}
