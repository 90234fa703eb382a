package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"auditdb/handlers"
	"auditdb/models/session"
	"auditdb/web/webtest"
)

// proxied sends one request to base+path from this process (peer 127.0.0.1) with the
// given headers, as a reverse proxy would forward it.
func proxied(t *testing.T, method, base, path string, form url.Values, headers ...string) *http.Response {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// loginToken fetches the sign-in page through the proxy and returns its token cookie.
func loginToken(t *testing.T, base string, headers ...string) *http.Cookie {
	t.Helper()
	resp := proxied(t, "GET", base, "/login", nil, headers...)
	for _, ck := range resp.Cookies() {
		if ck.Name == handlers.LoginCSRFCookie {
			return ck
		}
	}
	t.Fatal("the sign-in page set no token cookie")
	return nil
}

// failSignIns makes n failed sign-ins (unknown emails, so only the per-address limit
// counts) with the X-Forwarded-For value xff(i) and returns the statuses.
func failSignIns(t *testing.T, base string, n int, xff func(i int) string) []int {
	t.Helper()
	ck := loginToken(t, base)
	var out []int
	for i := 0; i < n; i++ {
		form := url.Values{"email": {fmt.Sprintf("nobody%d@example.test", i)}, "password": {"wrong password!"}, "_csrf": {session.MaskToken([]byte(ck.Value))}}
		resp := proxied(t, "POST", base, "/login", form, "X-Forwarded-For", xff(i), "Cookie", ck.Name+"="+ck.Value)
		out = append(out, resp.StatusCode)
	}
	return out
}

// TestTrustedProxyHTTPS: a trusted proxy that says the client came over https gets HSTS and
// Secure cookies; the same header from an untrusted peer is ignored.
func TestTrustedProxyHTTPS(t *testing.T) {
	trusted := webtest.New(t, webtest.Options{TrustedProxies: []string{"127.0.0.1"}}).Serve()
	resp := proxied(t, "GET", trusted, "/login", nil, "X-Forwarded-Proto", "https", "X-Forwarded-For", "203.0.113.9")
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("trusted proxy says https: no Strict-Transport-Security")
	}
	if ck := loginToken(t, trusted, "X-Forwarded-Proto", "https"); !ck.Secure {
		t.Error("trusted proxy says https: the token cookie lacks Secure")
	}

	for name, opts := range map[string]webtest.Options{
		"other proxies trusted": {TrustedProxies: []string{"10.0.0.0/8"}},
		"no proxy trusted":      {},
	} {
		untrusted := webtest.New(t, opts).Serve()
		resp = proxied(t, "GET", untrusted, "/login", nil, "X-Forwarded-Proto", "https")
		if resp.Header.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: untrusted peer says https: Strict-Transport-Security sent", name)
		}
		if ck := loginToken(t, untrusted, "X-Forwarded-Proto", "https"); ck.Secure {
			t.Errorf("%s: untrusted peer says https: the token cookie is Secure", name)
		}
	}
}

// TestTrustedProxyClientAddress: behind a trusted proxy each forwarded client has its own
// sign-in limit, counted on the rightmost address the proxy did not add itself (a client
// cannot escape it by sending its own X-Forwarded-For); from an untrusted peer the header
// is ignored and the peer's address counts.
func TestTrustedProxyClientAddress(t *testing.T) {
	const limit = 20 // webtest's per-address limit
	t.Run("trusted", func(t *testing.T) {
		base := webtest.New(t, webtest.Options{TrustedProxies: []string{"127.0.0.0/8", "10.0.0.0/8"}}).Serve()
		got := failSignIns(t, base, limit+1, func(i int) string {
			return fmt.Sprintf("198.51.100.%d, 203.0.113.5, 10.1.2.3", i) // forged, client, inner proxy
		})
		for i, s := range got[:limit] {
			if s != http.StatusUnauthorized {
				t.Fatalf("attempt %d: status %d, want 401", i, s)
			}
		}
		if got[limit] != http.StatusTooManyRequests {
			t.Fatalf("attempt %d from 203.0.113.5 with rotating forged hops: status %d, want 429", limit, got[limit])
		}
		if s := failSignIns(t, base, 1, func(int) string { return "203.0.113.5:4711" })[0]; s != http.StatusTooManyRequests {
			t.Fatalf("the same client written with a port: status %d, want 429", s)
		}
		if s := failSignIns(t, base, 1, func(int) string { return "203.0.113.6" })[0]; s != http.StatusUnauthorized {
			t.Fatalf("another client behind the proxy: status %d, want 401 (its own limit)", s)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		base := webtest.New(t, webtest.Options{TrustedProxies: []string{"10.0.0.0/8"}}).Serve()
		got := failSignIns(t, base, limit+1, func(i int) string { return fmt.Sprintf("198.51.100.%d", i) })
		if got[limit] != http.StatusTooManyRequests {
			t.Fatalf("attempt %d with forged X-Forwarded-For from an untrusted peer: status %d, want 429", limit, got[limit])
		}
	})
}
