// Package webtest drives the whole Fiber application in tests, over the real PostgreSQL and
// Redis: it creates organizations and users, signs in and sends requests with the session
// cookie and CSRF token, through app.Test.
package webtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"auditdb/migrations"
	"auditdb/models"
	"auditdb/models/gdpr"
	"auditdb/models/ingest"
	"auditdb/models/merkle"
	"auditdb/models/pgtest"
	"auditdb/policy"
	"auditdb/web"
)

// Env is one application over the package's test database.
type Env struct {
	T   testing.TB
	App *fiber.App
	DB  *gorm.DB
	// Services are what the application runs on, built by web.NewServices as serve
	// builds them.
	Services *web.Services
	Sealer   *models.Sealer
	Parts    *models.PartitionManager
	Log      *merkle.Log
	// Pool is the ingest writer's pgx pool.
	Pool *pgxpool.Pool
	opts Options
}

// TestSigningKey is the signing key of every Env.
const TestSigningKey = "test-signing-key-0123456789abcdef"

var counter atomic.Int64

// Options tune New.
type Options struct {
	Writer ingest.WriterConfig // the group-commit writer's settings
	// Redis is the application's Redis client; nil is the local Redis. A client on an
	// address where nothing listens stands for a Redis outage.
	Redis *redis.Client
	// FollowCaches lets the API-key and session stores cache while they follow the
	// database's change signals, as serve does; off, they read the database on every
	// request, so a test can change a row behind their back and see it at once.
	FollowCaches bool
	// TrustedProxies are the addresses (IPs or CIDR ranges) whose X-Forwarded-* headers
	// the application believes.
	TrustedProxies []string
	// StatementTimeout is the requests' query budget; 0 is the server's default.
	StatementTimeout time.Duration
	// Metrics is where /metrics is served (the default: on the main listener, to
	// loopback clients).
	Metrics web.MetricsMode
	// DB, when set, is the application's database handle instead of the package's test
	// database (one whose migration history is behind, or one that is closed, stands for
	// a database not ready). The ingest writer's pool stays on the test database.
	DB *gorm.DB
	// GDPREngine replaces the erasure engine behind the GDPR pages with a fake (see
	// models/gdpr/gdprtest); nil: the real engine (models/erasure) under a fixed test key.
	GDPREngine gdpr.Engine
}

// New builds the application over the test database and the local Redis, with a started
// ingest writer (closed when the test ends) and a Merkle log that checkpoints on every
// Sequence. The login limits use a key prefix unique to this Env so tests do not share
// counters.
func New(t testing.TB, opts ...Options) *Env {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	rdb := o.Redis
	if rdb == nil {
		rdb = pgtest.Redis(t)
	}
	db := o.DB
	if db == nil {
		db = pgtest.DB(t)
	}
	return newEnv(t, db, rdb, o)
}

