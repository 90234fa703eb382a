package web_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"auditdb/models"
	"auditdb/web/webtest"
)

// gzipBomb returns size zero bytes, gzipped: a few hundred kilobytes on the wire.
func gzipBomb(t *testing.T, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	chunk := make([]byte, 1<<20)
	for n := 0; n < size; n += len(chunk) {
		if _, err := zw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func deflated(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

type apiErrorBody struct {
	Error struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
	} `json:"error"`
}

// assertAPIError fails unless r is the API's JSON error with status.
func assertAPIError(t *testing.T, r webtest.Response, status int) {
	t.Helper()
	var body apiErrorBody
	if r.StatusCode != status || json.Unmarshal([]byte(r.Body), &body) != nil || body.Error.Status != status {
		t.Fatalf("status %d, body %.200q; want the API's JSON error with status %d", r.StatusCode, r.Body, status)
	}
}

// TestCompressedBodyLimit sends a gzip bomb (256 MiB of zeros in a few hundred kilobytes):
// the 10 MB body limit applies to the decoded size, so it is refused with 413 without
// the server ever holding the expanded body. Ordinary compressed bodies still ingest, and an
// unknown coding is refused with 415.
func TestCompressedBodyLimit(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("gz")
	key := env.APIKey(org, models.ScopeIngest)
	bomb := string(gzipBomb(t, 256<<20))

	t.Run("bomb on the API", func(t *testing.T) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r := env.API("POST", "/api/v1/events/batch", key, "application/json", bomb, "Content-Encoding", "gzip")
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
			t.Errorf("the server allocated %d MiB to refuse a %d KiB request", grew>>20, len(bomb)>>10)
		}
		assertAPIError(t, r, http.StatusRequestEntityTooLarge)
	})
	t.Run("bomb on a form", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "/login", strings.NewReader(bomb))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Content-Encoding", "gzip")
		r := env.Anonymous().Do(req)
		if r.StatusCode != http.StatusRequestEntityTooLarge || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("status %d, type %q; want a 413 page", r.StatusCode, r.Header.Get("Content-Type"))
		}
	})
	batch := `[{"action":"a.b","status":"success"},{"action":"a.c","status":"success"}]`
	for name, c := range map[string]struct{ coding, body string }{
		"gzip":          {"gzip", gzipped(t, batch)},
		"deflate":       {"deflate", deflated(t, batch)},
		"gzip, deflate": {"gzip, deflate", deflated(t, gzipped(t, batch))},
		"identity":      {"identity", batch},
	} {
		t.Run("ingest with "+name, func(t *testing.T) {
			r := env.API("POST", "/api/v1/events/batch", key, "application/json", c.body, "Content-Encoding", c.coding)
			if r.StatusCode != http.StatusCreated {
				t.Fatalf("status %d: %s", r.StatusCode, r.Body)
			}
		})
	}
	t.Run("unknown coding", func(t *testing.T) {
		r := env.API("POST", "/api/v1/events/batch", key, "application/json", batch, "Content-Encoding", "compress")
		assertAPIError(t, r, http.StatusUnsupportedMediaType)
	})
	t.Run("too many stacked codings", func(t *testing.T) {
		body := gzipped(t, gzipped(t, gzipped(t, batch)))
		r := env.API("POST", "/api/v1/events/batch", key, "application/json", body, "Content-Encoding", "gzip, gzip, gzip")
		assertAPIError(t, r, http.StatusUnsupportedMediaType)
	})
	t.Run("corrupt gzip", func(t *testing.T) {
		r := env.API("POST", "/api/v1/events/batch", key, "application/json", batch, "Content-Encoding", "gzip")
		assertAPIError(t, r, http.StatusBadRequest)
	})
	// The API key is checked before any decoding: an anonymous bomb costs the server nothing.
	for _, path := range []string{"/api/v1/nope", "/api/v1/events/batch"} {
		t.Run("anonymous bomb on "+path, func(t *testing.T) {
			r := env.API("POST", path, "", "application/json", bomb, "Content-Encoding", "gzip")
			assertAPIError(t, r, http.StatusUnauthorized)
		})
	}
	t.Run("anonymous bomb on a console form", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "/members", strings.NewReader(bomb))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Content-Encoding", "gzip")
		if r := env.Anonymous().Do(req); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
			t.Fatalf("status %d, location %q; want the sign-in redirect", r.StatusCode, r.Header.Get("Location"))
		}
	})
	t.Run("gzipped sign-in form", func(t *testing.T) {
		c := env.Anonymous()
		c.Get("/login")
		form := url.Values{"email": {"nobody@example.test"}, "password": {"not the password!"}, "_csrf": {c.CSRF}}
		req, _ := http.NewRequest("POST", "/login", strings.NewReader(gzipped(t, form.Encode())))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Content-Encoding", "gzip")
		if r := c.Do(req); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401 (the form was read)", r.StatusCode)
		}
	})
}
