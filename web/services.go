package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"auditdb/handlers"
	"auditdb/models"
	"auditdb/models/bundle"
	"auditdb/models/erasure"
	"auditdb/models/gdpr"
	"auditdb/models/ingest"
	"auditdb/models/merkle"
	"auditdb/models/metrics"
	"auditdb/models/querycache"
	"auditdb/models/reports"
	"auditdb/models/session"
	"auditdb/policy"
)

// Services are every long-lived part the application runs on: the stores, the ingest
// writer, the Merkle log, the policy engine and the listeners that follow other instances.
// NewServices builds them all at once, so nothing can be left out.
//
// They live here, in web, rather than in cli: web is the lowest package that needs all of
// them, and its test harness (web/webtest) must build them the same way serve does, which
// it could not do through cli without importing a package above it. The command line
// opens the connections and calls NewServices; the jobs take only the parts they use, so
// jobs stays below web.
type Services struct {
	DB    *gorm.DB
	Redis *redis.Client // may be nil: features degrade to in-process state
	Log   *slog.Logger
	// DatabaseURL is where the session listener opens its LISTEN connection.
	DatabaseURL string
	// TrustedProxies are the reverse proxies (addresses and ranges, see ParseTrustedProxies)
	// whose X-Forwarded-For and X-Forwarded-Proto the server believes; requests from any
	// other peer have those headers ignored.
	TrustedProxies []netip.Prefix
	Now            func() time.Time

	Events   *models.EventStore
	Users    *models.UserStore
	Orgs     *models.OrgStore
	Sessions *session.Store
	// Sealer seals events with the server's signing key; the self-audit trail needs it.
	Sealer *models.Sealer
	Parts  *models.PartitionManager
	// Audit writes self-audit events (sealed) to the organization concerned.
	Audit   *models.AuditTrail
	Roles   *models.RoleStore
	Members *models.MemberStore
	Alerts  *models.AlertStore
	// AlertBadge caches each organization's active-alert count for the navigation.
	AlertBadge *handlers.AlertBadge
	// AlertDeliveries lists an alert's notifications for its page; nil hides them.
	AlertDeliveries handlers.AlertDeliveries
	// Detector runs detection passes and reports their lag; AlertRules are its settings.
	Detector   *models.Detector
	AlertRules *models.AlertRuleStore
	// Dashboard reads the dashboard's figures; SweepRuns keeps the integrity sweep's outcomes.
	Dashboard *models.DashboardStore
	SweepRuns *models.SweepRunStore
	// RetentionPolicies are the retention policies, statutory floors and legal holds.
	RetentionPolicies *models.RetentionPolicyStore
	// SavedViews are the events list's saved views.
	SavedViews *models.SavedViewStore
	// Archives are the organization's retention archives, checked on every read.
	Archives *models.ArchiveStore
	// PartitionConsole is the partitions page's view and actions.
	PartitionConsole *models.PartitionConsole
	// Policy is the Casbin engine: decisions, caches and change signals. Start runs it so
	// changes made on other instances reach this one.
	Policy *policy.Engine
	// Authz decides every request; it is Policy unless a benchmark swaps it.
	Authz Authorizer
	// LoginPerAccount and LoginPerAddress limit failed sign-ins.
	LoginPerAccount, LoginPerAddress *session.Throttle

	// Ingest and integrity.
	APIKeys     *models.APIKeyStore
	Presets     *models.PresetStore
	Policies    *ingest.RetentionCatalog
	DeadLetters *ingest.DeadLetterStore
	Answers     *ingest.IdempotencyStore
	Builder     *ingest.Builder
	// Writer is the group-commit writer over its own pgx pool; Start starts it.
	Writer *ingest.Writer
	Merkle *merkle.Log
	// Retention archives and deletes events by policy (the daily job, `auditdb retention run`).
	Retention *models.RetentionEngine
	// Sketches builds free-text search's per-day sketches (the hourly job, `auditdb search-sketch build`).
	Sketches  *models.SearchSketches
	Integrity *merkle.Verifier
	Replayer  *ingest.DeadLetterReplayer
	// Bundles writes evidence bundles of events (the events page's download).
	Bundles *bundle.Service

	// ErrorLog reads and writes the server's own errors; Errors queues them for it without
	// ever blocking the caller (5xx answers, panics, failed jobs, dead letters, failed
	// deliveries all go through Errors.Record). Start starts it; stop drains it last.
	ErrorLog *models.ErrorLogStore
	Errors   *models.ErrorWriter
	// Notifications: an organization's alert channels and the deliveries to them.
	Channels   *models.ChannelStore
	Deliveries *models.DeliveryStore

	// Reports: templates, schedules and executions; the runner runs executions in the
	// background; ReportLinks signs the expiring download links.
	Reports      *reports.Store
	ReportRunner *reports.Runner
	ReportLinks  *reports.Links

	// GDPR: data-subject requests; the runner runs their exports, erasures and
	// pseudonymizations in the background; GDPRLinks signs the exports' download links.
	GDPR       *gdpr.Store
	GDPRRunner *gdpr.Runner
	GDPRLinks  *reports.Links
	// Erasure is the erasure engine behind the runner (nil when a fake or none was given).
	Erasure *erasure.Engine

	// Signals follows the database's change notifications for the caches (nil without a
	// DatabaseURL: then nothing caches what another writer may change).
	Signals *models.Signals

	// StatementTimeout is the query budget of every console and API request but ingest
	// (see queryBudget); 0 turns it off.
	StatementTimeout time.Duration
	// PublicURL is the console's address as people reach it: state-changing requests from
	// a browser must come from it or from the request's own origin (see sameOrigin).
	PublicURL string
	// Health reports each component's state (database, Redis, cache hit ratio, partitions,
	// jobs, sequencer and detection lag), worst winning. Its cache and its jobs are set
	// by whoever runs them (HealthChecker.SetCache, MissedJobs before serving).
	Health *models.HealthChecker
	// SchemaVersion is the newest migration this build knows; /readyz answers 503 until
	// the database has it. "" skips that check.
	SchemaVersion string
	// Metrics says where /metrics is served (see MetricsMode).
	Metrics MetricsMode
	// QueryCache keeps the console's expensive reads (the dashboard's figures and the
	// reports' previews, see reports.Cached); Figures reads the dashboard through it.
	QueryCache *querycache.Cache
	Figures    handlers.DashboardReader
	// Perf reads the database's own statistics for the performance page and the snapshots.
	Perf *models.PerfStore
}

