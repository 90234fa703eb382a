package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/erasure"
)

func TestVerifyCommand(t *testing.T) {
	// Events sealed and logged with the keys the command line finds in the data directory.
	w := newCLIWorld(t, "verify-org", "Verify")
	vars, db, sealer, ck, ctx := w.vars, w.db, w.sealer, w.ck, context.Background()
	var out bytes.Buffer
	evs := make([]models.Event, 5)
	principal := "dr.cli"
	for i := range evs {
		evs[i] = models.Event{OrganizationID: "verify-org", Timestamp: time.Now().UTC().Add(-time.Duration(i) * time.Second),
			Action: "cli.verify", Status: "success", DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0",
			PrincipalID: &principal}
	}
	w.write(evs)
	w.sequence()

	for _, args := range [][]string{{"verify"}, {"verify", "--org", "verify-org", "--all"}} {
		if err := Run(ctx, args, env(vars), &out); err == nil || models.FieldOf(err) != "--org" {
			t.Fatalf("%v: err = %v", args, err)
		}
	}
	// A pseudonymized principal (as a GDPR erasure leaves it) keeps the organization verifying.
	pseudonym := "psh_1"
	explicit, err := models.ExpandFieldCommitments(&evs[1])
	if err != nil {
		t.Fatal(err)
	}
	fc, err := sealer.MarkField(explicit, evs[1].HashAlgorithm, evs[1].Hash, models.FieldPrincipalID, models.FieldPseudonymized, models.JSONString(pseudonym))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Transaction(func(tx *gorm.DB) error {
		tx.Exec(`SET LOCAL auditdb.purpose = 'gdpr'`)
		return tx.Exec(`UPDATE audit_log SET principal_id = 'psh_1', field_commitments = ?::jsonb WHERE organization_id = 'verify-org' AND hash = ?`,
			string(fc), evs[1].Hash).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := Run(ctx, []string{"verify", "--org", "verify-org"}, env(vars), &out); err != nil ||
		!strings.Contains(out.String(), "verify-org: OK — 5 events") || !strings.Contains(out.String(), ck.VerifierKey()) ||
		!strings.Contains(out.String(), "5 events of schemes sha256-jcs-v2/sha256-jcs-v3; committed fields erased: 0, pseudonymized: 1") {
		t.Fatalf("clean organization: %v\n%s", err, out.String())
	}

	// A database writer copies that redaction onto another event with another principal:
	// the MAC does not verify for it, so verify names the event as tampered.
	var genuine map[string]json.RawMessage
	if err := json.Unmarshal(fc, &genuine); err != nil {
		t.Fatal(err)
	}
	var forged map[string]json.RawMessage
	explicit3, err := models.ExpandFieldCommitments(&evs[3]) // a writer forging a redaction writes the explicit form
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(explicit3, &forged); err != nil {
		t.Fatal(err)
	}
	forged[models.FieldPrincipalID] = genuine[models.FieldPrincipalID]
	raw, _ := json.Marshal(forged)
	err = db.Transaction(func(tx *gorm.DB) error {
		tx.Exec(`SET LOCAL auditdb.purpose = 'gdpr'`)
		return tx.Exec(`UPDATE audit_log SET principal_id = 'psh_1', field_commitments = ?::jsonb WHERE organization_id = 'verify-org' AND hash = ?`,
			string(raw), evs[3].Hash).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = Run(ctx, []string{"verify", "--org", "verify-org"}, env(vars), &out)
	if err == nil || !strings.Contains(out.String(), "redaction mac does not verify") {
		t.Fatalf("a forged pseudonymization: %v\n%s", err, out.String())
	}

	err = db.Transaction(func(tx *gorm.DB) error {
		tx.Exec(`SET LOCAL session_replication_role = replica`)
		return tx.Exec(`UPDATE audit_log SET status = 'failure' WHERE id = ?`, evs[2].ID).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = Run(ctx, []string{"verify", "--all"}, env(vars), &out)
	want := "tampered   event " + strconv.FormatInt(evs[2].ID, 10)
	if err == nil || !strings.Contains(err.Error(), "integrity check failed") || !strings.Contains(out.String(), want) {
		t.Fatalf("after tampering: %v\n%s", err, out.String())
	}
}

// TestVerifyNamesWhatAGDPRRequestRemoved: after an erasure, verify passes and names the
// request, how many events it removed and how many it kept pseudonymized.
func TestVerifyNamesWhatAGDPRRequestRemoved(t *testing.T) {
	w := newCLIWorld(t, "gdpr-verify-org", "GDPR")
	vars, db, ctx := w.vars, w.db, context.Background()
	var out bytes.Buffer
	evs := make([]models.Event, 12)
	for i := range evs {
		p := "alice"
		if i%3 == 0 {
			p = "bob"
		}
		action := "record.read"
		if i == 1 {
			action = "auth.login.failure"
		}
		evs[i] = models.Event{OrganizationID: "gdpr-verify-org", Timestamp: time.Now().UTC().Add(-time.Duration(i) * time.Second),
			Action: action, Status: "success", DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0",
			PrincipalID: &p}
	}
	w.write(evs)
	w.sequence()
	key, err := w.cfg.pseudonymKey()
	if err != nil {
		t.Fatal(err)
	}
	engine := erasure.NewEngine(db, models.NewAuditTrail(db, w.sealer, models.NewPartitionManager(db)), key)
	res, err := engine.Erase(ctx, "gdpr-verify-org", "REQ-77", erasure.Subject{PrincipalID: "alice"}, models.SystemActor("test"), nil)
	if err != nil || res.Deleted != 7 || res.Pseudonymized != 1 {
		t.Fatalf("erase: %+v %v", res, err)
	}
	w.sequence()
	out.Reset()
	if err := Run(ctx, []string{"verify", "--org", "gdpr-verify-org"}, env(vars), &out); err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	for _, want := range []string{"gdpr-verify-org: OK", "7 events erased by request REQ-77",
		"GDPR request REQ-77 (erase, completed): 7 events deleted (0 from archives), 1 kept pseudonymized as " + res.Pseudonym} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("verify output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "alice") {
		t.Fatalf("verify output names the subject:\n%s", out.String())
	}
}
