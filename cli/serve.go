package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"gorm.io/gorm"

	"auditdb/jobs"
	"auditdb/models"
	"auditdb/web"
)

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
	deps.TrustProxy = cfg.TrustProxy
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
