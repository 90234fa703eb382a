package models

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// PartitionedTables are the tables split into monthly partitions named <table>_YYYY_MM.
var PartitionedTables = []string{"audit_log", "error_log"}

// MonthsAhead is how many months past the current one are kept created.
const MonthsAhead = 6

var partitionName = regexp.MustCompile(`^(audit_log|error_log)_(\d{4})_(\d{2})$`)

// Partition describes one monthly partition.
type Partition struct {
	Table string    // parent table
	Name  string    // partition table name
	From  time.Time // inclusive lower bound, UTC
	To    time.Time // exclusive upper bound, UTC
	Rows  int64     // planner estimate (reltuples), -1 when never analyzed
	Bytes int64     // total relation size including indexes
}

// PartitionManager creates, lists and drops the monthly partitions. DDL cannot take bind
// parameters, so every identifier is checked against a fixed pattern and every bound is a
// UTC month start formatted here.
type PartitionManager struct {
	db    *gorm.DB
	known sync.Map // "table/YYYY-MM" → struct{}: partitions known to exist
}

// NewPartitionManager returns a manager over db.
func NewPartitionManager(db *gorm.DB) *PartitionManager { return &PartitionManager{db: db} }

// MonthStart returns the first instant of t's month in UTC.
func MonthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// PartitionName returns the partition of table that holds month m.
func PartitionName(table string, m time.Time) string {
	m = m.UTC()
	return fmt.Sprintf("%s_%04d_%02d", table, m.Year(), int(m.Month()))
}

// Ensure creates, for every partitioned table, the partitions from now's month through
// MonthsAhead months later. It returns the names it created.
func (p *PartitionManager) Ensure(ctx context.Context, now time.Time) ([]string, error) {
	var created []string
	start := MonthStart(now)
	for _, table := range PartitionedTables {
		for i := 0; i <= MonthsAhead; i++ {
			ok, err := p.ensureMonth(ctx, table, start.AddDate(0, i, 0))
			if err != nil {
				return created, err
			}
			if ok {
				created = append(created, PartitionName(table, start.AddDate(0, i, 0)))
			}
		}
	}
	return created, nil
}

// EnsureFor makes sure table has a partition for the month of every given time, creating
// the missing ones (backfills of old events land in partitions made on demand).
func (p *PartitionManager) EnsureFor(ctx context.Context, table string, times ...time.Time) error {
	seen := map[time.Time]bool{}
	for _, t := range times {
		m := MonthStart(t)
		if seen[m] {
			continue
		}
		seen[m] = true
		if _, err := p.ensureMonth(ctx, table, m); err != nil {
			return err
		}
	}
	return nil
}

// Forget drops what this instance remembers of table's partitions, so that the next
// EnsureFor looks them up again: another process (a retention run, another instance) may
// have dropped one.
func (p *PartitionManager) Forget(table string) {
	p.known.Range(func(k, _ any) bool {
		if key, ok := k.(string); ok && strings.HasPrefix(key, table+"/") {
			p.known.Delete(k)
		}
		return true
	})
}

// MissingPartition reports whether err is PostgreSQL refusing a row for which the
// partitioned table has no partition (23514, "no partition of relation … found for row").
func MissingPartition(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && strings.HasPrefix(pgErr.Message, "no partition of relation")
}

