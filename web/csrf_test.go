package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"auditdb/handlers"
	"auditdb/models"
	"auditdb/models/session"
	"auditdb/web"
	"auditdb/web/webtest"
)

// TestLoginCSRFTokenIsServerMinted plants a sign-in token cookie of the attacker's making
// (as a sibling subdomain can) and submits the same value: the form must refuse it, since
// only tokens the server minted with its key are valid.
func TestLoginCSRFTokenIsServerMinted(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("lcsrf")
	email := env.User(org, "org:member")

	planted := strings.Repeat("a", 43)
	c := env.Anonymous()
	c.SetCookie(handlers.LoginCSRFCookie, planted)
	// The form carries tokens masked, so the attacker masks the planted one too.
	r := c.PostRaw("/login", url.Values{"email": {email}, "password": {webtest.Password}, "_csrf": {session.MaskToken([]byte(planted))}})
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("planted token: status %d, want 403", r.StatusCode)
	}
	if c.Cookie(handlers.SessionCookie) != "" {
		t.Fatal("planted token: a session was started")
	}
	// The page shown next replaces the planted token by a minted one, which works.
	c.Get("/login")
	if c.CSRF == planted || c.Cookie(handlers.LoginCSRFCookie) == planted {
		t.Fatal("the sign-in page kept the planted token")
	}
	if r := c.PostForm("/login", url.Values{"email": {email}, "password": {webtest.Password}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("minted token: status %d, want 303", r.StatusCode)
	}
}

// TestLoginCSRFCookieClearedOnItsPath signs in and checks the answer deletes the sign-in
// token cookie on the path it was set with (a deletion on another path leaves it alive).
func TestLoginCSRFCookieClearedOnItsPath(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("lcsrf")
	email := env.User(org, "org:member")
	c := env.Anonymous()
	c.Get("/login")
	form := url.Values{"email": {email}, "password": {webtest.Password}, "_csrf": {c.CSRF}}
	req, _ := http.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r := c.Do(req)
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: status %d", r.StatusCode)
	}
	resp := http.Response{Header: r.Header}
	for _, ck := range resp.Cookies() {
		if ck.Name == handlers.LoginCSRFCookie {
			expired := ck.MaxAge < 0 || (!ck.Expires.IsZero() && ck.Expires.Before(time.Now()))
			if ck.Path != "/login" || ck.Value != "" || !expired {
				t.Fatalf("token cookie answer %q: want an empty, expired cookie with Path=/login", ck.String())
			}
			return
		}
	}
	t.Fatal("sign-in did not clear the token cookie")
}