// newEnv builds an application over db and rdb whose policy engine and API-key cache follow
// changes made by other instances through the database's signals alone (the periodic
// version check is off, so a test of cross-instance invalidation cannot pass by polling).
func newEnv(t testing.TB, db *gorm.DB, rdb *redis.Client, o Options) *Env {
	t.Helper()
	sealer, err := models.NewSealer([]byte(TestSigningKey))
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := web.ParseTrustedProxies(strings.Join(o.TrustedProxies, ","))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := merkle.NewCheckpointKey([]byte("webtest-checkpoint-seed-01234567"))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := models.OpenPool(context.Background(), pgtest.DSN(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // after the writer has stopped (cleanups run last in, first out)
	svc, err := web.NewServices(web.ServicesConfig{
		DB: db, Redis: rdb, Pool: pool, DatabaseURL: pgtest.DSN(t),
		Sealer: sealer, CheckpointKey: ck, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Writer:           o.Writer,
		Policy:           policy.Options{PollInterval: -1},
		FollowCaches:     o.FollowCaches,
		TrustedProxies:   trusted,
		StatementTimeout: o.StatementTimeout,
		RedisPrefix:      fmt.Sprintf("auditdb:test:%d:%d:", time.Now().UnixNano(), counter.Add(1)),
		SchemaVersion:    migrations.Latest(),
		Metrics:          o.Metrics,
		GDPREngine:       o.GDPREngine,
		PseudonymKey:     bytes.Repeat([]byte{0x5a}, 32),
	})
	if err != nil {
		t.Fatal(err)
	}
	svc.Merkle.CheckpointEvery = 0
	stop := svc.Start(context.Background())
	t.Cleanup(func() { stop(context.Background()) })
	return &Env{T: t, App: web.New(svc), DB: db, Services: svc, Sealer: sealer, Parts: svc.Parts, Log: svc.Merkle, Pool: pool, opts: o}
}

// Serve runs the application on a loopback port until the test ends and returns its base
// URL, for what app.Test cannot carry (bodies over the size limit, concurrent clients).
func (e *Env) Serve() string {
	e.T.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.T.Fatal(err)
	}
	go e.App.Listener(ln)
	e.T.Cleanup(func() { e.App.ShutdownWithTimeout(5 * time.Second) })
	return "http://" + ln.Addr().String()
}

// APIKey creates an API key of org with scope and returns it.
func (e *Env) APIKey(org, scope string) string {
	e.T.Helper()
	raw, _, err := e.Services.APIKeys.Create(context.Background(), org, "test key", scope, models.SystemActor("webtest"))
	if err != nil {
		e.T.Fatal(err)
	}
	return raw
}

// Sequence appends every committed event to the Merkle logs and publishes checkpoints.
func (e *Env) Sequence() {
	e.T.Helper()
	if _, err := e.Log.Sequence(context.Background(), 1_000_000); err != nil {
		e.T.Fatal(err)
	}
}

// API sends an API request with "Authorization: Bearer key" (none when key is ""), the
// body with contentType, and extra headers given as name, value pairs.
func (e *Env) API(method, path, key, contentType, body string, headers ...string) Response {
	e.T.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return e.Anonymous().Do(req)
}

// Twin returns a second application over the same database and Redis, as a second
// server instance behind a load balancer would be.
func (e *Env) Twin() *Env {
	e.T.Helper()
	return newEnv(e.T, e.DB, e.Services.Redis, Options{FollowCaches: e.opts.FollowCaches})
}

// TwinWithoutRedis is Twin for an instance whose Redis is unreachable (a closed port).
func (e *Env) TwinWithoutRedis() *Env {
	e.T.Helper()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	e.T.Cleanup(func() { dead.Close() })
	return newEnv(e.T, e.DB, dead, Options{FollowCaches: e.opts.FollowCaches})
}

// Unique returns a short id unique within the test run, for organization ids and emails.
func Unique(prefix string) string {
	return fmt.Sprintf("%s%d-%d", prefix, time.Now().UnixNano()%1_000_000_000, counter.Add(1))
}

// Org creates an organization with a unique id and returns the id.
func (e *Env) Org(prefix string) string {
	e.T.Helper()
	id := Unique(prefix)
	if _, err := e.Services.Orgs.Create(context.Background(), id, "Org "+id); err != nil {
		e.T.Fatal(err)
	}
	return id
}

// Password is the password of every user made by User.
const Password = "correct horse battery staple"

// User creates a user with a role in org (or a superadmin when org is "") and returns the
// email.
func (e *Env) User(org, role string) string {
	e.T.Helper()
	return e.UserWithEmail(org, role, Unique("user")+"@example.test")
}

// UserWithEmail is User with a chosen email.
func (e *Env) UserWithEmail(org, role, email string) string {
	e.T.Helper()
	nu := models.NewUser{Email: email, Password: Password, OrgID: org, Role: role, Superadmin: org == ""}
	if _, err := e.Services.Users.Create(context.Background(), nu); err != nil {
		e.T.Fatal(err)
	}
	// The user store (as the CLI uses it) has no refresh hook: apply the membership now
	// rather than when the database's signal arrives.
	e.Services.Policy.Refresh(context.Background())
	return email
}

// Events seals and writes events (OrganizationID, Timestamp, Action, Status must be set;
// the rest defaults) and returns them with the ids the database gave them.
func (e *Env) Events(evs ...models.Event) []models.Event {
	e.T.Helper()
	ctx := context.Background()
	for i := range evs {
		ev := &evs[i]
		if ev.DataClassification == "" {
			ev.DataClassification = "INTERNAL"
		}
		if ev.RetentionPolicy == "" {
			ev.RetentionPolicy = "standard"
		}
		if ev.EventVersion == "" {
			ev.EventVersion = "1.0"
		}
		if err := e.Sealer.Seal(ev); err != nil {
			e.T.Fatal(err)
		}
	}
	if _, err := ingest.CopyEvents(ctx, e.DB, e.Parts, evs); err != nil {
		e.T.Fatal(err)
	}
	for i := range evs {
		err := e.DB.Raw(`SELECT id FROM audit_log WHERE organization_id = ? AND hash = ?`, evs[i].OrganizationID, evs[i].Hash).
			Scan(&evs[i].ID).Error
		if err != nil || evs[i].ID == 0 {
			e.T.Fatalf("webtest: find written event: %v", err)
		}
	}
	return evs
}

// Client is a browser-like session against Env's app: it keeps cookies and the CSRF token.
type Client struct {
	env     *Env
	cookies map[string]string
	CSRF    string
}

// Anonymous returns a client without a session.
func (e *Env) Anonymous() *Client { return &Client{env: e, cookies: map[string]string{}} }

var csrfInput = regexp.MustCompile(`name="_csrf"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="_csrf"`)

// renderedToken matches the CSRF tokens a page carries: _csrf fields and the layout's
// hx-headers (JSON, HTML-escaped).
var renderedToken = regexp.MustCompile(`(name="_csrf"[^>]*value=")[^"]*|(X-CSRF-Token(?:&#34;|&quot;|"):(?:&#34;|&quot;|"))[A-Za-z0-9_-]*`)

// WithoutTokens returns body with every rendered CSRF token replaced by TOKEN: tokens are
// masked afresh on every response, so two answers compare equal only without them.
func WithoutTokens(body string) string {
	return renderedToken.ReplaceAllString(body, "${1}${2}TOKEN")
}

// Login signs in as email with Password and fails the test unless it succeeds.
func (e *Env) Login(email string) *Client {
	e.T.Helper()
	c := e.Anonymous()
	resp := c.PostForm("/login", url.Values{"email": {email}, "password": {Password}})
	if resp.StatusCode != http.StatusSeeOther {
		e.T.Fatalf("webtest: login as %s: status %d: %s", email, resp.StatusCode, resp.Body)
	}
	page := c.Get("/")
	if page.StatusCode != http.StatusOK {
		e.T.Fatalf("webtest: dashboard after login: status %d", page.StatusCode)
	}
	return c
}

// Response is a read response.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       string
}

