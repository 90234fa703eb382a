package handlers_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

const jsonType = "application/json"

// apiError is the error body of the API.
type apiError struct {
	Error struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
		Field   string `json:"field"`
		Index   *int   `json:"index"`
	} `json:"error"`
}

func decode[T any](t *testing.T, r webtest.Response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.Body), &v); err != nil {
		t.Fatalf("status %d, body %.300q is not the expected JSON: %v", r.StatusCode, r.Body, err)
	}
	return v
}

type receipt struct {
	ID        int64  `json:"id"`
	Hash      string `json:"hash"`
	Timestamp string `json:"timestamp"`
}

// countEvents counts org's events that did not come from the console's self-audit.
func countEvents(t *testing.T, env *webtest.Env, org string) int64 {
	t.Helper()
	var n int64
	if err := env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ?
		AND coalesce(details->>'source', '') <> 'console'`, org).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIngestOneEvent(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("ing")
	key := env.APIKey(org, models.ScopeIngest)
	body := `{"action":"patient.record.read","status":"success","principalId":"dr.who","targetResourceType":"Patient",
		"targetResourceId":"p-1","outcomeDescription":"<b>chart</b> opened","details":{"ip":"10.0.0.1","reason":"care"}}`
	r := env.API("POST", "/api/v1/events", key, jsonType, body)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", r.StatusCode, r.Body)
	}
	rc := decode[receipt](t, r)
	ev, err := env.Services.Events.Get(t.Context(), org, rc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Hash != rc.Hash || ev.Timestamp.UTC().Format(models.TimestampLayout) != rc.Timestamp {
		t.Fatalf("receipt %+v does not describe the stored event", rc)
	}
	if *ev.OutcomeDescription != "<b>chart</b> opened" || ev.ProcessingLatency == nil {
		t.Fatalf("stored %+v", ev)
	}
	if v, err := env.Sealer.Verify(ev); err != nil || !v.HashOK || !v.SignatureOK {
		t.Fatalf("stored event does not verify: %+v %v", v, err)
	}
	if time.Since(ev.Timestamp) > time.Minute {
		t.Fatalf("timestamp %v should default to the time of receipt", ev.Timestamp)
	}
}

func TestIngestBatch(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("batch")
	key := env.APIKey(org, models.ScopeIngest)
	one := `{"action":"a%d","status":"success","correlationId":"c"}`
	var arr, nd []string
	for i := 0; i < 5; i++ {
		arr = append(arr, fmt.Sprintf(one, i))
		nd = append(nd, fmt.Sprintf(one, 10+i))
	}
	cases := []struct {
		name, contentType, body string
		want                    int
	}{
		{"JSON array", jsonType, "[" + strings.Join(arr, ",") + "]", 5},
		{"NDJSON", "application/x-ndjson", strings.Join(nd, "\n") + "\n", 5},
		{"NDJSON with charset", "application/x-ndjson; charset=utf-8", fmt.Sprintf(one, 99), 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := env.API("POST", "/api/v1/events/batch", key, tc.contentType, tc.body)
			if r.StatusCode != http.StatusCreated {
				t.Fatalf("status %d: %s", r.StatusCode, r.Body)
			}
			got := decode[struct {
				Count  int       `json:"count"`
				Events []receipt `json:"events"`
			}](t, r)
			if got.Count != tc.want || len(got.Events) != tc.want {
				t.Fatalf("got %+v", got)
			}
			for i, rc := range got.Events {
				ev, err := env.Services.Events.Get(t.Context(), org, rc.ID)
				if err != nil || ev.Hash != rc.Hash {
					t.Fatalf("receipt %d: %v", i, err)
				}
				if i > 0 && !strings.HasPrefix(ev.Action, "a") {
					t.Fatalf("receipts out of order")
				}
			}
		})
	}
}

// TestIngestBadInput has one case per kind of bad input the ingest routes must refuse, with
// the status and (where the API names one) the field and batch index.
func TestIngestBadInput(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("bad")
	ingest := env.APIKey(org, models.ScopeIngest)
	read := env.APIKey(org, models.ScopeRead)
	revokedKey, revoked, err := env.Services.APIKeys.Create(t.Context(), org, "old", models.ScopeIngest, models.SystemActor("test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Services.APIKeys.Revoke(t.Context(), org, revoked.ID, models.SystemActor("test")); err != nil {
		t.Fatal(err)
	}
	ok := `{"action":"a","status":"success"}`
	future := time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339)
	deep := `{"action":"a","status":"success","details":{"a":{"b":{"c":{"d":1}}}}}`
	var thousandAndOne []string
	for i := 0; i < 1001; i++ {
		thousandAndOne = append(thousandAndOne, ok)
	}
	cases := []struct {
		name        string
		path        string
		key         string
		header      string // Authorization header instead of key, when set
		contentType string
		body        string
		status      int
		field       string
		index       int // -1: the error names no index
	}{
		{"invalid JSON", "/api/v1/events", ingest, "", jsonType, `{"action":`, 400, "", -1},
		{"wrong content type", "/api/v1/events", ingest, "", "text/plain", ok, 415, "", -1},
		{"no content type", "/api/v1/events", ingest, "", "", ok, 415, "", -1},
		{"form content type on a batch", "/api/v1/events/batch", ingest, "", "application/x-www-form-urlencoded", "[" + ok + "]", 415, "", -1},
		{"batch over 1000 events", "/api/v1/events/batch", ingest, "", jsonType, "[" + strings.Join(thousandAndOne, ",") + "]", 413, "events", -1},
		{"NDJSON over 10000 lines", "/api/v1/events/batch", ingest, "", "application/x-ndjson", strings.Repeat(`{"action":"a","status":"attempt"}`+"\n", 10001), 413, "events", -1},
		{"missing action", "/api/v1/events", ingest, "", jsonType, `{"status":"success"}`, 400, "action", -1},
		{"missing status", "/api/v1/events", ingest, "", jsonType, `{"action":"a"}`, 400, "status", -1},
		{"bad status", "/api/v1/events", ingest, "", jsonType, `{"action":"a","status":"ok"}`, 400, "status", -1},
		{"bad classification", "/api/v1/events", ingest, "", jsonType, `{"action":"a","status":"success","dataClassification":"TOPSECRET"}`, 400, "dataClassification", -1},
		{"bad timestamp", "/api/v1/events", ingest, "", jsonType, `{"action":"a","status":"success","timestamp":"yesterday"}`, 400, "timestamp", -1},
		{"far-future timestamp", "/api/v1/events", ingest, "", jsonType, `{"action":"a","status":"success","timestamp":"` + future + `"}`, 400, "timestamp", -1},
		{"details deeper than allowed", "/api/v1/events", ingest, "", jsonType, deep, 400, "details", -1},
		{"invalid UTF-8", "/api/v1/events", ingest, "", jsonType, "{\"action\":\"\xff\xfe\",\"status\":\"success\"}", 400, "", -1},
		{"unknown field", "/api/v1/events", ingest, "", jsonType, `{"action":"a","status":"success","severity":"high"}`, 400, "severity", -1},
		{"server field", "/api/v1/events", ingest, "", jsonType, `{"action":"a","status":"success","hashAlgorithm":"md5"}`, 400, "hashAlgorithm", -1},
		{"missing key", "/api/v1/events", "", "", jsonType, ok, 401, "", -1},
		{"malformed Authorization", "/api/v1/events", "", "Basic dXNlcjpwYXNz", jsonType, ok, 401, "", -1},
		{"malformed key", "/api/v1/events", "not-a-key", "", jsonType, ok, 401, "", -1},
		{"unknown key", "/api/v1/events", "adb_" + strings.Repeat("x", 43), "", jsonType, ok, 401, "", -1},
		{"revoked key", "/api/v1/events", revokedKey, "", jsonType, ok, 401, "", -1},
		{"read key posting", "/api/v1/events", read, "", jsonType, ok, 403, "", -1},
		{"read key posting a batch", "/api/v1/events/batch", read, "", jsonType, "[" + ok + "]", 403, "", -1},
		{"foreign organizationId", "/api/v1/events", ingest, "", jsonType, `{"action":"a","status":"success","organizationId":"someone-else"}`, 403, "organizationId", -1},
		{"one bad event inside a batch", "/api/v1/events/batch", ingest, "", jsonType, "[" + ok + "," + ok + `,{"action":"a","status":"maybe"}]`, 400, "status", 2},
		{"one unknown field inside NDJSON", "/api/v1/events/batch", ingest, "", "application/x-ndjson", ok + "\n" + `{"action":"a","status":"success","x":1}`, 400, "x", 1},
		{"foreign organization inside a batch", "/api/v1/events/batch", ingest, "", jsonType, "[" + ok + `,{"action":"a","status":"success","organizationId":"x"}]`, 403, "organizationId", 1},
		{"empty batch", "/api/v1/events/batch", ingest, "", jsonType, "[]", 400, "", -1},
	}
	before := countEvents(t, env, org)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r webtest.Response
			if tc.header != "" {
				r = env.API("POST", tc.path, "", tc.contentType, tc.body, "Authorization", tc.header)
			} else {
				r = env.API("POST", tc.path, tc.key, tc.contentType, tc.body)
			}
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.300s", r.StatusCode, tc.status, r.Body)
			}
			e := decode[apiError](t, r)
			if e.Error.Status != tc.status || e.Error.Message == "" || e.Error.Field != tc.field {
				t.Fatalf("error %+v, want field %q", e.Error, tc.field)
			}
			if (tc.index < 0) != (e.Error.Index == nil) || (e.Error.Index != nil && *e.Error.Index != tc.index) {
				t.Fatalf("index %v, want %d", e.Error.Index, tc.index)
			}
			if tc.status == 401 && r.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("a 401 carries a WWW-Authenticate challenge")
			}
		})
	}
	if n := countEvents(t, env, org); n != before {
		t.Fatalf("%d events were written by refused requests", n-before)
	}
}

// TestIngestBodyLimit sends a body over 10 MB through a real connection (the in-process test
// transport refuses it before the server sees it). Like curl, the client asks for
// 100-continue, so it reads the refusal instead of writing into a closed connection.
func TestIngestBodyLimit(t *testing.T) {
	// Over a real socket. The request announces a body over 10 MB and sends none of it: the
	// server must refuse on the announced length alone. (Sending the whole body races the
	// server's close against the client's writes, and the client may see a reset first.)
	env := webtest.New(t)
	base := env.Serve()
	key := env.APIKey(env.Org("limit"), models.ScopeIngest)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /api/v1/events/batch HTTP/1.1\r\nHost: auditdb\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n", key, 10<<20+1)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e apiError
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("status %d, body is not the API's JSON error: %v", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge || e.Error.Status != 413 || !strings.Contains(e.Error.Message, "10 MB") {
		t.Fatalf("status %d, error %+v", resp.StatusCode, e.Error)
	}
}

func TestIngestIdempotencyKey(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("idem")
	key := env.APIKey(org, models.ScopeIngest)
	body := `{"action":"order.pay","status":"success"}`
	first := env.API("POST", "/api/v1/events", key, jsonType, body, "Idempotency-Key", "pay-1")
	if first.StatusCode != http.StatusCreated {
		t.Fatalf("first: %d %s", first.StatusCode, first.Body)
	}
	cases := []struct {
		name, path, body, key string
		status                int
		same                  bool
	}{
		{"retry gets the first answer", "/api/v1/events", body, "pay-1", 201, true},
		{"same key, other body", "/api/v1/events", `{"action":"order.refund","status":"success"}`, "pay-1", 409, false},
		{"same key, other route", "/api/v1/events/batch", "[" + body + "]", "pay-1", 409, false},
		{"key too long", "/api/v1/events", body, strings.Repeat("k", 256), 400, false},
		{"new key writes", "/api/v1/events", body, "pay-2", 201, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := env.API("POST", tc.path, key, jsonType, tc.body, "Idempotency-Key", tc.key)
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", r.StatusCode, tc.status, r.Body)
			}
			if tc.same && (r.Body != first.Body || r.Header.Get("Idempotent-Replayed") != "true") {
				t.Fatalf("replay %s differs from the first answer %s", r.Body, first.Body)
			}
			if tc.status == 409 && decode[apiError](t, r).Error.Field != "Idempotency-Key" {
				t.Fatalf("409 should name the header: %s", r.Body)
			}
		})
	}
	if n := countEvents(t, env, org); n != 2 {
		t.Fatalf("%d events written, want 2 (pay-1 once, pay-2 once)", n)
	}
	other := env.Org("idem2")
	if r := env.API("POST", "/api/v1/events", env.APIKey(other, models.ScopeIngest), jsonType, body, "Idempotency-Key", "pay-1"); r.StatusCode != 201 || r.Body == first.Body {
		t.Fatalf("keys are per organization: %d %s", r.StatusCode, r.Body)
	}
}

// TestIngestDeadLetterAndReplay makes the database refuse what validation accepted, then
// lets an administrator fix the cause and replay the dead letter from the console.
func TestIngestDeadLetterAndReplay(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("dlq")
	key := env.APIKey(org, models.ScopeIngest)
	if err := env.DB.Exec(`ALTER TABLE audit_log ADD CONSTRAINT handlers_test_refuse CHECK (action <> 'refused.by.db')`).Error; err != nil {
		t.Fatal(err)
	}
	dropped := false
	drop := func() {
		if !dropped {
			env.DB.Exec(`ALTER TABLE audit_log DROP CONSTRAINT handlers_test_refuse`)
			dropped = true
		}
	}
	t.Cleanup(drop)
	r := env.API("POST", "/api/v1/events/batch", key, jsonType, `[{"action":"fine","status":"success"},{"action":"refused.by.db","status":"success"}]`)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.StatusCode, r.Body)
	}
	dl := decode[struct {
		Status string `json:"status"`
		ID     int64  `json:"deadLetterId"`
		Reason string `json:"reason"`
	}](t, r)
	if dl.Status != "dead-lettered" || dl.ID == 0 || !strings.Contains(dl.Reason, "handlers_test_refuse") {
		t.Fatalf("answer %+v", dl)
	}
	if n := countEvents(t, env, org); n != 0 {
		t.Fatalf("%d events written; the batch is atomic", n)
	}

	admin := env.Login(env.User(org, "org:admin"))
	page := admin.Get("/settings/dead-letters")
	if page.StatusCode != 200 || !strings.Contains(page.Body, "handlers_test_refuse") || !strings.Contains(page.Body, `data-testid="dead-letter-replay"`) {
		t.Fatalf("dead letters page: %d", page.StatusCode)
	}
	path := fmt.Sprintf("/settings/dead-letters/%d/replay", dl.ID)
	if r := admin.PostForm(path, url.Values{}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("replay while the cause remains: status %d", r.StatusCode)
	}
	drop()
	if r := admin.PostForm(path, url.Values{}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("replay: status %d %s", r.StatusCode, r.Body)
	}
	if n := countEvents(t, env, org); n != 2 {
		t.Fatalf("%d events after the replay, want 2", n)
	}
	page = admin.Get(fmt.Sprintf("/settings/dead-letters?done=dead-letter-replayed&name=%d", dl.ID))
	if !strings.Contains(page.Body, `data-testid="replayed"`) || !strings.Contains(page.Body, `data-testid="dead-letter-replayed"`) ||
		!strings.Contains(page.Body, "Failed 2 times") {
		t.Fatal("the page should confirm the replay and show the letter as replayed after one failed attempt")
	}
	if r := admin.PostForm(path, url.Values{}); r.StatusCode != http.StatusConflict {
		t.Fatalf("second replay: status %d, want 409", r.StatusCode)
	}
	if n := countEvents(t, env, org); n != 2 {
		t.Fatalf("a second replay wrote events: %d", n)
	}
	other := env.Login(env.User(env.Org("dlq-other"), "org:admin"))
	if r := other.PostForm(path, url.Values{}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("another organization's replay: status %d", r.StatusCode)
	}
}
