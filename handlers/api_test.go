package handlers_test

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/merkle"
	"auditdb/web/webtest"
)

type apiEvent struct {
	ID             int64          `json:"id"`
	Action         string         `json:"action"`
	OrganizationID string         `json:"organizationId"`
	Hash           string         `json:"hash"`
	Details        map[string]any `json:"details"`
}

type apiCheckpoint struct {
	Number      int64  `json:"number"`
	TreeSize    int64  `json:"treeSize"`
	RootHash    string `json:"rootHash"`
	Note        string `json:"note"`
	VerifierKey string `json:"verifierKey"`
}

func TestAPIReadVerifyProve(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("read"), env.Org("read-other")
	ingest, read := env.APIKey(org, models.ScopeIngest), env.APIKey(org, models.ScopeRead)
	var ids []int64
	for i := 0; i < 7; i++ {
		r := env.API("POST", "/api/v1/events", ingest, jsonType,
			fmt.Sprintf(`{"action":"read.test.%d","status":"success","correlationId":"c-%d","details":{"n":%d}}`, i, i%2, i))
		if r.StatusCode != 201 {
			t.Fatalf("ingest: %d %s", r.StatusCode, r.Body)
		}
		ids = append(ids, decode[receipt](t, r).ID)
	}
	foreign := env.Events(models.Event{OrganizationID: other, Timestamp: time.Now().Add(-time.Minute), Action: "foreign", Status: "success"})[0]

	t.Run("list pages with a cursor and filters", func(t *testing.T) {
		var seen []int64
		next := "/api/v1/events?limit=3"
		for next != "" {
			r := env.API("GET", next, read, "", "")
			if r.StatusCode != 200 {
				t.Fatalf("status %d: %s", r.StatusCode, r.Body)
			}
			page := decode[struct {
				Events     []apiEvent `json:"events"`
				NextCursor *string    `json:"nextCursor"`
			}](t, r)
			for _, e := range page.Events {
				if e.OrganizationID != org || e.Details == nil {
					t.Fatalf("event %+v", e)
				}
				if strings.HasPrefix(e.Action, "read.test.") { // not the console's self-audit events
					seen = append(seen, e.ID)
				}
			}
			next = ""
			if page.NextCursor != nil {
				next = "/api/v1/events?limit=3&after=" + url.QueryEscape(*page.NextCursor)
			}
		}
		if len(seen) != 7 || seen[0] != ids[6] || seen[6] != ids[0] {
			t.Fatalf("listed %v, want %v newest first", seen, ids)
		}
		r := env.API("GET", "/api/v1/events?correlation_id=c-1", read, "", "")
		if got := decode[struct{ Events []apiEvent }](t, r).Events; len(got) != 3 {
			t.Fatalf("filtered list has %d events, want 3", len(got))
		}
		for _, bad := range []string{"?limit=0", "?limit=501", "?status=maybe", "?after=garbage", "?from=tomorrow"} {
			if r := env.API("GET", "/api/v1/events"+bad, read, "", ""); r.StatusCode != 400 {
				t.Fatalf("%s: status %d", bad, r.StatusCode)
			}
		}
	})
	t.Run("one event; another organization's is a 404", func(t *testing.T) {
		r := env.API("GET", fmt.Sprintf("/api/v1/events/%d", ids[2]), read, "", "")
		if e := decode[apiEvent](t, r); r.StatusCode != 200 || e.Action != "read.test.2" {
			t.Fatalf("status %d: %s", r.StatusCode, r.Body)
		}
		for _, path := range []string{fmt.Sprintf("/api/v1/events/%d", foreign.ID), "/api/v1/events/0", "/api/v1/events/x"} {
			if r := env.API("GET", path, read, "", ""); r.StatusCode != 404 {
				t.Fatalf("%s: status %d", path, r.StatusCode)
			}
		}
	})
	t.Run("an ingest key cannot read", func(t *testing.T) {
		if r := env.API("GET", "/api/v1/events", ingest, "", ""); r.StatusCode != 403 {
			t.Fatalf("status %d", r.StatusCode)
		}
	})
	t.Run("proof before the first checkpoint", func(t *testing.T) {
		r := env.API("GET", fmt.Sprintf("/api/v1/events/%d/proof", ids[0]), read, "", "")
		if r.StatusCode != 404 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("status %d retry %q", r.StatusCode, r.Header.Get("Retry-After"))
		}
		if r := env.API("GET", "/api/v1/checkpoints/latest", read, "", ""); r.StatusCode != 404 {
			t.Fatalf("latest checkpoint before any: %d", r.StatusCode)
		}
	})

	env.Sequence()

	t.Run("latest checkpoint is a signed note", func(t *testing.T) {
		r := env.API("GET", "/api/v1/checkpoints/latest", read, "", "")
		cp := decode[apiCheckpoint](t, r)
		var all int64
		env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ?`, org).Scan(&all)
		if cp.Number != 1 || cp.TreeSize != all || all < 7 {
			t.Fatalf("checkpoint %+v over %d events", cp, all)
		}
		v, err := note.NewVerifier(cp.VerifierKey)
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open([]byte(cp.Note), note.VerifierList(v))
		if err != nil || !strings.HasPrefix(n.Text, merkle.Origin(org)+"\n"+strconv.FormatInt(all, 10)+"\n"+cp.RootHash+"\n") {
			t.Fatalf("note %q: %v", cp.Note, err)
		}
	})
	t.Run("proofs verify against the checkpoint", func(t *testing.T) {
		for _, id := range ids {
			r := env.API("GET", fmt.Sprintf("/api/v1/events/%d/proof", id), read, "", "")
			p := decode[struct {
				EventHash      string        `json:"eventHash"`
				LeafIndex      int64         `json:"leafIndex"`
				LeafHash       string        `json:"leafHash"`
				TreeSize       int64         `json:"treeSize"`
				InclusionProof []string      `json:"inclusionProof"`
				Checkpoint     apiCheckpoint `json:"checkpoint"`
			}](t, r)
			raw, _ := hex.DecodeString(p.EventHash)
			leaf, _ := base64.StdEncoding.DecodeString(p.LeafHash)
			if want, _ := merkle.LeafHash(p.EventHash); len(raw) != 32 || string(leaf) != string(want) {
				t.Fatalf("leaf hash does not commit to the event hash")
			}
			root, _ := base64.StdEncoding.DecodeString(p.Checkpoint.RootHash)
			proof := &merkle.InclusionProof{LeafIndex: p.LeafIndex, LeafHash: leaf,
				Checkpoint: merkle.Checkpoint{TreeSize: p.TreeSize, RootHash: root}}
			for _, h := range p.InclusionProof {
				b, _ := base64.StdEncoding.DecodeString(h)
				proof.Hashes = append(proof.Hashes, b)
			}
			if err := merkle.VerifyInclusion(proof); err != nil {
				t.Fatalf("event %d: %v", id, err)
			}
		}
	})
	t.Run("a proof request for another organization's event is a 404", func(t *testing.T) {
		if r := env.API("GET", fmt.Sprintf("/api/v1/events/%d/proof", foreign.ID), read, "", ""); r.StatusCode != 404 {
			t.Fatalf("status %d: %s", r.StatusCode, r.Body)
		}
	})
	t.Run("verify records the check", func(t *testing.T) {
		r := env.API("POST", fmt.Sprintf("/api/v1/events/%d/verify", ids[3]), read, "", "")
		v := decode[struct {
			Status     string `json:"status"`
			HashOK     bool   `json:"hashOk"`
			Checkpoint *int64 `json:"checkpoint"`
			VerifiedBy string `json:"verifiedBy"`
		}](t, r)
		if r.StatusCode != 200 || v.Status != "success" || !v.HashOK || v.Checkpoint == nil || *v.Checkpoint != 1 ||
			!strings.HasPrefix(v.VerifiedBy, "api-key:adb_") {
			t.Fatalf("verification %d %+v", r.StatusCode, v)
		}
		tamper(t, env, `UPDATE audit_log SET action = 'rewritten' WHERE id = ?`, ids[3])
		r = env.API("POST", fmt.Sprintf("/api/v1/events/%d/verify", ids[3]), read, "", "")
		if v := decode[struct{ Status string }](t, r); v.Status != "tampered" {
			t.Fatalf("after tampering: %s", r.Body)
		}
		var rows []struct {
			VerificationStatus string
			ExpectedHash       string
			HashVerified       string
			VerifiedBy         string
		}
		env.DB.Raw(`SELECT verification_status, expected_hash, hash_verified, verified_by FROM audit_integrity_log
			WHERE organization_id = ? AND audit_log_id = ? ORDER BY id`, org, ids[3]).Scan(&rows)
		if len(rows) != 2 || rows[0].VerificationStatus != "success" || rows[1].VerificationStatus != "tampered" ||
			rows[1].ExpectedHash == rows[1].HashVerified || rows[1].VerifiedBy == "" {
			t.Fatalf("integrity log %+v", rows)
		}
		if r := env.API("POST", fmt.Sprintf("/api/v1/events/%d/verify", foreign.ID), read, "", ""); r.StatusCode != 404 {
			t.Fatalf("verify another organization's event: %d", r.StatusCode)
		}
	})
}

func TestConsoleVerifyButtonAndCheckpoint(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("vbtn")
	c := env.Login(env.User(org, "org:admin"))
	member := env.Login(env.User(org, "org:member"))
	ev := env.Events(models.Event{OrganizationID: org, Timestamp: time.Now().Add(-time.Minute), Action: "chart.open", Status: "success"})[0]
	path := fmt.Sprintf("/events/%d", ev.ID)

	page := c.Get(path)
	if !strings.Contains(page.Body, `data-testid="verify-button"`) || !strings.Contains(page.Body, `data-testid="verification-none"`) ||
		!strings.Contains(page.Body, "Not in the Merkle log yet") {
		t.Fatalf("event page before verification: %.500s", page.Body)
	}
	env.Sequence()
	page = c.Get(path)
	if !strings.Contains(page.Body, "Included in checkpoint 1") || !strings.Contains(page.Body, `data-testid="log-checkpoint">1<`) {
		t.Fatal("the event page should say which checkpoint includes the event")
	}

	if r := c.PostRaw(path+"/verify", url.Values{}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("verify without CSRF: status %d", r.StatusCode)
	}
	if page := member.Get(path); page.StatusCode != 200 || strings.Contains(page.Body, `data-testid="verify-button"`) {
		t.Fatalf("a member (no audit.events:verify) sees the page without the Verify button: %d", page.StatusCode)
	}
	if r := member.PostForm(path+"/verify", url.Values{}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("a member verifying: status %d, want 403", r.StatusCode)
	}
	r := c.PostForm(path+"/verify", url.Values{})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != path {
		t.Fatalf("verify: status %d location %q", r.StatusCode, r.Header.Get("Location"))
	}
	page = c.Get(path)
	for _, want := range []string{`data-testid="verification-result"`, "Verified: the event is intact", ev.Hash} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("page after verifying lacks %q", want)
		}
	}

	tamper(t, env, `UPDATE audit_log SET status = 'failure' WHERE id = ?`, ev.ID)
	req := httpRequest("POST", path+"/verify", url.Values{"_csrf": {c.CSRF}})
	req.Header.Set("HX-Request", "true")
	frag := c.Do(req)
	if frag.StatusCode != 200 || strings.Contains(frag.Body, "<html") || !strings.Contains(frag.Body, `id="integrity-card"`) ||
		!strings.Contains(frag.Body, "Tampered") {
		t.Fatalf("htmx verify should return the card alone, showing the tampering: %d %.300s", frag.StatusCode, frag.Body)
	}
	var who string
	env.DB.Raw(`SELECT verified_by FROM audit_integrity_log WHERE audit_log_id = ? ORDER BY id DESC LIMIT 1`, ev.ID).Scan(&who)
	if !strings.HasSuffix(who, "@example.test") {
		t.Fatalf("verified_by = %q, want the user", who)
	}

	foreign := env.Events(models.Event{OrganizationID: env.Org("vbtn-other"), Timestamp: time.Now(), Action: "x", Status: "success"})[0]
	if r := c.PostForm(fmt.Sprintf("/events/%d/verify", foreign.ID), url.Values{}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("verify another organization's event: %d", r.StatusCode)
	}
}

// tamper runs sql as a superuser with triggers off, as someone editing the database
// behind the application's back would.
func tamper(t *testing.T, env *webtest.Env, sql string, args ...any) {
	t.Helper()
	err := env.DB.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SET LOCAL session_replication_role = replica`).Error; err != nil {
			return err
		}
		return tx.Exec(sql, args...).Error
	})
	if err != nil {
		t.Fatal(err)
	}
}

// httpRequest builds a form POST.
func httpRequest(method, path string, form url.Values) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}
