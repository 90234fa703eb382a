package handlers_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

// POST /api/v1/reports refuses, naming the field, every body it cannot take as one report
// request, and starts nothing then.
func TestAPIReportRequestRefusals(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("api-rep")
	read := env.APIKey(org, models.ScopeRead)
	now := time.Now().UTC()
	at := func(t time.Time) string { return t.Format(time.RFC3339) }
	for _, tc := range []struct {
		name, body, field string
	}{
		{"invalid UTF-8", "{\"type\":\"GENERAL_COMPLIANCE\",\"action\":\"a\xff\"}", "body"},
		{"not JSON", `type=GENERAL_COMPLIANCE`, "body"},
		{"an array", `[{"type":"GENERAL_COMPLIANCE"}]`, "body"},
		{"null", `null`, "body"},
		{"empty", ``, "body"},
		{"trailing object", `{"type":"GENERAL_COMPLIANCE"}{"type":"HIPAA_AUDIT_TRAIL"}`, "body"},
		{"trailing garbage", `{"type":"GENERAL_COMPLIANCE"} x`, "body"},
		{"an unknown member", `{"type":"GENERAL_COMPLIANCE","limit":5}`, "limit"},
		{"a member beside template_id", `{"template_id":"tpl_1","from":"` + at(now.Add(-time.Hour)) + `"}`, "from"},
		{"a filter beside template_id", `{"template_id":"tpl_1","principal":"bob"}`, "principal"},
		{"from before 2000", `{"type":"GENERAL_COMPLIANCE","from":"1999-12-31T23:59:59Z","to":"2000-06-01T00:00:00Z"}`, "from"},
		{"from far in the future", `{"type":"GENERAL_COMPLIANCE","from":"` + at(now.Add(72*time.Hour)) + `","to":"` + at(now.Add(96*time.Hour)) + `"}`, "from"},
		{"to more than a day ahead", `{"type":"GENERAL_COMPLIANCE","from":"` + at(now.Add(-time.Hour)) + `","to":"` + at(now.Add(25*time.Hour)) + `"}`, "to"},
		{"from after to", `{"type":"GENERAL_COMPLIANCE","from":"` + at(now.Add(-time.Hour)) + `","to":"` + at(now.Add(-2*time.Hour)) + `"}`, "to"},
		{"from before 2000 without to", `{"type":"GENERAL_COMPLIANCE","from":"1999-12-31T23:59:59Z"}`, "from"},
		{"from long before 2000 with to", `{"type":"GENERAL_COMPLIANCE","from":"1990-01-01","to":"2001-01-01"}`, "from"},
		{"longer than five years", `{"type":"GENERAL_COMPLIANCE","from":"2015-01-01T00:00:00Z","to":"2021-01-02T00:00:00Z"}`, "to"},
		{"from not a time", `{"type":"GENERAL_COMPLIANCE","from":"yesterday"}`, "from"},
		{"from a number", `{"type":"GENERAL_COMPLIANCE","from":1700000000}`, "from"},
		{"formats a string", `{"type":"GENERAL_COMPLIANCE","formats":"csv"}`, "formats"},
		{"an unknown format", `{"type":"GENERAL_COMPLIANCE","formats":["docx"]}`, "formats"},
		{"an unknown type", `{"type":"SOX"}`, "type"},
		{"a bad status filter", `{"type":"GENERAL_COMPLIANCE","status":"maybe"}`, "status"},
		{"patient access without a patient", `{"type":"PATIENT_ACCESS"}`, "patient"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := env.API("POST", "/api/v1/reports", read, jsonType, tc.body)
			var body struct {
				Error struct{ Field, Message string }
			}
			_ = json.Unmarshal([]byte(r.Body), &body)
			if r.StatusCode != http.StatusBadRequest || body.Error.Field != tc.field || body.Error.Message == "" {
				t.Fatalf("%d %s, want 400 naming %s", r.StatusCode, r.Body, tc.field)
			}
		})
	}
	var n int64
	env.DB.Raw(`SELECT count(*) FROM report_executions WHERE organization_id = ?`, org).Scan(&n)
	if n != 0 {
		t.Fatalf("refused requests started %d executions", n)
	}
	// The edges that are accepted: a period from 2000-01-01, one ending within the day ahead,
	// and formats beside a template.
	for _, body := range []string{
		`{"type":"GENERAL_COMPLIANCE","from":"2000-01-01T00:00:00Z","to":"2004-12-31T00:00:00Z","formats":["json"]}`,
		`{"type":"GENERAL_COMPLIANCE","from":"` + at(now.Add(-time.Hour)) + `","to":"` + at(now.Add(23*time.Hour)) + `","formats":["json"]}`,
	} {
		if r := env.API("POST", "/api/v1/reports", read, jsonType, body); r.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: %d %s", body, r.StatusCode, r.Body)
		}
		env.Services.ReportRunner.Wait()
	}

	t.Run("a fourth run at once is 429 with Retry-After", func(t *testing.T) {
		busy := env.Org("api-rep-busy")
		key := env.APIKey(busy, models.ScopeRead)
		for i := range 3 {
			if err := env.DB.Exec(`INSERT INTO report_executions (id, organization_id, report_type, status, execution_time, scheduled_time, heartbeat_at)
				VALUES (?, ?, 'GENERAL_COMPLIANCE', 'running', now(), now(), now())`, fmt.Sprintf("exe_%s_%d", busy, i), busy).Error; err != nil {
				t.Fatal(err)
			}
		}
		r := env.API("POST", "/api/v1/reports", key, jsonType, `{"type":"GENERAL_COMPLIANCE"}`)
		if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "30" || !strings.Contains(r.Body, "running") {
			t.Fatalf("%d Retry-After %q %s", r.StatusCode, r.Header.Get("Retry-After"), r.Body)
		}
	})
}
