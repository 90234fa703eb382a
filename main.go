// Command auditdb is a multi-tenant audit-event database with an admin console.
//
// Run `auditdb help` for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"auditdb/jobs"
	"auditdb/migrations"
	"auditdb/models"
	"auditdb/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "auditdb:", models.MessageOfCLI(err))
		os.Exit(1)
	}
}

const usage = `auditdb — a multi-tenant audit-event database with an admin console.

Usage: auditdb <command> [flags]

Commands:
  serve                                   migrate, then run the console and API
  migrate                                 apply pending migrations
  migrate down                            roll back the last migration
  seed [--demo] [--events N]              default policies, roles and presets; --demo adds
                                          two organizations, users and N events (50000)
  org create --id ID --name NAME          create an organization
  user create --email E --password P (--org ID --role NAME | --superadmin)
                                          create a user
  user revoke-sessions --email E          sign a user out everywhere at once
  partitions list|ensure|drop-expired [--dry-run]
                                          manage monthly partitions
  apikey create --org ID --name N [--scope ingest|read]
                                          create an API key and print it (shown once)
  apikey list --org ID                    list an organization's API keys
  apikey revoke --org ID --id N           revoke an API key at once
  verify --org ID | --all                 check every event hash and signature, the Merkle log
                                          and every checkpoint; name each problem
  bench events-list [--events N]          measure the events list against bare SQL
  bench ingest [--events N] [--url U --key K]
                                          measure ingest against a raw COPY baseline
  bench authz [--iterations N]            measure what authorization adds to a request
  bench rls [--events N]                  measure what row-level security costs
  help                                    this text

Configuration comes from the environment; see README.md.
`

// run is the whole program: it parses args, reads configuration through getenv and writes
// its output to stdout.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return nil
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "serve":
		return serve(ctx, cfg, stdout)
	case "migrate":
		return migrateCmd(ctx, cfg, args[1:], stdout)
	case "seed":
		return seedCmd(ctx, cfg, args[1:], stdout)
	case "org":
		return orgCmd(ctx, cfg, args[1:], stdout)
	case "user":
		return userCmd(ctx, cfg, args[1:], stdout)
	case "partitions":
		return partitionsCmd(ctx, cfg, args[1:], stdout)
	case "bench":
		return benchCmd(ctx, cfg, args[1:], stdout)
	case "apikey":
		return apikeyCmd(ctx, cfg, args[1:], stdout)
	case "verify":
		return verifyCmd(ctx, cfg, args[1:], stdout)
	}
	return fmt.Errorf("unknown command %q; run `auditdb help`", args[0])
}

// openDB connects and migrates.
func openDB(ctx context.Context, cfg config) (*gorm.DB, error) {
	db, err := models.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := migrations.Up(ctx, db); err != nil {
		return nil, err
	}
	return db, nil
}

// openReady connects, migrates, seeds the default policies, roles and presets, and makes
// sure the partitions from this month through the next six exist: what every command that
// writes needs first.
func openReady(ctx context.Context, cfg config) (*gorm.DB, *models.PartitionManager, error) {
	db, err := openDB(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	parts := models.NewPartitionManager(db)
	if err := models.SeedDefaults(ctx, db); err != nil {
		closeDB(db)
		return nil, nil, err
	}
	if _, err := parts.Ensure(ctx, time.Now()); err != nil {
		closeDB(db)
		return nil, nil, err
	}
	return db, parts, nil
}

func closeDB(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		sqlDB.Close()
	}
}

// openRedis connects to Redis; when it is down it warns and returns a client anyway, since
// every Redis use degrades to in-process state and recovers when Redis returns.
func openRedis(ctx context.Context, cfg config, log *slog.Logger) (*redis.Client, error) {
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, models.Invalid("AUDITDB_REDIS_URL", "must be a redis:// URL")
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = time.Second, time.Second, time.Second
	rdb := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		log.Warn("Redis is unreachable; continuing with in-process state", "url", opt.Addr, "err", err)
	}
	return rdb, nil
}

// integrityKeys returns the event sealer and the checkpoint key.
func integrityKeys(cfg config) (*models.Sealer, *models.CheckpointKey, error) {
	key, err := cfg.signingKey()
	if err != nil {
		return nil, nil, err
	}
	sealer, err := models.NewSealer(key)
	if err != nil {
		return nil, nil, err
	}
	ck, err := cfg.checkpointKey()
	if err != nil {
		return nil, nil, err
	}
	return sealer, ck, nil
}

// ingest is what signs, writes and logs events; serve and the benchmark build it alike.
type ingest struct {
	sealer *models.Sealer
	log    *models.MerkleLog
	pool   *pgxpool.Pool
	writer *models.Writer
}

