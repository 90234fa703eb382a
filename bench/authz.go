package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/policy"
)

// AuthzOptions configure the authorization overhead benchmark.
type AuthzOptions struct {
	Iterations int // timed requests per route and configuration
	// ServeOn and ServeOff serve the same application, with enforcement on (the policy
	// engine) and off (an authorizer that allows everything), on the given listener.
	ServeOn, ServeOff func(net.Listener) error
	// Engine is the enforcing application's policy engine, for the in-process figures;
	// Redis the client it shares decisions through.
	Engine  *policy.Engine
	Redis   *redis.Client
	Log     *slog.Logger
	Out     io.Writer
	Timeout time.Duration
}

// authzOrg is the organization the authorization benchmark signs in to.
const authzOrg = "bench-authz"

// Authz measures what enforcement adds to a request: the same routes, signed in as the
// same org:member, on two copies of the application over the same database, one deciding
// through the policy engine (warm caches) and one allowing everything. Requests alternate
// between the two so both see the same machine noise. It also times the engine's decision
// alone at each cache level. It prints a table and returns an error if a request fails.
func Authz(ctx context.Context, db *gorm.DB, o AuthzOptions) error {
	orgs, users := models.NewOrgStore(db), models.NewUserStore(db)
	if _, err := orgs.Get(ctx, authzOrg); models.KindOf(err) == models.KindNotFound {
		if _, err := orgs.Create(ctx, authzOrg, "Authorization benchmark"); err != nil {
			return err
		}
	}
	const email, password = "bench-authz@auditdb.example", "bench-password-not-secret"
	user, err := users.Authenticate(ctx, email, password)
	if err != nil {
		if user, err = users.Create(ctx, models.NewUser{Email: email, Password: password, OrgID: authzOrg, Role: "org:member"}); err != nil {
			return fmt.Errorf("bench: create bench user: %w", err)
		}
	}
	o.Engine.Refresh(ctx)

	type side struct {
		name   string
		base   string
		client *http.Client
	}
	var sides []*side
	for _, s := range []struct {
		name  string
		serve func(net.Listener) error
	}{{"enforcement on", o.ServeOn}, {"enforcement off", o.ServeOff}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		go s.serve(ln)
		jar, _ := cookiejar.New(nil)
		sd := &side{name: s.name, base: "http://" + ln.Addr().String(), client: &http.Client{Jar: jar, Timeout: o.Timeout}}
		if err := signIn(sd.client, sd.base, email, password); err != nil {
			return err
		}
		sides = append(sides, sd)
	}

	routes := []string{"/reports", "/events"}
	fmt.Fprintf(o.Out, "GET as org:member, %d requests per route and side, alternating; caches warm;\n", o.Iterations)
	fmt.Fprintf(o.Out, "time inside the server (Server-Timing: session, authorization, handler, rendering)\n\n")
	fmt.Fprintf(o.Out, "%-10s %-17s %10s %10s\n", "route", "", "p50", "p95")
	for _, route := range routes {
		times := make([][]time.Duration, len(sides))
		for i := 0; i < 50+o.Iterations; i++ { // the first 50 warm both sides up
			for k := range sides {
				sd := sides[(i+k)%len(sides)] // alternate which side goes first
				server, err := get(sd.client, sd.base+route)
				if err != nil {
					return fmt.Errorf("%s: %w", sd.name, err)
				}
				if i >= 50 {
					idx := (i + k) % len(sides)
					times[idx] = append(times[idx], server)
				}
			}
		}
		on, off := percentiles(times[0]), percentiles(times[1])
		fmt.Fprintf(o.Out, "%-10s %-17s %10s %10s\n", route, sides[0].name, ms(on.P50), ms(on.P95))
		fmt.Fprintf(o.Out, "%-10s %-17s %10s %10s\n", "", sides[1].name, ms(off.P50), ms(off.P95))
		fmt.Fprintf(o.Out, "%-10s %-17s %10s %10s   (target: at most 1 ms added at p95)\n\n", "", "added", ms(on.P50-off.P50), ms(on.P95-off.P95))
	}

	// The decision alone, per cache level.
	sub := policy.UserOf(user)
	decide := func(e *policy.Engine) func(int) error {
		return func(int) error {
			ok, err := e.Allowed(ctx, sub, authzOrg, "audit.reports", "read")
			if err == nil && !ok {
				err = fmt.Errorf("bench: org:member denied audit.reports:read")
			}
			return err
		}
	}
	local, err := perCall(200_000, decide(o.Engine))
	if err != nil {
		return err
	}
	// An engine whose in-process entries expire at once answers from Redis.
	viaRedis := policy.New(db, o.Redis, nil, nil, o.Log, policy.Options{LocalTTL: time.Nanosecond, PollInterval: -1})
	if err := viaRedis.Load(ctx); err != nil {
		return err
	}
	redisHit, err := perCall(2_000, decide(viaRedis))
	if err != nil {
		return err
	}
	enf, err := o.Engine.Enforcer(ctx)
	if err != nil {
		return err
	}
	casbinOnly, err := perCall(20_000, func(int) error {
		_, err := enf.Enforce(sub.Name, authzOrg, "audit.reports", "read")
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "one decision: in-process hit %s, Redis hit %s, Casbin enforcer %s\n", local, redisHit, casbinOnly)
	fmt.Fprintf(o.Out, "(a console page also asks once per navigation entry, to hide what the viewer may not open)\n")
	return nil
}

// perCall times n calls of fn and returns the mean per call.
func perCall(n int, fn func(int) error) (time.Duration, error) {
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := fn(i); err != nil {
			return 0, err
		}
	}
	return time.Since(start) / time.Duration(n), nil
}
