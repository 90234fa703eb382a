package handlers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

// An archived event keeps its inclusion proof: its row left audit_log, its log entry did not.
func TestAPIProofOfAnArchivedEvent(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("archived-proof")
	in, read := env.APIKey(org, models.ScopeIngest), env.APIKey(org, models.ScopeRead)
	ids := ingestN(t, env, in, "archived", 3)
	env.Sequence()
	before := decode[apiProof](t, env.API("GET", fmt.Sprintf("/api/v1/events/%d/proof", ids[1]), read, "", ""))

	engine := models.NewRetentionEngine(env.DB, models.NewAuditTrail(env.DB, env.Sealer, env.Parts), env.Parts)
	engine.Now = func() time.Time { return time.Now().AddDate(1, 1, 0) } // past "standard"'s 365 archive days
	res, err := engine.Run(context.Background(), models.RetentionOptions{Org: org})
	if err != nil || res.Archived < 3 {
		t.Fatalf("retention run: %+v %v", res, err)
	}
	if r := env.API("GET", fmt.Sprintf("/api/v1/events/%d", ids[1]), read, "", ""); r.StatusCode != 404 {
		t.Fatalf("the archived event is still served from the log: %d", r.StatusCode)
	}
	env.Sequence()
	r := env.API("GET", fmt.Sprintf("/api/v1/events/%d/proof", ids[1]), read, "", "")
	if r.StatusCode != 200 {
		t.Fatalf("proof of an archived event: %d %s", r.StatusCode, r.Body)
	}
	after := decode[apiProof](t, r)
	if after.EventID != ids[1] || after.LeafIndex != before.LeafIndex || after.LeafHash != before.LeafHash || len(after.InclusionProof) == 0 {
		t.Fatalf("proof after archival %+v, before %+v", after, before)
	}
	// Another organization's key still gets a 404 for it.
	other := env.APIKey(env.Org("archived-proof-other"), models.ScopeRead)
	if r := env.API("GET", fmt.Sprintf("/api/v1/events/%d/proof", ids[1]), other, "", ""); r.StatusCode != 404 {
		t.Fatalf("another organization's archived event: %d", r.StatusCode)
	}
}
