package merkle_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/merkle"
	"auditdb/models/pgtest"
)

// gdpr applies sql as an erasure does: an authorized mutation (purpose gdpr), triggers on.
func gdpr(t *testing.T, db *gorm.DB, sql string, args ...any) {
	t.Helper()
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SET LOCAL auditdb.purpose = 'gdpr'`).Error; err != nil {
			return err
		}
		return tx.Exec(sql, args...).Error
	})
	if err != nil {
		t.Fatal(err)
	}
}

// An erased principal and a pseudonymized detail keep the organization verifying (the report
// counts them); a detail changed behind the commitment is named as tampering.
func TestCheckOrgAcrossErasure(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	l := merkle.NewLog(db, testCheckpointKey(t))
	l.CheckpointEvery = 0
	org := pgtest.NewOrg(t, "")
	evs := pgtest.WriteEvents(t, db, org, 4)
	sequenceAll(t, l)
	checker := merkle.NewVerifier(db, pgtest.Sealer(t), l)

	p := "pseudo-1"
	for i := range evs[:2] { // as the erasure engine does before its first redaction
		var err error
		if evs[i].FieldCommitments, err = models.ExpandFieldCommitments(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	fc, err := pgtest.Sealer(t).MarkField(evs[0].FieldCommitments, evs[0].HashAlgorithm, evs[0].Hash, "principalId", models.FieldPseudonymized, models.JSONString(p))
	if err != nil {
		t.Fatal(err)
	}
	gdpr(t, db, `UPDATE audit_log SET principal_id = 'pseudo-1', field_commitments = ?::jsonb WHERE id = ?`, string(fc), evs[0].ID)
	fc, err = pgtest.Sealer(t).MarkField(evs[1].FieldCommitments, evs[1].HashAlgorithm, evs[1].Hash, "details.ip", models.FieldErased, nil)
	if err != nil {
		t.Fatal(err)
	}
	gdpr(t, db, `UPDATE audit_log SET details = details - 'ip', field_commitments = ?::jsonb WHERE id = ?`,
		string(fc), evs[1].ID)
	rep, err := checker.CheckOrg(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.V2Events != 4 || rep.ErasedFields != 1 || rep.PseudonymizedFields != 1 {
		t.Fatalf("after erasure: ok %v, v2 %d, erased %d, pseudonymized %d: %+v", rep.OK(), rep.V2Events, rep.ErasedFields,
			rep.PseudonymizedFields, rep.Findings)
	}
	c, err := checker.VerifyEvent(ctx, org, evs[0].ID, "test")
	if err != nil || c.Status != merkle.IntegritySuccess || len(c.Fields) != 3 || c.Fields[2].State != models.FieldPseudonymized {
		t.Fatalf("VerifyEvent of the erased event: %+v, %v", c, err)
	}

	gdpr(t, db, `UPDATE audit_log SET details = jsonb_set(details, '{ip}', '"10.9.9.9"') WHERE id = ?`, evs[2].ID)
	rep, err = checker.CheckOrg(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	// evs[2] was never redacted (the compact form): the digest derived from the changed value
	// no longer gives its hash.
	if rep.OK() || len(rep.Findings) != 1 || rep.Findings[0].EventID != evs[2].ID ||
		!strings.Contains(rep.Findings[0].Detail, "its fields no longer match its hash") {
		t.Fatalf("a changed committed field: %+v", rep.Findings)
	}
	c, err = checker.VerifyEvent(ctx, org, evs[2].ID, "test")
	if err != nil || c.Status != merkle.IntegrityTampered {
		t.Fatalf("VerifyEvent of the changed event: %+v, %v", c, err)
	}

	// A database writer puts another principal on an event and marks it pseudonymized
	// (no key, so no valid redaction MAC): tampering, not a lawful pseudonymization.
	explicit3, err := models.ExpandFieldCommitments(&evs[3]) // the writer writes the explicit form
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(explicit3), `"principalId":{`, `"principalId":{"state":"pseudonymized","mac":"`+
		strings.Repeat("ab", 32)+`",`, 1)
	forged = regexp.MustCompile(`("principalId":\{[^}]*),"salt":"[^"]*"`).ReplaceAllString(forged, "$1")
	gdpr(t, db, `UPDATE audit_log SET principal_id = 'patient-x', field_commitments = ?::jsonb WHERE id = ?`, forged, evs[3].ID)
	c, err = checker.VerifyEvent(ctx, org, evs[3].ID, "test")
	if err != nil || c.Status != merkle.IntegrityTampered || !strings.Contains(c.Reason, "principalId") ||
		!strings.Contains(c.Reason, "redaction mac does not verify") {
		t.Fatalf("VerifyEvent of a forged pseudonymization: %+v, %v", c, err)
	}
	rep, err = checker.CheckOrg(ctx, org)
	if err != nil || len(rep.Findings) != 2 {
		t.Fatalf("CheckOrg after a forged pseudonymization: %+v, %v", rep.Findings, err)
	}
}
