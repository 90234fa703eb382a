package policy_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/pgtest"
	"auditdb/policy"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

type world struct {
	db      *gorm.DB
	rdb     *redis.Client
	roles   *models.RoleStore
	members *models.MemberStore
	users   *models.UserStore
	org     string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	db := pgtest.DB(t)
	sealer, err := models.NewSealer([]byte("policy-test-signing-key-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	trail := models.NewAuditTrail(db, sealer, models.NewPartitionManager(db))
	var b [4]byte
	rand.Read(b[:])
	w := &world{db: db, rdb: pgtest.Redis(t), roles: models.NewRoleStore(db, trail), members: models.NewMemberStore(db, trail),
		users: models.NewUserStore(db), org: "pol-" + hex.EncodeToString(b[:])}
	if _, err := models.NewOrgStore(db).Create(context.Background(), w.org, "Policy "+w.org); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) engine(t *testing.T, rdb *redis.Client, opts policy.Options) *policy.Engine {
	t.Helper()
	e := policy.New(w.db, rdb, w.roles, w.members, quiet(), opts)
	if err := e.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (w *world) user(t *testing.T, role string) policy.Subject {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	u, err := w.users.Create(context.Background(), models.NewUser{Email: hex.EncodeToString(b[:]) + "@example.test",
		Password: "long enough password", OrgID: w.org, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return policy.UserOf(u)
}

func (w *world) role(t *testing.T, name string, perms ...string) {
	t.Helper()
	in := models.RoleInput{Name: name}
	for _, s := range perms {
		p, _ := models.ParsePermission(s)
		in.Permissions = append(in.Permissions, p)
	}
	if _, err := w.roles.Create(context.Background(), w.org, in, models.SystemActor("test")); err != nil {
		t.Fatal(err)
	}
}

func allowed(t *testing.T, e *policy.Engine, sub policy.Subject, org, res, act string) bool {
	t.Helper()
	ok, err := e.Allowed(context.Background(), sub, org, res, act)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestSuperadminBypass(t *testing.T) {
	w := newWorld(t)
	e := w.engine(t, w.rdb, policy.Options{PollInterval: -1})
	u, err := w.users.Create(context.Background(), models.NewUser{Email: "root-" + w.org + "@example.test",
		Password: "long enough password", Superadmin: true})
	if err != nil {
		t.Fatal(err)
	}
	super := policy.UserOf(u)
	plain := super
	plain.Superadmin = false
	for _, q := range [][2]string{{"audit.events", "delete"}, {"organization.members", "update"}, {"anything.at.all", "whatever"}} {
		if !allowed(t, e, super, w.org, q[0], q[1]) {
			t.Errorf("superadmin denied %v in an organization it is no member of", q)
		}
		if allowed(t, e, plain, w.org, q[0], q[1]) {
			t.Errorf("the same user without the flag was allowed %v", q)
		}
	}
}

// TestEngineAgreesWithTheEditor checks enforcement (Casbin with the embedded model) and the
// role editor's escalation check (models.Covers over effective permissions) give the same
// answer for every role, resource and action, wildcards included.
func TestEngineAgreesWithTheEditor(t *testing.T) {
	w := newWorld(t)
	w.role(t, "wild", "audit.*:read", "organization.members:*")
	w.role(t, "all", "*:*")
	names := []string{"org:member", "org:admin", models.OwnerRole, "wild", "all"}
	subs := map[string]policy.Subject{}
	for _, name := range names {
		subs[name] = w.user(t, name)
	}
	e := w.engine(t, nil, policy.Options{PollInterval: -1})
	set, err := w.roles.Set(context.Background(), w.org)
	if err != nil {
		t.Fatal(err)
	}
	var requests []models.Permission
	for _, r := range append(models.WildcardResources, resourceNames()...) {
		for _, a := range append([]string{models.AnyAction}, models.Actions...) {
			requests = append(requests, models.Permission{Resource: r, Action: a})
		}
	}
	for _, name := range names {
		sub := subs[name]
		for _, p := range requests {
			want := models.Covers(set.Effective(name), p)
			if got := allowed(t, e, sub, w.org, p.Resource, p.Action); got != want {
				t.Errorf("%s asking %s: enforcer %v, editor %v", name, p, got, want)
			}
		}
	}
}

func resourceNames() []string {
	var out []string
	for _, r := range models.Resources {
		out = append(out, r.Resource)
	}
	return out
}

// TestCasbinAPIAndFormsAgree changes the policy through Casbin's management API and checks
// the role store sees it, and the other way round.
func TestCasbinAPIAndFormsAgree(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	e := w.engine(t, nil, policy.Options{PollInterval: -1})
	w.role(t, "auditor", "audit.events:read")
	sub := w.user(t, "auditor")
	e.Refresh(ctx)
	if !allowed(t, e, sub, w.org, "audit.events", "read") || allowed(t, e, sub, w.org, "audit.alerts", "read") {
		t.Fatal("the role made in the store is not enforced as saved")
	}

	enf, err := e.Enforcer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := enf.AddPolicy("auditor", w.org, "audit.alerts", "read"); !ok || err != nil {
		t.Fatalf("AddPolicy: %v %v", ok, err)
	}
	if ok, err := enf.AddGroupingPolicy("auditor", "org:member", w.org); !ok || err != nil {
		t.Fatalf("AddGroupingPolicy: %v %v", ok, err)
	}
	r, err := w.roles.Get(ctx, w.org, "auditor")
	if err != nil {
		t.Fatal(err)
	}
	if !models.Covers(r.Permissions, models.Permission{Resource: "audit.alerts", Action: "read"}) || strings.Join(r.Inherits, ",") != "org:member" {
		t.Fatalf("the store does not see the API's writes: %+v", r)
	}
	// A line the vocabulary refuses is refused by the API too, and nothing is stored.
	if ok, err := enf.AddPolicy("auditor", w.org, "audit.billing", "read"); ok || err == nil {
		t.Fatal("AddPolicy accepted an unknown resource")
	}
	// A grouping line for a user is a membership.
	stranger, err := w.users.Create(ctx, models.NewUser{Email: "api-" + w.org + "@example.test", Password: "long enough password", Superadmin: true})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := enf.AddGroupingPolicy(policy.UserSubject(stranger.ID), "auditor", w.org); !ok || err != nil {
		t.Fatalf("membership through the API: %v %v", ok, err)
	}
	if m, err := w.members.Get(ctx, w.org, stranger.ID); err != nil || m.Role != "auditor" {
		t.Fatalf("membership not stored: %+v %v", m, err)
	}
	if ok, err := enf.RemovePolicy("auditor", w.org, "audit.events", "read"); !ok || err != nil {
		t.Fatalf("RemovePolicy: %v %v", ok, err)
	}
	e.Refresh(ctx)
	if allowed(t, e, sub, w.org, "audit.reports", "read") != true { // inherited from org:member now
		t.Error("inheritance added through the API is not enforced after reload")
	}
	if !allowed(t, e, sub, w.org, "audit.alerts", "read") {
		t.Error("permission added through the API is not enforced after reload")
	}
	if err := enf.SavePolicy(); err == nil {
		t.Error("SavePolicy should be refused")
	}
	// Every API change was audited as the system actor.
	var n int64
	w.db.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND principal_id = 'system:casbin-api'`, w.org).Scan(&n)
	if n != 4 {
		t.Errorf("audited API changes: %d, want 4", n)
	}
}

// TestCacheInvalidationAcrossInstances starts two engines over the same database, each
// following the database's signals on its own connection, the second with Redis
// unreachable, and the periodic version check off: a change made through the store alone
// (nobody tells the engines) reaches both within a second, through PostgreSQL.
func TestCacheInvalidationAcrossInstances(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer dead.Close()
	opts := policy.Options{PollInterval: -1}
	one, two := w.engine(t, w.rdb, opts), w.engine(t, dead, opts)
	for _, e := range []*policy.Engine{one, two} {
		sig := models.NewSignals(pgtest.DSN(t), quiet())
		e.Follow(sig)
		go sig.Run(ctx)
		go e.Run(ctx)
	}
	w.role(t, "rotating", "audit.events:read")
	sub := w.user(t, "rotating")
	waitFor(t, "both instances learn the new role", func() bool {
		return allowed(t, one, sub, w.org, "audit.events", "read") && allowed(t, two, sub, w.org, "audit.events", "read")
	})
	// Warm both cache levels.
	for i := 0; i < 3; i++ {
		for _, e := range []*policy.Engine{one, two} {
			allowed(t, e, sub, w.org, "audit.events", "read")
			allowed(t, e, sub, w.org, "audit.alerts", "read")
		}
	}
	in := models.RoleInput{}
	p, _ := models.ParsePermission("audit.alerts:read")
	in.Permissions = append(in.Permissions, p)
	start := time.Now()
	if _, err := w.roles.Update(ctx, w.org, "rotating", in, models.SystemActor("test")); err != nil {
		t.Fatal(err)
	}
	for name, e := range map[string]*policy.Engine{"with Redis": one, "without Redis": two} {
		waitFor(t, "the revocation reaches the instance "+name, func() bool {
			return !allowed(t, e, sub, w.org, "audit.events", "read") && allowed(t, e, sub, w.org, "audit.alerts", "read")
		})
	}
	t.Logf("revocation honoured by both instances after %s", time.Since(start).Round(time.Millisecond))

	// A membership removed by plain SQL, as an operator would, is heard the same way.
	if err := w.db.Exec(`DELETE FROM memberships WHERE organization_id = ? AND role = 'rotating'`, w.org).Error; err != nil {
		t.Fatal(err)
	}
	for name, e := range map[string]*policy.Engine{"with Redis": one, "without Redis": two} {
		waitFor(t, "the removed membership reaches the instance "+name, func() bool {
			return !allowed(t, e, sub, w.org, "audit.alerts", "read")
		})
	}
}

// TestVersionCheckWhileSignalsAreDown: an engine that follows no signals (its listening
// connection is down) compares versions every UnfollowedPoll, so a change still reaches it
// within about a second although its safety poll is long.
func TestVersionCheckWhileSignalsAreDown(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := w.engine(t, nil, policy.Options{PollInterval: time.Hour, UnfollowedPoll: 200 * time.Millisecond})
	go e.Run(ctx)
	w.role(t, "polled", "audit.events:read")
	sub := w.user(t, "polled")
	waitFor(t, "the unfollowed engine learns the new role", func() bool { return allowed(t, e, sub, w.org, "audit.events", "read") })
}

// waitFor polls cond for up to one second.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a second", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDecisionsWithRedisDown(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer dead.Close()
	e := w.engine(t, dead, policy.Options{PollInterval: -1})
	w.role(t, "offline", "audit.events:read")
	sub := w.user(t, "offline")
	e.Refresh(ctx)
	start := time.Now()
	for i := 0; i < 50; i++ {
		if !allowed(t, e, sub, w.org, "audit.events", "read") || allowed(t, e, sub, w.org, "audit.events", "delete") {
			t.Fatal("wrong decision with Redis down")
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("100 decisions took %s with Redis down: the backoff is not working", took)
	}
	if _, err := w.roles.Update(ctx, w.org, "offline", models.RoleInput{}, models.SystemActor("test")); err != nil {
		t.Fatal(err)
	}
	e.Refresh(ctx)
	if allowed(t, e, sub, w.org, "audit.events", "read") {
		t.Fatal("a local change is not honoured with Redis down")
	}
}

// TestSharedDecisionCache shows the Redis level is consulted: a decision planted there (as
// another instance would have stored it) is what a fresh instance answers.
func TestSharedDecisionCache(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.role(t, "shared", "audit.events:read")
	sub := w.user(t, "shared")
	one := w.engine(t, w.rdb, policy.Options{PollInterval: -1})
	if !allowed(t, one, sub, w.org, "audit.events", "read") {
		t.Fatal("denied")
	}
	keys, err := w.rdb.Keys(ctx, "auditdb:authz:*:"+w.org+":"+sub.Name+":audit.events:read").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("decision not stored in Redis: %v %v", keys, err)
	}
	if ttl := w.rdb.TTL(ctx, keys[0]).Val(); ttl <= 4*time.Minute || ttl > 5*time.Minute {
		t.Errorf("decision TTL %s, want 5 minutes", ttl)
	}
	w.rdb.Set(ctx, keys[0], "0", time.Minute)
	two := w.engine(t, w.rdb, policy.Options{PollInterval: -1})
	if allowed(t, two, sub, w.org, "audit.events", "read") {
		t.Fatal("the second instance did not read the shared decision")
	}
	w.rdb.Del(ctx, keys[0])
}
