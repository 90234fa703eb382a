package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gofiber/fiber/v2"

	"auditdb/handlers"
	"auditdb/models"
	"auditdb/web/webtest"
)

// TestOpenAPIDescribesTheAPI checks the OpenAPI document against the running application:
// it documents exactly the /api/v1 routes, and every operation answers a valid request, an
// unauthenticated one and one with the wrong scope with a documented status, a body that
// matches the documented schema, and only API headers the response declares (a replayed
// Idempotency-Key answer, a proof not yet in a checkpoint).
func TestOpenAPIDescribesTheAPI(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(handlers.OpenAPIDocument())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	env := webtest.New(t)
	if r := env.API("GET", "/api/v1/openapi.yaml", "", "", ""); r.StatusCode != 200 || r.Body != string(handlers.OpenAPIDocument()) ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/yaml") {
		t.Fatalf("GET /api/v1/openapi.yaml: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}

	documented := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			documented[method+" /api/v1"+path] = op
		}
	}
	served := map[string]bool{}
	for _, r := range env.App.GetRoutes(true) {
		if !strings.HasPrefix(r.Path, "/api/v1/") || r.Path == "/api/v1/openapi.yaml" || r.Method == "HEAD" || r.Method == "USE" {
			continue
		}
		served[r.Method+" "+strings.NewReplacer(":id", "{id}", ":size", "{size}", ":format", "{format}").Replace(r.Path)] = true
	}
	for route := range served {
		if documented[route] == nil {
			t.Errorf("%s is served but not documented", route)
		}
	}
	for route := range documented {
		if !served[route] {
			t.Errorf("%s is documented but not served", route)
		}
	}

	org := env.Org("oas")
	ingest, read := env.APIKey(org, models.ScopeIngest), env.APIKey(org, models.ScopeRead)
	r := env.API("POST", "/api/v1/events", ingest, jsonType, `{"action":"oas","status":"success","details":{"a":1}}`)
	id := decode[receipt](t, r).ID
	env.Sequence()
	r = env.API("GET", "/api/v1/checkpoints/latest", read, "", "")
	size := strconv.FormatInt(decode[apiCheckpoint](t, r).TreeSize, 10)
	if _, err := env.Services.Alerts.Raise(context.Background(), models.NewAlert{Org: org, Severity: "HIGH", Type: "SECURITY",
		Title: "Failed logins", Source: "detection", Rule: "failed_logins", Principal: "mallory", EventIDs: []int64{id},
		Metadata: map[string]any{"count": 5}}); err != nil {
		t.Fatal(err)
	}
	evPath := "/api/v1/events/" + strconv.FormatInt(id, 10)
	r = env.API("POST", "/api/v1/events", ingest, jsonType, `{"action":"oas.unlogged","status":"success"}`)
	unlogged := "/api/v1/events/" + strconv.FormatInt(decode[receipt](t, r).ID, 10)
	replayKey := []string{handlers.IdempotencyHeader, webtest.Unique("oas-replay")}
	batchReplayKey := []string{handlers.IdempotencyHeader, webtest.Unique("oas-batch-replay")}

	type call struct {
		method, path, key, contentType, body string
		status                               int
		headers                              []string
		wantHeader                           string // a header the answer must carry
	}
	// A report run to completion, its download link, and an expired one.
	from := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	r = env.API("POST", "/api/v1/reports", read, jsonType, `{"type":"GENERAL_COMPLIANCE","from":"`+from+`","formats":["csv"]}`)
	execID := decode[struct {
		ID string `json:"id"`
	}](t, r).ID
	env.Services.ReportRunner.Wait()
	reportPath := "/api/v1/reports/" + execID
	// An organization already running its three reports.
	busy := env.Org("oas-busy")
	busyRead := env.APIKey(busy, models.ScopeRead)
	for i := range 3 {
		if err := env.DB.Exec(`INSERT INTO report_executions (id, organization_id, report_type, status, execution_time, scheduled_time, heartbeat_at)
			VALUES (?, ?, 'GENERAL_COMPLIANCE', 'running', now(), now(), now())`, fmt.Sprintf("exe_%s_%d", busy, i), busy).Error; err != nil {
			t.Fatal(err)
		}
	}
	filePath := reportPath + "/files/csv?" + env.Services.ReportLinks.Query(org, execID, "csv", time.Hour)
	expiredPath := reportPath + "/files/csv?" + env.Services.ReportLinks.Query(org, execID, "csv", -time.Hour)
	// A GDPR request filed by a privacy portal's key.
	gdprKey := env.APIKey(org, models.ScopeGDPR)
	gdprBody := `{"type":"access","principal_id":"oas-subject","identity_check":"portal sign-in","requested_by":"Oas"}`
	r = env.API("POST", "/api/v1/gdpr/requests", gdprKey, jsonType, gdprBody)
	gdprPath := "/api/v1/gdpr/requests/" + decode[struct {
		ID string `json:"id"`
	}](t, r).ID
	scenarios := map[string][]call{
		"POST /api/v1/gdpr/requests": {
			{"POST", "/api/v1/gdpr/requests", gdprKey, jsonType, gdprBody, 201, nil, "Location"},
			{"POST", "/api/v1/gdpr/requests", gdprKey, jsonType, `{"type":"access","identity_check":"x","requested_by":"y"}`, 400, nil, ""},
			{"POST", "/api/v1/gdpr/requests", gdprKey, jsonType, `{"type":"access","subject":"x"}`, 400, nil, ""},
		},
		"GET /api/v1/gdpr/requests/{id}": {
			{"GET", gdprPath, gdprKey, "", "", 200, nil, ""},
			{"GET", "/api/v1/gdpr/requests/gdpr_nope", gdprKey, "", "", 404, nil, ""},
		},
		"POST /api/v1/events": {
			{"POST", "/api/v1/events", ingest, jsonType, `{"action":"a","status":"success"}`, 201, nil, ""},
			{"POST", "/api/v1/events", ingest, jsonType, `{"action":"a"}`, 400, nil, ""},
			{"POST", "/api/v1/events", ingest, "text/plain", `x`, 415, nil, ""},
			{"POST", "/api/v1/events", ingest, jsonType, `{"action":"r","status":"success"}`, 201, replayKey, ""},
			{"POST", "/api/v1/events", ingest, jsonType, `{"action":"r","status":"success"}`, 201, replayKey, "Idempotent-Replayed"},
		},
		"POST /api/v1/events/batch": {
			{"POST", "/api/v1/events/batch", ingest, jsonType, `[{"action":"a","status":"success"}]`, 201, nil, ""},
			{"POST", "/api/v1/events/batch", ingest, "application/x-ndjson", `{"action":"a","status":"success"}`, 201, nil, ""},
			{"POST", "/api/v1/events/batch", ingest, jsonType, `[{"action":"a","status":"x"}]`, 400, nil, ""},
			{"POST", "/api/v1/events/batch", ingest, jsonType, `[{"action":"r","status":"success"}]`, 201, batchReplayKey, ""},
			{"POST", "/api/v1/events/batch", ingest, jsonType, `[{"action":"r","status":"success"}]`, 201, batchReplayKey, "Idempotent-Replayed"},
		},
		"GET /api/v1/events": {
			{"GET", "/api/v1/events?limit=1", read, "", "", 200, nil, ""},
			{"GET", "/api/v1/events?limit=0", read, "", "", 400, nil, ""},
		},
		"GET /api/v1/events/{id}": {
			{"GET", evPath, read, "", "", 200, nil, ""},
			{"GET", "/api/v1/events/999999999", read, "", "", 404, nil, ""},
		},
		"POST /api/v1/events/{id}/verify": {
			{"POST", evPath + "/verify", read, "", "", 200, nil, ""},
			{"POST", "/api/v1/events/999999999/verify", read, "", "", 404, nil, ""},
		},
		"GET /api/v1/events/{id}/proof": {
			{"GET", evPath + "/proof", read, "", "", 200, nil, ""},
			{"GET", "/api/v1/events/999999999/proof", read, "", "", 404, nil, ""},
			{"GET", unlogged + "/proof", read, "", "", 404, nil, fiber.HeaderRetryAfter},
			{"GET", evPath + "/proof?checkpoint=" + size, read, "", "", 200, nil, ""},
			{"GET", evPath + "/proof?checkpoint=x", read, "", "", 400, nil, ""},
		},
		"GET /api/v1/checkpoints/latest": {{"GET", "/api/v1/checkpoints/latest", read, "", "", 200, nil, ""}},
		"GET /api/v1/checkpoints/{size}": {
			{"GET", "/api/v1/checkpoints/" + size, read, "", "", 200, nil, ""},
			{"GET", "/api/v1/checkpoints/999999999", read, "", "", 404, nil, ""},
		},
		"GET /api/v1/proofs/consistency": {
			{"GET", "/api/v1/proofs/consistency?from=" + size + "&to=" + size, read, "", "", 200, nil, ""},
			{"GET", "/api/v1/proofs/consistency?from=" + size, read, "", "", 400, nil, ""},
		},
		"POST /api/v1/reports": {
			{"POST", "/api/v1/reports", read, jsonType, `{"type":"HIPAA_AUDIT_TRAIL"}`, 202, nil, "Location"},
			{"POST", "/api/v1/reports", read, jsonType, `{"type":"SOX"}`, 400, nil, ""},
			{"POST", "/api/v1/reports", read, jsonType, `{"type":"GENERAL_COMPLIANCE","formats":["evidence"]}`, 202, nil, "Location"},
			{"POST", "/api/v1/reports", read, jsonType, `{"template_id":"tpl_of_nobody"}`, 404, nil, ""},
			{"POST", "/api/v1/reports", read, jsonType, `{"type":"GENERAL_COMPLIANCE"} {}`, 400, nil, ""},
			{"POST", "/api/v1/reports", read, jsonType, `{"type":"GENERAL_COMPLIANCE","from":"1999-12-31T00:00:00Z"}`, 400, nil, ""},
			{"POST", "/api/v1/reports", read, jsonType, `{"template_id":"tpl_x","type":"GENERAL_COMPLIANCE"}`, 400, nil, ""},
			{"POST", "/api/v1/reports", busyRead, jsonType, `{"type":"GENERAL_COMPLIANCE"}`, 429, nil, fiber.HeaderRetryAfter},
		},
		"GET /api/v1/reports/{id}": {
			{"GET", reportPath, read, "", "", 200, nil, ""},
			{"GET", "/api/v1/reports/exe_nope", read, "", "", 404, nil, ""},
		},
		"GET /api/v1/reports/{id}/files/{format}": {
			{"GET", filePath, read, "", "", 200, nil, "X-Content-SHA256"},
			{"GET", strings.Replace(filePath, "sig=", "sig=0", 1), read, "", "", 404, nil, ""},
			{"GET", expiredPath, read, "", "", 410, nil, ""},
		},
		"GET /api/v1/alerts": {
			{"GET", "/api/v1/alerts?limit=1", read, "", "", 200, nil, ""},
			{"GET", "/api/v1/alerts?severity=URGENT", read, "", "", 400, nil, ""},
		},
	}
	for route, op := range documented {
		method, path, _ := strings.Cut(route, " ")
		calls := scenarios[route]
		if len(calls) == 0 {
			t.Errorf("%s has no scenario in this test", route)
			continue
		}
		wrongScope := read
		if calls[0].key == read {
			wrongScope = ingest
		}
		concrete := strings.NewReplacer("{id}", strconv.FormatInt(id, 10), "{size}", size, "{format}", "csv").Replace(path)
		calls = append(calls,
			call{method, concrete, "", calls[0].contentType, calls[0].body, 401, nil, ""},
			call{method, concrete, wrongScope, calls[0].contentType, calls[0].body, 403, nil, ""})
		for i, c := range calls {
			t.Run(fmt.Sprintf("%s %d %s #%d", route, c.status, c.path, i), func(t *testing.T) {
				r := env.API(c.method, c.path, c.key, c.contentType, c.body, c.headers...)
				if r.StatusCode != c.status {
					t.Fatalf("status %d, want %d: %.300s", r.StatusCode, c.status, r.Body)
				}
				if c.wantHeader != "" && r.Header.Get(c.wantHeader) == "" {
					t.Fatalf("no %s header", c.wantHeader)
				}
				checkDocumented(t, op, r)
			})
		}
	}
}

