package bench

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPosterTalksHTTP(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+r.Header.Get("Content-Type")+" "+string(body))
		mu.Unlock()
		switch string(body) {
		case "bad":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"bad"}`)
		case "big":
			w.WriteHeader(http.StatusCreated)
			for i := 0; i < 100; i++ { // flushed in pieces: chunked
				io.WriteString(w, strings.Repeat("x", 1000))
				w.(http.Flusher).Flush()
			}
		default:
			w.Header().Set("Server-Timing", "app;dur=1.500")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":1,"echo":"`+string(body)+`"}`)
		}
	}))
	defer srv.Close()
	p, err := newPoster(srv.URL, "k3y", 4, eventsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()

	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				status, answer, took, err := p.post(eventsPath, []byte("ev"))
				if err != nil || status != 201 || string(answer) != `{"id":1,"echo":"ev"}` || took != 1500*time.Microsecond {
					t.Errorf("post = %d %q %s %v", status, answer, took, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if len(seen) != 200 || seen[0] != "POST /api/v1/events Bearer k3y application/json ev" {
		t.Fatalf("%d requests, first %q", len(seen), seen[0])
	}

	// An error answer is read whole and the connection it closes is not reused.
	status, answer, _, err := p.post(eventsPath, []byte("bad"))
	if err != nil || status != 400 || string(answer) != `{"error":"bad"}` {
		t.Fatalf("bad request: %d %q %v", status, answer, err)
	}
	if status, _, _, err := p.post(eventsPath, []byte("after")); err != nil || status != 201 {
		t.Fatalf("after a closed connection: %d %v", status, err)
	}
	if _, _, _, err := p.post(eventsPath, []byte("big")); err == nil || !strings.Contains(err.Error(), "chunked") {
		t.Fatalf("a chunked answer: err = %v", err)
	}
	if _, _, _, err := p.post("/elsewhere", nil); err == nil {
		t.Fatal("a path the poster was not made for was posted")
	}
	if _, err := newPoster("https://example.test", "k", 1); err == nil {
		t.Fatal("an https address was accepted")
	}
}
