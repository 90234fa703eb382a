// Package models holds auditdb's data layer: the organization-scoped GORM stores and the
// foundations the pipelines build on (event sealing, partitions, tenant transactions, the
// error vocabulary, seeds). The pipelines live in sub-packages that import this one, never
// the other way round: models/ingest, models/merkle, models/session and models/demo.
//
// Every store method that touches tenant data takes the organization and filters by it.
package models

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Open connects to the database at dsn, creating the database first when it does not
// exist. It returns a KindUnavailable error with one plain sentence (what was tried and
// how to start PostgreSQL) when the server cannot be reached.
func Open(ctx context.Context, dsn string) (*gorm.DB, error) {
	if err := ensureDatabase(ctx, dsn); err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, Invalid("AUDITDB_DATABASE_URL", "must be a postgres:// URL")
	}
	withoutJIT(cfg.RuntimeParams)
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: stdlib.OpenDB(*cfg)}), &gorm.Config{
		Logger:                 logger.Default.LogMode(logger.Silent),
		SkipDefaultTransaction: true,
		TranslateError:         true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, unreachable(dsn, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("models: open: %w", err)
	}
	sqlDB.SetMaxOpenConns(20)
	sqlDB.SetMaxIdleConns(10)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		return nil, unreachable(dsn, err)
	}
	return db, nil
}

// jitOption finds jit itself set in a connection's options (not jit_above_cost and the like).
var jitOption = regexp.MustCompile(`(^|\s)(-c\s*|--)jit\s*=`)

// withoutJIT turns PostgreSQL's JIT compilation off for the server's connections unless the
// database URL (or PGOPTIONS) sets jit itself. Its thresholds are plan costs, which the console's short
// queries over many partitions exceed while running in milliseconds: the events histogram's
// custom plan compiled for 300 ms to run for 7 ms (the summary's p95 tail), and retention's
// plan and archival cursor lost a third of their time to it (docs/benchmarks.md).
func withoutJIT(params map[string]string) {
	if _, set := params["jit"]; set || jitOption.MatchString(params["options"]) {
		return // the URL's jit=…, or -c jit=… (--jit=…) in its options (or PGOPTIONS), stands
	}
	params["jit"] = "off"
}

// OpenPool returns a native pgx pool of at most maxConns connections on dsn, for the ingest
// writer. Connections idle for over a second are pinged before use, so the pool recovers
// by itself after the server restarts. It returns KindUnavailable when the server cannot
// be reached.
func OpenPool(ctx context.Context, dsn string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, Invalid("AUDITDB_DATABASE_URL", "must be a postgres:// URL")
	}
	cfg.MaxConns = maxConns
	withoutJIT(cfg.ConnConfig.RuntimeParams)
	cfg.PingTimeout = 2 * time.Second
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, unreachable(dsn, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, unreachable(dsn, err)
	}
	return pool, nil
}

// maintenanceConn connects to the "postgres" maintenance database of the server dsn points
// at, and returns the name of the database dsn names.
func maintenanceConn(ctx context.Context, dsn string) (*pgx.Conn, string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return nil, "", Invalid("AUDITDB_DATABASE_URL", "must be a postgres:// URL")
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return nil, "", Invalid("AUDITDB_DATABASE_URL", "names no database")
	}
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return nil, "", unreachable(dsn, err)
	}
	return conn, name, nil
}

// ensureDatabase creates the database named in dsn when it is missing, connecting to the
// server's "postgres" maintenance database to do so.
func ensureDatabase(ctx context.Context, dsn string) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, name, err := maintenanceConn(cctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(cctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("models: look up database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(cctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created meanwhile by another instance
		return nil
	}
	if err != nil {
		return fmt.Errorf("models: create database %q: %w", name, err)
	}
	return nil
}

// DropDatabase drops the database named in dsn, if it exists, ending any connection still
// open on it. Only benchmarks and tests drop databases, each one it made itself.
func DropDatabase(ctx context.Context, dsn string) error {
	conn, name, err := maintenanceConn(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("models: drop database %q: %w", name, err)
	}
	return nil
}

func unreachable(dsn string, cause error) error {
	return Unavailable(fmt.Sprintf(
		"cannot reach PostgreSQL at %s (%v); start it (for example `pg_ctlcluster 15 main start`) or set AUDITDB_DATABASE_URL",
		redact(dsn), rootCause(cause)), nil)
}

func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// redact hides a password in a connection URL.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "the configured URL"
	}
	return u.Redacted()
}

// Pinger returns a function that checks the database answers SELECT 1.
func Pinger(db *gorm.DB) func(context.Context) error {
	return func(ctx context.Context) error {
		var one int
		return db.WithContext(ctx).Raw("SELECT 1").Scan(&one).Error
	}
}

// WithPgx runs fn on one pooled connection as a native pgx connection, for what GORM
// cannot do (COPY).
func WithPgx(ctx context.Context, db *gorm.DB, fn func(*pgx.Conn) error) error {
	sqlDB, err := db.DB()
	if err != nil {
		return fmt.Errorf("models: pool: %w", err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("models: acquire connection: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("models: driver connection is %T, not pgx", driverConn)
		}
		return fn(c.Conn())
	})
}

// SchemaHas returns a check that fails unless the database's migration history holds
// migration id (the newest one this build knows): a database not migrated yet, or one
// whose newest migration was rolled back, is not ready for this build.
func SchemaHas(db *gorm.DB, id string) func(context.Context) error {
	return func(ctx context.Context) error {
		var has bool
		err := db.WithContext(ctx).Raw(`SELECT to_regclass('schema_migrations') IS NOT NULL
			AND EXISTS (SELECT 1 FROM schema_migrations WHERE id = ?)`, id).Scan(&has).Error
		if err != nil {
			return fmt.Errorf("models: read the migration history: %w", err)
		}
		if !has {
			return fmt.Errorf("models: the database lacks migration %s; run `auditdb migrate`", id)
		}
		return nil
	}
}
