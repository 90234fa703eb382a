package handlers_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"auditdb/models"
	"auditdb/web/webtest"
)

// The API's request decoders take a body exactly as sent: a member given twice (which a
// lenient decoder would read as its last value) and a lone UTF-16 surrogate escape (which
// it would turn into U+FFFD) are 400 naming the member, and nothing is filed or started.
func TestAPIStrictJSON(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("api-strict")
	read, gdprKey := env.APIKey(org, models.ScopeRead), env.APIKey(org, models.ScopeGDPR)
	const gdprBody = `"identity_check":"portal sign-in","requested_by":"Pat","resource_type":"Patient","resource_id":"p-1"`
	for _, tc := range []struct {
		name, path, key, body, field, message string
	}{
		{"report type given twice", "/api/v1/reports", read,
			`{"type":"GENERAL_COMPLIANCE","type":"HIPAA_AUDIT_TRAIL"}`, "type", "more than once"},
		{"report formats given twice", "/api/v1/reports", read,
			`{"type":"GENERAL_COMPLIANCE","formats":["csv"],"formats":["json"]}`, "formats", "more than once"},
		{"report lone high surrogate", "/api/v1/reports", read,
			`{"type":"GENERAL_COMPLIANCE","principal":"\ud800x"}`, "principal", "must be valid text"},
		{"report lone low surrogate in formats", "/api/v1/reports", read,
			`{"type":"GENERAL_COMPLIANCE","formats":["json","\udc00"]}`, "formats", "must be valid text"},
		{"gdpr type given twice", "/api/v1/gdpr/requests", gdprKey,
			`{"type":"access",` + gdprBody + `,"type":"erasure"}`, "type", "more than once"},
		{"gdpr lone surrogate", "/api/v1/gdpr/requests", gdprKey,
			`{"type":"access",` + gdprBody + `,"notes":"a\ud800x"}`, "notes", "must be valid text"},
		{"gdpr invalid UTF-8", "/api/v1/gdpr/requests", gdprKey,
			"{\"type\":\"access\"," + gdprBody + ",\"notes\":\"a\xffx\"}", "body", "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := env.API("POST", tc.path, tc.key, jsonType, tc.body)
			var body struct {
				Error struct{ Field, Message string }
			}
			_ = json.Unmarshal([]byte(r.Body), &body)
			if r.StatusCode != http.StatusBadRequest || body.Error.Field != tc.field || !strings.Contains(body.Error.Message, tc.message) {
				t.Fatalf("%d %s, want 400 naming %s (%s)", r.StatusCode, r.Body, tc.field, tc.message)
			}
		})
	}
	var n int64
	env.DB.Raw(`SELECT (SELECT count(*) FROM report_executions WHERE organization_id = ?) + (SELECT count(*) FROM gdpr_requests WHERE organization_id = ?)`, org, org).Scan(&n)
	if n != 0 {
		t.Fatalf("refused requests left %d rows", n)
	}
	// A surrogate pair that is whole is text and is taken.
	if r := env.API("POST", "/api/v1/gdpr/requests", gdprKey, jsonType, `{"type":"access",`+gdprBody+`,"notes":"\ud83d\ude00"}`); r.StatusCode != http.StatusCreated {
		t.Fatalf("a whole surrogate pair: %d %s", r.StatusCode, r.Body)
	}
}
