package models_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"auditdb/models"
)

// The worked example of docs/integrity.md §10 (sha256-jcs-v3), number for number: every
// value below must appear in the page, and the code and the reference encoding must
// reproduce it, before and after the free text is pseudonymized.
func TestIntegrityDocV3WorkedExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/integrity.md")
	if err != nil {
		t.Fatal(err)
	}
	inDoc := func(s string) {
		t.Helper()
		if !strings.Contains(string(doc), s) {
			t.Errorf("docs/integrity.md does not hold %s", s)
		}
	}
	rows := []struct{ name, value, salt, input, digest string }{
		{"details.ip", `"10.20.1.2"`, "AAECAwQFBgcICQoLDA0ODw",
			`["AAECAwQFBgcICQoLDA0ODw","details.ip","10.20.1.2"]`, "87d60eebb12c24e5191102e8cb829f175daf77c549e59ef4fe7139d84057b1f3"},
		{"details.method", `"GET"`, "EBESExQVFhcYGRobHB0eHw",
			`["EBESExQVFhcYGRobHB0eHw","details.method","GET"]`, "69514301ef6a3c00f3d3d7317a238c5e0cdef1966806db94357dc40ab569e19e"},
		{"details.note", `{"refs":["pat-004213"]}`, "ICEiIyQlJicoKSorLC0uLw",
			`["ICEiIyQlJicoKSorLC0uLw","details.note",{"refs":["pat-004213"]}]`, "b38588796f20b3d999c7c92966f6d1c3decefc86892eec40c06ff7a025ca5c65"},
		{"outcomeDescription", `"record of pat-004213 released to insurer"`, "MDEyMzQ1Njc4OTo7PD0-Pw",
			`["MDEyMzQ1Njc4OTo7PD0-Pw","outcomeDescription","record of pat-004213 released to insurer"]`, "897216579d678b794ac39931dfc5b4a21ed17e92a20f6e46e653ddc2db33cd26"},
		{"principalId", `"dr.jane.smith"`, "QEFCQ0RFRkdISUpLTE1OTw",
			`["QEFCQ0RFRkdISUpLTE1OTw","principalId","dr.jane.smith"]`, "fcf56ef0ac494850d96575a6682e2f11d8116a3480045d16e6da6a448b0c16b7"},
		{"targetResourceId", `"pat-004213"`, "UFFSU1RVVldYWVpbXF1eXw",
			`["UFFSU1RVVldYWVpbXF1eXw","targetResourceId","pat-004213"]`, "6942fffb4f49e48664fdd726c56ec21a10dc83c87e07b9e7d2e8728ca3b35180"},
	}
	const hash = "3157020b2a34c61eb0be034c3269166923280395a0accc4fa9444bcc1d766909"
	fc := map[string]models.FieldCommitment{}
	digests := map[string]string{}
	var fd []string
	for i, r := range rows {
		salt := make([]byte, 16)
		for j := range salt {
			salt[j] = byte(16*i + j)
		}
		if got := base64.RawURLEncoding.EncodeToString(salt); got != r.salt {
			t.Errorf("%s: salt of bytes %d…: %s, the page says %s", r.name, 16*i, got, r.salt)
		}
		if sum := sha256.Sum256([]byte(r.input)); hex.EncodeToString(sum[:]) != r.digest {
			t.Errorf("%s: SHA-256 of the documented input is not the documented digest", r.name)
		}
		if d, err := models.FieldDigest(r.salt, r.name, json.RawMessage(r.value)); err != nil || d != r.digest {
			t.Errorf("%s: FieldDigest = %s, %v; the page says %s", r.name, d, err, r.digest)
		}
		if d := refFieldDigest(t, r.salt, r.name, json.RawMessage(r.value)); d != r.digest {
			t.Errorf("%s: reference digest %s, the page says %s", r.name, d, r.digest)
		}
		inDoc(fmt.Sprintf("| `%s` | `%s` | `%s` | `%s` |", r.name, r.salt, r.input, r.digest))
		fc[r.name] = models.FieldCommitment{Digest: r.digest, Salt: r.salt}
		digests[r.name] = r.digest
		fd = append(fd, fmt.Sprintf("%q:%q", r.name, r.digest))
	}
	canonical := `{"action":"patient.record.release","dataClassification":"PHI","eventVersion":"1.0","fieldDigests":{` +
		strings.Join(fd, ",") + `},"hashAlgorithm":"sha256-jcs-v3","organizationId":"acme-health","retentionPolicy":"phi_extended",` +
		`"status":"success","targetResourceType":"Patient","timestamp":"2026-11-30T09:15:00.123456Z"}`
	inDoc(canonical)
	inDoc("SHA-256 → `" + hash + "`")
	if sum := sha256.Sum256([]byte(canonical)); hex.EncodeToString(sum[:]) != hash {
		t.Fatal("SHA-256 of the documented document is not the documented hash")
	}

	raw, _ := json.Marshal(fc)
	ev := models.Event{OrganizationID: "acme-health", Action: "patient.record.release", Status: "success",
		DataClassification: "PHI", RetentionPolicy: "phi_extended", EventVersion: "1.0",
		Timestamp:   time.Date(2026, 11, 30, 9, 15, 0, 123456000, time.UTC),
		PrincipalID: ptr("dr.jane.smith"), TargetResourceType: ptr("Patient"), TargetResourceID: ptr("pat-004213"),
		OutcomeDescription: ptr("record of pat-004213 released to insurer"),
		Details:            json.RawMessage(`{"ip":"10.20.1.2","method":"GET","note":{"refs":["pat-004213"]}}`),
		HashAlgorithm:      models.HashAlgorithmV3, FieldCommitments: raw}
	if got, _, err := models.RecomputeEvent(&ev); err != nil || got != hash {
		t.Fatalf("RecomputeEvent = %s, %v; the page says %s", got, err, hash)
	}
	if got := refContentHashV2(t, &ev, digests); got != hash {
		t.Fatalf("reference hash %s, the page says %s", got, hash)
	}

	// The erasure pseudonymizes the free text naming the patient, with the MACs the page
	// gives under the example key (bytes 0x40…0x5f).
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(0x40 + i)
	}
	sealer, err := models.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	ev.Hash = hash
	macs := []struct{ name, value, input, mac string }{
		{"details.note", `{"refs":["ers_x"]}`, `["` + hash + `","details.note","pseudonymized",{"refs":["ers_x"]}]`,
			"785ccaa4e82f15cec52a5f35141259386373d77b5e182c5dd3ee64d02871a603"},
		{"outcomeDescription", `"record of ers_x released to insurer"`,
			`["` + hash + `","outcomeDescription","pseudonymized","record of ers_x released to insurer"]`,
			"131986cc3dcd989204dafe2b552ec09c5c8a95431a68a4c18ca98fb4fad7c691"},
	}
	for _, m := range macs {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(m.input))
		if got := hex.EncodeToString(h.Sum(nil)); got != m.mac {
			t.Errorf("%s: HMAC of the documented input is %s, the page says %s", m.name, got, m.mac)
		}
		inDoc(fmt.Sprintf("| `%s` | `%s` | `%s` |", m.name, m.input, m.mac))
		if ev.FieldCommitments, err = sealer.MarkField(ev.FieldCommitments, ev.HashAlgorithm, hash, m.name,
			models.FieldPseudonymized, json.RawMessage(m.value)); err != nil {
			t.Fatal(err)
		}
	}
	ev.OutcomeDescription = ptr("record of ers_x released to insurer")
	ev.Details = json.RawMessage(`{"ip":"10.20.1.2","method":"GET","note":{"refs":["ers_x"]}}`)
	if got, _, err := models.RecomputeEvent(&ev); err != nil || got != hash {
		t.Fatalf("after the redaction: RecomputeEvent = %s, %v; want %s", got, err, hash)
	}
	checks, _ := sealer.CheckFieldCommitments(&ev)
	want := "[{details.ip disclosed-ok  } {details.method disclosed-ok  } {details.note pseudonymized  } " +
		"{outcomeDescription pseudonymized  } {principalId disclosed-ok  } {targetResourceId disclosed-ok  }]"
	if fmt.Sprint(checks) != want {
		t.Fatalf("after the redaction: %v, want %s", checks, want)
	}
	// Another text under the same MAC is a mismatch.
	ev.OutcomeDescription = ptr("record of ers_y released to insurer")
	if v, err := sealer.Verify(&ev); err != nil || v.HashOK {
		t.Fatalf("a changed pseudonymized outcome verifies: %+v, %v", v, err)
	}
}
