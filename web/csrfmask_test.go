package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"auditdb/handlers"
	"auditdb/web/webtest"
)

// hxToken finds the token in the layout's hx-headers attribute (JSON, HTML-escaped).
var hxToken = regexp.MustCompile(`X-CSRF-Token(?:&#34;|&quot;|")\s*:\s*(?:&#34;|&quot;|")([A-Za-z0-9_-]+)`)

// formToken finds the tokens of _csrf form fields.
var formToken = regexp.MustCompile(`name="_csrf"[^>]*value="([^"]*)"|value="([^"]*)"[^>]*name="_csrf"`)

// postWithToken posts /session/org (a state change every member may make) as c with tok in
// the form field, whatever c's own token is.
func postWithToken(c *webtest.Client, org, tok string) webtest.Response {
	return c.PostRaw("/session/org", url.Values{"org": {org}, "_csrf": {tok}})
}

// TestCSRFTokenMaskedPerResponse renders the same page (one that reflects its query, and is
// compressed when asked) twice: every rendered token differs, in the form field and in the
// hx-headers, and every one of them is accepted, in the body and in X-CSRF-Token.
func TestCSRFTokenMaskedPerResponse(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("mask")
	email := env.User(org, "org:admin")
	c := env.Login(email)

	var tokens []string
	prev := map[string]bool{}
	for range 2 {
		r := c.Get("/events?q=" + url.QueryEscape("_csrf"))
		if r.StatusCode != http.StatusOK {
			t.Fatalf("events page: status %d", r.StatusCode)
		}
		page := map[string]bool{}
		for _, m := range append(hxToken.FindAllStringSubmatch(r.Body, -1), formToken.FindAllStringSubmatch(r.Body, -1)...) {
			page[strings.Join(m[1:], "")] = true
		}
		if len(page) == 0 {
			t.Fatal("events page: no token rendered")
		}
		for tok := range page {
			if prev[tok] {
				t.Fatalf("token %q on two responses: tokens must be masked per response", tok)
			}
			tokens = append(tokens, tok)
		}
		prev = page
	}
	for i, tok := range tokens {
		if r := postWithToken(c, org, tok); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("token %d in the form body: status %d, want 303", i, r.StatusCode)
		}
		req, _ := http.NewRequest("POST", "/session/org", strings.NewReader(url.Values{"org": {org}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-CSRF-Token", tok)
		if r := c.Do(req); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("token %d in X-CSRF-Token: status %d, want 303", i, r.StatusCode)
		}
	}
}

// TestCSRFTokenOfAnotherSessionRefused checks that a valid token of one session does not
// work for another one, of another user or of the same user.
func TestCSRFTokenOfAnotherSessionRefused(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("mask")
	email := env.User(org, "org:member")
	a := env.Login(email)
	b := env.Login(env.User(org, "org:member"))
	a2 := env.Login(email)
	a.Get("/events")
	for name, c := range map[string]*webtest.Client{"other user": b, "same user, other session": a2} {
		if r := postWithToken(c, org, a.CSRF); r.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: status %d, want 403", name, r.StatusCode)
		}
	}
	if r := postWithToken(a, org, a.CSRF); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("own token: status %d, want 303", r.StatusCode)
	}
}

// TestCSRFTokenGarbledRefused sends broken versions of a valid token, on a console form and
// on the sign-in form: each gets 403 (no panic, no 500), and the intact token still works.
func TestCSRFTokenGarbledRefused(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("mask")
	email := env.User(org, "org:member")
	c := env.Login(email)
	c.Get("/events")
	tok := c.CSRF
	flip := []byte(tok)
	flip[len(flip)-5] ^= 0x01 // still base64url, another secret
	for name, bad := range garbled(tok, string(flip)) {
		if r := postWithToken(c, org, bad); r.StatusCode != http.StatusForbidden {
			t.Fatalf("console form, %s token: status %d, want 403", name, r.StatusCode)
		}
	}
	if r := postWithToken(c, org, tok); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("console form, intact token: status %d, want 303", r.StatusCode)
	}

	anon := env.Anonymous()
	anon.Get("/login")
	tok = anon.CSRF
	flip = []byte(tok)
	flip[len(flip)-5] ^= 0x01
	for name, bad := range garbled(tok, string(flip)) {
		r := anon.PostRaw("/login", url.Values{"email": {email}, "password": {webtest.Password}, "_csrf": {bad}})
		if r.StatusCode != http.StatusForbidden {
			t.Fatalf("sign-in form, %s token: status %d, want 403", name, r.StatusCode)
		}
	}
	if r := anon.PostRaw("/login", url.Values{"email": {email}, "password": {webtest.Password}, "_csrf": {tok}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in form, intact token: status %d, want 303", r.StatusCode)
	}
}

// garbled returns broken variants of tok; flipped is tok with one character changed.
func garbled(tok, flipped string) map[string]string {
	return map[string]string{
		"truncated by one": tok[:len(tok)-1],
		"truncated by two": tok[:len(tok)-2],
		"half":             tok[:len(tok)/2],
		"one character":    tok[:1],
		"flipped":          flipped,
		"not base64":       tok[:len(tok)-3] + "!*~",
		"padded":           tok + "==",
		"doubled":          tok + tok,
		"huge":             strings.Repeat(tok, 200),
		"unmasked secret":  tok[len(tok)/2:],
		"whitespace":       " " + tok,
	}
}

// TestLoginCSRFTokenMaskedPerResponse shows the sign-in form twice with the same token
// cookie: the two pages carry different tokens and each of them signs in.
func TestLoginCSRFTokenMaskedPerResponse(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("mask")
	email := env.User(org, "org:member")
	first := env.Anonymous()
	first.Get("/login")
	t1 := first.CSRF
	first.Get("/login")
	t2 := first.CSRF
	if t1 == "" || t1 == t2 {
		t.Fatalf("sign-in form tokens %q and %q: want two different tokens", t1, t2)
	}
	second := env.Anonymous()
	second.SetCookie(handlers.LoginCSRFCookie, first.Cookie(handlers.LoginCSRFCookie))
	for i, p := range []struct {
		c   *webtest.Client
		tok string
	}{{first, t1}, {second, t2}} {
		r := p.c.PostRaw("/login", url.Values{"email": {email}, "password": {webtest.Password}, "_csrf": {p.tok}})
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in with token %d: status %d, want 303", i+1, r.StatusCode)
		}
	}
}