// MetricsMode is how the Prometheus metrics are served.
type MetricsMode int

// The metrics modes.
const (
	// MetricsLoopback records and serves /metrics on the main listener, to loopback
	// clients only (the default).
	MetricsLoopback MetricsMode = iota
	// MetricsSeparate records, and the caller serves MetricsHandler on a listener of its
	// own; the main listener answers 404 for /metrics.
	MetricsSeparate
	// MetricsOff neither records nor serves.
	MetricsOff
)

// ServicesConfig is what NewServices builds on: connections opened by the caller (who
// closes them after the services have stopped), the keys and the settings.
type ServicesConfig struct {
	// DB is required to serve; it may be nil only to assemble the routes without serving
	// (a test of the URL map).
	DB *gorm.DB
	// Redis may be nil: every use of it degrades to in-process state.
	Redis *redis.Client
	// Pool carries the ingest writer's transactions; like DB it may be nil only when
	// nothing is served.
	Pool *pgxpool.Pool
	// DatabaseURL is where the change signals' LISTEN connection goes; "" runs without
	// (the policy engine then compares versions every second, and nothing else caches).
	DatabaseURL string
	// Sealer signs events and the self-audit trail; CheckpointKey signs Merkle
	// checkpoints. Both are required.
	Sealer        *models.Sealer
	CheckpointKey *merkle.CheckpointKey
	// Log receives the services' own logging; nil discards it.
	Log *slog.Logger
	// Writer tunes the group-commit writer.
	Writer ingest.WriterConfig
	// Policy tunes the policy engine (its periodic version check).
	Policy policy.Options
	// RedisPrefix starts every Redis key (the shared authorization decisions), so that two
	// deployments may share one Redis; "" is "auditdb:". It also names the sign-in counts
	// kept in PostgreSQL. Every instance of one deployment uses the same.
	RedisPrefix string
	// TrustedProxies: see Services.TrustedProxies.
	TrustedProxies []netip.Prefix
	// FollowCaches subscribes the API-key and session caches to the change signals,
	// without which those stores never cache (every request reads the database, so a
	// change made elsewhere counts at once). Servers turn it on; the policy engine follows
	// the signals either way.
	FollowCaches bool
	// SMTP is the email notifications' server; nil disables email channels.
	SMTP *models.SMTPConfig
	// PublicURL is the console's public address, for links in notifications.
	PublicURL string
	// StatementTimeout is the query budget of console and API requests (ingest and jobs
	// have their own); 0 is models.DefaultStatementTimeout, below 0 none.
	StatementTimeout time.Duration
	// SchemaVersion: see Services.SchemaVersion.
	SchemaVersion string
	// Metrics: see Services.Metrics. MetricsOff also switches recording off for the whole
	// process (metrics.SetEnabled).
	Metrics MetricsMode
	// QueryCache bounds the query cache (zero fields: the defaults); Perf tunes the
	// performance report (zero: models.DefaultPerfOptions).
	QueryCache querycache.Config
	Perf       models.PerfOptions
	// GDPREngine erases and pseudonymizes subjects' events and looks pseudonyms up; nil
	// refuses those operations (the requests, exports and restrictions work without it).
	GDPREngine gdpr.Engine
	// PseudonymKey (32 bytes, erasure.LoadPseudonymKey) builds the real erasure engine
	// when GDPREngine is nil; with neither, erasure, pseudonymization and lookups answer 503.
	PseudonymKey []byte
}

