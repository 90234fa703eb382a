package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"auditdb/handlers"
	"auditdb/models"
	"auditdb/web/webtest"
)

func TestLoginFailuresLookTheSame(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("auth")
	email := env.User(org, "org:member")

	wrong := env.Anonymous().PostForm("/login", url.Values{"email": {email}, "password": {"not the password!"}})
	unknown := env.Anonymous().PostForm("/login", url.Values{"email": {"nobody@example.test"}, "password": {"not the password!"}})
	for name, r := range map[string]webtest.Response{"wrong password": wrong, "unknown user": unknown} {
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, r.StatusCode)
		}
		if !strings.Contains(r.Body, "Email or password is incorrect.") {
			t.Errorf("%s: body lacks the shared message", name)
		}
	}
}

func TestLoginRequiredEverywhereButLogin(t *testing.T) {
	env := webtest.New(t)
	for _, path := range []string{"/", "/events", "/events/1", "/alerts", "/reports", "/retention", "/gdpr", "/roles", "/settings"} {
		t.Run(path, func(t *testing.T) {
			r := env.Anonymous().Get(path)
			if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login?next=") {
				t.Fatalf("status %d location %q, want 303 to /login", r.StatusCode, r.Header.Get("Location"))
			}
		})
	}
	if r := env.Anonymous().Get("/login"); r.StatusCode != http.StatusOK {
		t.Fatalf("/login: status %d", r.StatusCode)
	}
}

func TestCSRFRequiredOnForms(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("csrf")
	email := env.User(org, "org:member")

	cases := []struct {
		name string
		post func() webtest.Response
	}{
		{"login without token", func() webtest.Response {
			c := env.Anonymous()
			c.Get("/login")
			return c.PostRaw("/login", url.Values{"email": {email}, "password": {webtest.Password}})
		}},
		{"login with forged token", func() webtest.Response {
			c := env.Anonymous()
			c.Get("/login")
			return c.PostRaw("/login", url.Values{"_csrf": {"forged-token-forged-token-forged-token-x"}, "email": {email}, "password": {webtest.Password}})
		}},
		{"logout without token", func() webtest.Response {
			return env.Login(email).PostRaw("/logout", url.Values{})
		}},
		{"switch org with another session's token", func() webtest.Response {
			other := env.Login(email)
			c := env.Login(email)
			return c.PostRaw("/session/org", url.Values{"_csrf": {other.CSRF}, "org": {org}})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.post()
			if r.StatusCode != http.StatusForbidden || !strings.Contains(r.Body, "security token") {
				t.Fatalf("status %d, want 403 with the CSRF message; body %.200s", r.StatusCode, r.Body)
			}
		})
	}
}

func TestLogoutRevokesSession(t *testing.T) {
	env := webtest.New(t)
	email := env.User(env.Org("logout"), "org:member")
	c := env.Login(email)
	cookie := sessionCookie(t, c)
	if r := c.PostForm("/logout", url.Values{}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: status %d", r.StatusCode)
	}
	// Replaying the old cookie must not work: the session is revoked server-side.
	replay := env.Anonymous()
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(&http.Cookie{Name: handlers.SessionCookie, Value: cookie})
	if r := replay.Do(req); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoked session still works: status %d", r.StatusCode)
	}
}

func sessionCookie(t *testing.T, c *webtest.Client) string {
	t.Helper()
	v := c.Cookie(handlers.SessionCookie)
	if v == "" {
		t.Fatal("no session cookie")
	}
	return v
}

func TestSessionExpiry(t *testing.T) {
	env := webtest.New(t)
	email := env.User(env.Org("expiry"), "org:member")
	cases := []struct {
		name string
		sql  string
	}{
		{"idle over 30 minutes", "UPDATE sessions SET last_seen_at = now() - interval '31 minutes' WHERE user_id = (SELECT id FROM users WHERE email = ?)"},
		{"past 12 hours absolute", "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = (SELECT id FROM users WHERE email = ?)"},
		{"revoked elsewhere", "UPDATE sessions SET revoked_at = now() WHERE user_id = (SELECT id FROM users WHERE email = ?)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := env.Login(email)
			if r := c.Get("/events"); r.StatusCode != http.StatusOK {
				t.Fatalf("before: status %d", r.StatusCode)
			}
			if err := env.DB.Exec(tc.sql, email).Error; err != nil {
				t.Fatal(err)
			}
			if r := c.Get("/events"); r.StatusCode != http.StatusSeeOther {
				t.Fatalf("after: status %d, want redirect to sign-in", r.StatusCode)
			}
		})
	}
	t.Run("activity within 30 minutes keeps it alive", func(t *testing.T) {
		c := env.Login(email)
		env.DB.Exec("UPDATE sessions SET last_seen_at = now() - interval '29 minutes' WHERE user_id = (SELECT id FROM users WHERE email = ?) AND revoked_at IS NULL", email)
		if r := c.Get("/events"); r.StatusCode != http.StatusOK {
			t.Fatalf("status %d", r.StatusCode)
		}
	})
}

