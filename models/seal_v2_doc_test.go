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

// The worked example of docs/integrity.md §9, number for number: every value below must
// appear in the page, and the code and the reference encoding must reproduce it.
func TestIntegrityDocV2WorkedExample(t *testing.T) {
	inDoc := integrityDocHolds(t)
	rows := []struct{ name, value, salt, input, digest string }{
		{"details.email", `"jane@example.org"`, "AAECAwQFBgcICQoLDA0ODw",
			`["AAECAwQFBgcICQoLDA0ODw","details.email","jane@example.org"]`, "159c0b80fe65037b004adfb1d6a89fe480cd5a17d10678810007cda3747cddc7"},
		{"details.ip", `"10.20.1.2"`, "EBESExQVFhcYGRobHB0eHw",
			`["EBESExQVFhcYGRobHB0eHw","details.ip","10.20.1.2"]`, "e76ac490e480236e3256dd11b6656d2da84115896c08f4e7b369f9068d8ba01b"},
		{"principalId", `"dr.jane.smith"`, "ICEiIyQlJicoKSorLC0uLw",
			`["ICEiIyQlJicoKSorLC0uLw","principalId","dr.jane.smith"]`, "17ac463235fca7e80259ef65f367f1cd5fd72b174939d63948076cd67c288e18"},
		{"targetResourceId", `"pat-004213"`, "MDEyMzQ1Njc4OTo7PD0-Pw",
			`["MDEyMzQ1Njc4OTo7PD0-Pw","targetResourceId","pat-004213"]`, "610b218e37bb996878725ba9f86b6bec8a392a8b1adc9a5978aef31ef8b983f4"},
	}
	const canonical = `{"action":"patient.record.read","dataClassification":"PHI","details":{"method":"GET"},"eventVersion":"1.0","fieldDigests":{"details.email":"159c0b80fe65037b004adfb1d6a89fe480cd5a17d10678810007cda3747cddc7","details.ip":"e76ac490e480236e3256dd11b6656d2da84115896c08f4e7b369f9068d8ba01b","principalId":"17ac463235fca7e80259ef65f367f1cd5fd72b174939d63948076cd67c288e18","targetResourceId":"610b218e37bb996878725ba9f86b6bec8a392a8b1adc9a5978aef31ef8b983f4"},"hashAlgorithm":"sha256-jcs-v2","organizationId":"acme-health","retentionPolicy":"phi_extended","status":"success","targetResourceType":"Patient","timestamp":"2026-11-30T09:15:00.123456Z"}`
	const hash = "9d0bc51c6128685cccd030640698cb4316a43468b988a5d162c7a58d23bb25ff"
	inDoc(canonical)
	inDoc("SHA-256 → `" + hash + "`")

	fc := map[string]models.FieldCommitment{}
	digests := map[string]string{}
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
	}
	if sum := sha256.Sum256([]byte(canonical)); hex.EncodeToString(sum[:]) != hash {
		t.Fatal("SHA-256 of the documented document is not the documented hash")
	}

	raw, _ := json.Marshal(fc)
	ev := models.Event{OrganizationID: "acme-health", Action: "patient.record.read", Status: "success",
		DataClassification: "PHI", RetentionPolicy: "phi_extended", EventVersion: "1.0",
		Timestamp:   time.Date(2026, 11, 30, 9, 15, 0, 123456000, time.UTC),
		PrincipalID: ptr("dr.jane.smith"), TargetResourceType: ptr("Patient"), TargetResourceID: ptr("pat-004213"),
		Details:       json.RawMessage(`{"ip":"10.20.1.2","email":"jane@example.org","method":"GET"}`),
		HashAlgorithm: models.HashAlgorithmV2, FieldCommitments: raw}
	if got, _, err := models.RecomputeEvent(&ev); err != nil || got != hash {
		t.Fatalf("RecomputeEvent = %s, %v; the page says %s", got, err, hash)
	}
	if got := refContentHashV2(t, &ev, digests); got != hash {
		t.Fatalf("reference hash %s, the page says %s", got, hash)
	}
	checks, err := models.CheckFieldCommitments(&ev)
	if err != nil || len(checks) != 4 {
		t.Fatalf("checks %+v, %v", checks, err)
	}
	for _, c := range checks {
		if c.State != models.FieldDisclosedOK {
			t.Errorf("%s: %s", c.Name, c.State)
		}
	}

	// The erasure and pseudonymization the page describes keep the hash, and carry the
	// redaction MACs it gives under the example key (bytes 0x40…0x5f).
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(0x40 + i)
	}
	sealer, err := models.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	ev.Hash = hash
	macs := []struct{ name, state, input, mac string }{
		{"details.email", models.FieldErased, `["` + hash + `","details.email","erased",null]`, "94695144efb1e3b36e6e41c0a42f6cc27072b46de3212d140fad1224aed7b4f4"},
		{"principalId", models.FieldPseudonymized, `["` + hash + `","principalId","pseudonymized","pseu-1"]`, "9ad9f83e568e9807b01f35c5efa5d4181d5f48862187ebaef9ac5ddc37516091"},
	}
	for _, m := range macs {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(m.input))
		if got := hex.EncodeToString(h.Sum(nil)); got != m.mac {
			t.Errorf("%s: HMAC of the documented input is %s, the page says %s", m.name, got, m.mac)
		}
		inDoc(fmt.Sprintf("| `%s` | `%s` | `%s` | `%s` |", m.name, m.state, m.input, m.mac))
	}
	if ev.FieldCommitments, err = sealer.MarkField(ev.FieldCommitments, ev.HashAlgorithm, hash, "details.email", models.FieldErased, nil); err != nil {
		t.Fatal(err)
	}
	if ev.FieldCommitments, err = sealer.MarkField(ev.FieldCommitments, ev.HashAlgorithm, hash, "principalId", models.FieldPseudonymized, models.JSONString("pseu-1")); err != nil {
		t.Fatal(err)
	}
	ev.PrincipalID = ptr("pseu-1")
	ev.Details = json.RawMessage(`{"ip":"10.20.1.2","method":"GET"}`)
	fcs, err := models.ParseFieldCommitments(ev.FieldCommitments, ev.HashAlgorithm)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range macs {
		if fcs[m.name].MAC != m.mac {
			t.Errorf("%s: MarkField wrote mac %s, the page says %s", m.name, fcs[m.name].MAC, m.mac)
		}
	}
	inDoc(`{"digest":"159c0b80fe65037b004adfb1d6a89fe480cd5a17d10678810007cda3747cddc7","state":"erased","mac":"` + macs[0].mac + `"}`)
	if got, _, err := models.RecomputeEvent(&ev); err != nil || got != hash {
		t.Fatalf("after erasure: RecomputeEvent = %s, %v; want %s", got, err, hash)
	}
	checks, _ = sealer.CheckFieldCommitments(&ev)
	want := "[{details.email erased  } {details.ip disclosed-ok  } {principalId pseudonymized  } {targetResourceId disclosed-ok  }]"
	if fmt.Sprint(checks) != want {
		t.Fatalf("after erasure: %v, want %s", checks, want)
	}
	checks, _ = models.CheckFieldCommitments(&ev)
	want = "[{details.email erased  " + models.NoteVouched + "} {details.ip disclosed-ok  } {principalId pseudonymized  " +
		models.NoteVouched + "} {targetResourceId disclosed-ok  }]"
	if fmt.Sprint(checks) != want {
		t.Fatalf("after erasure, offline: %v, want %s", checks, want)
	}
}

// integrityDocHolds returns a check that docs/integrity.md holds a given text (an error of t
// when it does not), for the worked examples' numbers.
func integrityDocHolds(t *testing.T) func(string) {
	doc, err := os.ReadFile("../docs/integrity.md")
	if err != nil {
		t.Fatal(err)
	}
	return func(s string) {
		t.Helper()
		if !strings.Contains(string(doc), s) {
			t.Errorf("docs/integrity.md does not hold %s", s)
		}
	}
}
