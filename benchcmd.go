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
	if len(args) == 0 || args[0] != "events-list" {
		return fmt.Errorf("usage: auditdb bench events-list [--events N] [--iterations N] [--deep N] [--database NAME]")
	}
	fs := newFlags("bench events-list", stdout)
	events := fs.Int("events", 1_000_000, "events to seed into the bench database")
	iterations := fs.Int("iterations", 200, "timed requests per case")
	deep := fs.Int("deep", 100, "keyset pages deep for the deep-page case")
	dbName := fs.String("database", "", "bench database (default: the configured one with _bench appended)")
	if err := fs.Parse(args[1:]); err != nil {
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
	key, err := cfg.signingKey()
	if err != nil {
		return err
	}
	sealer, err := models.NewSealer(key)
	if err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rdb, err := openRedis(ctx, cfg, quiet)
	if err != nil {
		return err
	}
	defer rdb.Close()
	app := web.New(web.NewDeps(db, rdb, sealer, quiet))
	defer app.Shutdown()
	fmt.Fprintf(stdout, "bench database: %s\n", redactedDB(dsn))
	return bench.EventsList(ctx, db, bench.EventsListOptions{
		Events: *events, Iterations: *iterations, DeepPages: *deep, Now: time.Now(),
		Serve: app.Listener, Sealer: sealer, Out: stdout, Timeout: 30 * time.Second, DSN: dsn,
	})
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
