package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"auditdb/handlers"
	"auditdb/models/session"
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
