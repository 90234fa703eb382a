package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"gorm.io/gorm"

	"auditdb/bench"
	"auditdb/migrations"
	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/merkle"
	"auditdb/policy"
	"auditdb/web"
)

const benchUsage = `usage: auditdb bench <case> [flags]
  events-list [--events N] [--iterations N] [--deep N] [--qualifier Q] [--text WORD] [--case-budget D] [--bare-sql-as tenant|owner] [--export-rounds N] [--database NAME]
  authz       [--iterations N] [--database NAME]
  rls         [--events N] [--rounds N] [--iterations N] [--batches N] [--database NAME]
  ingest      [--events N] [--singles N] [--concurrency N] [--rounds N] [--database NAME | --url URL --key KEY]
  index-cost  [--events N] [--rounds N] [--indexes A,B] [--database NAME]
  detect      [--events N] [--batch N] [--batch-clients N] [--rounds N] [--database NAME]
  dashboard   [--events N] [--iterations N] [--database NAME]
  retention   [--events N] [--database NAME]
  bundle      [--events N] [--rounds N] [--sample N] [--database NAME]
  seal        [--events N] [--batches N] [--batch N] [--writers N] [--rounds N] [--database NAME]
  metrics     [--batches N] [--singles N] [--rounds N] [--database NAME]
  reports     [--events N] [--rounds N] [--pdf-rows N] [--database NAME]
  gdpr-export [--events N] [--subject N] [--rounds N] [--database NAME]
  cache       [--events N] [--rounds N] [--iterations N] [--database NAME]
  erase       [--events N] [--subject-events N] [--batch N] [--by principal|resource] [--scheme v1|v2|v3] [--database NAME]`