// TestCSRFTokenNotTakenFromQuery checks that a token in the query string does not count,
// on the sign-in form and on console forms, while the form field and the X-CSRF-Token
// header (htmx) do.
func TestCSRFTokenNotTakenFromQuery(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("qcsrf")
	email := env.User(org, "org:member")

	anon := env.Anonymous()
	anon.Get("/login")
	r := anon.PostRaw("/login?_csrf="+url.QueryEscape(anon.CSRF), url.Values{"email": {email}, "password": {webtest.Password}})
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in with the token in the query: status %d, want 403", r.StatusCode)
	}

	c := env.Login(email)
	r = c.PostRaw("/session/org?_csrf="+url.QueryEscape(c.CSRF), url.Values{"org": {org}})
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("console form with the token in the query: status %d, want 403", r.StatusCode)
	}
	req, _ := http.NewRequest("POST", "/session/org", strings.NewReader(url.Values{"org": {org}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-CSRF-Token", c.CSRF)
	if r := c.Do(req); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("console form with the token in X-CSRF-Token: status %d, want 303", r.StatusCode)
	}
	if r := c.PostForm("/session/org", url.Values{"org": {org}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("console form with the token in the body: status %d, want 303", r.StatusCode)
	}
}

// TestForeignOriginRefused: a state-changing console request carrying a valid CSRF token is
// still refused (403) when the browser says it came from another site's page, by Origin
// or, without one, by Referer; the server's own origin and the configured public URL
// (behind a proxy that rewrites Host) pass, and nothing was done for the refused ones.
func TestForeignOriginRefused(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("origin")
	root := env.Login(env.User("", ""))
	root.SwitchOrg(org)
	root.Get("/performance")
	audited := func() int64 {
		var n int64
		env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = ?`, org, models.ActionPerfVacuum).Scan(&n)
		return n
	}
	vacuum := func(headers ...string) int {
		t.Helper()
		form := url.Values{"table": {"alerts"}, "confirm": {"alerts"}, "_csrf": {root.CSRF}}
		req := httptest.NewRequest("POST", "/performance/vacuum", strings.NewReader(form.Encode())) // Host example.com
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Add(headers[i], headers[i+1])
		}
		return root.Do(req).StatusCode
	}
	for _, tc := range []struct {
		name    string
		headers []string
		want    int
	}{
		{"foreign Origin", []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"same host, other scheme", []string{"Origin", "https://example.com"}, http.StatusForbidden},
		{"null Origin", []string{"Origin", "null"}, http.StatusForbidden},
		{"foreign Referer without Origin", []string{"Referer", "https://evil.example/page"}, http.StatusForbidden},
		{"foreign Origin, own Referer", []string{"Origin", "https://evil.example", "Referer", "http://example.com/performance"}, http.StatusForbidden},
		// An Origin is scheme://host[:port] and nothing else, and there is one.
		{"own Origin and a fragment mark", []string{"Origin", "http://example.com#"}, http.StatusForbidden},
		{"own Origin and a query mark", []string{"Origin", "http://example.com?"}, http.StatusForbidden},
		{"own Origin and a path", []string{"Origin", "http://example.com/"}, http.StatusForbidden},
		{"own Origin with a user", []string{"Origin", "http://u@example.com"}, http.StatusForbidden},
		{"empty Origin", []string{"Origin", ""}, http.StatusForbidden},
		{"own Origin, then a foreign one", []string{"Origin", "http://example.com", "Origin", "https://evil.example"}, http.StatusForbidden},
		{"own Origin twice", []string{"Origin", "http://example.com", "Origin", "http://example.com"}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := vacuum(tc.headers...); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
	if audited() != 0 {
		t.Fatal("a refused request ran the maintenance")
	}
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"own Origin", []string{"Origin", "http://example.com"}},
		{"own Referer", []string{"Referer", "http://example.com/performance?vacuum=alerts"}},
		{"no Origin or Referer (not a browser)", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := vacuum(tc.headers...); got != http.StatusSeeOther {
				t.Fatalf("status %d, want 303", got)
			}
		})
	}
	if audited() != 3 {
		t.Fatalf("%d maintenance runs recorded, want 3", audited())
	}

	// Behind a proxy the Host the server sees is not the public one: the configured public
	// URL is the console's origin too.
	// Straight from a client, the request's own origin passes as well; behind a trusted
	// proxy only the public URL's does (the Host a proxy sends is its own).
	env.Services.PublicURL = "https://audit.example.org"
	form := url.Values{"table": {"alerts"}, "confirm": {"alerts"}, "_csrf": {root.CSRF}}
	for _, tc := range []struct {
		name    string
		proxied bool
		origin  string
		want    int
	}{
		{"direct, public URL", false, "https://audit.example.org", http.StatusSeeOther},
		{"direct, own Host", false, "http://10.0.0.5:8080", http.StatusSeeOther},
		{"direct, look-alike", false, "https://audit.example.org.evil.example", http.StatusForbidden},
		{"proxied, public URL", true, "https://audit.example.org", http.StatusSeeOther},
		{"proxied, the Host the proxy sent", true, "http://10.0.0.5:8080", http.StatusForbidden},
		{"proxied, foreign", true, "https://evil.example", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env.Services.TrustedProxies = nil
			if tc.proxied { // app.Test's requests come from 0.0.0.0
				env.Services.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")}
			}
			app := web.New(env.Services)
			req := httptest.NewRequest("POST", "/performance/vacuum", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", tc.origin)
			req.Host = "10.0.0.5:8080"
			req.AddCookie(&http.Cookie{Name: handlers.SessionCookie, Value: root.Cookie(handlers.SessionCookie)})
			resp, err := app.Test(req, 30_000)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}
