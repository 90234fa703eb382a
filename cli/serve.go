package cli

import (
	"github.com/prometheus/client_golang/prometheus"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"time"

	"auditdb/jobs"
	"auditdb/migrations"
	"auditdb/models"
	"auditdb/web"
)

// buildServices is the one composition root: it opens what the application runs on (the
// database, migrated and seeded with the defaults; Redis; the ingest writer's own pgx
// pool; the signing and checkpoint keys), builds every service over them once with
// web.NewServices, loads the authorization policy and starts the writer and the
// listeners. serve and the benchmarks build through it. shutdown stops the services, then
// closes the pool, Redis and the database, in that order; it returns the writer's error.
func buildServices(ctx context.Context, cfg config, log *slog.Logger) (svc *web.Services, shutdown func() error, err error) {
	var closers []func() // run last first
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	db, _, err := openReady(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, func() { closeDB(db) })
	rdb, err := openRedis(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, func() { rdb.Close() })
	sealer, ck, err := integrityKeys(cfg)
	if err != nil {
		return nil, nil, err
	}
	pool, err := models.OpenPool(ctx, cfg.DatabaseURL, int32(max(cfg.Writer.Flushers, 2)+4))
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, pool.Close)
	pseudonymKey, err := cfg.pseudonymKey()
	if err != nil {
		return nil, nil, err
	}
	svc, err = web.NewServices(web.ServicesConfig{
		DB: db, Redis: rdb, Pool: pool, DatabaseURL: cfg.DatabaseURL,
		Sealer: sealer, CheckpointKey: ck, Log: log,
		Writer: cfg.Writer, TrustedProxies: cfg.TrustedProxies, FollowCaches: true, RedisPrefix: cfg.RedisPrefix,
		SMTP: cfg.SMTP, PublicURL: cfg.PublicURL, StatementTimeout: cfg.StatementTimeout,
		SchemaVersion: migrations.Latest(), Metrics: cfg.metricsMode(),
		QueryCache: cfg.QueryCache, Perf: cfg.Perf,
		PseudonymKey: pseudonymKey,
	})
	if err != nil {
		return nil, nil, err
	}
	if err := svc.Policy.Load(ctx); err != nil {
		return nil, nil, err
	}
	if _, err := svc.Erasure.SealLegacyMappings(ctx); err != nil {
		return nil, nil, err
	}
	stop := svc.Start(ctx)
	return svc, func() error {
		// The writer answers everything queued, within a bound.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		err := stop(wctx)
		closeAll()
		return err
	}, nil
}

// defaultSequencerEvery is how often the sequencer appends new events to the Merkle logs
// unless AUDITDB_SEQUENCER_EVERY says otherwise.
const defaultSequencerEvery = 500 * time.Millisecond

// defaultDetectEvery is how often detection reads newly logged events unless
// AUDITDB_DETECT_EVERY says otherwise.
const defaultDetectEvery = 500 * time.Millisecond

