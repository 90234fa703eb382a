// Package migrations holds auditdb's schema history as an append-only gormigrate list.
//
// Each migration carries its own SQL (embedded from sql/) or copies the structs it needs;
// nothing here imports the models package, so old migrations never change meaning when the
// models do. Migrations run under a PostgreSQL advisory lock so several instances may start
// at once.
package migrations

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

//go:embed sql/*.sql
var sqlFiles embed.FS

// advisoryLockKey is the pg_advisory_lock key that serializes migrations across instances.
const advisoryLockKey = 72_000_001

// list is the ordered migration history. Append only: never edit or reorder a released entry.
func list() []*gormigrate.Migration {
	return []*gormigrate.Migration{
		sqlMigration("20261126_0001_schema"),
		sqlMigration("20261126_0002_ingest"),
		sqlMigration("20261126_0003_access"),
		sqlMigration("20261126_0004_ingest_tenant"),
		sqlMigration("20261127_0005_session_signals"),
		sqlMigration("20261127_0006_leaf_queue_per_write"),
		sqlMigration("20261129_0007_invitations"),
		sqlMigration("20261129_0008_change_signals"),
		sqlMigration("20261129_0009_login_attempts"),
		sqlMigration("20261129_0010_idempotency_scope"),
		sqlMigration("20261129_0011_alert_fields"),
		sqlMigration("20261129_0012_alerts_core"),
		sqlMigration("20261129_0013_detection"),
		sqlMigration("20261129_0014_notifications"),
		sqlMigration("20261129_0015_error_log"),
		sqlMigration("20261129_0016_dashboard"),
		sqlMigration("20261129_0017_retention"),
		sqlMigration("20261129_0018_invitations_by_email"),
		sqlMigration("20261129_0019_retention_policies"),
		sqlMigration("20261130_0020_detection_hit_runs"),
		sqlMigration("20261130_0024_report_runs"),
		sqlMigration("20261130_0028_user_time_zone"),
		sqlMigration("20261130_0030_event_search"),
		sqlMigration("20261130_0032_leaf_queue_time"),
		sqlMigration("20261130_0034_query_cache_versions"),
		sqlMigration("20261130_0035_perf_snapshots"),
		sqlMigration("20261130_0036_field_commitments"),
		sqlMigration("20261130_0037_gdpr_requests"),
		sqlMigration("20261130_0038_erasure"),
		sqlMigration("20261130_0039_immutable_when"),
		sqlMigration("20261130_0041_saved_views_actor_index"),
		sqlMigration("20261130_0042_report_cache_versions"),
		sqlMigration("20261130_0043_detection_hot_updates"),
		sqlMigration("20261130_0045_archived_events_no_fk"),
		sqlMigration("20261130_0046_erasure_mentions"),
		sqlMigration("20261130_0047_partition_truncate_guard"),
		sqlMigration("20261130_0049_exact_action_index"),
		sqlMigration("20261130_0050_removed_events_time_index"),
		sqlMigration("20261130_0051_archive_records_guard"),
		sqlMigration("20261130_0052_jsonb_regexp_replace"),
		sqlMigration("20261130_0054_search_sketches"),
		sqlMigration("20261130_0055_archived_events_by_id_range"),
		sqlMigration("20261130_0056_retention_bumps_after_commit"),
		sqlMigration("20261130_0057_archived_events_statistics"),
		sqlMigration("20261130_0058_detection_feed"),
		sqlMigration("20261130_0059_search_sketch_partition_guard"),
		sqlMigration("20261130_0060_detection_runs"),
	}
}

// sqlMigration builds a migration from sql/<id>.up.sql and sql/<id>.down.sql.
func sqlMigration(id string) *gormigrate.Migration {
	return &gormigrate.Migration{
		ID: id,
		Migrate: func(tx *gorm.DB) error {
			return execFile(tx, id+".up.sql")
		},
		Rollback: func(tx *gorm.DB) error {
			return execFile(tx, id+".down.sql")
		},
	}
}

func execFile(tx *gorm.DB, name string) error {
	body, err := sqlFiles.ReadFile("sql/" + name)
	if err != nil {
		return fmt.Errorf("migrations: read %s: %w", name, err)
	}
	if err := tx.Exec(string(body)).Error; err != nil {
		return fmt.Errorf("migrations: %s: %w", name, err)
	}
	return nil
}

func options() *gormigrate.Options {
	o := *gormigrate.DefaultOptions
	o.TableName = "schema_migrations"
	o.UseTransaction = true
	return &o
}

// Up applies every pending migration. It returns an error naming the failed migration;
// a failed migration is rolled back as a whole.
func Up(ctx context.Context, db *gorm.DB) error {
	return locked(ctx, db, func(conn *gorm.DB) error {
		return gormigrate.New(conn, options(), list()).Migrate()
	})
}

// Down rolls back the most recently applied migration. It returns an error when there is
// nothing to roll back or the rollback fails.
func Down(ctx context.Context, db *gorm.DB) error {
	return locked(ctx, db, func(conn *gorm.DB) error {
		return gormigrate.New(conn, options(), list()).RollbackLast()
	})
}

// Latest returns the id of the newest migration this binary knows.
func Latest() string {
	l := list()
	return l[len(l)-1].ID
}

// locked runs fn on one pooled connection that holds the migration advisory lock.
func locked(ctx context.Context, db *gorm.DB, fn func(*gorm.DB) error) error {
	return db.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		if err := conn.Exec("SELECT pg_advisory_lock(?)", advisoryLockKey).Error; err != nil {
			return fmt.Errorf("migrations: take lock: %w", err)
		}
		defer conn.Exec("SELECT pg_advisory_unlock(?)", advisoryLockKey)
		return fn(conn)
	})
}

// Fingerprint returns a short digest of the whole migration history (ids and SQL text).
// Test helpers name their migrated template database after it, so a changed migration
// gets a fresh template.
func Fingerprint() string {
	h := sha256.New()
	for _, m := range list() {
		h.Write([]byte(m.ID))
		for _, suffix := range []string{".up.sql", ".down.sql"} {
			body, _ := sqlFiles.ReadFile("sql/" + m.ID + suffix)
			h.Write(body)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
