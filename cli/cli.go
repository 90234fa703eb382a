// Package cli is the command line: Run parses the arguments, reads the configuration and
// runs one command. Each command group has its own file; serve is the composition root
// that builds every service once.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"auditdb/migrations"
	"auditdb/models"
	"auditdb/models/merkle"
)

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
  user reset-password --email E           a new one-time password (printed once); ends the user's sessions
  partitions list|ensure|drop-expired [--dry-run]
                                          manage monthly partitions
  retention run [--org ID] [--dry-run]  archive events past their policy's archive day and delete
                                          those at the end of retention (legal holds honoured)
  search-sketch build [--org ID]          build the per-day sketches free-text search skips days with
  apikey create --org ID --name N [--scope ingest|read|gdpr]
                                          create an API key and print it (shown once)
  apikey list --org ID                    list an organization's API keys
  apikey revoke --org ID --id N           revoke an API key at once
  verify --org ID | --all                 check every event hash and signature, the Merkle log
                                          and every checkpoint; name each problem
  checkpoint-key                          print the checkpoint verifier key, to pin out of band
  verify-consistency --key K --old FILE --new FILE (--proof FILE | --url U)
                                          check that a saved checkpoint extends an older saved
                                          one; --url fetches the proof with AUDITDB_API_KEY
  verify-bundle [--key K | --key-file F] FILE
                                          check an evidence bundle offline: signature, every
                                          event's hash, manifest and inclusion proofs
  bench events-list [--events N]          measure the events list against bare SQL
  bench ingest [--events N] [--url U --key K]
                                          measure ingest against a raw COPY baseline
  bench authz [--iterations N]            measure what authorization adds to a request
  bench rls [--events N]                  measure what row-level security costs
  bench detect [--events N] [--rounds N]  ingest with detection on vs off, and detection lag
  bench dashboard [--events N] [--iterations N]
                                          the dashboard's server time against its bare SQL
  bench retention [--events N]            archival and deletion against a plain COPY of the rows
  bench bundle [--events N]               an evidence bundle and its verify-bundle, against a COPY of its rows
  bench reports [--events N] [--rounds N] [--pdf-rows N]  report CSV against psql \copy, RSS, PDF
  help                                    this text

Configuration comes from the environment; see README.md.
`

// Run is the whole program: it parses args, reads configuration through getenv and writes
// its output to stdout.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
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
	case "retention":
		return retentionCmd(ctx, cfg, args[1:], stdout)
	case "search-sketch":
		return searchSketchCmd(ctx, cfg, args[1:], stdout)
	case "verify":
		return verifyCmd(ctx, cfg, args[1:], stdout)
	case "checkpoint-key":
		return checkpointKeyCmd(cfg, args[1:], stdout)
	case "verify-consistency":
		return verifyConsistencyCmd(ctx, getenv, args[1:], stdout)
	case "verify-bundle":
		return verifyBundleCmd(getenv, args[1:], stdout)
	}
	return fmt.Errorf("unknown command %q; run `auditdb help`", args[0])
}

func newFlags(name string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	return fs
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
	// One dial per use while Redis is down (go-redis otherwise dials five times, 100 ms
	// apart): every use already backs off for a few seconds after a failure.
	opt.DialerRetries = 1
	rdb := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		log.Warn("Redis is unreachable; continuing with in-process state", "url", opt.Addr, "err", err)
	}
	return rdb, nil
}

// integrityKeys returns the event sealer and the checkpoint key.
func integrityKeys(cfg config) (*models.Sealer, *merkle.CheckpointKey, error) {
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

// requireOrg returns a --org error when fs's --org was given and names no organization; not
// given, it means every organization. An empty --org (a script's unset variable) is refused,
// not taken for every organization.
func requireOrg(ctx context.Context, db *gorm.DB, fs *flag.FlagSet, org string) error {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "org" })
	if !given {
		return nil
	}
	if strings.TrimSpace(org) == "" {
		return models.Invalid("--org", "must name an organization; leave --org out to mean every organization")
	}
	_, err := models.NewOrgStore(db).Get(ctx, org)
	if models.KindOf(err) == models.KindNotFound {
		return models.Invalid("--org", fmt.Sprintf("no organization %q", org))
	}
	return err
}
