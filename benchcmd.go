package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"gorm.io/gorm"

	"auditdb/bench"
	"auditdb/migrations"
	"auditdb/models"
	"auditdb/policy"
	"auditdb/web"
)

const benchUsage = `usage: auditdb bench <case> [flags]
  events-list [--events N] [--iterations N] [--deep N] [--database NAME]
  authz       [--iterations N] [--database NAME]
  rls         [--events N] [--rounds N] [--iterations N] [--batches N] [--database NAME]`

func benchCmd(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", benchUsage)
	}
	switch args[0] {
	case "events-list":
		return benchEventsList(ctx, cfg, args[1:], stdout)
	case "authz":
		return benchAuthz(ctx, cfg, args[1:], stdout)
	case "rls":
		return benchRLS(ctx, cfg, args[1:], stdout)
	}
	return fmt.Errorf("%s", benchUsage)
}

// benchEnv is what every benchmark needs: its database (migrated, with the defaults) and
// the signing key.
type benchEnv struct {
	db     *gorm.DB
	dsn    string
	sealer *models.Sealer
}

func openBench(ctx context.Context, cfg config, dbName, suffix string, stdout io.Writer) (*benchEnv, error) {
	dsn, err := benchDSN(cfg.DatabaseURL, dbName, suffix)
	if err != nil {
		return nil, err
	}
	db, err := models.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := migrations.Up(ctx, db); err != nil {
		closeDB(db)
		return nil, err
	}
	if err := models.SeedDefaults(ctx, db); err != nil {
		closeDB(db)
		return nil, err
	}
	key, err := cfg.signingKey()
	if err != nil {
		closeDB(db)
		return nil, err
	}
	sealer, err := models.NewSealer(key)
	if err != nil {
		closeDB(db)
		return nil, err
	}
	fmt.Fprintf(stdout, "bench database: %s\n", redactedDB(dsn))
	return &benchEnv{db: db, dsn: dsn, sealer: sealer}, nil
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
	env, err := openBench(ctx, cfg, *dbName, "_bench", stdout)
	if err != nil {
		return err
	}
	defer closeDB(env.db)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rdb, err := openRedis(ctx, cfg, quiet)
	if err != nil {
		return err
	}
	defer rdb.Close()
	app := web.New(web.NewDeps(env.db, rdb, env.sealer, quiet))
	defer app.Shutdown()
	return bench.EventsList(ctx, env.db, bench.EventsListOptions{
		Events: *events, Iterations: *iterations, DeepPages: *deep, Now: time.Now(),
		Serve: app.Listener, Sealer: env.sealer, Out: stdout, Timeout: 30 * time.Second, DSN: env.dsn,
	})
}

// allowAll is the "enforcement off" authorizer of the authz benchmark.
type allowAll struct{}

func (allowAll) Allowed(context.Context, policy.Subject, string, string, string) (bool, error) {
	return true, nil
}

func benchAuthz(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench authz", stdout)
	iterations := fs.Int("iterations", 2000, "timed requests per route and side")
	dbName := fs.String("database", "", "bench database (default: the configured one with _bench_authz appended)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	env, err := openBench(ctx, cfg, *dbName, "_bench_authz", stdout)
	if err != nil {
		return err
	}
	defer closeDB(env.db)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rdb, err := openRedis(ctx, cfg, quiet)
	if err != nil {
		return err
	}
	defer rdb.Close()
	on := web.NewDeps(env.db, rdb, env.sealer, quiet)
	off := on
	off.Authz = allowAll{}
	appOn, appOff := web.New(on), web.New(off)
	defer appOn.Shutdown()
	defer appOff.Shutdown()
	return bench.Authz(ctx, env.db, bench.AuthzOptions{Iterations: *iterations, ServeOn: appOn.Listener, ServeOff: appOff.Listener,
		Engine: on.Policy, Redis: rdb, Log: quiet, Out: stdout, Timeout: 30 * time.Second})
}

func benchRLS(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench rls", stdout)
	events := fs.Int("events", 200_000, "events to seed for the list")
	rounds := fs.Int("rounds", 20, "rounds alternating RLS on and off")
	iterations := fs.Int("iterations", 40, "list queries per case, mode and round")
	batches := fs.Int("batches", 2, "1000-row ingest batches per path, mode and round")
	dbName := fs.String("database", "", "bench database; its RLS setting is toggled (default: the configured one with _bench_rls appended)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	env, err := openBench(ctx, cfg, *dbName, "_bench_rls", stdout)
	if err != nil {
		return err
	}
	defer closeDB(env.db)
	return bench.RLS(ctx, env.db, bench.RLSOptions{Events: *events, Rounds: *rounds, Iterations: *iterations,
		Batches: *batches, BatchSize: 1000, Sealer: env.sealer, Now: time.Now(), DSN: env.dsn, Out: stdout})
}

// benchDSN points the configured URL at the bench database: name, or the configured
// database's name with suffix appended.
func benchDSN(base, name, suffix string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", models.Invalid("AUDITDB_DATABASE_URL", "must be a postgres:// URL")
	}
	if name == "" {
		name = strings.TrimPrefix(u.Path, "/") + suffix
	}
	u.Path = "/" + name
	return u.String(), nil
}

func redactedDB(dsn string) string {
	u, _ := url.Parse(dsn)
	return u.Redacted()
}