// apiHeaders are the response headers clients act on; a response that sends one must
// declare it.
var apiHeaders = []string{fiber.HeaderRetryAfter, "Idempotent-Replayed"}

// checkDocumented fails unless op documents r's status, r's body matches the schema of
// that response, the response's required headers are sent and the API headers sent are
// declared.
func checkDocumented(t *testing.T, op *openapi3.Operation, r webtest.Response) {
	t.Helper()
	ref := op.Responses.Status(r.StatusCode)
	if ref == nil || ref.Value == nil {
		t.Fatalf("status %d is not documented for %s", r.StatusCode, op.OperationID)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("no content type: %v", err)
	}
	media := ref.Value.Content.Get(mt)
	if media == nil {
		var types []string
		for k := range ref.Value.Content {
			types = append(types, k)
		}
		slices.Sort(types)
		t.Fatalf("content type %s is not documented for %d (documented: %v)", mt, r.StatusCode, types)
	}
	if mt != "application/json" {
		return // a file download: its type is documented, its bytes are the file's
	}
	var body any
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if err := media.Schema.Value.VisitJSON(body); err != nil {
		t.Fatalf("body does not match the documented schema: %v\n%s", err, r.Body)
	}
	for name, h := range ref.Value.Headers {
		if h.Value.Required && r.Header.Get(name) == "" {
			t.Fatalf("documented header %s missing", name)
		}
	}
	for _, name := range apiHeaders {
		if r.Header.Get(name) != "" && ref.Value.Headers[name] == nil {
			t.Fatalf("the %d answer of %s sends %s but does not declare it", r.StatusCode, op.OperationID, name)
		}
	}
	if r.StatusCode == http.StatusUnauthorized && r.Header.Get("WWW-Authenticate") == "" {
		t.Fatal("401 without WWW-Authenticate")
	}
}
