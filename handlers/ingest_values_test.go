package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"auditdb/models"
	"auditdb/web/webtest"
)

// TestIngestRefusesWhatCannotBeStoredExactly posts values the database would refuse at
// write time, or would store without the hash committing to them exactly: each must be a
// 400 naming the member (and, in a batch, the event's index), with nothing written.
func TestIngestRefusesWhatCannotBeStoredExactly(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("vals")
	key := env.APIKey(org, models.ScopeIngest)
	ok := `{"action":"a","status":"success"}`
	withDetails := func(details string) string { return `{"action":"a","status":"success","details":` + details + `}` }
	cases := []struct {
		name  string
		path  string
		body  string
		field string
		index int // -1: the error names no index
	}{
		{"integer beyond a float64", "/api/v1/events", withDetails(`{"amount":123456789012345678901234567890}`), "details.amount", -1},
		{"number that underflows to zero", "/api/v1/events", withDetails(`{"m":{"tiny":1e-400}}`), "details.m.tiny", -1},
		{"decimal a float64 rounds", "/api/v1/events", withDetails(`{"price":0.1000000000000000000001}`), "details.price", -1},
		{"number in an array", "/api/v1/events", withDetails(`{"xs":[1,2,9007199254740993]}`), "details.xs[2]", -1},
		{"number outside PostgreSQL's numeric range", "/api/v1/events", withDetails(`{"big":1e200000}`), "details.big", -1},
		{"zero written with an exponent past ±1000", "/api/v1/events", withDetails(`{"z":0e99999}`), "details.z", -1},
		{"number written with more digits than numeric keeps", "/api/v1/events", withDetails(`{"one":1.` + strings.Repeat("0", 20000) + `}`), "details.one", -1},
		{"number beyond a float64's range", "/api/v1/events", withDetails(`{"big":1e309}`), "details.big", -1},
		{"NUL in details", "/api/v1/events", withDetails(`{"s":"a\u0000b"}`), "details.s", -1},
		{"NUL in a string member", "/api/v1/events", `{"action":"a\u0000","status":"success"}`, "action", -1},
		{"unpaired surrogate in details", "/api/v1/events", withDetails(`{"s":"\ud800"}`), "", -1},
		{"timestamp before 1970", "/api/v1/events", `{"action":"a","status":"success","timestamp":"0001-01-01T00:00:00Z"}`, "timestamp", -1},
		{"timestamp past year 9999 in UTC", "/api/v1/events", `{"action":"a","status":"success","timestamp":"9999-12-31T23:59:59-23:59"}`, "timestamp", -1},
		{"over-long action", "/api/v1/events", `{"action":"` + strings.Repeat("x", 256) + `","status":"success"}`, "action", -1},
		{"over-long eventVersion", "/api/v1/events", `{"action":"a","status":"success","eventVersion":"` + strings.Repeat("1", 21) + `"}`, "eventVersion", -1},
		{"one unstorable event refuses the whole batch", "/api/v1/events/batch", "[" + ok + "," + withDetails(`{"n":1e200000}`) + "," + ok + "]", "details.n", 1},
		{"one unstorable NDJSON line refuses the whole batch", "/api/v1/events/batch", ok + "\n" + ok + "\n" + withDetails(`{"n":123456789012345678901234567890}`), "details.n", 2},
	}
	before := countEvents(t, env, org)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct := jsonType
			if strings.Contains(tc.name, "NDJSON") {
				ct = "application/x-ndjson"
			}
			r := env.API("POST", tc.path, key, ct, tc.body)
			if r.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %.300s", r.StatusCode, r.Body)
			}
			e := decode[apiError](t, r)
			if e.Error.Field != tc.field || e.Error.Message == "" {
				t.Fatalf("error %+v, want field %q", e.Error, tc.field)
			}
			if (tc.index < 0) != (e.Error.Index == nil) || (e.Error.Index != nil && *e.Error.Index != tc.index) {
				t.Fatalf("index %v, want %d", e.Error.Index, tc.index)
			}
		})
	}
	if n := countEvents(t, env, org); n != before {
		t.Fatalf("%d events were written by refused requests", n-before)
	}
}

// TestIngestKeepsExactNumbers: numbers a float64 holds exactly are accepted, stored as sent
// and verify.
func TestIngestKeepsExactNumbers(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("nums")
	key := env.APIKey(org, models.ScopeIngest)
	body := `{"action":"a","status":"success","details":{"amount":12.5,"count":9007199254740992,"big":1e300,"neg":-0.25,"xs":[0,1.5e-7,0.1,0e5,1.50]}}`
	r := env.API("POST", "/api/v1/events", key, jsonType, body)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", r.StatusCode, r.Body)
	}
	rc := decode[receipt](t, r)
	ev, err := env.Services.Events.Get(t.Context(), org, rc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := env.Sealer.Verify(ev); err != nil || !v.HashOK || !v.SignatureOK {
		t.Fatalf("stored event does not verify: %+v %v", v, err)
	}
}
