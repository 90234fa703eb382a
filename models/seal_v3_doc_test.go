package models_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"auditdb/models"
)

// The worked example of docs/integrity.md §10 (sha256-jcs-v3), number for number: every
// value below must appear in the page, and the code and the reference encoding must
// reproduce it — event salt → derived field salts → digests → E → hash — in the compact
// form, after its expansion, and after the free text is pseudonymized.
func TestIntegrityDocV3WorkedExample(t *testing.T) {
	inDoc := integrityDocHolds(t)
	const eventSalt = "AAECAwQFBgcICQoLDA0ODw" // the bytes 0x00…0x0f
	rows := []struct{ name, value, salt, input, digest string }{
		{"details.ip", `"10.20.1.2"`, "zMkqrCWASWXFziK2oKJCXQ",
			`["zMkqrCWASWXFziK2oKJCXQ","details.ip","10.20.1.2"]`, "31c744f48dea20ef074a1f78d52f88205aded8ae35a65131088c3320ed2bbefd"},
		{"details.method", `"GET"`, "xKmRWJgSFtT7XHfA7qm68w",
			`["xKmRWJgSFtT7XHfA7qm68w","details.method","GET"]`, "b57d7d65b20088632c363d30e555f5e33866e8187aa1fae1cf5e9b97733bd154"},
		{"details.note", `{"refs":["pat-004213"]}`, "jLc1LzvxxpHeROrmKFlwVg",
			`["jLc1LzvxxpHeROrmKFlwVg","details.note",{"refs":["pat-004213"]}]`, "9a05d524c141f3c0933680bfff598c5dcf8490e1adb8acc4350fb39306412e34"},
		{"outcomeDescription", `"record of pat-004213 released to insurer"`, "XWP2SpnXv6Tf15ocWMPefQ",
			`["XWP2SpnXv6Tf15ocWMPefQ","outcomeDescription","record of pat-004213 released to insurer"]`, "b9cd751cbfb37f2074ba11e62925b8f75188a9ba7dc82b081fee60a101ddf230"},
		{"principalId", `"dr.jane.smith"`, "rW0AwVn3o-Y1gBq6CeA7oQ",
			`["rW0AwVn3o-Y1gBq6CeA7oQ","principalId","dr.jane.smith"]`, "9b73ee2ad43a7c60bbbf1dc011e1e03e46b62418142492406f74250ff7d59dd8"},
		{"targetResourceId", `"pat-004213"`, "6KxbtKVbOcqBVPcuK8DtHA",
			`["6KxbtKVbOcqBVPcuK8DtHA","targetResourceId","pat-004213"]`, "a81d0686a661becf770f53d2571f0f8a8effad1c72574c489cc9a003fc6eaced"},
	}
	const hash = "8700efb2696ae08f844c29fe27eb88f92851cbe75ddc3e3379bfc2419979602a"
	key16 := make([]byte, 16)
	for i := range key16 {
		key16[i] = byte(i)
	}
	if base64.RawURLEncoding.EncodeToString(key16) != eventSalt {
		t.Fatal("the event salt is not the bytes 0x00…0x0f")
	}
	inDoc("`000102030405060708090a0b0c0d0e0f`")
	inDoc(`field_commitments = {"salt":"` + eventSalt + `"}`)
	fc := map[string]models.FieldCommitment{}
	digests := map[string]string{}
	var fd []string
	for _, r := range rows {
		m := hmac.New(sha256.New, key16) // the reference derivation, without the code
		m.Write([]byte(r.name))
		if got := base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16]); got != r.salt {
			t.Errorf("%s: derived salt %s, the page says %s", r.name, got, r.salt)
		}
		if got, err := models.FieldSalt(eventSalt, r.name); err != nil || got != r.salt {
			t.Errorf("%s: FieldSalt = %s, %v; the page says %s", r.name, got, err, r.salt)
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

	ev := models.Event{OrganizationID: "acme-health", Action: "patient.record.release", Status: "success",
		DataClassification: "PHI", RetentionPolicy: "phi_extended", EventVersion: "1.0",
		Timestamp:   time.Date(2026, 11, 30, 9, 15, 0, 123456000, time.UTC),
		PrincipalID: ptr("dr.jane.smith"), TargetResourceType: ptr("Patient"), TargetResourceID: ptr("pat-004213"),
		OutcomeDescription: ptr("record of pat-004213 released to insurer"),
		Details:            json.RawMessage(`{"ip":"10.20.1.2","method":"GET","note":{"refs":["pat-004213"]}}`),
		HashAlgorithm:      models.HashAlgorithmV3, FieldCommitments: json.RawMessage(`{"salt":"` + eventSalt + `"}`)}
	if got, _, err := models.RecomputeEvent(&ev); err != nil || got != hash {
		t.Fatalf("compact form: RecomputeEvent = %s, %v; the page says %s", got, err, hash)
	}
	if got := refContentHashV2(t, &ev, digests); got != hash {
		t.Fatalf("reference hash %s, the page says %s", got, hash)
	}
	// The expansion writes every field's digest and derived salt, and no event salt; the
	// hash is the same.
	expanded, err := models.ExpandFieldCommitments(&ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := models.ParseFieldCommitments(expanded, ev.HashAlgorithm)
	if err != nil || !reflect.DeepEqual(got, fc) || strings.Contains(string(expanded), eventSalt) {
		t.Fatalf("expanded %s (%v), want %v", expanded, err, fc)
	}
	ev.FieldCommitments = expanded
	if got, _, err := models.RecomputeEvent(&ev); err != nil || got != hash {
		t.Fatalf("explicit form: RecomputeEvent = %s, %v; the page says %s", got, err, hash)
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
			"1ddcc3c436196e912c3c319ffae29cd67ed6f82df10b03ad26c8b6091c1194f6"},
		{"outcomeDescription", `"record of ers_x released to insurer"`,
			`["` + hash + `","outcomeDescription","pseudonymized","record of ers_x released to insurer"]`,
			"7308d7bed4d03caf0636af0c119a555b5fffc2d14c989cd25ae410bcdea7141a"},
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