func TestSessionSurvivesRestartAndRedisOutage(t *testing.T) {
	env := webtest.New(t)
	email := env.User(env.Org("restart"), "org:member")
	c := env.Login(email)
	cookie := c.Cookie(handlers.SessionCookie)

	// A second application (a restarted server) whose Redis is unreachable.
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { dead.Close() }) // after env2 has stopped (cleanups run last in, first out)
	env2 := webtest.New(t, webtest.Options{Redis: dead})
	c2 := env2.Anonymous()
	c2.SetCookie(handlers.SessionCookie, cookie)
	if r := c2.Get("/events"); r.StatusCode != http.StatusOK {
		t.Fatalf("session after restart without Redis: status %d", r.StatusCode)
	}
	// Signing in still works without Redis too, and the failure limit still holds.
	if r := env2.Login(email).Get("/"); r.StatusCode != http.StatusOK {
		t.Fatalf("login without Redis: status %d", r.StatusCode)
	}
	for i := 0; i < 5; i++ {
		env2.Anonymous().PostForm("/login", url.Values{"email": {email}, "password": {"wrong password!!"}})
	}
	if r := env2.Anonymous().PostForm("/login", url.Values{"email": {email}, "password": {webtest.Password}}); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("limit without Redis: status %d, want 429", r.StatusCode)
	}
}

func TestFailedLoginLimits(t *testing.T) {
	env := webtest.New(t)
	email := env.User(env.Org("limit"), "org:member")
	for i := 0; i < 5; i++ {
		r := env.Anonymous().PostForm("/login", url.Values{"email": {strings.ToUpper(email)}, "password": {"wrong password!!"}})
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d", i, r.StatusCode)
		}
	}
	r := env.Anonymous().PostForm("/login", url.Values{"email": {email}, "password": {webtest.Password}})
	if r.StatusCode != http.StatusTooManyRequests || !strings.Contains(r.Body, "Too many failed sign-ins") {
		t.Fatalf("account limit: status %d", r.StatusCode)
	}

	// Per address: 20 failures over many accounts from one address block that address.
	env2 := webtest.New(t)
	victim := env2.User(env2.Org("addr"), "org:member")
	for i := 0; i < 20; i++ {
		env2.Anonymous().PostForm("/login", url.Values{"email": {webtest.Unique("spray") + "@example.test"}, "password": {"wrong password!!"}})
	}
	r = env2.Anonymous().PostForm("/login", url.Values{"email": {victim}, "password": {webtest.Password}})
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("address limit: status %d", r.StatusCode)
	}
}

