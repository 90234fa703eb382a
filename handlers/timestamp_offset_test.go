package handlers_test

import (
	"net/http"
	"testing"

	"auditdb/models"
	"auditdb/web/webtest"
)

// TestIngestRefusesOffsetsOutsideRFC3339: +24:00 and +23:60 are not RFC 3339 offsets; an
// event stamped with one is refused with 400 naming timestamp.
func TestIngestRefusesOffsetsOutsideRFC3339(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("tz")
	key := env.APIKey(org, models.ScopeIngest)
	for _, ts := range []string{"2026-01-31T13:45:00+24:00", "2026-01-31T13:45:00+23:60"} {
		r := env.API("POST", "/api/v1/events", key, jsonType, `{"action":"a.b","status":"success","timestamp":"`+ts+`"}`)
		if e := decode[apiError](t, r); r.StatusCode != http.StatusBadRequest || e.Error.Field != "timestamp" {
			t.Errorf("%s: status %d, body %s; want 400 naming timestamp", ts, r.StatusCode, r.Body)
		}
	}
}
