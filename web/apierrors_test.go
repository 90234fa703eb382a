package web_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"auditdb/models"
	"auditdb/web/webtest"
)

// TestUnknownAPIRoutesAnswerJSON: under /api, whatever the case of the prefix, an unknown
// path is a JSON 404 and a known path with another method a JSON 405 with Allow, never the
// console's sign-in redirect or an HTML page.
func TestUnknownAPIRoutesAnswerJSON(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("api404")
	key := env.APIKey(org, models.ScopeRead)
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/api/v1/nothing-here", 404, ""},
		{"GET", "/api/v2/events", 404, ""},
		{"GET", "/api/nothing", 404, ""},
		{"GET", "/API/v1/nothing-here", 404, ""},
		{"GET", "/api/V1/events/1/nothing", 404, ""},
		{"GET", "/Api/v1/events/99999999", 404, ""},
		{"DELETE", "/api/v1/events", 405, "GET, POST"},
		{"PUT", "/api/v1/events/7", 405, "GET"},
		{"PATCH", "/API/V1/checkpoints/latest", 405, "GET"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			r := env.API(c.method, c.path, key, "", "")
			assertAPIError(t, r, c.status)
			if c.allow != "" && r.Header.Get("Allow") != c.allow {
				t.Fatalf("Allow %q, want %q", r.Header.Get("Allow"), c.allow)
			}
		})
	}
	t.Run("without a key", func(t *testing.T) {
		assertAPIError(t, env.API("GET", "/API/v1/nothing-here", "", "", ""), http.StatusUnauthorized)
	})
}

// rawRequest writes raw to the server at base and returns the status and body of the answer.
func rawRequest(t *testing.T, base, raw string) (int, string, http.Header) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go io.WriteString(conn, raw) // the server may answer before reading it all
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// TestTransportErrorsUnderAPIAnswerJSON: a body over the limit (413) and headers over the
// buffer (431), refused before any handler runs, are JSON under /api. A 413 elsewhere is a
// page; a 431 is JSON wherever it was sent, since its request line was never read.
func TestTransportErrorsUnderAPIAnswerJSON(t *testing.T) {
	env := webtest.New(t)
	base := env.Serve()
	big := fmt.Sprintf("POST %%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 11<<20)
	huge := "GET %s HTTP/1.1\r\nHost: x\r\nX-Filler: " + strings.Repeat("a", 16<<10) + "\r\n\r\n"
	for _, c := range []struct {
		name, raw, path string
		status          int
	}{
		{"413", big, "/api/v1/events/batch", http.StatusRequestEntityTooLarge},
		{"431", huge, "/api/v1/events", http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(c.name+" api", func(t *testing.T) {
			status, body, _ := rawRequest(t, base, fmt.Sprintf(c.raw, c.path))
			assertAPIError(t, webtest.Response{StatusCode: status, Body: body}, c.status)
		})
		t.Run(c.name+" console", func(t *testing.T) {
			if c.status == http.StatusRequestHeaderFieldsTooLarge {
				t.Skip("the request line of a 431 is never read: it is JSON everywhere")
			}
			status, body, h := rawRequest(t, base, fmt.Sprintf(c.raw, "/login"))
			if status != c.status || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
				t.Fatalf("status %d, type %q, body %.100q; want a %d page", status, h.Get("Content-Type"), body, c.status)
			}
		})
	}
}
