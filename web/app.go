// Package web assembles the Fiber application: the URL map (routes.go), middleware,
// the error handler and static assets.
package web

import (
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"auditdb/models"
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
	// LoginPerAccount and LoginPerAddress limit failed sign-ins.
	LoginPerAccount, LoginPerAddress *models.Throttle
	Now                              func() time.Time
	// TrustProxy makes Fiber read the client address and scheme from X-Forwarded-* headers.
	TrustProxy bool

	// Ingest and integrity.
	APIKeys     *models.APIKeyStore
	Presets     *models.PresetStore
	Policies    *models.PolicyCatalog
	DeadLetters *models.DeadLetterStore
	Answers     *models.IdempotencyStore
	// Set by WithIngest, since they need the server's keys and the writer's pool.
	Builder   *models.EventBuilder
	Writer    *models.Writer
	Merkle    *models.MerkleLog
	Integrity *models.Integrity
	Replayer  *models.DeadLetterReplayer
}

// NewDeps builds Deps over db and rdb with the standard stores and limits.
func NewDeps(db *gorm.DB, rdb *redis.Client, log *slog.Logger) Deps {
	return Deps{
		DB: db, Redis: rdb, Log: log,
		Events:          models.NewEventStore(db),
		Users:           models.NewUserStore(db),
		Orgs:            models.NewOrgStore(db),
		Sessions:        models.NewSessionStore(db, nil),
		LoginPerAccount: models.NewThrottle(rdb, "auditdb:login:", 5, 15*time.Minute),
		LoginPerAddress: models.NewThrottle(rdb, "auditdb:login:", 20, 15*time.Minute),
		Now:             time.Now,
		APIKeys:         models.NewAPIKeyStore(db, rdb),
		Presets:         models.NewPresetStore(db),
		Policies:        models.NewPolicyCatalog(db),
		DeadLetters:     models.NewDeadLetterStore(db),
		Answers:         models.NewIdempotencyStore(db),
	}
}

// WithIngest adds what needs the server's keys: the event builder (which seals with
// sealer), the group-commit writer w (started by the caller), the Merkle log and the
// verifiers built on them.
func (d *Deps) WithIngest(sealer *models.Sealer, w *models.Writer, log *models.MerkleLog) {
	d.Builder = models.NewEventBuilder(d.Presets, d.Policies, sealer)
	d.Writer, d.Merkle = w, log
	d.Integrity = models.NewIntegrity(d.DB, sealer, log)
	d.Replayer = models.NewDeadLetterReplayer(d.DeadLetters, d.Answers, d.Builder, w)
}

// New returns the console and API application. It panics when d lacks the ingest parts
// (see WithIngest): a programming error, caught at start-up.
func New(d Deps) *fiber.App {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Writer == nil || d.Merkle == nil {
		panic("web: Deps lacks the ingest writer and Merkle log; call WithIngest")
	}
	app := fiber.New(fiber.Config{
		AppName:                 "auditdb",
		ErrorHandler:            errorHandler(d.Log),
		DisableStartupMessage:   true,
		BodyLimit:               10 << 20,
		ReadTimeout:             30 * time.Second,
		WriteTimeout:            60 * time.Second,
		IdleTimeout:             2 * time.Minute,
		EnableTrustedProxyCheck: d.TrustProxy,
		ProxyHeader:             proxyHeader(d.TrustProxy),
	})
	app.Use(serverTiming)
	app.Use(recover.New())
	app.Use(securityHeaders)
	routes(app, d)
	return app
}

func proxyHeader(trust bool) string {
	if trust {
		return fiber.HeaderXForwardedFor
	}
	return ""
}
