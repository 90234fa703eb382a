package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/models/merkle"
	"auditdb/policy"
)

// testServices builds Services without touching a database: enough to assemble the routes.
func testServices(t *testing.T) *Services {
	t.Helper()
	sealer, err := models.NewSealer([]byte("web-test-signing-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := merkle.NewCheckpointKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServices(ServicesConfig{Sealer: sealer, CheckpointKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// public are the routes that need no principal: assets, health, the sign-in page and the
// not-found fallback.
var public = map[string]bool{
	"GET /static": true, "HEAD /static": true, "GET /healthz": true, "HEAD /healthz": true,
	"GET /robots.txt": true, "HEAD /robots.txt": true,
	"GET /login": true, "HEAD /login": true, "POST /login": true,
	"GET /api/v1/openapi.yaml": true, "HEAD /api/v1/openapi.yaml": true,
	"GET /readyz": true, "HEAD /readyz": true,
	// Loopback clients only (loopbackOnly), or 404 when served elsewhere.
	"GET /metrics": true, "HEAD /metrics": true,
}

// TestEveryRouteDeclaresWhatItNeeds walks the assembled application: every route that is
// not public must come from the table, with a declared need, so nothing is reachable
// without passing authorize.
func TestEveryRouteDeclaresWhatItNeeds(t *testing.T) {
	d := testServices(t)
	app := New(d)
	declared := map[string]Need{}
	for _, r := range consoleRoutes(d) {
		if r.need == (Need{}) {
			t.Errorf("%s %s declares nothing", r.method, r.path)
		}
		declared[r.method+" "+r.path] = r.need
	}
	for _, r := range apiRoutes(d) {
		if r.need == (Need{}) {
			t.Errorf("API %s %s declares nothing", r.method, r.path)
		}
		declared[r.method+" /api/v1"+r.path] = r.need
	}
	for _, r := range app.GetRoutes(true) {
		key := r.Method + " " + r.Path
		if public[key] || (r.Path == "/" || r.Path == "/api/v1") && r.Method != fiber.MethodGet && len(r.Handlers) == 1 {
			continue // public, the not-found fallback or the API-key middleware (a Use on every method)
		}
		if _, ok := declared[key]; ok {
			continue
		}
		if r.Method == fiber.MethodHead {
			if _, ok := declared["GET "+r.Path]; ok {
				continue // Fiber answers HEAD with the GET route
			}
		}
		t.Errorf("%s is routed without a declared need", key)
	}
}

type stubAuthz map[string]bool

func (s stubAuthz) Allowed(_ context.Context, sub policy.Subject, org, res, act string) (bool, error) {
	if sub.Superadmin {
		return true, nil
	}
	return s[org+"|"+res+":"+act], nil
}

func TestDecide(t *testing.T) {
	authz := stubAuthz{"acme|audit.events:read": true}
	member := render.Principal{Subject: policy.Subject{Name: "user:1"}, Org: "acme"}
	super := render.Principal{Subject: policy.Subject{Name: "user:2", Superadmin: true}}
	cases := []struct {
		name string
		p    render.Principal
		need Need
		want bool
	}{
		{"granted permission", member, Perm("audit.events", "read"), true},
		{"other action", member, Perm("audit.events", "delete"), false},
		{"other organization", render.Principal{Subject: member.Subject, Org: "globex"}, Perm("audit.events", "read"), false},
		{"no organization", render.Principal{Subject: member.Subject}, Perm("audit.events", "read"), false},
		{"undeclared need denies everyone", member, Need{}, false},
		{"undeclared need denies superadmins too", super, Need{}, false},
		{"signed in", member, SignedIn, true},
		{"superadmin-only, member", member, SuperadminOnly, false},
		{"superadmin-only, superadmin", super, SuperadminOnly, true},
		{"superadmin bypass of a permission", super, Perm("organization.members", "delete"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decide(context.Background(), authz, tc.p, tc.need)
			if err != nil || got != tc.want {
				t.Fatalf("decide = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestPermRefusesWhatTheVocabularyLacks(t *testing.T) {
	for _, pair := range [][2]string{{"audit.billing", "read"}, {"audit.events", "invite"}, {"*", "read"}, {"audit.events", "*"}, {"audit.metrics", "delete"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Perm(%q, %q) did not panic", pair[0], pair[1])
				}
			}()
			Perm(pair[0], pair[1])
		}()
	}
}

// TestDeniedAnswers: the console gets the 403 page; the API gets a JSON 403; a request
// without any principal is denied.
func TestDeniedAnswers(t *testing.T) {
	app := fiber.New(fiber.Config{ErrorHandler: errorHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), nil)})
	authz := stubAuthz{}
	withPrincipal := func(c *fiber.Ctx) error {
		render.SetPrincipal(c, render.Principal{Subject: policy.Subject{Name: "key:1"}, Org: "acme"})
		return c.Next()
	}
	ok := func(c *fiber.Ctx) error { return c.SendString("ok") }
	app.Get("/api/v1/probe", withPrincipal, authorize(authz, Perm("audit.events", "read")), ok)
	app.Get("/console-probe", withPrincipal, authorize(authz, Perm("audit.events", "read")), ok)
	app.Get("/anonymous-probe", authorize(authz, SignedIn), ok)

	resp, _ := app.Test(httptest.NewRequest(http.MethodGet, "/api/v1/probe", nil))
	var body struct {
		Error struct {
			Status  int
			Message string
		}
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusForbidden || body.Error.Status != 403 || !strings.Contains(body.Error.Message, "audit.events:read") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("API: %d %s %+v", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, _ = app.Test(httptest.NewRequest(http.MethodGet, "/console-probe", nil))
	page, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(page), `data-testid="error-status">403`) {
		t.Fatalf("console: %d %.200s", resp.StatusCode, page)
	}
	resp, _ = app.Test(httptest.NewRequest(http.MethodGet, "/anonymous-probe", nil))
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("no principal: %d", resp.StatusCode)
	}
}

// NewServices refuses to build services that could not sign: the console never runs
// unaudited.
func TestNewServicesNeedsTheKeys(t *testing.T) {
	sealer, err := models.NewSealer([]byte("web-test-signing-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := merkle.NewCheckpointKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]ServicesConfig{
		"no signing key":    {CheckpointKey: key},
		"no checkpoint key": {Sealer: sealer},
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := NewServices(c); err == nil || s != nil || !strings.Contains(err.Error(), "web: services need") {
				t.Fatalf("got %v, %v; want a refusal", s, err)
			}
		})
	}
}