// Do sends req with the client's cookies and records the cookies it gets back.
func (c *Client) Do(req *http.Request) Response {
	c.env.T.Helper()
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := c.env.App.Test(req, 30_000)
	if err != nil {
		c.env.T.Fatalf("webtest: %s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 || (!ck.Expires.IsZero() && ck.Expires.Before(time.Now())) || ck.Value == "" {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	if m := csrfInput.FindStringSubmatch(string(body)); m != nil {
		c.CSRF = m[1] + m[2]
	}
	return Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

// Get requests path.
func (c *Client) Get(path string) Response {
	return c.Do(httptest.NewRequest(http.MethodGet, path, nil))
}

// GetHTMX requests path as htmx would.
func (c *Client) GetHTMX(path string) Response {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("HX-Request", "true")
	return c.Do(req)
}

// PostForm posts form with the current CSRF token (fetching /login first when the client
// has none yet and is not signed in).
func (c *Client) PostForm(path string, form url.Values) Response {
	if c.CSRF == "" {
		c.Get("/login")
	}
	if form.Get("_csrf") == "" {
		form.Set("_csrf", c.CSRF)
	}
	return c.PostRaw(path, form)
}

// PostRaw posts form exactly as given (no CSRF token added).
func (c *Client) PostRaw(path string, form url.Values) Response {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.Do(req)
}

// Cookie returns the value of the client's cookie name, or "".
func (c *Client) Cookie(name string) string { return c.cookies[name] }

// SetCookie sets a cookie on the client.
func (c *Client) SetCookie(name, value string) { c.cookies[name] = value }

// Send requests path with method: a GET, or a POST of form with the CSRF token. Tables of
// routes use it to treat every method alike.
func (c *Client) Send(method, path string, form url.Values) Response {
	c.env.T.Helper()
	if method == http.MethodGet {
		return c.Get(path)
	}
	if form == nil {
		form = url.Values{}
	}
	return c.PostForm(path, form)
}

// UserID returns the id of the user with email.
func (e *Env) UserID(email string) int64 {
	e.T.Helper()
	var id int64
	if err := e.DB.Raw(`SELECT id FROM users WHERE lower(email) = lower(?)`, email).Scan(&id).Error; err != nil || id == 0 {
		e.T.Fatalf("webtest: no user %s: %v", email, err)
	}
	return id
}

// SwitchOrg makes org the client's current organization.
func (c *Client) SwitchOrg(org string) {
	c.env.T.Helper()
	if r := c.PostForm("/session/org", url.Values{"org": {org}}); r.StatusCode != http.StatusSeeOther {
		c.env.T.Fatalf("webtest: switch to %s: status %d", org, r.StatusCode)
	}
}

// Role creates role name in org with the given "resource:action" permissions and
// inherited roles, as the system, and tells the policy engine.
func (e *Env) Role(org, name string, perms []string, inherits ...string) {
	e.T.Helper()
	in := models.RoleInput{Name: name, Description: "role " + name, Inherits: inherits}
	for _, s := range perms {
		p, err := models.ParsePermission(s)
		if err != nil {
			e.T.Fatal(err)
		}
		in.Permissions = append(in.Permissions, p)
	}
	if _, err := e.Services.Roles.Create(context.Background(), org, in, models.SystemActor("test")); err != nil {
		e.T.Fatal(err)
	}
}