func serve(ctx context.Context, cfg config, stdout io.Writer) error {
	log := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tuneGC(os.Getenv)
	svc, closeServices, err := buildServices(ctx, cfg, log)
	if err != nil {
		return err
	}
	if cfg.PprofAddr != "" {
		servePprof(cfg.PprofAddr, log)
	}
	app := web.New(svc)
	sched, err := schedule(svc, cfg, log)
	if err != nil {
		closeServices()
		return err
	}
	svc.Health.MissedJobs = sched.Missed
	sched.Start()
	if cfg.MetricsAddr != "" {
		stopMetrics := serveMetrics(cfg.MetricsAddr, log)
		defer stopMetrics()
	}

	listenErr := make(chan error, 1)
	go func() { listenErr <- app.Listen(cfg.Addr) }()
	log.Info("auditdb console listening", "addr", "http://"+cfg.Addr, "checkpoint_verifier_key", svc.Merkle.Key().VerifierKey())

	select {
	case err = <-listenErr:
	case <-ctx.Done():
	}
	// Ordered shutdown: HTTP first (finish in-flight requests), then the scheduler, then
	// the services (the listeners, the writer, which answers everything queued, and the
	// error log's writer, drained last so the errors of the shutdown are kept), Redis and
	// the database.
	log.Info("shutting down")
	if serr := app.ShutdownWithTimeout(20 * time.Second); serr != nil {
		log.Error("http shutdown", "err", serr)
	}
	if serr := sched.Shutdown(); serr != nil {
		log.Error("scheduler shutdown", "err", serr)
	}
	if werr := closeServices(); werr != nil {
		log.Error("writer shutdown", "err", werr)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	return nil
}

// schedule returns the scheduler with every job, each given the parts of svc it uses.
func schedule(svc *web.Services, cfg config, log *slog.Logger) (*jobs.Scheduler, error) {
	sched, err := jobs.New(svc.DB, log)
	if err != nil {
		return nil, err
	}
	sched.RecordErrorsTo(svc.Errors)
	for _, j := range []jobs.Job{
		jobs.PartitionJob(svc.Parts, log),
		jobs.SessionPurgeJob(svc.Sessions, svc.LoginPerAccount),
		jobs.SequencerJob(svc.Merkle, cfg.SequencerEvery, log),
		jobs.IntegritySweepJob(svc.Orgs, svc.Integrity, svc.Alerts, svc.SweepRuns, log),
		jobs.IdempotencyPurgeJob(svc.Answers),
		jobs.AlertRetentionJob(svc.Alerts, log),
		jobs.RetentionJob(svc.Retention, log),
		jobs.SearchSketchJob(svc.Sketches, log),
		jobs.ErrorLogRetentionJob(svc.ErrorLog, models.DefaultErrorRetention, time.Now, log),
		jobs.NotifyEnqueueJob(svc.Deliveries),
		jobs.NotifySendJob(svc.Deliveries),
		jobs.ReportsJob(svc.ReportRunner),
		jobs.GDPRJob(svc.GDPRRunner),
		jobs.PerfSnapshotJob(perfSources(svc), log),
	} {
		if err := sched.Add(j); err != nil {
			return nil, err
		}
	}
	if cfg.DetectEvery > 0 {
		if err := sched.Add(jobs.DetectionJob(svc.Detector, cfg.DetectEvery)); err != nil {
			return nil, err
		}
	}
	if cfg.Writer.DetectionFeed {
		if err := sched.Add(jobs.DetectionFeedTrimJob(svc.DB)); err != nil {
			return nil, err
		}
	}
	return sched, nil
}

// metricsMode is where the Prometheus metrics go by the configuration.
func (c config) metricsMode() web.MetricsMode {
	switch {
	case c.MetricsOff:
		return web.MetricsOff
	case c.MetricsAddr != "":
		return web.MetricsSeparate
	}
	return web.MetricsLoopback
}

// serveMetrics serves /metrics on a listener of its own (AUDITDB_METRICS_ADDR), for a
// Prometheus that scrapes over the network without reaching the console's port. It
// returns the function that closes it.
func serveMetrics(addr string, log *slog.Logger) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle(web.MetricsPath, web.MetricsHandler())
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics are not served", "addr", addr, "err", err)
		}
	}()
	log.Info("serving Prometheus metrics", "addr", "http://"+addr+web.MetricsPath)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
}

// perfSources are the performance report's sources in svc: the database's statistics, the
// query cache, the writer's queue, the sequencer's and detection's lags and the request histogram (when the
// server registers it with Prometheus's default registry).
func perfSources(svc *web.Services) jobs.PerfSources {
	latency := jobs.NewLatencyReader(prometheus.DefaultGatherer)
	return jobs.PerfSources{
		Store: svc.Perf, Cache: svc.QueryCache, WriterQueue: svc.Writer.Queued, SequencerLag: svc.Merkle.QueueLag,
		DetectionLag: func(ctx context.Context) (time.Duration, error) {
			o, err := svc.Detector.Overview(ctx)
			return o.MaxLag, err
		},
		Latency: latency.Read, Audit: svc.Audit, AutoOptimize: svc.Perf.Options().AutoOptimize,
	}
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
