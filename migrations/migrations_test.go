package migrations_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"auditdb/migrations"
	"auditdb/models"
	"auditdb/models/pgtest"
)

// freshDB creates an empty database (not from the template) and drops it afterwards.
func freshDB(t *testing.T) *gorm.DB {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("auditdb_migtest_%d_%d", os.Getpid(), time.Now().UnixNano()%1_000_000_000)
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:5432/%s?sslmode=disable", name)
	if v := os.Getenv("AUDITDB_TEST_DATABASE_URL"); v != "" {
		t.Skip("fresh databases are made on the default local server only")
	}
	db, err := models.Open(ctx, dsn) // creates the database
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
		if err := pgtest.Drop(ctx, name); err != nil {
			t.Log(err)
		}
	})
	return db
}

func tables(t *testing.T, db *gorm.DB) map[string]bool {
	t.Helper()
	var names []string
	if err := db.Raw(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`).Scan(&names).Error; err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out
}

var seedTables = []string{"audit_log", "audit_preset", "audit_integrity_log", "audit_retention_policy", "error_log",
	"error_aggregation", "archive_storage", "alerts", "scheduled_reports", "report_templates", "report_executions",
	"archive_dlq_event", "config_change_event", "pseudonym_mapping", "organization_role",
	"organizations", "users", "memberships", "sessions"}

func TestUpDownUp(t *testing.T) {
	ctx := context.Background()
	db := freshDB(t)
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatalf("up: %v", err)
	}
	got := tables(t, db)
	for _, name := range seedTables {
		if !got[name] {
			t.Errorf("table %s missing after up", name)
		}
	}
	// Roll everything back: only the bookkeeping table may remain.
	for i := 0; i < 100; i++ {
		if err := migrations.Down(ctx, db); err != nil {
			break
		}
	}
	left := tables(t, db)
	delete(left, "schema_migrations")
	if len(left) != 0 {
		t.Fatalf("tables left after rolling back everything: %v", left)
	}
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if got := tables(t, db); !got["audit_log"] {
		t.Fatal("audit_log missing after up → down → up")
	}
}

func TestSchemaCorrections(t *testing.T) {
	db := freshDB(t)
	if err := migrations.Up(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, sql string
		want      string
	}{
		{"audit_log is range-partitioned on timestamp",
			`SELECT pg_get_partkeydef('audit_log'::regclass)`, `RANGE ("timestamp")`},
		{"error_log is range-partitioned on timestamp",
			`SELECT pg_get_partkeydef('error_log'::regclass)`, `RANGE ("timestamp")`},
		{"audit_log primary key is (id, timestamp)",
			`SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'audit_log'::regclass AND contype = 'p'`,
			`PRIMARY KEY (id, "timestamp")`},
		{"audit_log id is an identity column",
			`SELECT is_identity || ':' || identity_generation FROM information_schema.columns WHERE table_name = 'audit_log' AND column_name = 'id'`,
			"YES:BY DEFAULT"},
		{"audit_log organization_id is NOT NULL",
			`SELECT is_nullable FROM information_schema.columns WHERE table_name = 'audit_log' AND column_name = 'organization_id'`, "NO"},
		{"alerts organization_id is NOT NULL",
			`SELECT is_nullable FROM information_schema.columns WHERE table_name = 'alerts' AND column_name = 'organization_id'`, "NO"},
		{"alerts flags are booleans",
			`SELECT string_agg(data_type, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'alerts' AND column_name IN ('acknowledged', 'resolved')`,
			"boolean,boolean"},
		{"retention is_active is boolean",
			`SELECT data_type FROM information_schema.columns WHERE table_name = 'audit_retention_policy' AND column_name = 'is_active'`, "boolean"},
		{"scheduled_reports enabled is boolean",
			`SELECT data_type FROM information_schema.columns WHERE table_name = 'scheduled_reports' AND column_name = 'enabled'`, "boolean"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			if err := db.Raw(tc.sql).Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestConcurrentUpIsSafe(t *testing.T) {
	db := freshDB(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = migrations.Up(context.Background(), db)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	var dup int64
	var latest bool
	db.Raw(`SELECT count(*) - count(DISTINCT id) FROM schema_migrations`).Scan(&dup)
	db.Raw(`SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE id = ?)`, migrations.Latest()).Scan(&latest)
	if dup != 0 || !latest {
		t.Fatalf("schema_migrations: %d duplicate ids, latest applied = %v", dup, latest)
	}
}

// The leaf queue changed from a row per event to a row per write and organization; events
// waiting for the sequencer keep their place across the change, both ways.
func TestLeafQueueReshapeKeepsWaitingEvents(t *testing.T) {
	ctx := context.Background()
	db := freshDB(t)
	if err := migrations.UpTo(ctx, db, "20261127_0006_leaf_queue_per_write"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 27, 10, 0, 0, 123456000, time.UTC)
	err := db.Exec(`INSERT INTO audit_leaf_queue (organization_id, audit_log_ids, event_timestamps, hashes) VALUES
		('org-a', ARRAY[3, 1]::bigint[], ARRAY[?, ?]::timestamptz[], ARRAY['h3', 'h1']),
		('org-b', ARRAY[2]::bigint[], ARRAY[?]::timestamptz[], ARRAY['h2']),
		('org-a', ARRAY[5]::bigint[], ARRAY[?]::timestamptz[], ARRAY['h5'])`, at, at, at, at).Error
	if err != nil {
		t.Fatal(err)
	}
	if err := migrations.Down(ctx, db); err != nil {
		t.Fatalf("down: %v", err)
	}
	type row struct {
		AuditLogID     int64
		OrganizationID string
		EventTimestamp time.Time
		Hash           string
	}
	var rows []row
	if err := db.Raw(`SELECT audit_log_id, organization_id, event_timestamp, hash FROM audit_leaf_queue ORDER BY audit_log_id`).
		Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	want := []row{{1, "org-a", at, "h1"}, {2, "org-b", at, "h2"}, {3, "org-a", at, "h3"}, {5, "org-a", at, "h5"}}
	if len(rows) != len(want) {
		t.Fatalf("after down: %d queued events, want %d: %+v", len(rows), len(want), rows)
	}
	for i := range want {
		if rows[i].AuditLogID != want[i].AuditLogID || rows[i].OrganizationID != want[i].OrganizationID ||
			!rows[i].EventTimestamp.Equal(at) || rows[i].Hash != want[i].Hash {
			t.Fatalf("after down: event %d is %+v, want %+v", i, rows[i], want[i])
		}
	}
	if err := migrations.UpTo(ctx, db, "20261127_0006_leaf_queue_per_write"); err != nil {
		t.Fatalf("up again: %v", err)
	}
	var got []struct {
		OrganizationID string
		IDs            string
		Hashes         string
	}
	if err := db.Raw(`SELECT organization_id, audit_log_ids::text AS ids, hashes::text AS hashes FROM audit_leaf_queue
		ORDER BY organization_id`).Scan(&got).Error; err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].IDs != "{1,3,5}" || got[0].Hashes != "{h1,h3,h5}" || got[1].IDs != "{2}" || got[1].Hashes != "{h2}" {
		t.Fatalf("after up: %+v; want org-a {1,3,5} and org-b {2}", got)
	}
}