// openIngest builds the sealer, the Merkle log and the group-commit writer (not started)
// over its own pgx pool.
func openIngest(ctx context.Context, cfg config, db *gorm.DB, parts *models.PartitionManager, log *slog.Logger) (*ingest, error) {
	sealer, ck, err := integrityKeys(cfg)
	if err != nil {
		return nil, err
	}
	pool, err := models.OpenPool(ctx, cfg.DatabaseURL, int32(max(cfg.Writer.Flushers, 2)+4))
	if err != nil {
		return nil, err
	}
	w := models.NewWriter(pool, parts, models.NewDeadLetterStore(db), cfg.Writer, log)
	return &ingest{sealer: sealer, log: models.NewMerkleLog(db, ck), pool: pool, writer: w}, nil
}

// defaultSequencerEvery is how often the sequencer appends new events to the Merkle logs
// unless AUDITDB_SEQUENCER_EVERY says otherwise.
const defaultSequencerEvery = 500 * time.Millisecond

func serve(ctx context.Context, cfg config, stdout io.Writer) error {
	log := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tuneGC(os.Getenv)
	db, parts, err := openReady(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB(db)
	rdb, err := openRedis(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ing, err := openIngest(ctx, cfg, db, parts, log)
	if err != nil {
		return err
	}
	defer ing.pool.Close()
	if cfg.PprofAddr != "" {
		servePprof(cfg.PprofAddr, log)
	}
	ing.writer.Start()

	deps := web.NewDeps(db, rdb, ing.sealer, log)
	deps.TrustedProxies = cfg.TrustedProxies
	deps.WithIngest(ing.writer, ing.log)
	if err := deps.Policy.Load(ctx); err != nil {
		return err
	}
	app := web.New(deps)
	// The policy, API-key and session listeners follow changes made on other instances
	// until shutdown.
	listenCtx, stopListening := context.WithCancel(context.WithoutCancel(ctx))
	var listeners sync.WaitGroup
	for _, listen := range []func(context.Context){
		func(ctx context.Context) { deps.Policy.Run(ctx) },
		deps.APIKeys.Listen,
		func(ctx context.Context) { deps.Sessions.Listen(ctx, cfg.DatabaseURL) },
	} {
		listeners.Add(1)
		go func() {
			defer listeners.Done()
			listen(listenCtx)
		}()
	}
	defer func() { // before Redis and the database close (defers run last in, first out)
		stopListening()
		listeners.Wait()
	}()

	sched, err := jobs.New(db, log)
	if err != nil {
		return err
	}
	for _, j := range []jobs.Job{
		jobs.PartitionJob(parts, log),
		jobs.SessionPurgeJob(deps.Sessions),
		jobs.SequencerJob(ing.log, cfg.SequencerEvery, log),
		jobs.IntegritySweepJob(deps.Orgs, deps.Integrity, models.NewAlertStore(db), log),
		jobs.IdempotencyPurgeJob(deps.Answers),
	} {
		if err := sched.Add(j); err != nil {
			return err
		}
	}
	sched.Start()

	listenErr := make(chan error, 1)
	go func() { listenErr <- app.Listen(cfg.Addr) }()
	log.Info("auditdb console listening", "addr", "http://"+cfg.Addr, "checkpoint_verifier_key", ing.log.Key().VerifierKey())

	select {
	case err = <-listenErr:
	case <-ctx.Done():
	}
	// Ordered shutdown: HTTP first (finish in-flight requests), then the writer (answer
	// everything queued), the scheduler and the listeners, then Redis and the database
	// (deferred above).
	log.Info("shutting down")
	if serr := app.ShutdownWithTimeout(20 * time.Second); serr != nil {
		log.Error("http shutdown", "err", serr)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	if werr := ing.writer.Close(wctx); werr != nil {
		log.Error("writer shutdown", "err", werr)
	}
	cancel()
	if serr := sched.Shutdown(); serr != nil {
		log.Error("scheduler shutdown", "err", serr)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	return nil
}

// servePprof serves the runtime's profiles (CPU, heap, goroutines…) on a loopback address of
// their own, never on the console's port.
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil {
			log.Warn("profiles are not served", "addr", addr, "err", err)
		}
	}()
	log.Info("serving runtime profiles", "addr", "http://"+addr+"/debug/pprof/")
}

// Garbage collector defaults for serve, used unless GOGC or GOMEMLIMIT is set. A server's
// live heap is small (tens of MiB), so with Go's default (GOGC=100) the collector runs many
// times a second under ingest and takes a tenth of the CPU. GOGC=400 lets the heap grow to
// five times what survived the last cycle before collecting, and the soft memory limit makes
// the collector work harder instead when the process nears it.
const (
	serveGCPercent   = 400
	serveMemoryLimit = 100 << 20
)

func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serveMemoryLimit)
	}
}