func benchCmd(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", benchUsage)
	}
	if path := os.Getenv("AUDITDB_BENCH_CPUPROFILE"); path != "" {
		// A CPU profile of the whole benchmark process (for in-process servers, that
		// includes the server's side), for `go tool pprof`.
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if path := os.Getenv("AUDITDB_BENCH_MEMPROFILE"); path != "" {
		// Where the benchmark process allocated (alloc_space / alloc_objects), written at the end.
		runtime.MemProfileRate = 64 << 10
		defer func() {
			if f, err := os.Create(path); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	switch args[0] {
	case "events-list":
		return benchEventsList(ctx, cfg, args[1:], stdout)
	case "authz":
		return benchAuthz(ctx, cfg, args[1:], stdout)
	case "rls":
		return benchRLS(ctx, cfg, args[1:], stdout)
	case "ingest":
		return benchIngest(ctx, cfg, args[1:], stdout)
	case "index-cost":
		return benchIndexCost(ctx, cfg, args[1:], stdout)
	case "detect":
		return benchDetect(ctx, cfg, args[1:], stdout)
	case "dashboard":
		return benchDashboard(ctx, cfg, args[1:], stdout)
	case "retention":
		return benchRetention(ctx, cfg, args[1:], stdout)
	case "bundle":
		return benchBundle(ctx, cfg, args[1:], stdout)
	case "seal":
		return benchSeal(ctx, cfg, args[1:], stdout)
	case "metrics":
		return benchMetrics(ctx, cfg, args[1:], stdout)
	case "cache":
		return benchCache(ctx, cfg, args[1:], stdout)
	case "reports":
		return benchReports(ctx, cfg, args[1:], stdout)
	case "erase":
		return benchErase(ctx, cfg, args[1:], stdout)
	case "reports-child":
		return benchReportChild(ctx, cfg, args[1:], stdout)
	case "gdpr-export":
		return benchGDPRExport(ctx, cfg, args[1:], stdout)
	case "gdpr-export-child":
		return benchGDPRExportChild(ctx, cfg, args[1:], stdout)
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

// freshBench is openBench on a database dropped first, for benchmarks that must start empty.
func freshBench(ctx context.Context, cfg config, dbName, suffix string, stdout io.Writer) (*benchEnv, error) {
	dsn, err := benchDSN(cfg.DatabaseURL, dbName, suffix)
	if err != nil {
		return nil, err
	}
	if err := dropBenchDatabase(ctx, dsn, suffix); err != nil {
		return nil, err
	}
	return openBench(ctx, cfg, dbName, suffix, stdout)
}

// org makes the benchmark's organization (kept when it exists already).
func (e *benchEnv) org(ctx context.Context, id, name string) error {
	if _, err := models.NewOrgStore(e.db).Create(ctx, id, name); err != nil && models.KindOf(err) != models.KindConflict {
		return err
	}
	return nil
}

// ingestKey creates an ingest key of org for a benchmark's load and returns it.
func (e *benchEnv) ingestKey(ctx context.Context, org string) (string, error) {
	trail := models.NewAuditTrail(e.db, e.sealer, models.NewPartitionManager(e.db))
	raw, _, err := models.NewAPIKeyStore(e.db, trail).Create(ctx, org, "bench "+time.Now().UTC().Format(time.RFC3339),
		models.ScopeIngest, models.SystemActor("bench"))
	return raw, err
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
	qualifier := fs.String("qualifier", "action:patient.record.read actor:dr.maria.gonzalez",
		"the qualifier query timed over 30 days (it should match events of the demo organization)")
	text := fs.String("text", "metformin", "the free text timed over 30 days (it should match events of the demo organization)")
	bareAs := fs.String("bare-sql-as", "tenant", "run the bare SQL as the server's tenant role with row-level security (tenant) or as the database owner (owner)")
	budget := fs.Duration("case-budget", time.Minute, "stop warming up and timing a case after this long (it keeps at least 5 runs); 0: no limit")
	exportRounds := fs.Int("export-rounds", 2, "times the export of a year of events (CSV, JSON Lines, and COPY as the baseline) is timed; 0 skips it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bareAs != "tenant" && *bareAs != "owner" {
		return models.Invalid("--bare-sql-as", "must be tenant or owner")
	}
	env, err := openBench(ctx, cfg, *dbName, "_bench", stdout)
	if err != nil {
		return err
	}
	defer closeDB(env.db)
	start := func(ctx context.Context) (string, int, func(), error) {
		srv, err := startServer(ctx, withDSN(cfg, env.dsn))
		if err != nil {
			return "", 0, nil, err
		}
		fmt.Fprintf(stdout, "server: %s (pid %d)\n", srv.url, srv.cmd.Process.Pid)
		return srv.url, srv.cmd.Process.Pid, srv.stop, nil
	}
	return bench.EventsList(ctx, env.db, bench.EventsListOptions{
		Events: *events, Iterations: *iterations, DeepPages: *deep, Now: time.Now(),
		Start: start, Sealer: env.sealer, Out: stdout, Timeout: 30 * time.Second, DSN: env.dsn, ExportRounds: *exportRounds,
		Qualifier: *qualifier, Text: *text, CaseBudget: *budget, TenantSQL: *bareAs == "tenant",
	})
}

// withDSN is cfg pointed at another database.
func withDSN(cfg config, dsn string) config {
	cfg.DatabaseURL = dsn
	return cfg
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
	// The application as serve builds it, over the bench database, quiet.
	on, closeServices, err := buildServices(ctx, withDSN(cfg, env.dsn), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer closeServices()
	off := *on
	off.Authz = allowAll{}
	appOn, appOff := web.New(on), web.New(&off)
	defer appOn.Shutdown()
	defer appOff.Shutdown()
	return bench.Authz(ctx, env.db, bench.AuthzOptions{Iterations: *iterations, ServeOn: appOn.Listener, ServeOff: appOff.Listener,
		Engine: on.Policy, Redis: on.Redis, Log: on.Log, Out: stdout, Timeout: 30 * time.Second})
}

func benchDashboard(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench dashboard", stdout)
	events := fs.Int("events", 1_000_000, "events the bench organization holds (each size gets its own database)")
	iterations := fs.Int("iterations", 300, "timed requests")
	dbName := fs.String("database", "", "bench database (default: the configured one with _bench_dashboard_<events> appended)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *events < 1 || *iterations < 1 {
		return models.Invalid("--events", "--events and --iterations must be at least 1")
	}
	env, err := openBench(ctx, cfg, *dbName, fmt.Sprintf("_bench_dashboard_%d", *events), stdout)
	if err != nil {
		return err
	}
	defer closeDB(env.db)
	// The application as serve builds it, over the bench database, quiet.
	svc, closeServices, err := buildServices(ctx, withDSN(cfg, env.dsn), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer closeServices()
	app := web.New(svc)
	defer app.Shutdown()
	return bench.Dashboard(ctx, env.db, bench.DashboardOptions{Events: *events, Iterations: *iterations,
		Serve: app.Listener, Out: stdout, Timeout: 30 * time.Second, DSN: env.dsn})
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

// dropBenchDatabase drops the database dsn names, which must end in suffix: a benchmark
// never drops a database it did not make.
func dropBenchDatabase(ctx context.Context, dsn, suffix string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return models.Invalid("AUDITDB_DATABASE_URL", "must be a postgres:// URL")
	}
	name := strings.TrimPrefix(u.Path, "/")
	if !strings.HasSuffix(name, suffix) || name == suffix {
		return models.Invalid("--database", fmt.Sprintf("the benchmark recreates its database, so its name must end in %s; "+
			"or pass --keep", suffix))
	}
	return models.DropDatabase(ctx, dsn)
}

func redactedDB(dsn string) string {
	u, _ := url.Parse(dsn)
	return u.Redacted()
}

func benchIngest(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench ingest", stdout)
	events := fs.Int("events", 100_000, "events through the batch route (and copied raw for the baseline)")
	batch := fs.Int("batch", 1000, "events per batch request")
	batchClients := fs.Int("batch-clients", 4, "concurrent batch clients")
	singles := fs.Int("singles", 40_000, "single-event requests at full concurrency")
	concurrency := fs.Int("concurrency", 64, "concurrent single-event clients")
	halfFor := fs.Duration("half-rate-for", 10*time.Second, "how long to send single events at half the measured rate")
	rounds := fs.Int("rounds", 4, "how many times the baseline and the routes alternate (so they share the machine's conditions)")
	dbName := fs.String("database", "", "bench database (default: the configured one with _bench_ingest appended)")
	target := fs.String("url", "", "a running server to measure (default: start one as a child process)")
	key := fs.String("key", "", "with --url: an ingest key of --org")
	org := fs.String("org", "bench-ingest", "organization the events go to")
	keep := fs.Bool("keep", false, "keep the events of earlier runs (by default the bench database is recreated, so that every run\n"+
		"starts from an empty audit_log like the baseline's scratch table, and runs compare)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rounds < 1 || *events < 1000**rounds || *singles < 100**rounds || *concurrency < 1 || *batch < 1 ||
		*batch > ingest.MaxBatchArray || *batchClients < 1 {
		return models.Invalid("flags", "need --events ≥ 1000 and --singles ≥ 100 per round, 1 ≤ --batch ≤ 1000 and positive counts")
	}
	if (*target == "") != (*key == "") {
		return models.Invalid("--key", "give --url and --key together, or neither")
	}
	dsn := cfg.DatabaseURL
	if *target == "" || *dbName != "" {
		var err error
		if dsn, err = benchDSN(cfg.DatabaseURL, *dbName, "_bench_ingest"); err != nil {
			return err
		}
	}
	if *target == "" && !*keep {
		if err := dropBenchDatabase(ctx, dsn, "_bench_ingest"); err != nil {
			return err
		}
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
	if _, err := models.NewOrgStore(db).Create(ctx, *org, "Ingest benchmark"); err != nil && models.KindOf(err) != models.KindConflict {
		return err
	}
	sealer, _, err := integrityKeys(cfg)
	if err != nil {
		return err
	}
	opts := bench.IngestOptions{URL: *target, Key: *key, Org: *org, Events: *events, BatchSize: *batch,
		BatchClients: *batchClients, Singles: *singles, Concurrency: *concurrency, HalfRateFor: *halfFor, Rounds: *rounds,
		DB: db, DSN: dsn,
		Builder: ingest.NewBuilder(models.NewPresetStore(db, nil), ingest.NewRetentionCatalog(db), sealer), Out: stdout}
	if *target == "" {
		trail := models.NewAuditTrail(db, sealer, models.NewPartitionManager(db))
		raw, _, err := models.NewAPIKeyStore(db, trail).Create(ctx, *org, "bench "+time.Now().UTC().Format(time.RFC3339),
			models.ScopeIngest, models.SystemActor("bench"))
		if err != nil {
			return err
		}
		srv, err := startServer(ctx, withDSN(cfg, dsn))
		if err != nil {
			return err
		}
		defer srv.stop()
		opts.URL, opts.Key, opts.PeakRSS, opts.ServerPID = srv.url, raw, bench.PeakRSSOf(srv.cmd.Process.Pid), srv.cmd.Process.Pid
		fmt.Fprintf(stdout, "server: %s (pid %d) on %s\n", srv.url, srv.cmd.Process.Pid, redactedDB(dsn))
	}
	_, err = bench.Ingest(ctx, opts)
	return err
}

// benchIndexCost measures what the events explorer's search indexes cost batch ingest:
// rounds with and without them alternate against a server of its own, on a database of
// its own that starts empty.
func benchIndexCost(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench index-cost", stdout)
	events := fs.Int("events", 240_000, "events sent in all (half with the indexes)")
	rounds := fs.Int("rounds", 8, "rounds (even; with and without alternate as with, without, without, with, …)")
	batch := fs.Int("batch", 1000, "events per batch request")
	batchClients := fs.Int("batch-clients", 4, "concurrent batch clients")
	indexes := fs.String("indexes", "audit_log_org_action_exact_ts_idx", "the audit_log indexes to measure, comma-separated")
	dbName := fs.String("database", "", "bench database (default: the configured one with _bench_indexes appended; recreated)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rounds < 2 || *rounds%2 != 0 || *events < 1000**rounds || *batch < 1 || *batch > ingest.MaxBatchArray || *batchClients < 1 {
		return models.Invalid("flags", "need an even --rounds ≥ 2, --events ≥ 1000 per round, 1 ≤ --batch ≤ 1000 and --batch-clients ≥ 1")
	}
	env, err := freshBench(ctx, cfg, *dbName, "_bench_indexes", stdout)
	if err != nil {
		return err
	}
	defer closeDB(env.db)
	const org = "bench-index-cost"
	if err := env.org(ctx, org, "Index cost benchmark"); err != nil {
		return err
	}
	raw, err := env.ingestKey(ctx, org)
	if err != nil {
		return err
	}
	srv, err := startServer(ctx, withDSN(cfg, env.dsn))
	if err != nil {
		return err
	}
	defer srv.stop()
	fmt.Fprintf(stdout, "server: %s (pid %d)\n", srv.url, srv.cmd.Process.Pid)
	_, err = bench.IndexCost(ctx, bench.IndexCostOptions{URL: srv.url, Key: raw, Org: org, Events: *events, BatchSize: *batch,
		BatchClients: *batchClients, Rounds: *rounds, Indexes: strings.Split(*indexes, ","), DB: env.db, DSN: env.dsn,
		Builder:   ingest.NewBuilder(models.NewPresetStore(env.db, nil), ingest.NewRetentionCatalog(env.db), env.sealer),
		ServerPID: srv.cmd.Process.Pid, Out: stdout})
	return err
}

// benchDetect measures batch ingest with detection off and on, in alternating rounds,
// against two servers of its own on one database that run no detection job
// (AUDITDB_DETECT_EVERY=off), one feeding detection as a server running it does: detection
// runs in this process as the job would, on the same database.
func benchDetect(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench detect", stdout)
	events := fs.Int("events", 640_000, "events sent in all (half with detection on)")
	batch := fs.Int("batch", 1000, "events per batch request")
	batchClients := fs.Int("batch-clients", 4, "concurrent batch clients")
	rounds := fs.Int("rounds", 8, "how many times detection off and on alternate")
	dbName := fs.String("database", "", "bench database (default: the configured one with _bench_detect appended; recreated)")
	org := fs.String("org", "bench-detect", "organization the events go to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rounds < 1 || *batch < 1 || *batch > ingest.MaxBatchArray || *batchClients < 1 || *events < 2**rounds**batch {
		return models.Invalid("flags", "need 1 ≤ --batch ≤ 1000, positive counts and --events ≥ 2 × --rounds × --batch")
	}
	env, err := freshBench(ctx, cfg, *dbName, "_bench_detect", stdout)
	if err != nil {
		return err
	}
	defer closeDB(env.db)
	db, dsn := env.db, env.dsn
	if err := env.org(ctx, *org, "Detection benchmark"); err != nil {
		return err
	}
	raw, err := env.ingestKey(ctx, *org)
	if err != nil {
		return err
	}
	off, err := startServer(ctx, withDSN(cfg, dsn), "AUDITDB_DETECT_EVERY=off", "AUDITDB_DETECT_FEED=false")
	if err != nil {
		return err
	}
	defer off.stop()
	on, err := startServer(ctx, withDSN(cfg, dsn), "AUDITDB_DETECT_EVERY=off", "AUDITDB_DETECT_FEED=true")
	if err != nil {
		return err
	}
	defer on.stop()
	fmt.Fprintf(stdout, "servers: %s (pid %d) for detection off, %s (pid %d, feeding detection) for detection on, on %s\n",
		off.url, off.cmd.Process.Pid, on.url, on.cmd.Process.Pid, redactedDB(dsn))
	_, err = bench.Detect(ctx, bench.DetectOptions{OffURL: off.url, OnURL: on.url, Key: raw, Org: *org, Events: *events,
		BatchSize: *batch, BatchClients: *batchClients, Rounds: *rounds, Every: defaultDetectEvery,
		ServerPIDs: []int{off.cmd.Process.Pid, on.cmd.Process.Pid}, DB: db,
		Detector: models.NewDetector(db, nil).WithHold(models.DefaultDetectHold), CatchUp: models.NewDetector(db, nil), Out: stdout})
	return err
}

// childServer is `auditdb serve` run by the benchmark, so its memory is its own.
type childServer struct {
	cmd *exec.Cmd
	url string
}

// startServer runs this binary's serve command on a free loopback port against cfg's
// database and waits until it answers /healthz.
func startServer(ctx context.Context, cfg config, env ...string) (*childServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.CommandContext(ctx, exe, "serve")
	cmd.Env = append(append(os.Environ(), "AUDITDB_DATABASE_URL="+cfg.DatabaseURL, "AUDITDB_ADDR="+addr), env...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	srv := &childServer{cmd: cmd, url: "http://" + addr}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(srv.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return srv, nil
			}
		}
	}
	srv.stop()
	return nil, fmt.Errorf("bench: the server did not come up on %s", addr)
}

func (s *childServer) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

func benchRetention(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench retention", stdout)
	events := fs.Int("events", 1_000_000, "events to seed (a fifth due for deletion, the rest for the archive)")
	dbName := fs.String("database", "", "bench database (default: the configured one with _bench_retention appended; recreated)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *events < 100 {
		return models.Invalid("--events", "need at least 100 events")
	}
	// The engine as serve runs the daily job, with serve's collector settings.
	tuneGC(os.Getenv)
	env, err := freshBench(ctx, cfg, *dbName, "_bench_retention", stdout)
	if err != nil {
		return err
	}
	defer closeDB(env.db)
	const org = "bench-retention"
	if err := env.org(ctx, org, "Retention benchmark"); err != nil {
		return err
	}
	_, ck, err := integrityKeys(cfg)
	if err != nil {
		return err
	}
	mlog := merkle.NewLog(env.db, ck)
	mlog.CheckpointEvery = time.Hour
	_, err = bench.Retention(ctx, bench.RetentionOptions{DB: env.db, Sealer: env.sealer, Log: mlog, Org: org,
		Events: *events, Now: time.Now().UTC(), Out: stdout})
	return err
}

func benchBundle(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench bundle", stdout)
	events := fs.Int("events", 100_000, "events to seed, all in the bundle's year")
	rounds := fs.Int("rounds", 3, "alternating rounds of bundle and baseline")
	sample := fs.Int("sample", 2000, "events proven one by one for the per-proof baseline")
	dbName := fs.String("database", "", "bench database (default: the configured one with _bench_bundle appended; recreated)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *events < 100 || *events > 1_000_000 {
		return models.Invalid("--events", "must be between 100 and 1,000,000 (a bundle's limit)")
	}
	if *rounds < 1 || *sample < 1 {
		return models.Invalid("--rounds", "--rounds and --sample must be at least 1")
	}
	env, err := freshBench(ctx, cfg, *dbName, "_bench_bundle", stdout)
	if err != nil {
		return err
	}
	defer closeDB(env.db)
	const org = "bench-bundle"
	if err := env.org(ctx, org, "Bundle benchmark"); err != nil {
		return err
	}
	_, ck, err := integrityKeys(cfg)
	if err != nil {
		return err
	}
	mlog := merkle.NewLog(env.db, ck)
	mlog.CheckpointEvery = 0
	_, err = bench.Bundle(ctx, bench.BundleOptions{DB: env.db, Sealer: env.sealer, Log: mlog, Org: org,
		Events: *events, Rounds: *rounds, Sample: *sample, Now: time.Now().UTC(), Out: stdout})
	return err
}

// benchSeal compares the two integrity schemes: Seal v2 / Seal v1 CPU per event and the
// throughput of sealing + binary COPY commit (the ingest writer's path) with each, in
// alternating rounds of one run.
func benchSeal(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench seal", stdout)
	events := fs.Int("events", 200_000, "events sealed per scheme and round (CPU comparison)")
	batches := fs.Int("batches", 40, "batches written per scheme and round (ingest comparison)")
	batch := fs.Int("batch", 1000, "events per batch")
	writers := fs.Int("writers", 2, "concurrent batch writers")
	rounds := fs.Int("rounds", 5, "alternating rounds of the two schemes")
	dbName := fs.String("database", "", "bench database (default: the configured one with _bench_seal appended; recreated)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *events < 1 || *batches < 1 || *batch < 1 || *batch > ingest.MaxBatchArray || *writers < 1 || *rounds < 1 {
		return models.Invalid("flags", "need positive counts and 1 ≤ --batch ≤ 1000")
	}
	env, err := freshBench(ctx, cfg, *dbName, "_bench_seal", stdout)
	if err != nil {
		return err
	}
	defer closeDB(env.db)
	const org = "bench-seal"
	if err := env.org(ctx, org, "Sealing benchmark"); err != nil {
		return err
	}
	_, err = bench.Seal(ctx, bench.SealOptions{DB: env.db, Sealer: env.sealer, Org: org, Events: *events, Batches: *batches,
		BatchSize: *batch, Writers: *writers, Rounds: *rounds, Out: stdout})
	return err
}

// benchMetrics measures the Prometheus instrumentation's cost to ingest: two servers of
// this build over one bench database, one with AUDITDB_METRICS=off, in alternating rounds.
func benchMetrics(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench metrics", stdout)
	batches := fs.Int("batches", 40, "batch requests per server and round")
	batch := fs.Int("batch", 500, "events per batch request")
	batchClients := fs.Int("batch-clients", 4, "concurrent batch clients")
	singles := fs.Int("singles", 4000, "single-event requests per server and round")
	concurrency := fs.Int("concurrency", 32, "concurrent single-event clients")
	rounds := fs.Int("rounds", 6, "rounds; each sends the same load to both servers, the order flipping every round")
	idleFor := fs.Duration("idle-for", 10*time.Second, "how long to measure the servers' CPU without load (their background jobs), to take it out")
	dbName := fs.String("database", "", "bench database (default: the configured one with _bench_metrics appended; recreated)")
	org := fs.String("org", "bench-metrics", "organization the events go to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rounds < 1 || *batches < 1 || *batch < 1 || *batch > ingest.MaxBatchArray || *batchClients < 1 || *singles < 100 || *concurrency < 1 {
		return models.Invalid("flags", "need 1 ≤ --batch ≤ 1000, --singles ≥ 100 and positive counts")
	}
	env, err := freshBench(ctx, cfg, *dbName, "_bench_metrics", stdout)
	if err != nil {
		return err
	}
	defer closeDB(env.db)
	db, dsn := env.db, env.dsn
	if err := env.org(ctx, *org, "Metrics benchmark"); err != nil {
		return err
	}
	_, ck, err := integrityKeys(cfg)
	if err != nil {
		return err
	}
	raw, err := env.ingestKey(ctx, *org)
	if err != nil {
		return err
	}
	// The servers' sequencer runs once a minute and their detection not at all: this
	// process sequences between phases, so neither server does that work for both.
	quiet := []string{"AUDITDB_METRICS_ADDR=", "AUDITDB_SEQUENCER_EVERY=1m", "AUDITDB_DETECT_EVERY=off"}
	on, err := startServer(ctx, withDSN(cfg, dsn), append(quiet, "AUDITDB_METRICS=on")...)
	if err != nil {
		return err
	}
	defer on.stop()
	off, err := startServer(ctx, withDSN(cfg, dsn), append(quiet, "AUDITDB_METRICS=off")...)
	if err != nil {
		return err
	}
	defer off.stop()
	fmt.Fprintf(stdout, "servers on %s: metrics on %s (pid %d), off %s (pid %d)\n", redactedDB(dsn),
		on.url, on.cmd.Process.Pid, off.url, off.cmd.Process.Pid)
	_, err = bench.Metrics(ctx, bench.MetricsOptions{
		On:  bench.MetricsServer{URL: on.url, PID: on.cmd.Process.Pid},
		Off: bench.MetricsServer{URL: off.url, PID: off.cmd.Process.Pid},
		Key: raw, Batches: *batches, BatchSize: *batch, BatchClients: *batchClients, Singles: *singles,
		Concurrency: *concurrency, Rounds: *rounds, IdleFor: *idleFor, Out: stdout,
		Sequence: func(ctx context.Context) error {
			_, err := merkle.NewLog(db, ck).Sequence(ctx, 10_000_000)
			return err
		},
	})
	return err
}

// benchReports measures report generation: the CSV of an organization's year of events
// against psql's \copy of the same rows, its peak RSS, and a PDF. Its database is kept
// between runs (seeding a million events takes minutes); --events more than it holds adds
// the difference.
func benchReports(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench reports", stdout)
	events := fs.Int("events", 1_000_000, "events in the organization's year")
	rounds := fs.Int("rounds", 3, "alternating rounds of auditdb's CSV and psql's \\copy")
	pdfRows := fs.Int("pdf-rows", 10_000, "event rows in the PDF")
	dbName := fs.String("database", "", "bench database (default: the configured one with _bench_reports appended)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *events < 1000 || *rounds < 1 || *pdfRows < 1 {
		return models.Invalid("--events", "need at least 1000 events, 1 round and 1 PDF row")
	}
	env, err := openBench(ctx, cfg, *dbName, "_bench_reports", stdout)
	if err != nil {
		return err
	}
	defer closeDB(env.db)
	const org = "bench-reports"
	if err := env.org(ctx, org, "Reports benchmark"); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return bench.Reports(ctx, bench.ReportsOptions{DB: env.db, DSN: env.dsn, Sealer: env.sealer, Org: org, Events: *events,
		Rounds: *rounds, PDFRows: *pdfRows, Now: time.Now().UTC(), Out: stdout,
		Child: func(a ...string) *exec.Cmd {
			cmd := exec.CommandContext(ctx, exe, append([]string{"bench", "reports-child", "--database", dbName0(env.dsn)}, a...)...)
			cmd.Env = os.Environ()
			return cmd
		}})
}

// dbName0 is the database name of dsn.
func dbName0(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(u.Path, "/")
}

// benchReportChild is the measured process of bench reports (not for direct use).
func benchReportChild(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench reports-child", stdout)
	dbName := fs.String("database", "", "")
	mode := fs.String("mode", "csv", "")
	org := fs.String("org", "", "")
	from := fs.String("from", "", "")
	to := fs.String("to", "", "")
	rows := fs.Int("rows", 10_000, "")
	out := fs.String("out", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err1 := time.Parse(time.RFC3339Nano, *from)
	t, err2 := time.Parse(time.RFC3339Nano, *to)
	if err1 != nil || err2 != nil || *out == "" || *dbName == "" {
		return models.Invalid("--from", "the report child needs --database, --from, --to (RFC 3339) and --out")
	}
	dsn, err := benchDSN(cfg.DatabaseURL, *dbName, "")
	if err != nil {
		return err
	}
	db, err := models.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer closeDB(db)
	return bench.ReportChild(ctx, db, *mode, *org, f, t, *rows, *out, stdout)
}

func benchCache(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench cache", stdout)
	events := fs.Int("events", 1_000_000, "events the dashboard's organization holds (shares the dashboard bench's database)")
	rounds := fs.Int("rounds", 10, "rounds alternating the modes")
	iterations := fs.Int("iterations", 30, "reads per mode and round")
	dbName := fs.String("database", "", "bench database (default: the configured one with _bench_dashboard_<events> appended)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *events < 1 || *rounds < 1 || *iterations < 1 {
		return models.Invalid("--events", "--events, --rounds and --iterations must be at least 1")
	}
	env, err := openBench(ctx, cfg, *dbName, fmt.Sprintf("_bench_dashboard_%d", *events), stdout)
	if err != nil {
		return err
	}
	defer closeDB(env.db)
	rdb, err := openRedis(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer rdb.Close()
	return bench.Cache(ctx, env.db, bench.CacheOptions{Events: *events, Rounds: *rounds, Iterations: *iterations,
		Redis: rdb, Prefix: cfg.RedisPrefix + "bench:", Out: stdout})
}

// benchGDPRExport measures a GDPR export of one subject's events (the background job,
// zstd, the chunks in PostgreSQL) against psql's \copy of the same rows, and its peak RSS.
// Its database starts empty on every run.
func benchGDPRExport(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench gdpr-export", stdout)
	events := fs.Int("events", 1_000_000, "events of the organization")
	subject := fs.Int("subject", 50_000, "events of the exported subject among them")
	rounds := fs.Int("rounds", 3, "alternating rounds of auditdb's export and psql's \\copy")
	dbName := fs.String("database", "", "bench database (default: the configured one with _bench_gdpr appended; recreated)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *subject < 10 || *events < 2**subject || *rounds < 1 {
		return models.Invalid("--subject", "need --subject of at least 10, --events at least twice that and 1 round")
	}
	env, err := freshBench(ctx, cfg, *dbName, "_bench_gdpr", stdout)
	if err != nil {
		return err
	}
	defer closeDB(env.db)
	const org = "bench-gdpr"
	if err := env.org(ctx, org, "GDPR benchmark"); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return bench.GDPRExport(ctx, bench.GDPRExportOptions{DB: env.db, DSN: env.dsn, Sealer: env.sealer, Org: org, Events: *events,
		Subject: *subject, Rounds: *rounds, Now: time.Now().UTC(), Out: stdout,
		Child: func(a ...string) *exec.Cmd {
			cmd := exec.CommandContext(ctx, exe, append([]string{"bench", "gdpr-export-child", "--database", dbName0(env.dsn)}, a...)...)
			cmd.Env = os.Environ()
			return cmd
		}})
}

// benchGDPRExportChild is the measured process of bench gdpr-export (not for direct use).
func benchGDPRExportChild(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench gdpr-export-child", stdout)
	dbName := fs.String("database", "", "")
	org := fs.String("org", "", "")
	request := fs.String("request", "", "")
	format := fs.String("format", "csv", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dbName == "" || *org == "" || *request == "" {
		return models.Invalid("--request", "the export child needs --database, --org and --request")
	}
	dsn, err := benchDSN(cfg.DatabaseURL, *dbName, "")
	if err != nil {
		return err
	}
	db, err := models.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer closeDB(db)
	return bench.GDPRExportChild(ctx, db, *org, *request, *format, stdout)
}

func benchErase(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("bench erase", stdout)
	events := fs.Int("events", 1_000_000, "events to seed into the organization")
	subject := fs.Int("subject-events", 10_000, "events of the erased subject (and of the baseline principal)")
	batch := fs.Int("batch", 0, "events per erasure transaction (0: the engine's default)")
	by := fs.String("by", "principal", "the subject: a principal or a target resource (a patient)")
	scheme := fs.String("scheme", "v3", "seal the events with sha256-jcs-v1, -v2 or -v3")
	dbName := fs.String("database", "", "bench database (default: the configured one with _bench_erase appended; recreated)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *subject < 1 || *events < 4**subject {
		return models.Invalid("--subject-events", "must be at least 1 and at most a quarter of --events")
	}
	if *by != "principal" && *by != "resource" {
		return models.Invalid("--by", "must be principal or resource")
	}
	if *scheme != "v1" && *scheme != "v2" && *scheme != "v3" {
		return models.Invalid("--scheme", "must be v1, v2 or v3")
	}
	env, err := freshBench(ctx, cfg, *dbName, "_bench_erase", stdout)
	if err != nil {
		return err
	}
	defer closeDB(env.db)
	const org = "bench-erase"
	if err := env.org(ctx, org, "Erasure benchmark"); err != nil {
		return err
	}
	_, ck, err := integrityKeys(cfg)
	if err != nil {
		return err
	}
	mlog := merkle.NewLog(env.db, ck)
	mlog.CheckpointEvery = time.Hour
	_, err = bench.Erasure(ctx, bench.ErasureOptions{DB: env.db, Sealer: env.sealer, Log: mlog, Org: org,
		Events: *events, SubjectEvents: *subject, Batch: *batch, ByResource: *by == "resource", V1: *scheme == "v1", V2: *scheme == "v2", Out: stdout})
	return err
}
