package web_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

	"auditdb/static"
	"auditdb/web/webtest"
)

// TestFrontEndQuality: the console is not indexable (robots.txt, X-Robots-Tag on every
// answer, a meta description and robots meta on every page), pages link their static files
// by fingerprinted URLs served with a year-long immutable cache, and answers are
// compressed.
func TestFrontEndQuality(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("fe")
	admin := env.Login(env.User(org, "org:owner"))
	anon := env.Anonymous()

	robots := anon.Get("/robots.txt")
	if robots.StatusCode != 200 || robots.Body != "User-agent: *\nDisallow: /\n" ||
		!strings.HasPrefix(robots.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("robots.txt: %d %q %v", robots.StatusCode, robots.Body, robots.Header)
	}
	for name, r := range map[string]webtest.Response{
		"robots": robots, "sign-in": anon.Get("/login"), "page": admin.Get("/members"),
		"not found": admin.Get("/nothing-here"), "api": env.API("GET", "/api/v1/events", "", "", ""),
	} {
		if got := r.Header.Get("X-Robots-Tag"); !strings.Contains(got, "noindex") {
			t.Errorf("%s: X-Robots-Tag = %q", name, got)
		}
	}

	page := admin.Get("/members")
	for _, want := range []string{`<meta name="description" content="Members — auditdb`, `<meta name="robots" content="noindex, nofollow">`} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	links := regexp.MustCompile(`(?:href|src)="(/static/[^"]+)"`).FindAllStringSubmatch(page.Body, -1)
	seen := map[string]bool{}
	for _, m := range links {
		seen[m[1]] = true
	}
	for _, name := range []string{"css/app.css", "js/htmx.min.js", "img/logo.svg"} {
		want, err := static.FS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var url string
		for u := range seen {
			if strings.HasPrefix(u, "/static/"+strings.TrimSuffix(name, name[strings.LastIndex(name, "."):])+".") {
				url = u
			}
		}
		if !regexp.MustCompile(`\.[0-9a-f]{10}\.[a-z]+$`).MatchString(url) {
			t.Fatalf("%s: the page links %v, no fingerprinted URL", name, seen)
		}
		got := anon.Get(url)
		if got.StatusCode != 200 || got.Body != string(want) ||
			got.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("%s: %d, Cache-Control %q, %d bytes of %d", url, got.StatusCode, got.Header.Get("Cache-Control"), len(got.Body), len(want))
		}
		// A fingerprint of other content is not served as this file.
		if other := anon.Get(regexp.MustCompile(`\.[0-9a-f]{10}\.`).ReplaceAllString(url, ".0000000000.")); other.StatusCode != 404 {
			t.Errorf("%s with a wrong fingerprint: %d", name, other.StatusCode)
		}
	}
	// The plain names keep working, with the short cache.
	if plain := anon.Get("/static/css/app.css"); plain.StatusCode != 200 || strings.Contains(plain.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("plain name: %d %q", plain.StatusCode, plain.Header.Get("Cache-Control"))
	}

	for _, enc := range []string{"br", "gzip"} {
		req := httptest.NewRequest("GET", "/members", nil)
		req.Header.Set("Accept-Encoding", enc)
		r := admin.Do(req)
		if r.Header.Get("Content-Encoding") != enc {
			t.Fatalf("%s: Content-Encoding %q", enc, r.Header.Get("Content-Encoding"))
		}
		var rd io.Reader = brotli.NewReader(strings.NewReader(r.Body))
		if enc == "gzip" {
			zr, err := gzip.NewReader(strings.NewReader(r.Body))
			if err != nil {
				t.Fatal(err)
			}
			rd = zr
		}
		body, err := io.ReadAll(rd)
		if err != nil || !bytes.Contains(body, []byte(`data-testid="nav-members"`)) || len(r.Body) >= len(body) {
			t.Fatalf("%s: %d compressed bytes of %d, %v", enc, len(r.Body), len(body), err)
		}
	}
}
