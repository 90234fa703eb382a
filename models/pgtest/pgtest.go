// Package pgtest gives each test package its own PostgreSQL database, cloned from a
// template that holds the migrated schema, and a Redis client on the local server.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// and call pgtest.DSN / pgtest.DB in tests. The server defaults to the local PostgreSQL
// (AUDITDB_TEST_DATABASE_URL overrides it; its path is ignored).
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"auditdb/migrations"
	"auditdb/models"
)

const lockKey = 72_000_002

var (
	pkgDSN  string
	dbOnce  sync.Once
	dbConn  *gorm.DB
	dbError error
)

func serverURL() *url.URL {
	raw := os.Getenv("AUDITDB_TEST_DATABASE_URL")
	if raw == "" {
		raw = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	u, err := url.Parse(raw)
	if err != nil {
		panic("pgtest: AUDITDB_TEST_DATABASE_URL: " + err.Error())
	}
	return u
}

func dsnFor(name string) string {
	u := serverURL()
	u.Path = "/" + name
	return u.String()
}

// Main creates this package's database, runs the tests and drops the database again.
// It returns the exit code for os.Exit.
func Main(m *testing.M) int {
	ctx := context.Background()
	name := fmt.Sprintf("auditdb_test_%d_%d", os.Getpid(), time.Now().UnixNano()%1_000_000)
	if err := Clone(ctx, name); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pkgDSN = dsnFor(name)
	code := m.Run()
	if dbConn != nil {
		if sqlDB, err := dbConn.DB(); err == nil {
			sqlDB.Close()
		}
	}
	if err := Drop(ctx, name); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return code
}

// DSN returns the connection URL of this package's database.
func DSN(t testing.TB) string {
	t.Helper()
	if pkgDSN == "" {
		t.Fatal("pgtest: call pgtest.Main from TestMain first")
	}
	return pkgDSN
}

// DB returns a shared GORM handle on this package's database.
func DB(t testing.TB) *gorm.DB {
	t.Helper()
	dsn := DSN(t)
	dbOnce.Do(func() { dbConn, dbError = models.Open(context.Background(), dsn) })
	if dbError != nil {
		t.Fatalf("pgtest: open: %v", dbError)
	}
	return dbConn
}

// Redis returns a client on the local Redis (AUDITDB_TEST_REDIS_URL overrides it); the
// test is skipped never: a missing Redis fails it.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	raw := os.Getenv("AUDITDB_TEST_REDIS_URL")
	if raw == "" {
		raw = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatalf("pgtest: redis url: %v", err)
	}
	c := redis.NewClient(opt)
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("pgtest: redis: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Clone creates database name from the migrated template, building the template first
// when this migration history has none yet.
func Clone(ctx context.Context, name string) error {
	admin, err := pgx.Connect(ctx, dsnFor("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: connect: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return fmt.Errorf("pgtest: lock: %w", err)
	}
	defer admin.Exec(ctx, "SELECT pg_advisory_unlock($1)", lockKey)

	tpl := "auditdb_tpl_" + migrations.Fingerprint()
	var ready bool
	err = admin.QueryRow(ctx, `SELECT coalesce(shobj_description(oid, 'pg_database') = 'migrated', false)
		FROM pg_database WHERE datname = $1`, tpl).Scan(&ready)
	if err != nil && err != pgx.ErrNoRows {
		return fmt.Errorf("pgtest: look up template: %w", err)
	}
	if !ready {
		if err := buildTemplate(ctx, admin, tpl); err != nil {
			return err
		}
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(tpl)); err != nil {
		return fmt.Errorf("pgtest: clone %s: %w", tpl, err)
	}
	return nil
}

func buildTemplate(ctx context.Context, admin *pgx.Conn, tpl string) error {
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(tpl)); err != nil {
		return fmt.Errorf("pgtest: drop stale template: %w", err)
	}
	db, err := models.Open(ctx, dsnFor(tpl))
	if err != nil {
		return err
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	if err := migrations.Up(ctx, db); err != nil {
		return err
	}
	if err := models.SeedDefaults(ctx, db); err != nil {
		return err
	}
	// The slow-query statistics, where the server has the module (see .ci/run, which
	// preloads it): every test database cloned from here has the view. Without the module
	// the tests that need it say so.
	_ = db.Exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").Error
	sqlDB.Close()
	if _, err := admin.Exec(ctx, "COMMENT ON DATABASE "+ident(tpl)+" IS 'migrated'"); err != nil {
		return fmt.Errorf("pgtest: mark template: %w", err)
	}
	return nil
}

// extraCount numbers the databases of ExtraDB.
var extraCount atomic.Int64

// ExtraDB clones the migrated template into a database of the calling test's own, dropped
// when the test ends, and returns a handle on it and its URL: for a test that changes the
// schema itself (rolls a migration back, say).
func ExtraDB(t testing.TB) (*gorm.DB, string) {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("auditdb_test_%d_x%d", os.Getpid(), extraCount.Add(1))
	if err := Clone(ctx, name); err != nil {
		t.Fatal(err)
	}
	dsn := dsnFor(name)
	db, err := models.Open(ctx, dsn)
	if err != nil {
		Drop(ctx, name)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
		if err := Drop(context.Background(), name); err != nil {
			t.Error(err)
		}
	})
	return db, dsn
}

// Drop removes a test database, ending any connection still open on it.
func Drop(ctx context.Context, name string) error {
	return models.DropDatabase(ctx, dsnFor(strings.ToLower(name)))
}

func ident(s string) string { return pgx.Identifier{strings.ToLower(s)}.Sanitize() }
