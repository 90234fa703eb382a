package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

// TestDeadLetterReplayKeyIsNotAClientKey: a client that posts with the Idempotency-Key the
// replayer would use for a dead letter neither blocks the replay nor gets its events
// recorded by it; the replay writes the dead letter's events, and the client's key stays
// the client's.
func TestDeadLetterReplayKeyIsNotAClientKey(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("decoy")
	key := env.APIKey(org, models.ScopeIngest)
	refused := fmt.Sprintf("refused.decoy.%d", time.Now().UnixNano()) // written by the replay: unique per run
	if err := env.DB.Exec(`ALTER TABLE audit_log ADD CONSTRAINT handlers_test_decoy CHECK (action <> '` + refused + `')`).Error; err != nil {
		t.Fatal(err)
	}
	dropped := false
	drop := func() {
		if !dropped {
			env.DB.Exec(`ALTER TABLE audit_log DROP CONSTRAINT handlers_test_decoy`)
			dropped = true
		}
	}
	t.Cleanup(drop)
	r := env.API("POST", "/api/v1/events/batch", key, jsonType, `[{"action":"kept","status":"success"},{"action":"`+refused+`","status":"success"}]`)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.StatusCode, r.Body)
	}
	dl := decode[struct {
		ID int64 `json:"deadLetterId"`
	}](t, r)
	drop()

	decoyKey := fmt.Sprintf("dead-letter:%d", dl.ID)
	decoy := env.API("POST", "/api/v1/events/batch", key, jsonType, `[{"action":"decoy","status":"success"}]`, "Idempotency-Key", decoyKey)
	if decoy.StatusCode != http.StatusCreated {
		t.Fatalf("decoy: %d %s", decoy.StatusCode, decoy.Body)
	}
	admin := env.Login(env.User(org, "org:admin"))
	if r := admin.PostForm(fmt.Sprintf("/settings/dead-letters/%d/replay", dl.ID), url.Values{}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("replay: status %d %s", r.StatusCode, r.Body)
	}
	if n := countEvents(t, env, org); n != 3 {
		t.Fatalf("%d events after the replay, want 3 (the decoy and the dead letter's two): the replay wrote nothing", n)
	}
	var actions []string
	if err := env.DB.Raw(`SELECT action FROM audit_log WHERE organization_id = ? AND action IN ('kept', ?) ORDER BY action`, org, refused).
		Scan(&actions).Error; err != nil {
		t.Fatal(err)
	}
	if len(actions) != 2 {
		t.Fatalf("the replay recorded %v, want the dead letter's two events", actions)
	}
	var result string
	if err := env.DB.Raw(`SELECT replay_result::text FROM archive_dlq_event WHERE id = ?`, dl.ID).Scan(&result).Error; err != nil {
		t.Fatal(err)
	}
	decoyReceipts := decode[struct {
		Events []receipt `json:"events"`
	}](t, decoy).Events
	if len(decoyReceipts) != 1 || result == "" || containsID(result, decoyReceipts[0].ID) {
		t.Fatalf("the dead letter's replay result %s names the decoy's receipt %+v", result, decoyReceipts)
	}
	// The scope migration tells recorded replays from client keys by this digest: it must
	// pick the replay's key and not the decoy's.
	var internal, client int64
	if err := env.DB.Raw(`SELECT count(*) FILTER (WHERE i.scope = 'internal'), count(*) FILTER (WHERE i.scope = 'client')
		FROM api_idempotency i JOIN archive_dlq_event d ON i.idempotency_key = 'dead-letter:' || d.id
		AND d.organization_id = i.organization_id AND i.request_hash = sha256(convert_to(d.original_event::text, 'UTF8'))
		WHERE d.id = ?`, dl.ID).Row().Scan(&internal, &client); err != nil {
		t.Fatal(err)
	}
	if internal != 1 || client != 0 {
		t.Fatalf("the migration's digest matches %d internal and %d client keys, want 1 and 0", internal, client)
	}
	again := env.API("POST", "/api/v1/events/batch", key, jsonType, `[{"action":"decoy","status":"success"}]`, "Idempotency-Key", decoyKey)
	if again.StatusCode != http.StatusCreated || again.Body != decoy.Body || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the client's key should still replay the client's answer: %d %s", again.StatusCode, again.Body)
	}
	if n := countEvents(t, env, org); n != 3 {
		t.Fatalf("%d events after the client's retry, want 3", n)
	}
}

func containsID(result string, id int64) bool {
	return strings.Contains(result, fmt.Sprintf(`"id": %d,`, id)) || strings.Contains(result, fmt.Sprintf(`"id":%d,`, id))
}

// TestIngestIdempotencyKeyAtOnce: identical requests with a new Idempotency-Key that arrive
// together write once; every one gets 201 with the same receipts, all but the first
// marked as replayed. Another body under that key is a 409.
func TestIngestIdempotencyKeyAtOnce(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("idem-race")
	key := env.APIKey(org, models.ScopeIngest)
	for _, tc := range []struct{ path, body string }{
		{"/api/v1/events", `{"action":"order.ship","status":"success"}`},
		{"/api/v1/events/batch", `[{"action":"order.pack","status":"success"},{"action":"order.label","status":"success"}]`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			before := countEvents(t, env, org)
			idem := "burst-" + tc.path
			const n = 10
			answers := make([]webtest.Response, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range answers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					answers[i] = env.API("POST", tc.path, key, jsonType, tc.body, "Idempotency-Key", idem)
				}()
			}
			close(start)
			wg.Wait()
			replayed := 0
			for i, r := range answers {
				if r.StatusCode != http.StatusCreated {
					t.Fatalf("request %d: status %d %s", i, r.StatusCode, r.Body)
				}
				if r.Body != answers[0].Body {
					t.Fatalf("request %d answered %s, request 0 %s", i, r.Body, answers[0].Body)
				}
				if r.Header.Get("Idempotent-Replayed") == "true" {
					replayed++
				}
			}
			if replayed != n-1 {
				t.Fatalf("%d answers marked as replayed, want %d", replayed, n-1)
			}
			want := int64(1)
			if tc.path == "/api/v1/events/batch" {
				want = 2
			}
			if got := countEvents(t, env, org) - before; got != want {
				t.Fatalf("%d events written, want %d", got, want)
			}
			other := env.API("POST", tc.path, key, jsonType, tc.body[:len(tc.body)-1]+` `+tc.body[len(tc.body)-1:], "Idempotency-Key", idem)
			if other.StatusCode != http.StatusConflict || decode[apiError](t, other).Error.Field != "Idempotency-Key" {
				t.Fatalf("another body under the key: %d %s", other.StatusCode, other.Body)
			}
		})
	}
}