// ensureMonth creates the partition of table for month m unless it exists; it reports
// whether it created it.
func (p *PartitionManager) ensureMonth(ctx context.Context, table string, m time.Time) (bool, error) {
	key := table + "/" + m.Format("2006-01")
	if _, ok := p.known.Load(key); ok {
		return false, nil
	}
	name := PartitionName(table, m)
	if !partitionName.MatchString(name) {
		return false, fmt.Errorf("models: refusing partition name %q", name)
	}
	var exists bool
	if err := p.db.WithContext(ctx).Raw("SELECT to_regclass(?) IS NOT NULL", "public."+name).Scan(&exists).Error; err != nil {
		return false, fmt.Errorf("models: look up partition %s: %w", name, err)
	}
	if exists {
		p.known.Store(key, struct{}{})
		return false, nil
	}
	ddl := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')`,
		name, table, m.Format(time.RFC3339), m.AddDate(0, 1, 0).Format(time.RFC3339))
	err := p.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(ddl).Error; err != nil {
			return err
		}
		if table != "audit_log" {
			return nil
		}
		// The statement triggers of audit_log do not reach its partitions: the one refusing
		// TRUNCATE (migration 20261130_0047), those clearing detection's feed on a GDPR
		// change (20261130_0058) and the one dropping the search sketches of rewritten text
		// (20261130_0059). Each partition gets its own, created with it.
		if err := tx.Exec(`CREATE OR REPLACE TRIGGER audit_log_partition_no_truncate BEFORE TRUNCATE ON ` + name + `
			FOR EACH STATEMENT WHEN (coalesce(current_setting('auditdb.purpose', true), '') <> 'retention')
			EXECUTE FUNCTION auditdb_refuse_partition_truncate()`).Error; err != nil {
			return err
		}
		return tx.Exec(`SELECT auditdb_detection_feed_guard(?::regclass), auditdb_search_sketch_guard(?::regclass)`,
			name, name).Error
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P07" || pgErr.Code == "23505") {
		err = nil // another instance created it at the same moment
	}
	if err != nil {
		return false, fmt.Errorf("models: create partition %s: %w", name, err)
	}
	p.known.Store(key, struct{}{})
	return true, nil
}

// List returns every partition of the partitioned tables, oldest first per table, with a
// row estimate and size.
func (p *PartitionManager) List(ctx context.Context) ([]Partition, error) {
	type row struct {
		Parent string
		Name   string
		Rows   float64
		Bytes  int64
	}
	var rows []row
	err := p.db.WithContext(ctx).Raw(`
		SELECT parent.relname AS parent, child.relname AS name,
		       child.reltuples AS rows, pg_total_relation_size(child.oid) AS bytes
		FROM pg_inherits i
		JOIN pg_class parent ON parent.oid = i.inhparent
		JOIN pg_class child ON child.oid = i.inhrelid
		JOIN pg_namespace n ON n.oid = child.relnamespace AND n.nspname = 'public'
		WHERE parent.relname IN ?`, PartitionedTables).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: list partitions: %w", err)
	}
	var out []Partition
	for _, r := range rows {
		m := partitionName.FindStringSubmatch(r.Name)
		if m == nil {
			continue // not one of ours; never touched
		}
		from, err := time.Parse("2006-01", m[2]+"-"+m[3])
		if err != nil {
			continue
		}
		out = append(out, Partition{Table: r.Parent, Name: r.Name, From: from, To: from.AddDate(0, 1, 0),
			Rows: int64(r.Rows), Bytes: r.Bytes})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Table != out[j].Table {
			return out[i].Table < out[j].Table
		}
		return out[i].From.Before(out[j].From)
	})
	return out, nil
}

// RetentionCutoff returns the instant before which no active retention policy keeps data:
// now minus the longest active deletion day (delete_after_days, else retention_days) of any
// policy, global or an organization's own. It returns a KindConflict error when no policy is
// active, since then nothing may be dropped.
func (p *PartitionManager) RetentionCutoff(ctx context.Context, now time.Time) (time.Time, error) {
	var days *int
	err := p.db.WithContext(ctx).Raw(`SELECT max(coalesce(delete_after_days, retention_days)) FROM audit_retention_policy WHERE is_active`).Scan(&days).Error
	if err != nil {
		return time.Time{}, fmt.Errorf("models: read retention policies: %w", err)
	}
	if days == nil {
		return time.Time{}, Conflict("retention", "no active retention policy; refusing to drop partitions")
	}
	return now.UTC().AddDate(0, 0, -*days), nil
}

// DropExpired drops every partition whose whole range ends before the retention cutoff and
// returns them; with dryRun it only returns what would go. An audit_log partition holding
// an event under an active legal hold is kept.
func (p *PartitionManager) DropExpired(ctx context.Context, now time.Time, dryRun bool) ([]Partition, error) {
	cutoff, err := p.RetentionCutoff(ctx, now)
	if err != nil {
		return nil, err
	}
	all, err := p.List(ctx)
	if err != nil {
		return nil, err
	}
	var expired []Partition
	for _, part := range all {
		if part.To.After(cutoff) {
			continue
		}
		if !partitionName.MatchString(part.Name) {
			return expired, fmt.Errorf("models: refusing partition name %q", part.Name)
		}
		if part.Table == "audit_log" {
			held, err := p.holdsEvents(ctx, part.Name)
			if err != nil {
				return expired, err
			}
			if held {
				continue
			}
		}
		expired = append(expired, part)
		if dryRun {
			continue
		}
		if !partitionName.MatchString(part.Name) {
			return expired, fmt.Errorf("models: refusing to drop %q", part.Name)
		}
		// Dropping a table fires no row trigger: the events it held leave every cached
		// answer (dashboard figures, report previews) through a bump of every
		// organization's cache version, in the same transaction.
		err := p.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("DROP TABLE IF EXISTS " + part.Name).Error; err != nil {
				return err
			}
			if part.Table == "audit_log" {
				return BumpAllCacheVersions(tx)
			}
			return nil
		})
		if err != nil {
			return expired, fmt.Errorf("models: drop partition %s: %w", part.Name, err)
		}
		p.known.Delete(part.Table + "/" + part.From.Format("2006-01"))
	}
	return expired, nil
}

