package handlers_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

// The event page's integrity card and the API's event JSON show a sha256-jcs-v2 event's
// per-field commitments; after a field is erased the page says so, and Verify still passes.
func TestEventPageShowsFieldCommitments(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("fields")
	c := env.Login(env.User(org, "org:admin"))
	principal, target := "dr.who", "pat-1"
	ev := env.Events(models.Event{OrganizationID: org, Timestamp: time.Now().Add(-time.Minute), Action: "chart.open",
		Status: "success", PrincipalID: &principal, TargetResourceID: &target, Details: json.RawMessage(`{"ip":"10.0.0.1","n":1}`)})[0]
	path := fmt.Sprintf("/events/%d", ev.ID)

	page := c.Get(path)
	for _, want := range []string{`data-testid="field-commitments"`,
		`data-testid="field-commitment-principalId" data-state="disclosed-ok"`,
		`data-testid="field-commitment-targetResourceId" data-state="disclosed-ok"`,
		`data-testid="field-commitment-details.ip" data-state="disclosed-ok"`} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("event page lacks %s", want)
		}
	}

	r := env.API("GET", "/api/v1"+path, env.APIKey(org, models.ScopeRead), "", "")
	// Never redacted, the event has the compact form: its event salt alone.
	var got struct {
		HashAlgorithm    string            `json:"hashAlgorithm"`
		SubjectDigest    string            `json:"subjectDigest"`
		FieldCommitments map[string]string `json:"fieldCommitments"`
	}
	if err := json.Unmarshal([]byte(r.Body), &got); err != nil || got.HashAlgorithm != models.HashAlgorithmV3 ||
		got.SubjectDigest != "" || len(got.FieldCommitments) != 1 || len(got.FieldCommitments["salt"]) != 22 {
		t.Fatalf("API event %d %s (%v)", r.StatusCode, r.Body, err)
	}

	// The erasure engine's redaction: expand to the explicit form, then mark the field.
	pseudonym := "psh_1"
	explicit, err := models.ExpandFieldCommitments(&ev)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := env.Sealer.MarkField(explicit, ev.HashAlgorithm, ev.Hash, "principalId", models.FieldPseudonymized, models.JSONString(pseudonym))
	if err != nil {
		t.Fatal(err)
	}
	tamper(t, env, `UPDATE audit_log SET principal_id = 'psh_1', field_commitments = ?::jsonb WHERE id = ?`, string(fc), ev.ID)
	if r := c.PostForm(path+"/verify", url.Values{}); r.StatusCode != 303 {
		t.Fatalf("verify: %d", r.StatusCode)
	}
	page = c.Get(path)
	for _, want := range []string{"Verified: the event is intact", `data-testid="field-commitment-principalId" data-state="pseudonymized"`,
		"pseudonymized (digest kept)", `data-testid="field-commitment-details.ip" data-state="disclosed-ok"`} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("page after pseudonymizing the principal lacks %s", want)
		}
	}
	r = env.API("GET", "/api/v1"+path, env.APIKey(org, models.ScopeRead), "", "")
	var redacted struct {
		FieldCommitments map[string]models.FieldCommitment `json:"fieldCommitments"`
	}
	if err := json.Unmarshal([]byte(r.Body), &redacted); err != nil || len(redacted.FieldCommitments) != 4 ||
		redacted.FieldCommitments["principalId"].State != models.FieldPseudonymized || redacted.FieldCommitments["details.ip"].Salt == "" {
		t.Fatalf("API event after the redaction %d %s (%v)", r.StatusCode, r.Body, err)
	}

	// The target marked pseudonymized by a database writer (a copied MAC, another value) is
	// a mismatch on the page itself, before any Verify.
	forged := strings.Replace(string(fc), `"targetResourceId":{`, `"targetResourceId":{"state":"pseudonymized","mac":"`+
		strings.Repeat("ab", 32)+`",`, 1)
	forged = regexp.MustCompile(`("targetResourceId":\{[^}]*),"salt":"[^"]*"`).ReplaceAllString(forged, "$1")
	tamper(t, env, `UPDATE audit_log SET target_resource_id = 'pat-other', field_commitments = ?::jsonb WHERE id = ?`, forged, ev.ID)
	page = c.Get(path)
	for _, want := range []string{`data-testid="field-commitment-targetResourceId" data-state="mismatch"`, "redaction mac does not verify"} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("page after forging the target's pseudonymization lacks %s", want)
		}
	}
	tamper(t, env, `UPDATE audit_log SET target_resource_id = 'pat-1', field_commitments = ?::jsonb WHERE id = ?`, string(fc), ev.ID)

	tamper(t, env, `UPDATE audit_log SET details = '{"ip":"10.6.6.6","n":1}' WHERE id = ?`, ev.ID)
	req := httpRequest("POST", path+"/verify", url.Values{"_csrf": {c.CSRF}})
	req.Header.Set("HX-Request", "true")
	frag := c.Do(req)
	for _, want := range []string{"Tampered", `data-testid="field-commitment-details.ip" data-state="mismatch"`, "its value does not match its digest"} {
		if !strings.Contains(frag.Body, want) {
			t.Errorf("htmx verify after changing details.ip lacks %s: %.400s", want, frag.Body)
		}
	}
}