func TestOrganizationSwitcher(t *testing.T) {
	env := webtest.New(t)
	ctx := context.Background()
	a, b, other := env.Org("swa"), env.Org("swb"), env.Org("swo")
	email := env.User(a, "org:member")
	u, err := env.Services.Users.Authenticate(ctx, email, webtest.Password)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Services.Users.AddMembership(ctx, u.ID, b, "org:admin"); err != nil {
		t.Fatal(err)
	}
	env.Services.Policy.Refresh(ctx) // a membership made behind the console's back
	evB := env.Events(models.Event{OrganizationID: b, Timestamp: time.Now().Add(-time.Hour), Action: "only.in.b", Status: "success"})

	c := env.Login(email)
	home := c.Get("/")
	if !strings.Contains(home.Body, `data-testid="org-switcher"`) {
		t.Fatal("no organization switcher for a user in two organizations")
	}
	if r := c.Get("/events/" + itoa(evB[0].ID)); r.StatusCode != http.StatusNotFound {
		t.Fatalf("event of the other org before switching: status %d", r.StatusCode)
	}
	if r := c.PostForm("/session/org", url.Values{"org": {b}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("switch: status %d", r.StatusCode)
	}
	if r := c.Get("/events/" + itoa(evB[0].ID)); r.StatusCode != http.StatusOK {
		t.Fatalf("event after switching: status %d", r.StatusCode)
	}
	if r := c.PostForm("/session/org", url.Values{"org": {other}}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("switch to a foreign org: status %d, want 404", r.StatusCode)
	}

	// A superadmin sees every organization.
	super := env.Login(env.User("", ""))
	page := super.Get("/")
	for _, id := range []string{a, b, other} {
		if !strings.Contains(page.Body, `value="`+id+`"`) {
			t.Errorf("superadmin switcher lacks %s", id)
		}
	}
}

// TestParallelSignInsAreLimited: forty sign-ins at once against one account, the right
// password among them, try at most five passwords (the limit): the others are refused
// before any password is checked.
func TestParallelSignInsAreLimited(t *testing.T) {
	env := webtest.New(t)
	email := env.User(env.Org("par"), "org:member")
	clients := make([]*webtest.Client, 40)
	for i := range clients {
		clients[i] = env.Anonymous()
		clients[i].Get("/login")
	}
	statuses := make([]int, len(clients))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			password := "wrong password!!"
			if i == 20 {
				password = webtest.Password
			}
			<-start
			statuses[i] = c.PostForm("/login", url.Values{"email": {email}, "password": {password}}).StatusCode
		}()
	}
	close(start)
	wg.Wait()
	wrong, right := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusTooManyRequests:
		case http.StatusUnauthorized:
			wrong++
		case http.StatusSeeOther:
			right++
		default:
			t.Fatalf("unexpected status %d among %v", s, statuses)
		}
	}
	// At most five wrong passwords are checked; the right one, when it got through, gives
	// its attempt back (so one more may be checked), and never resets the count.
	if wrong > 5 || right > 1 {
		t.Fatalf("%d wrong passwords checked among 40 parallel sign-ins (limit 5): %v", wrong, statuses)
	}
}

// TestPasswordChangeEndsOtherSessions: changing the password ends every other session of
// the user and keeps the one that changed it; the current-password check counts against
// the sign-in limits, so a stolen session cannot guess without limit.
func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("pw")
	email := env.User(org, "org:member")
	here, elsewhere := env.Login(email), env.Login(email)
	before := here.Cookie(handlers.SessionCookie)
	r := here.PostForm("/account/password", url.Values{"current": {webtest.Password},
		"password": {"a much better password"}, "confirm": {"a much better password"}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("change: %d %s", r.StatusCode, r.Body)
	}
	// The changing session itself is replaced by a fresh one: its old cookie is dead.
	after := here.Cookie(handlers.SessionCookie)
	if after == "" || after == before {
		t.Fatal("the password change did not start a fresh session")
	}
	old := env.Anonymous()
	old.SetCookie(handlers.SessionCookie, before)
	if r := old.Get("/events"); r.StatusCode == http.StatusOK {
		t.Fatal("the session cookie from before the password change still works")
	}
	var audited int64
	env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = ? AND principal_id = ?`,
		org, models.ActionPasswordChange, email).Scan(&audited)
	if audited != 1 {
		t.Fatalf("%d auth.password.change events, want 1", audited)
	}
	if r := here.Get("/events"); r.StatusCode != http.StatusOK {
		t.Fatalf("the session that changed the password ended: %d", r.StatusCode)
	}
	if r := elsewhere.Get("/events"); r.StatusCode == http.StatusOK {
		t.Fatal("another session of the user outlived the password change")
	}

	thief := env.Login(env.User(env.Org("pw2"), "org:member"))
	statuses := []int{}
	for range 7 {
		r := thief.PostForm("/account/password", url.Values{"current": {"guess guess guess"},
			"password": {"a new password!!"}, "confirm": {"a new password!!"}})
		statuses = append(statuses, r.StatusCode)
	}
	want := []int{400, 400, 400, 400, 400, 429, 429}
	if fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Fatalf("wrong current passwords answered %v, want %v", statuses, want)
	}
}

// TestSigningInAgainEndsThePreviousSession: a browser that signs in again while it still
// holds a session does not leave that session alive.
func TestSigningInAgainEndsThePreviousSession(t *testing.T) {
	env := webtest.New(t)
	email := env.User(env.Org("again"), "org:member")
	c := env.Login(email)
	old := c.Cookie(handlers.SessionCookie)
	c.Get("/login")
	if r := c.PostForm("/login", url.Values{"email": {email}, "password": {webtest.Password}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("second sign-in: %d", r.StatusCode)
	}
	if c.Cookie(handlers.SessionCookie) == old {
		t.Fatal("the session token was not replaced")
	}
	stale := env.Anonymous()
	stale.SetCookie(handlers.SessionCookie, old)
	if r := stale.Get("/events"); r.StatusCode == http.StatusOK {
		t.Fatal("the previous session of the browser is still alive")
	}
}
