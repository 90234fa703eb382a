package models

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The histogram of a query without conditions (only the organization and the range) is
// read mostly from the per-hour counts detection keeps (event_counts_hourly) instead of
// counting every event of the range: at 10,000,000 events a 30-day histogram counted
// 550,000 index entries (about 340 ms); from the counts it reads about 720 rows.
//
// The counts are exact where three things hold, and the histogram uses them only there:
//   - the hour lies inside one bucket and inside the range (the hours the range's ends or
//     a bucket boundary cut are counted from the events);
//   - no event of the hour can have been archived or deleted by retention since it was
//     counted: the hour is newer than the newest event retention ever moved out of the log
//     for the organization (the newest archive's last event, the newest event deleted by
//     retention) — what retention did, not what today's policies say, so neither a run's
//     day-rounded cutoff nor a policy deleted after its run can hide a removal (erasure,
//     the other way events change, corrects the counts itself);
//   - the events detection has not counted yet (Merkle leaves at or after its cursor, and
//     the leaf queue) are added by reading those events, by id.
// Everything else is counted from the events in the tenant transaction, as before.

// MaxRollupPending is the most uncounted events the rollup histogram reads by id; with
// more (detection far behind) the histogram counts the events of the range instead.
const MaxRollupPending = 20_000

// interval is a part of the range counted from the events, inside one bucket.
type interval struct {
	from, to time.Time
	bucket   int
}

// rollupPlan is how histogramFromRollups splits the range.
type rollupPlan struct {
	hours map[time.Time]int // hour → bucket, for the hours read from the counts
	live  []interval
}

// planRollup splits [from, to) into whole hours inside [safeFrom, to) that fall in one bucket
// (read from the counts) and intervals counted from the events, each inside one bucket.
func planRollup(from, to, safeFrom time.Time, width time.Duration) rollupPlan {
	p := rollupPlan{hours: map[time.Time]int{}}
	bucket := func(t time.Time) int { return int(t.Sub(from) / width) }
	// addLive adds [a, b) split at bucket boundaries.
	addLive := func(a, b time.Time) {
		for a.Before(b) {
			i := bucket(a)
			end := from.Add(time.Duration(i+1) * width)
			if end.After(b) {
				end = b
			}
			if n := len(p.live); n > 0 && p.live[n-1].to.Equal(a) && p.live[n-1].bucket == i {
				p.live[n-1].to = end
			} else {
				p.live = append(p.live, interval{a, end, i})
			}
			a = end
		}
	}
	first := from.Truncate(time.Hour)
	if first.Before(from) {
		first = first.Add(time.Hour)
	}
	if safeFrom.After(first) {
		first = safeFrom.Truncate(time.Hour)
		if first.Before(safeFrom) {
			first = first.Add(time.Hour)
		}
	}
	at := from
	for h := first; !h.Add(time.Hour).After(to); h = h.Add(time.Hour) {
		if bucket(h) != bucket(h.Add(time.Hour-time.Nanosecond)) {
			continue // cut by a bucket boundary: counted from the events
		}
		addLive(at, h)
		p.hours[h] = bucket(h)
		at = h.Add(time.Hour)
	}
	addLive(at, to)
	return p
}

// rollupState is what histogramFromRollups reads as the database owner (the counts, the
// Merkle leaves and the removal records are not the tenant role's to read; every part names
// the organization): the uncounted events' ids (at most MaxRollupPending+1 of them) and the
// timestamp of the newest event retention moved out of the log (NULL when it never did).
const rollupStateSQL = `WITH pending AS MATERIALIZED (
		SELECT l.audit_log_id AS id FROM audit_leaf l
		WHERE l.organization_id = $1
			AND l.leaf_index >= coalesce((SELECT leaf_index FROM detection_cursor WHERE organization_id = $1), 0)
		UNION ALL
		SELECT q.id FROM audit_leaf_queue, unnest(audit_log_ids) AS q(id) WHERE organization_id = $1
		LIMIT $2)
	SELECT array(SELECT id FROM pending),
		greatest((SELECT max(last_event_at) FROM archive_storage WHERE organization_id = $1),
			(SELECT max(event_timestamp) FROM removed_events WHERE organization_id = $1 AND reason = 'retention'))`

