package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"auditdb/bench"
	"auditdb/migrations"
	"auditdb/models"
	"auditdb/web"
)

func benchCmd(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "events-list":
			return benchEventsList(ctx, cfg, args[1:], stdout)
		case "ingest":
			return benchIngest(ctx, cfg, args[1:], stdout)
		}
	}
	return fmt.Errorf("usage: auditdb bench events-list [--events N] [--iterations N] [--deep N] [--database NAME]\n" +
		"       auditdb bench ingest [--events N] [--concurrency N] [--database NAME | --url URL --key KEY]")
}

func benchEventsList(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench events-list", stdout)
	events := fs.Int("events", 1_000_000, "events to seed into the bench database")
	iterations := fs.Int("iterations", 200, "timed requests per case")
	deep := fs.Int("deep", 100, "keyset pages deep for the deep-page case")
	dbName := fs.String("database", "", "bench database (default: the configured one with _bench appended)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dsn, err := benchDSN(cfg.DatabaseURL, *dbName)
	if err != nil {
		return err
	}
	db, err := models.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer closeDB(db)
	if err := migrations.Up(ctx, db); err != nil {
		return err
	}
	if err := models.SeedDefaults(ctx, db); err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rdb, err := openRedis(ctx, cfg, quiet)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ing, err := openIngest(ctx, withDSN(cfg, dsn), db, models.NewPartitionManager(db), quiet)
	if err != nil {
		return err
	}
	defer ing.pool.Close()
	deps := web.NewDeps(db, rdb, quiet)
	deps.WithIngest(ing.sealer, ing.writer, ing.log)
	app := web.New(deps)
	defer app.Shutdown()
	fmt.Fprintf(stdout, "bench database: %s\n", redactedDB(dsn))
	return bench.EventsList(ctx, db, bench.EventsListOptions{
		Events: *events, Iterations: *iterations, DeepPages: *deep, Now: time.Now(),
		Serve: app.Listener, Sealer: ing.sealer, Out: stdout, Timeout: 30 * time.Second, DSN: dsn,
	})
}

// withDSN is cfg pointed at another database.
func withDSN(cfg config, dsn string) config {
	cfg.DatabaseURL = dsn
	return cfg
}

// benchDSN points the configured URL at the bench database.
func benchDSN(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", models.Invalid("AUDITDB_DATABASE_URL", "must be a postgres:// URL")
	}
	if name == "" {
		name = strings.TrimPrefix(u.Path, "/") + "_bench"
	}
	u.Path = "/" + name
	return u.String(), nil
}

func redactedDB(dsn string) string {
	u, _ := url.Parse(dsn)
	return u.Redacted()
}

func benchIngest(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	return fmt.Errorf("bench ingest: not yet")
}