// BumpAllCacheVersions retires every organization's cached answers (every organization,
// and any other id an answer was kept for; see
// models/querycache), announcing each new version as the version triggers do: for writes
// no row trigger sees, such as dropping a partition of audit_log.
func BumpAllCacheVersions(tx *gorm.DB) error {
	err := tx.Exec(`WITH bumped AS (
			INSERT INTO query_cache_versions AS v (organization_id, version)
			SELECT id, 1 FROM (SELECT id FROM organizations UNION SELECT organization_id FROM query_cache_versions) o ORDER BY id
			ON CONFLICT (organization_id) DO UPDATE SET version = v.version + 1
			RETURNING v.organization_id, v.version)
		SELECT count(pg_notify('auditdb_cache', organization_id || ':' || version)) FROM bumped`).Error
	if err != nil {
		return fmt.Errorf("models: bump cache versions: %w", err)
	}
	return nil
}

// BumpCacheVersion retires org's cached answers on every instance, as the cache version
// triggers do: it raises the organization's version (at the commit of q's transaction, when
// q is one) and announces it on auditdb_cache.
func BumpCacheVersion(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, org string) error {
	_, err := q.Exec(ctx, `WITH bumped AS (
			INSERT INTO query_cache_versions AS v (organization_id, version) VALUES ($1, 1)
			ON CONFLICT (organization_id) DO UPDATE SET version = v.version + 1
			RETURNING v.organization_id, v.version)
		SELECT count(pg_notify('auditdb_cache', organization_id || ':' || version)) FROM bumped`, org)
	return err
}

// DropIfEmpty drops table's partition of month m when it holds no row, checked under an
// exclusive lock so that no row arrives in between. It returns the dropped partition's name,
// or "" when the partition does not exist or still holds rows.
func (p *PartitionManager) DropIfEmpty(ctx context.Context, table string, m time.Time) (string, error) {
	name := PartitionName(table, MonthStart(m))
	if !partitionName.MatchString(name) {
		return "", fmt.Errorf("models: refusing to drop %q", name)
	}
	dropped := false
	err := p.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var exists bool
		if err := tx.Raw(`SELECT to_regclass(?) IS NOT NULL`, "public."+name).Scan(&exists).Error; err != nil || !exists {
			return err
		}
		if err := tx.Exec(`LOCK TABLE ` + name + ` IN ACCESS EXCLUSIVE MODE`).Error; err != nil {
			return err
		}
		var any bool
		if err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM ` + name + `)`).Scan(&any).Error; err != nil || any {
			return err
		}
		dropped = true
		return tx.Exec(`DROP TABLE ` + name).Error
	})
	if err != nil {
		return "", fmt.Errorf("models: drop empty partition %s: %w", name, err)
	}
	if !dropped {
		return "", nil
	}
	p.known.Delete(table + "/" + MonthStart(m).Format("2006-01"))
	return name, nil
}

// holdsEvents reports whether partition name (of audit_log, already checked against the
// partition pattern) holds an event under an active legal hold of its organization.
func (p *PartitionManager) holdsEvents(ctx context.Context, name string) (bool, error) {
	match, args := holdMatches("lh", "e")
	var held bool
	err := p.db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM `+name+` e JOIN legal_holds lh
		ON lh.organization_id = e.organization_id AND lh.released_at IS NULL AND `+match+`)`, args...).Scan(&held).Error
	if err != nil {
		return false, fmt.Errorf("models: look for held events in %s: %w", name, err)
	}
	return held, nil
}