// NewServices builds every store and engine over c's connections. Nothing runs until
// Start. It fails only when c lacks the signing or checkpoint key.
func NewServices(c ServicesConfig) (*Services, error) {
	if c.Sealer == nil {
		return nil, errors.New("web: services need the signing key (ServicesConfig.Sealer)")
	}
	if c.CheckpointKey == nil {
		return nil, errors.New("web: services need the checkpoint key (ServicesConfig.CheckpointKey)")
	}
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	prefix := c.RedisPrefix
	if prefix == "" {
		prefix = "auditdb:"
	}
	c.Policy.KeyPrefix = prefix
	db, rdb := c.DB, c.Redis
	parts := models.NewPartitionManager(db)
	trail := models.NewAuditTrail(db, c.Sealer, parts)
	roles, members := models.NewRoleStore(db, trail), models.NewMemberStore(db, trail)
	engine := policy.New(db, rdb, roles, members, log, c.Policy)
	orgs := models.NewAuditedOrgStore(db, trail)
	// This instance applies its own policy changes from its very next request; the
	// database's signals tell the other instances.
	for _, r := range []*models.PolicyRefresh{&roles.Refresh, &members.Refresh, &orgs.Refresh} {
		r.Set(engine.Refresh)
	}
	s := &Services{
		DB: db, Redis: rdb, Log: log,
		DatabaseURL:       c.DatabaseURL,
		PublicURL:         c.PublicURL,
		TrustedProxies:    c.TrustedProxies,
		StatementTimeout:  statementTimeout(c.StatementTimeout),
		Now:               time.Now,
		Events:            models.NewEventStore(db),
		Users:             models.NewAuditedUserStore(db, trail),
		Orgs:              orgs,
		Sessions:          session.NewStore(db, nil),
		Sealer:            c.Sealer,
		Parts:             parts,
		Audit:             trail,
		Roles:             roles,
		Members:           members,
		Alerts:            models.NewAlertStore(db).WithAudit(trail),
		Detector:          models.NewDetector(db, nil).WithHold(models.DefaultDetectHold),
		AlertRules:        models.NewAlertRuleStore(db, trail),
		Dashboard:         models.NewDashboardStore(db),
		SweepRuns:         models.NewSweepRunStore(db),
		RetentionPolicies: models.NewRetentionPolicyStore(db, trail),
		SavedViews:        models.NewSavedViewStore(db, trail),
		PartitionConsole:  models.NewPartitionConsole(db, parts, trail),
		Policy:            engine,
		Authz:             engine,
		LoginPerAccount:   session.NewThrottle(db, prefix+"login:", 5, 15*time.Minute).WithLog(log),
		LoginPerAddress:   session.NewThrottle(db, prefix+"login:", 20, 15*time.Minute).WithLog(log),
		APIKeys:           models.NewAPIKeyStore(db, trail),
		Presets:           models.NewPresetStore(db, trail),
		Policies:          ingest.NewRetentionCatalog(db),
		DeadLetters:       ingest.NewDeadLetterStore(db),
		Answers:           ingest.NewIdempotencyStore(db),
		Merkle:            merkle.NewLog(db, c.CheckpointKey),
	}
	s.Retention = models.NewRetentionEngine(db, trail, parts)
	s.Sketches = models.NewSearchSketches(db, time.Now)
	s.Archives = models.NewArchiveStore(db, trail, s.Alerts)
	s.ErrorLog = models.NewErrorLogStore(db, parts)
	s.Errors = models.NewErrorWriter(s.ErrorLog, models.ErrorWriterConfig{}, log)
	s.Channels = models.NewChannelStore(db, trail, nil, c.SMTP)
	s.Deliveries = models.NewDeliveryStore(db, trail, log, c.PublicURL, c.SMTP, nil)
	s.Builder = ingest.NewBuilder(s.Presets, s.Policies, s.Sealer)
	s.Writer = ingest.NewWriter(c.Pool, parts, s.DeadLetters, c.Writer, log)
	s.Writer.ErrorSink = s.Errors.Record
	s.Deliveries.ErrorSink = s.Errors.Record
	s.AlertDeliveries = s.Deliveries
	s.Integrity = merkle.NewVerifier(db, s.Sealer, s.Merkle)
	s.Bundles = bundle.NewService(db, s.Merkle, s.Sealer)
	s.Replayer = ingest.NewDeadLetterReplayer(s.DeadLetters, s.Answers, s.Builder, s.Writer, s.Audit)
	s.AlertBadge = handlers.NewAlertBadge(s.Alerts, 10*time.Second)
	s.SchemaVersion, s.Metrics = c.SchemaVersion, c.Metrics
	metrics.SetEnabled(c.Metrics != MetricsOff)
	s.Health = &models.HealthChecker{
		Ping:         models.Pinger(db),
		Partitions:   s.PartitionConsole.PartitionRecommendations,
		SequencerLag: s.Merkle.QueueLag,
		DetectionLag: s.Detector.MaxLag,
	}
	if rdb != nil {
		s.Health.Redis = func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	}
	if db != nil {
		metrics.SetLags(s.Merkle.QueueLag, s.Detector.MaxLag)
		if sqlDB, err := db.DB(); err == nil {
			metrics.SetPool("console", func() metrics.PoolStats {
				st := sqlDB.Stats()
				return metrics.PoolStats{Max: int64(st.MaxOpenConnections), Open: int64(st.OpenConnections),
					InUse: int64(st.InUse), Idle: int64(st.Idle), Waits: st.WaitCount, WaitTime: st.WaitDuration}
			})
		}
	}
	if c.Pool != nil {
		pool := c.Pool
		metrics.SetPool("ingest", func() metrics.PoolStats {
			st := pool.Stat()
			return metrics.PoolStats{Max: int64(st.MaxConns()), Open: int64(st.TotalConns()), InUse: int64(st.AcquiredConns()),
				Idle: int64(st.IdleConns()), Waits: st.EmptyAcquireCount(), WaitTime: st.EmptyAcquireWaitTime(),
				Acquires: st.AcquireCount(), AcquireTime: st.AcquireDuration(), Canceled: st.CanceledAcquireCount()}
		})
	}
	s.Reports = reports.NewStore(db, trail)
	s.ReportLinks = reports.NewLinks([]byte(c.Sealer.Sign("auditdb report download link key v1")))
	s.ReportRunner = reports.NewRunner(db, s.Reports, log)
	s.ReportRunner.Link = func(org, exec string, f reports.File) string {
		return c.PublicURL + "/reports/executions/" + exec + "/files/" + f.Format + "?" +
			s.ReportLinks.Query(org, exec, f.Format, reports.LinkTTL)
	}
	// Scheduled deliveries: webhooks through the alert channels' sender under the report
	// rule (public addresses only), email through the SMTP server.
	s.Reports.Resolver = net.DefaultResolver
	s.ReportRunner.Deliver = &reports.FileDeliverer{Store: s.Reports, Send: models.NewReportSender(nil, c.SMTP)}
	s.ReportRunner.Evidence = func(ctx context.Context, org string, f models.EventFilter, w io.Writer) (int64, error) {
		sum, err := bundle.Write(ctx, db, s.Merkle, s.Sealer, org, f, w)
		return sum.Events, err
	}
	s.GDPR = gdpr.NewStore(db, trail)
	s.GDPRLinks = reports.NewLinks([]byte(c.Sealer.Sign("auditdb gdpr export link key v1")))
	s.GDPRRunner = gdpr.NewRunner(db, s.GDPR, trail, c.GDPREngine, log)
	qc := c.QueryCache
	if qc.Prefix == "" {
		qc.Prefix = prefix
	}
	s.QueryCache = querycache.New(db, rdb, qc, log)
	s.Figures = querycache.Dashboard{Source: s.Dashboard, Cache: s.QueryCache}
	s.ReportRunner.Gen = reports.Cached{Gen: s.ReportRunner.Gen, DB: db, Cache: s.QueryCache}
	if c.GDPREngine == nil && len(c.PseudonymKey) > 0 {
		s.Erasure = erasure.NewEngine(db, trail, c.PseudonymKey)
		s.Erasure.Cache = s.QueryCache
		s.GDPRRunner.Engine = &erasureEngine{s.Erasure}
	}
	perf := c.Perf
	if perf == (models.PerfOptions{}) {
		perf = models.DefaultPerfOptions()
	}
	s.Perf = models.NewPerfStore(db, perf).WithAudit(trail)
	if c.Pool != nil {
		s.Perf.WithWriterPool(c.Pool)
	}
	s.Health.SetCache(s.QueryCache)
	metrics.SetQueryCache(func() metrics.CacheStats {
		st := s.QueryCache.Stats()
		return metrics.CacheStats{Hits: st.Hits, Misses: st.Misses, Evictions: st.Evictions, Entries: st.Entries, Bytes: st.Bytes}
	})
	if c.DatabaseURL != "" {
		s.Signals = models.NewSignals(c.DatabaseURL, log)
		engine.Follow(s.Signals)
		s.QueryCache.Follow(s.Signals)
		if c.FollowCaches {
			s.APIKeys.Follow(s.Signals)
			s.Sessions.Follow(s.Signals)
		}
	}
	return s, nil
}

// Start starts the error log's writer, the group-commit writer, the change signals and
// the policy engine's version checks. They run until stop; stop ends them, then closes
// the group-commit writer, which answers everything queued unless ctx ends first, then
// drains the error log (the last errors included), and returns the writers' errors.
func (s *Services) Start(ctx context.Context) (stop func(ctx context.Context) error) {
	s.Errors.Start()
	s.Writer.Start()
	listeners := []func(context.Context){func(ctx context.Context) { s.Policy.Run(ctx) }}
	if s.Signals != nil {
		listeners = append(listeners, s.Signals.Run)
	}
	listenCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var running sync.WaitGroup
	for _, listen := range listeners {
		running.Add(1)
		go func() {
			defer running.Done()
			listen(listenCtx)
		}()
	}
	return func(ctx context.Context) error {
		cancel()
		running.Wait()
		s.ReportRunner.Shutdown(ctx)
		s.GDPRRunner.Shutdown(ctx)
		werr := s.Writer.Close(ctx)
		return errors.Join(werr, s.Errors.Close(ctx))
	}
}

// statementTimeout is the configured query budget: the default for 0, none below 0.
func statementTimeout(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return models.DefaultStatementTimeout
	case d < 0:
		return 0
	}
	return d
}
