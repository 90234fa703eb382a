// Package web assembles the Fiber application: the URL map (routes.go), middleware,
// the error handler and static assets.
package web

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/policy"
)

// Deps are what the web layer needs; main builds them once.
type Deps struct {
	DB       *gorm.DB
	Redis    *redis.Client // may be nil: features degrade to in-process state
	Log      *slog.Logger
	Events   *models.EventStore
	Users    *models.UserStore
	Orgs     *models.OrgStore
	Sessions *models.SessionStore
	// Sealer seals events with the server's signing key; the self-audit trail needs it.
	Sealer *models.Sealer
	Parts  *models.PartitionManager
	// Audit writes self-audit events (sealed) to the organization concerned.
	Audit   *models.AuditTrail
	Roles   *models.RoleStore
	Members *models.MemberStore
	// Policy is the Casbin engine: decisions, caches and change signals. Run it (Run) for
	// the life of the server so changes made on other instances reach this one.
	Policy *policy.Engine
	// Authz decides every request; it is Policy unless a benchmark swaps it.
	Authz Authorizer
	// LoginPerAccount and LoginPerAddress limit failed sign-ins.
	LoginPerAccount, LoginPerAddress *models.Throttle
	Now                              func() time.Time
	// TrustedProxies are the reverse proxies (addresses and ranges, see ParseTrustedProxies)
	// whose X-Forwarded-For and X-Forwarded-Proto the server believes; requests from any
	// other peer have those headers ignored.
	TrustedProxies []netip.Prefix

	// Ingest and integrity.
	APIKeys     *models.APIKeyStore
	Presets     *models.PresetStore
	Policies    *models.PolicyCatalog
	DeadLetters *models.DeadLetterStore
	Answers     *models.IdempotencyStore
	// Set by WithIngest: they need the group-commit writer and the Merkle log.
	Builder   *models.EventBuilder
	Writer    *models.Writer
	Merkle    *models.MerkleLog
	Integrity *models.Integrity
	Replayer  *models.DeadLetterReplayer
}

// NewDeps builds Deps over db and rdb with the standard stores and limits; sealer signs
// the self-audit events.
func NewDeps(db *gorm.DB, rdb *redis.Client, sealer *models.Sealer, log *slog.Logger) Deps {
	parts := models.NewPartitionManager(db)
	trail := models.NewAuditTrail(db, sealer, parts)
	roles, members := models.NewRoleStore(db, trail), models.NewMemberStore(db, trail)
	engine := policy.New(db, rdb, roles, members, log, policy.Options{})
	return Deps{
		DB: db, Redis: rdb, Log: log,
		Events:          models.NewEventStore(db),
		Users:           models.NewUserStore(db),
		Orgs:            models.NewAuditedOrgStore(db, trail),
		Sessions:        models.NewSessionStore(db, nil),
		Sealer:          sealer,
		Parts:           parts,
		Audit:           trail,
		Roles:           roles,
		Members:         members,
		Policy:          engine,
		Authz:           engine,
		LoginPerAccount: models.NewThrottle(rdb, "auditdb:login:", 5, 15*time.Minute),
		LoginPerAddress: models.NewThrottle(rdb, "auditdb:login:", 20, 15*time.Minute),
		Now:             time.Now,
		APIKeys:         models.NewAPIKeyStore(db, rdb, trail),
		Presets:         models.NewPresetStore(db, trail),
		Policies:        models.NewPolicyCatalog(db),
		DeadLetters:     models.NewDeadLetterStore(db),
		Answers:         models.NewIdempotencyStore(db),
	}
}

// WithIngest adds the ingest parts: the event builder (sealing with d.Sealer), the
// group-commit writer w (started by the caller), the Merkle log and the verifiers built
// on them.
func (d *Deps) WithIngest(w *models.Writer, log *models.MerkleLog) {
	d.Builder = models.NewEventBuilder(d.Presets, d.Policies, d.Sealer)
	d.Writer, d.Merkle = w, log
	d.Integrity = models.NewIntegrity(d.DB, d.Sealer, log)
	d.Replayer = models.NewDeadLetterReplayer(d.DeadLetters, d.Answers, d.Builder, w, d.Audit)
}

// New returns the console and API application. It panics when d lacks the signing key,
// the authorizer or the ingest parts: the console must neither run unaudited nor
// unguarded, and the API needs its writer.
func New(d Deps) *fiber.App {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Sealer == nil || d.Audit == nil {
		panic("web: Deps.Sealer and Deps.Audit are required (self-audit needs the signing key)")
	}
	if d.Authz == nil || d.Policy == nil {
		panic("web: Deps.Policy and Deps.Authz are required")
	}
	if d.Writer == nil || d.Merkle == nil {
		panic("web: Deps lacks the ingest writer and Merkle log; call WithIngest")
	}
	app := fiber.New(fiber.Config{
		AppName:                 "auditdb",
		ErrorHandler:            errorHandler(d.Log),
		DisableStartupMessage:   true,
		BodyLimit:               bodyLimit,
		ReadTimeout:             30 * time.Second,
		WriteTimeout:            60 * time.Second,
		IdleTimeout:             2 * time.Minute,
		EnableTrustedProxyCheck: true,
		TrustedProxies:          proxies(d.TrustedProxies).fiberList(),
		ProxyHeader:             fiber.HeaderXForwardedFor,
	})
	app.Use(forwardedClient(d.TrustedProxies))
	app.Use(serverTiming)
	app.Use(recover.New())
	app.Use(securityHeaders)
	app.Use(decodeBody(bodyLimit))
	routes(app, d)
	return app
}