// histogramFromRollups fills out (buckets of width from f.From) for an unconditioned f from
// the hourly counts and the events they do not cover. ok is false when it cannot (too many
// uncounted events); the caller then counts the events.
func (s *EventStore) histogramFromRollups(ctx context.Context, org string, f EventFilter, width time.Duration, now time.Time,
	out []HistogramBucket) (bool, error) {
	var pending []int64
	var thinned *time.Time
	var counts []struct {
		hour time.Time
		n    int64
	}
	from, to := f.From.UTC(), f.To.UTC()
	var plan rollupPlan
	// The counts and the uncounted events are read in one snapshot, so that an event that
	// detection counts meanwhile is in exactly one of them.
	err := WithPgx(ctx, s.db, func(conn *pgx.Conn) error {
		tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		if err := tx.QueryRow(ctx, rollupStateSQL, org, MaxRollupPending+1).Scan(&pending, &thinned); err != nil {
			return err
		}
		if len(pending) > MaxRollupPending {
			return nil
		}
		// Only the hours after the one of the newest event retention removed are whole.
		safeFrom := from
		if thinned != nil {
			safeFrom = thinned.UTC().Truncate(time.Hour).Add(time.Hour)
		}
		plan = planRollup(from, to, safeFrom, width)
		rows, err := tx.Query(ctx, `SELECT hour, events FROM event_counts_hourly
			WHERE organization_id = $1 AND hour >= $2 AND hour < $3`, org, from, to)
		if err != nil {
			return err
		}
		var h time.Time
		var n int64
		_, err = pgx.ForEachRow(rows, []any{&h, &n}, func() error {
			counts = append(counts, struct {
				hour time.Time
				n    int64
			}{h.UTC(), n})
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		return false, fmt.Errorf("models: event histogram counts: %w", err)
	}
	if len(pending) > MaxRollupPending {
		return false, nil
	}
	for _, c := range counts {
		if b, ok := plan.hours[c.hour]; ok && b >= 0 && b < len(out) {
			out[b].Count += c.n
		}
	}
	// The intervals the counts do not cover, and the uncounted events inside hours they do
	// cover, from the events themselves under row-level security.
	starts, ends, buckets := make([]time.Time, len(plan.live)), make([]time.Time, len(plan.live)), make([]int32, len(plan.live))
	for i, iv := range plan.live {
		starts[i], ends[i], buckets[i] = iv.from, iv.to, int32(iv.bucket)
	}
	err = queryInTenant(ctx, s.db, org, histogramLiveSQL, []any{org, starts, ends, buckets, pending, from, to},
		func(r pgx.Rows) error {
			var kind string
			var b int
			var ts time.Time
			var n int64
			_, err := pgx.ForEachRow(r, []any{&kind, &b, &ts, &n}, func() error {
				switch kind {
				case "live":
					if b >= 0 && b < len(out) {
						out[b].Count += n
					}
				case "pending":
					if hb, ok := plan.hours[ts.UTC().Truncate(time.Hour)]; ok && hb >= 0 && hb < len(out) {
						out[hb].Count += n
					}
				}
				return nil
			})
			return err
		})
	if err != nil {
		return false, fmt.Errorf("models: event histogram: %w", err)
	}
	return true, nil
}

// histogramLiveSQL counts org's events in each interval ($2, $3, bucket $4), each through
// the (organization_id, timestamp) index, and returns the timestamps of the uncounted events
// ($5) of the range [$6, $7).
const histogramLiveSQL = `SELECT 'live', r.b, $6::timestamptz, c.n FROM unnest($2::timestamptz[], $3::timestamptz[], $4::int[]) AS r(a, z, b)
	CROSS JOIN LATERAL (SELECT count(*) AS n FROM audit_log
		WHERE organization_id = $1 AND "timestamp" >= r.a AND "timestamp" < r.z) c
	WHERE c.n > 0
	UNION ALL
	SELECT 'pending', 0, "timestamp", 1 FROM audit_log
	WHERE organization_id = $1 AND id = ANY($5::bigint[]) AND "timestamp" >= $6 AND "timestamp" < $7`

// unconditioned reports whether f selects every event of the organization in its range.
func (f EventFilter) unconditioned() bool {
	return f.Action == "" && f.Status == "" && f.PrincipalID == "" && f.ResourceType == "" && f.ResourceID == "" &&
		f.Classification == "" && f.CorrelationID == "" && f.Query.IsZero() && !f.ExcludeRestricted
}
