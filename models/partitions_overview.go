package models

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Self-audit actions of the partitions page.
const (
	ActionPartitionsEnsure = "retention.partitions.ensure"
	ActionPartitionsDrop   = "retention.partitions.drop"
)

// The states of a partition on the partitions page.
const (
	PartitionFuture  = "future"  // its month has not begun
	PartitionCurrent = "current" // it holds now
	PartitionPast    = "past"    // its month is over and it holds rows
	PartitionEmpty   = "empty"   // its month is over and it holds no row
)

// PartitionInfo is a partition as the partitions page shows it.
type PartitionInfo struct {
	Partition
	TableBytes int64
	IndexBytes int64
	State      string
}

// PartitionConsole is the superadmin's view of the partitions: their state and sizes, and
// the ensure and drop-expired actions with a dry run and a typed confirmation, self-audited.
type PartitionConsole struct {
	db    *gorm.DB
	parts *PartitionManager
	trail *AuditTrail
}

// NewPartitionConsole returns the console over db and parts; actions are self-audited
// through trail.
func NewPartitionConsole(db *gorm.DB, parts *PartitionManager, trail *AuditTrail) *PartitionConsole {
	return &PartitionConsole{db: db, parts: parts, trail: trail}
}

// Overview returns every partition of audit_log and error_log with its sizes and its state
// at now. Rows are the planner's estimate (pg_class.reltuples); whether a past partition is
// empty is checked exactly.
func (c *PartitionConsole) Overview(ctx context.Context, now time.Time) ([]PartitionInfo, error) {
	all, err := c.parts.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PartitionInfo, len(all))
	for i, p := range all {
		info := PartitionInfo{Partition: p}
		var sizes struct{ Table, Index int64 }
		if err := c.db.WithContext(ctx).Raw(`SELECT pg_table_size(to_regclass(?)) AS "table", pg_indexes_size(to_regclass(?)) AS "index"`,
			"public."+p.Name, "public."+p.Name).Scan(&sizes).Error; err != nil {
			return nil, fmt.Errorf("models: size of partition %s: %w", p.Name, err)
		}
		info.TableBytes, info.IndexBytes = sizes.Table, sizes.Index
		switch {
		case !now.Before(p.From) && now.Before(p.To):
			info.State = PartitionCurrent
		case now.Before(p.From):
			info.State = PartitionFuture
		default:
			var any bool
			if !partitionName.MatchString(p.Name) {
				return nil, fmt.Errorf("models: refusing partition name %q", p.Name)
			}
			if err := c.db.WithContext(ctx).Raw(`SELECT EXISTS (SELECT 1 FROM ` + p.Name + `)`).Scan(&any).Error; err != nil {
				return nil, fmt.Errorf("models: look into partition %s: %w", p.Name, err)
			}
			info.State = PartitionPast
			if !any {
				info.State = PartitionEmpty
			}
		}
		out[i] = info
	}
	return out, nil
}

// EnsurePreview returns the partitions Ensure would create at now: the missing ones from
// now's month through MonthsAhead months later.
func (c *PartitionConsole) EnsurePreview(ctx context.Context, now time.Time) ([]string, error) {
	all, err := c.parts.List(ctx)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, p := range all {
		have[p.Name] = true
	}
	var missing []string
	start := MonthStart(now)
	for _, table := range PartitionedTables {
		for i := 0; i <= MonthsAhead; i++ {
			if name := PartitionName(table, start.AddDate(0, i, 0)); !have[name] {
				missing = append(missing, name)
			}
		}
	}
	return missing, nil
}

// DropPreview returns the partitions DropExpired would drop at now.
func (c *PartitionConsole) DropPreview(ctx context.Context, now time.Time) ([]Partition, error) {
	return c.parts.DropExpired(ctx, now, true)
}

// checkConfirm refuses unless confirm is the number of partitions concerned, typed.
func checkConfirm(confirm string, n int, what string) error {
	if strings.TrimSpace(confirm) != strconv.Itoa(n) {
		return Invalid("confirm", fmt.Sprintf("type %d, the number of partitions to %s, to confirm", n, what))
	}
	return nil
}

// Ensure creates the missing partitions, once confirm is their number as the dry run
// counts it at now, and records it in org's audit log. Nothing missing is a KindConflict.
func (c *PartitionConsole) Ensure(ctx context.Context, org string, now time.Time, confirm string, by Actor) ([]string, error) {
	if !by.unrestricted() {
		return nil, Forbidden("only a superadmin may manage partitions")
	}
	missing, err := c.EnsurePreview(ctx, now)
	if err != nil {
		return nil, err
	}
	if len(missing) == 0 {
		return nil, Conflict("confirm", "every partition from this month through six months ahead exists; nothing to create")
	}
	if err := checkConfirm(confirm, len(missing), "create"); err != nil {
		return nil, err
	}
	// The catalog is the truth: forget what the manager remembers of the missing ones
	// (dropped by hand, for instance), so Ensure creates them.
	for _, name := range missing {
		if m := partitionName.FindStringSubmatch(name); m != nil {
			c.parts.known.Delete(m[1] + "/" + m[2] + "-" + m[3])
		}
	}
	created, err := c.parts.Ensure(ctx, now)
	if err != nil {
		return created, err
	}
	return created, c.trail.Record(ctx, AuditEntry{Org: org, Action: ActionPartitionsEnsure, Actor: by, TargetType: "partitions",
		TargetID: "ensure", Outcome: fmt.Sprintf("%d partitions created", len(created)),
		Details: map[string]any{"created": created}})
}

// DropExpired drops the partitions entirely past retention, once confirm is their number
// as the dry run counts it at now, and records it in org's audit log. Nothing expired is a
// KindConflict.
func (c *PartitionConsole) DropExpired(ctx context.Context, org string, now time.Time, confirm string, by Actor) ([]Partition, error) {
	if !by.unrestricted() {
		return nil, Forbidden("only a superadmin may manage partitions")
	}
	expired, err := c.DropPreview(ctx, now)
	if err != nil {
		return nil, err
	}
	if len(expired) == 0 {
		return nil, Conflict("confirm", "no partition is entirely past retention; nothing to drop")
	}
	if err := checkConfirm(confirm, len(expired), "drop"); err != nil {
		return nil, err
	}
	dropped, err := c.parts.DropExpired(ctx, now, false)
	names := make([]string, len(dropped))
	for i, p := range dropped {
		names[i] = p.Name
	}
	if err != nil {
		return dropped, err
	}
	slices.Sort(names)
	return dropped, c.trail.Record(ctx, AuditEntry{Org: org, Action: ActionPartitionsDrop, Actor: by, TargetType: "partitions",
		TargetID: "drop-expired", Outcome: fmt.Sprintf("%d expired partitions dropped", len(dropped)),
		Details: map[string]any{"dropped": names}})
}
