package models_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// --- reference encoding of the second scheme ----------------------------------------------
//
// Built the slow, obvious way (maps, encoding/json, the JCS transform) from docs/integrity.md.

// refFieldValues returns the committed fields of ev by their name, as JSON values: under
// v2 the personal ones, under v3 also the outcome description and every details key.
func refFieldValues(t *testing.T, ev *models.Event) map[string]json.RawMessage {
	t.Helper()
	rest, personal, err := refSplit(ev.Details)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	for k, v := range personal {
		out["details."+k] = v
	}
	if ev.HashAlgorithm == models.HashAlgorithmV3 {
		for k, v := range rest {
			out["details."+k] = v
		}
		if ev.OutcomeDescription != nil {
			out["outcomeDescription"], _ = json.Marshal(*ev.OutcomeDescription)
		}
	}
	if ev.PrincipalID != nil {
		out["principalId"], _ = json.Marshal(*ev.PrincipalID)
	}
	if ev.TargetResourceID != nil {
		out["targetResourceId"], _ = json.Marshal(*ev.TargetResourceID)
	}
	return out
}

func refFieldDigest(t *testing.T, salt, name string, value json.RawMessage) string {
	t.Helper()
	canon, err := refCanonical([]any{salt, name, value})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:])
}

// refContentHashV2 is the v2 (or v3) hash with digests, the field digests by name, as
// "fieldDigests"; a v3 document has neither details nor outcomeDescription.
func refContentHashV2(t *testing.T, ev *models.Event, digests map[string]string) string {
	t.Helper()
	rest, _, err := refSplit(ev.Details)
	if err != nil {
		t.Fatal(err)
	}
	if digests == nil {
		digests = map[string]string{}
	}
	doc := map[string]any{
		"timestamp":          ev.Timestamp.UTC().Format(models.TimestampLayout),
		"organizationId":     ev.OrganizationID,
		"action":             ev.Action,
		"status":             ev.Status,
		"dataClassification": ev.DataClassification,
		"retentionPolicy":    ev.RetentionPolicy,
		"eventVersion":       ev.EventVersion,
		"hashAlgorithm":      ev.HashAlgorithm,
		"fieldDigests":       digests,
	}
	for k, v := range map[string]*string{
		"ttl": ev.TTL, "targetResourceType": ev.TargetResourceType,
		"outcomeDescription": ev.OutcomeDescription, "correlationId": ev.CorrelationID,
	} {
		if v != nil {
			doc[k] = *v
		}
	}
	if rest != nil {
		doc["details"] = rest
	}
	if ev.HashAlgorithm == models.HashAlgorithmV3 {
		delete(doc, "details")
		delete(doc, "outcomeDescription")
	}
	canon, err := refCanonical(doc)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:])
}

// checkV2AgainstReference checks a v2- or v3-sealed ev: one commitment per committed field,
// each salt 16 random bytes in base64url, each digest and the hash as the reference path
// computes them.
func checkV2AgainstReference(t *testing.T, ev models.Event) {
	t.Helper()
	if !models.PerFieldScheme(ev.HashAlgorithm) || ev.SubjectSalt != nil || ev.SubjectDigest != "" {
		t.Fatalf("v2 seal: algorithm %q, subject salt %x, subject digest %q", ev.HashAlgorithm, ev.SubjectSalt, ev.SubjectDigest)
	}
	var fc map[string]models.FieldCommitment
	values := refFieldValues(t, &ev)
	if ev.HashAlgorithm == models.HashAlgorithmV3 {
		fc = refCompactCommitments(t, ev.FieldCommitments, values)
		derived, err := models.EventFieldCommitments(&ev)
		if err != nil || !reflect.DeepEqual(derived, fc) {
			t.Fatalf("EventFieldCommitments = %v, %v; reference %v", derived, err, fc)
		}
	} else if err := json.Unmarshal(ev.FieldCommitments, &fc); err != nil {
		t.Fatalf("field commitments %s: %v", ev.FieldCommitments, err)
	}
	if len(fc) != len(values) {
		t.Fatalf("%d commitments %s for %d personal fields", len(fc), ev.FieldCommitments, len(values))
	}
	digests := map[string]string{}
	for name, v := range values {
		c, ok := fc[name]
		if !ok {
			t.Fatalf("no commitment for %s in %s", name, ev.FieldCommitments)
		}
		if raw, err := base64.RawURLEncoding.DecodeString(c.Salt); err != nil || len(raw) != 16 || c.State != "" {
			t.Fatalf("%s: salt %q (%v), state %q", name, c.Salt, err, c.State)
		}
		if want := refFieldDigest(t, c.Salt, name, v); c.Digest != want {
			t.Errorf("%s: digest %s, reference %s", name, c.Digest, want)
		}
		digests[name] = c.Digest
	}
	if want := refContentHashV2(t, &ev, digests); ev.Hash != want {
		t.Errorf("hash %s, reference %s", ev.Hash, want)
	}
}

// refCompactCommitments reads the compact field_commitments of a never-redacted v3 event,
// {"salt": event salt}, and derives, independently of the code, the commitment of each field
// of values: salt = base64url(first 16 bytes of HMAC-SHA256(event salt, name)), digest as
// refFieldDigest.
func refCompactCommitments(t *testing.T, raw json.RawMessage, values map[string]json.RawMessage) map[string]models.FieldCommitment {
	t.Helper()
	var stored map[string]string
	if err := json.Unmarshal(raw, &stored); err != nil || len(stored) != 1 {
		t.Fatalf("a sealed v3 event stores %s, not the compact form {\"salt\": …}", raw)
	}
	key, err := base64.RawURLEncoding.DecodeString(stored["salt"])
	if err != nil || len(key) != 16 || len(stored["salt"]) != 22 {
		t.Fatalf("event salt %q: %v", stored["salt"], err)
	}
	fc := map[string]models.FieldCommitment{}
	for name, v := range values {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(name))
		salt := base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
		fc[name] = models.FieldCommitment{Digest: refFieldDigest(t, salt, name, v), Salt: salt}
	}
	return fc
}

// TestSealV2MatchesReferenceEncoding checks both per-field schemes: SealV2 and Seal (v3).
func TestSealV2MatchesReferenceEncoding(t *testing.T) {
	s := testSealer(t)
	t.Run("v2", func(t *testing.T) { testSealPerFieldMatchesReference(t, s.SealV2) })
	t.Run("v3", func(t *testing.T) { testSealPerFieldMatchesReference(t, s.Seal) })
}

func testSealPerFieldMatchesReference(t *testing.T, sealFn func(*models.Event) error) {
	base := sampleEvent("ref-org", time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.FixedZone("x", -5*3600)))
	seal := func(t *testing.T, ev models.Event) {
		t.Helper()
		if err := sealFn(&ev); err != nil {
			t.Fatalf("Seal: %v", err)
		}
		checkV2AgainstReference(t, ev)
	}
	for _, d := range awkwardDetails {
		t.Run("details "+d.name, func(t *testing.T) {
			ev := base
			ev.Details = json.RawMessage(d.json)
			seal(t, ev)
		})
	}
	for mask := 0; mask < 1<<6; mask++ {
		t.Run(fmt.Sprintf("optional mask %06b", mask), func(t *testing.T) {
			ev := base
			fields := []**string{&ev.TTL, &ev.PrincipalID, &ev.TargetResourceType, &ev.TargetResourceID,
				&ev.OutcomeDescription, &ev.CorrelationID}
			for i, f := range fields {
				if mask&(1<<i) == 0 {
					*f = nil
				}
			}
			seal(t, ev)
		})
	}
	for name, v := range map[string]string{
		"control characters": "line1\nline2\ttab\x00nul\x1f\x7f",
		"invalid utf-8":      "bad \xff\xfe bytes \xed\xa0\x80 surrogate",
		"html":               `<a href="x">&amp;</a>`,
		"long":               strings.Repeat("ü", 255),
		"empty":              "",
	} {
		t.Run("strings "+name, func(t *testing.T) {
			ev := base
			ev.Action, ev.OutcomeDescription, ev.PrincipalID, ev.TargetResourceID = v, ptr(v), ptr(v), ptr(v)
			seal(t, ev)
		})
	}
}

func TestSealV2SaltsAreFreshPerField(t *testing.T) {
	s := testSealer(t)
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		ev := sampleEvent("salt-org", time.Now())
		if err := s.SealV2(&ev); err != nil {
			t.Fatal(err)
		}
		fc, err := models.ParseFieldCommitments(ev.FieldCommitments, ev.HashAlgorithm)
		if err != nil || len(fc) != 4 { // principal, target, ip, userAgent
			t.Fatalf("commitments %s: %v", ev.FieldCommitments, err)
		}
		for name, c := range fc {
			if seen[c.Salt] || seen[c.Digest] {
				t.Fatalf("%s: salt or digest repeated: %s", name, ev.FieldCommitments)
			}
			seen[c.Salt], seen[c.Digest] = true, true
		}
	}
	ev := sampleEvent("salt-org", time.Now())
	ev.PrincipalID, ev.TargetResourceID, ev.Details = nil, nil, json.RawMessage(`{"method":"GET"}`)
	if err := s.SealV2(&ev); err != nil || string(ev.FieldCommitments) != "{}" {
		t.Fatalf("no personal field: commitments %s, %v", ev.FieldCommitments, err)
	}
	if v, err := s.Verify(&ev); err != nil || !v.HashOK || !v.SignatureOK || len(v.Fields) != 0 {
		t.Fatalf("no personal field: Verify = %+v, %v", v, err)
	}
}

// storedV2 writes sampleEvent sealed with v2 through COPY and reads it back.
func storedV2(t *testing.T, s *models.Sealer) *models.Event {
	t.Helper()
	org := testOrg(t, "")
	ev := sampleEvent(org, time.Date(2026, 9, 1, 8, 0, 0, 123456789, time.UTC))
	ev.Details = json.RawMessage(`{"ip":"10.20.1.2","email":"jane@example.org","method":"GET","count":1.0,"nested":{"a":[1,2]}}`)
	return roundTripWith(t, s.SealV2, []models.Event{ev})[0]
}

func TestV2RoundTripThroughPostgres(t *testing.T) {
	s := testSealer(t)
	stored := storedV2(t, s)
	if stored.HashAlgorithm != models.HashAlgorithmV2 || stored.SubjectSalt != nil || stored.SubjectDigest != "" {
		t.Fatalf("stored: algorithm %s, salt %x, digest %q", stored.HashAlgorithm, stored.SubjectSalt, stored.SubjectDigest)
	}
	var nulls int64
	pgtest.DB(t).Raw(`SELECT count(*) FROM audit_log WHERE id = ? AND subject_salt IS NULL AND subject_digest IS NULL
		AND jsonb_typeof(field_commitments) = 'object'`, stored.ID).Scan(&nulls)
	if nulls != 1 {
		t.Fatal("the stored row does not hold NULL subject salt and digest and an object of field commitments")
	}
	v, err := s.Verify(stored)
	if err != nil || !v.HashOK || !v.SignatureOK {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
	if h, d, err := models.RecomputeEvent(stored); err != nil || h != stored.Hash || d != "" {
		t.Fatalf("RecomputeEvent = %s, %q, %v; want %s", h, d, err, stored.Hash)
	}
	want := []models.FieldCheck{{Name: "details.email", State: models.FieldDisclosedOK}, {Name: "details.ip", State: models.FieldDisclosedOK},
		{Name: "principalId", State: models.FieldDisclosedOK}, {Name: "targetResourceId", State: models.FieldDisclosedOK}}
	if fmt.Sprint(v.Fields) != fmt.Sprint(want) {
		t.Fatalf("fields %+v, want %+v", v.Fields, want)
	}
}

func TestV2TamperingIsDetected(t *testing.T) {
	s := testSealer(t)
	stored := storedV2(t, s)
	replaceDetails := func(old, new string) func(e *models.Event) {
		return func(e *models.Event) { e.Details = json.RawMessage(strings.Replace(string(e.Details), old, new, 1)) }
	}
	editCommitments := func(edit func(fc map[string]models.FieldCommitment)) func(e *models.Event) {
		return func(e *models.Event) {
			fc, err := models.ParseFieldCommitments(e.FieldCommitments, e.HashAlgorithm)
			if err != nil {
				t.Fatal(err)
			}
			edit(fc)
			e.FieldCommitments, _ = json.Marshal(fc)
		}
	}
	cases := []struct {
		name     string
		mutate   func(e *models.Event)
		hashOK   bool
		sigOK    bool
		mismatch string // the field CheckFieldCommitments reports as mismatch, if any
	}{
		{"unchanged", func(e *models.Event) {}, true, true, ""},
		// committed fields
		{"principal", func(e *models.Event) { e.PrincipalID = ptr("dr.evil") }, false, true, "principalId"},
		{"principal removed", func(e *models.Event) { e.PrincipalID = nil }, false, true, "principalId"},
		{"target id", func(e *models.Event) { e.TargetResourceID = ptr("pat-000001") }, false, true, "targetResourceId"},
		{"details.ip", replaceDetails("10.20.1.2", "10.0.0.9"), false, true, "details.ip"},
		{"details.email", replaceDetails("jane@example.org", "joe@example.org"), false, true, "details.email"},
		{"details.userAgent added", replaceDetails(`{`, `{"userAgent":"curl",`), false, true, "details.userAgent"},
		{"salt changed", editCommitments(func(fc map[string]models.FieldCommitment) {
			c := fc["principalId"]
			c.Salt = "AAAAAAAAAAAAAAAAAAAAAA"
			fc["principalId"] = c
		}), false, true, "principalId"},
		{"erased without removing the value", editCommitments(func(fc map[string]models.FieldCommitment) {
			fc["details.ip"] = models.FieldCommitment{Digest: fc["details.ip"].Digest, State: models.FieldErased}
		}), false, true, "details.ip"},
		{"state made up", editCommitments(func(fc map[string]models.FieldCommitment) {
			fc["details.ip"] = models.FieldCommitment{Digest: fc["details.ip"].Digest, State: "hidden"}
		}), false, true, "details.ip"},
		// the hashed document
		{"digest changed", editCommitments(func(fc map[string]models.FieldCommitment) {
			c := fc["principalId"]
			c.Digest = strings.Repeat("0", 64)
			fc["principalId"] = c
		}), false, true, "principalId"},
		{"commitment dropped with its value", func(e *models.Event) {
			editCommitments(func(fc map[string]models.FieldCommitment) { delete(fc, "targetResourceId") })(e)
			e.TargetResourceID = nil
		}, false, true, ""},
		{"action", func(e *models.Event) { e.Action = "patient.record.update" }, false, true, ""},
		{"timestamp by 1µs", func(e *models.Event) { e.Timestamp = e.Timestamp.Add(time.Microsecond) }, false, true, ""},
		{"status", func(e *models.Event) { e.Status = "failure" }, false, true, ""},
		{"outcome", func(e *models.Event) { e.OutcomeDescription = ptr("Nothing happened") }, false, true, ""},
		{"organization", func(e *models.Event) { e.OrganizationID = "someone-else" }, false, true, ""},
		{"classification", func(e *models.Event) { e.DataClassification = "PUBLIC" }, false, true, ""},
		{"retention policy", func(e *models.Event) { e.RetentionPolicy = "minimal" }, false, true, ""},
		{"target type", func(e *models.Event) { e.TargetResourceType = ptr("Device") }, false, true, ""},
		{"correlation id", func(e *models.Event) { e.CorrelationID = ptr("x") }, false, true, ""},
		{"ttl", func(e *models.Event) { e.TTL = nil }, false, true, ""},
		{"event version", func(e *models.Event) { e.EventVersion = "2.0" }, false, true, ""},
		{"details value", replaceDetails(`"GET"`, `"DELETE"`), false, true, ""},
		{"details key added", replaceDetails(`{`, `{"extra":1,`), false, true, ""},
		{"signature", func(e *models.Event) { e.Signature = strings.Repeat("a", 64) }, true, false, ""},
		{"hash rewritten to match", func(e *models.Event) {
			e.Action = "forged"
			e.Hash, _ = s.ContentHash(e)
		}, true, false, ""},
		{"downgraded to v1", func(e *models.Event) { e.HashAlgorithm = models.HashAlgorithmV1 }, false, true, ""},
		{"not part of the hash: latency", func(e *models.Event) { e.ProcessingLatency = ptr(int32(999)) }, true, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := *stored
			c.mutate(&e)
			v, err := s.Verify(&e)
			if err != nil {
				t.Fatal(err)
			}
			if v.HashOK != c.hashOK || v.SignatureOK != c.sigOK {
				t.Fatalf("Verify = hash %v signature %v, want %v %v (fields %+v)", v.HashOK, v.SignatureOK, c.hashOK, c.sigOK, v.Fields)
			}
			if h, _, err := models.RecomputeEvent(&e); err == nil && h == e.Hash && !c.hashOK && c.mismatch == "" {
				t.Fatal("RecomputeEvent still matches the stored hash")
			}
			checks, err := models.CheckFieldCommitments(&e)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			for _, f := range checks {
				if f.State == models.FieldMismatch {
					got = f.Name
					if f.Reason == "" {
						t.Errorf("mismatch of %s without a reason", f.Name)
					}
				}
			}
			if e.HashAlgorithm == models.HashAlgorithmV2 && got != c.mismatch {
				t.Fatalf("mismatched field %q, want %q (%+v)", got, c.mismatch, checks)
			}
		})
	}
	t.Run("unreadable commitments", func(t *testing.T) {
		for _, raw := range []string{``, `null`, `[]`, `{"principalId":{"digest":"x"}}`, `{"other":{"digest":"` + strings.Repeat("a", 64) + `"}}`,
			`{"principalId":{"digest":"` + strings.Repeat("a", 64) + `","extra":1}}`} {
			e := *stored
			e.FieldCommitments = json.RawMessage(raw)
			if _, err := s.Verify(&e); models.KindOf(err) != models.KindInvalid || models.FieldOf(err) != "field_commitments" {
				t.Errorf("commitments %q: Verify error %v, want invalid field_commitments", raw, err)
			}
		}
	})
}

// eraseInDB applies change to the stored row as an authorized (gdpr) mutation and reads it back.
func eraseInDB(t *testing.T, ev *models.Event, set string, args ...any) *models.Event {
	t.Helper()
	db := pgtest.DB(t)
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SET LOCAL auditdb.purpose = 'gdpr'`).Error; err != nil {
			return err
		}
		return tx.Exec(`UPDATE audit_log SET `+set+` WHERE organization_id = ? AND id = ?`,
			append(args, ev.OrganizationID, ev.ID)...).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := models.NewEventStore(db).Get(context.Background(), ev.OrganizationID, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestV2ErasureKeepsTheHash: erasing a details field (value and salt removed, state and MAC
// added) or pseudonymizing the principal or target (value replaced, salt removed, state and
// MAC added) keeps hash and signature verifying, and CheckFieldCommitments tells each
// field's state.
func TestV2ErasureKeepsTheHash(t *testing.T) {
	s := testSealer(t)
	stored := storedV2(t, s)
	fc := stored.FieldCommitments
	var err error
	for _, m := range []struct {
		name, state string
		value       json.RawMessage
	}{
		{"principalId", models.FieldPseudonymized, models.JSONString("pseudo-p-1")}, {"details.email", models.FieldErased, nil},
		{"targetResourceId", models.FieldPseudonymized, models.JSONString("pseudo-7f3a")}, {"details.ip", models.FieldErased, nil},
	} {
		if fc, err = s.MarkField(fc, stored.HashAlgorithm, stored.Hash, m.name, m.state, m.value); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(string(fc), "salt") {
		t.Fatalf("salts kept: %s", fc)
	}
	after := eraseInDB(t, stored, `principal_id = 'pseudo-p-1', target_resource_id = 'pseudo-7f3a',
		details = details - 'email' - 'ip', field_commitments = ?::jsonb`, string(fc))
	v, err := s.Verify(after)
	if err != nil || !v.HashOK || !v.SignatureOK {
		t.Fatalf("after erasure and pseudonymization: Verify = %+v, %v", v, err)
	}
	if h, _, err := models.RecomputeEvent(after); err != nil || h != stored.Hash {
		t.Fatalf("RecomputeEvent = %s, %v; want %s", h, err, stored.Hash)
	}
	want := "[{details.email erased  } {details.ip erased  } {principalId pseudonymized  } {targetResourceId pseudonymized  }]"
	if got := fmt.Sprint(v.Fields); got != want {
		t.Fatalf("fields %s, want %s", got, want)
	}
	// Without the key the redactions are reported as vouched for by the server, unchecked.
	offline, err := models.CheckFieldCommitments(after)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range offline {
		if f.State != models.FieldErased && f.State != models.FieldPseudonymized || f.Note != models.NoteVouched {
			t.Errorf("offline: %+v", f)
		}
	}
	// A disclosed value that no longer matches its digest is a mismatch, while the erased
	// fields stay erased.
	after.Details = json.RawMessage(`{"method":"GET","count":1,"nested":{"a":[1,2]},"email":"other@example.org"}`)
	checks, err := models.CheckFieldCommitments(after)
	if err != nil {
		t.Fatal(err)
	}
	if checks[0].Name != "details.email" || checks[0].State != models.FieldMismatch {
		t.Fatalf("an erased field given a value again: %+v", checks)
	}
	// MarkField refuses what it cannot do.
	for _, c := range []struct {
		name, state string
		value       json.RawMessage
	}{
		{"details.name", models.FieldErased, nil},                            // not committed
		{"principalId", "gone", models.JSONString("x")},                      // unknown state
		{"principalId", models.FieldErased, nil},                             // the principal is only pseudonymized
		{"details.email", models.FieldPseudonymized, models.JSONString("x")}, // a details key is only erased
		{"targetResourceId", models.FieldPseudonymized, nil},                 // a pseudonym is needed
		{"details.email", models.FieldErased, models.JSONString("x")},        // an erased field has no value
	} {
		if _, err := s.MarkField(stored.FieldCommitments, stored.HashAlgorithm, stored.Hash, c.name, c.state, c.value); models.KindOf(err) != models.KindInvalid {
			t.Errorf("MarkField %s %s: %v", c.name, c.state, err)
		}
	}
}

// TestV2ForgedRedactionIsDetected: a database writer (no signing key) marks fields
// pseudonymized or erased and puts any value there; the server's checks report each as
// tampered, while without the key it reads as vouched for by the server only when a MAC is
// there at all.
func TestV2ForgedRedactionIsDetected(t *testing.T) {
	s := testSealer(t)
	other, err := models.NewSealer([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	stored := storedV2(t, s)
	// A genuine pseudonymization of the principal to copy a MAC from.
	genuine, err := s.MarkField(stored.FieldCommitments, stored.HashAlgorithm, stored.Hash, "principalId", models.FieldPseudonymized, models.JSONString("psh_real"))
	if err != nil {
		t.Fatal(err)
	}
	gfc, _ := models.ParseFieldCommitments(genuine, stored.HashAlgorithm)
	forged := func(edit func(e *models.Event, fc map[string]models.FieldCommitment)) *models.Event {
		e := *stored
		fc, err := models.ParseFieldCommitments(e.FieldCommitments, e.HashAlgorithm)
		if err != nil {
			t.Fatal(err)
		}
		edit(&e, fc)
		e.FieldCommitments, _ = json.Marshal(fc)
		return &e
	}
	key := func(k *models.Sealer) func(e *models.Event, fc map[string]models.FieldCommitment) {
		return func(e *models.Event, fc map[string]models.FieldCommitment) {
			e.PrincipalID = ptr("someone-else")
			m, err := k.MarkField(e.FieldCommitments, e.HashAlgorithm, e.Hash, "principalId", models.FieldPseudonymized, models.JSONString("someone-else"))
			if err != nil {
				t.Fatal(err)
			}
			mf, _ := models.ParseFieldCommitments(m, e.HashAlgorithm)
			fc["principalId"] = mf["principalId"]
		}
	}
	cases := []struct {
		name    string
		edit    func(e *models.Event, fc map[string]models.FieldCommitment)
		field   string
		offline bool // CheckFieldCommitments without the key reports no mismatch
	}{
		{"pseudonymized without mac", func(e *models.Event, fc map[string]models.FieldCommitment) {
			e.PrincipalID = ptr("someone-else")
			fc["principalId"] = models.FieldCommitment{Digest: fc["principalId"].Digest, State: models.FieldPseudonymized}
		}, "principalId", false},
		{"pseudonymized with a made-up mac", func(e *models.Event, fc map[string]models.FieldCommitment) {
			e.PrincipalID = ptr("someone-else")
			fc["principalId"] = models.FieldCommitment{Digest: fc["principalId"].Digest, State: models.FieldPseudonymized, MAC: strings.Repeat("ab", 32)}
		}, "principalId", true},
		{"pseudonymized under another key", key(other), "principalId", true},
		{"genuine mac, other value", func(e *models.Event, fc map[string]models.FieldCommitment) {
			e.PrincipalID = ptr("someone-else")
			fc["principalId"] = gfc["principalId"]
		}, "principalId", true},
		{"genuine mac moved to the target", func(e *models.Event, fc map[string]models.FieldCommitment) {
			e.TargetResourceID = ptr("psh_real")
			fc["targetResourceId"] = models.FieldCommitment{Digest: fc["targetResourceId"].Digest, State: models.FieldPseudonymized, MAC: gfc["principalId"].MAC}
		}, "targetResourceId", true},
		{"erased without mac", func(e *models.Event, fc map[string]models.FieldCommitment) {
			e.Details = json.RawMessage(`{"ip":"10.20.1.2","method":"GET","count":1,"nested":{"a":[1,2]}}`)
			fc["details.email"] = models.FieldCommitment{Digest: fc["details.email"].Digest, State: models.FieldErased}
		}, "details.email", false},
		{"salt kept beside a state", func(e *models.Event, fc map[string]models.FieldCommitment) {
			c := gfc["principalId"]
			c.Salt = fc["principalId"].Salt
			e.PrincipalID = ptr("psh_real")
			fc["principalId"] = c
		}, "principalId", false},
		{"details key pseudonymized", func(e *models.Event, fc map[string]models.FieldCommitment) {
			e.Details = json.RawMessage(`{"ip":"10.20.1.2","email":"x","method":"GET","count":1,"nested":{"a":[1,2]}}`)
			fc["details.email"] = models.FieldCommitment{Digest: fc["details.email"].Digest, State: models.FieldPseudonymized, MAC: strings.Repeat("ab", 32)}
		}, "details.email", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := forged(c.edit)
			v, err := s.Verify(e)
			if err != nil {
				t.Fatal(err)
			}
			if v.HashOK {
				t.Fatalf("Verify says the hash is OK: %+v", v)
			}
			if got := mismatchOf(v.Fields); got != c.field {
				t.Fatalf("mismatch %q, want %q: %+v", got, c.field, v.Fields)
			}
			if err := s.CheckRedactions(e); models.KindOf(err) != models.KindConflict {
				t.Fatalf("CheckRedactions = %v, want a conflict", err)
			}
			offline, err := models.CheckFieldCommitments(e)
			if err != nil {
				t.Fatal(err)
			}
			if got := mismatchOf(offline); (got == "") != c.offline {
				t.Fatalf("offline mismatch %q (offline passes: %v): %+v", got, c.offline, offline)
			}
		})
	}
	// An empty state is an unknown state.
	e := *stored
	e.FieldCommitments = json.RawMessage(strings.Replace(string(stored.FieldCommitments), `"salt"`, `"state":"","salt"`, 1))
	v, err := s.Verify(&e)
	if err != nil || v.HashOK || !strings.Contains(fmt.Sprint(v.Fields), `unknown state ""`) {
		t.Fatalf("empty state: %+v, %v", v, err)
	}
	// The genuine redaction verifies, and CheckRedactions lets it pass.
	g := *stored
	g.PrincipalID, g.FieldCommitments = ptr("psh_real"), genuine
	if v, err := s.Verify(&g); err != nil || !v.HashOK || !v.SignatureOK {
		t.Fatalf("genuine: %+v, %v", v, err)
	}
	if err := s.CheckRedactions(&g); err != nil {
		t.Fatal(err)
	}
}

// TestV2CommitmentsCannotBeRelabelled: moving a commitment to another name, swapping two,
// or adding one the event never had changes the content hash; names outside the personal
// fields are refused.
func TestV2CommitmentsCannotBeRelabelled(t *testing.T) {
	s := testSealer(t)
	stored := storedV2(t, s)
	fc, err := models.ParseFieldCommitments(stored.FieldCommitments, stored.HashAlgorithm)
	if err != nil {
		t.Fatal(err)
	}
	relabel := map[string]func(fc map[string]models.FieldCommitment){
		"swap principal and target": func(fc map[string]models.FieldCommitment) {
			fc["principalId"], fc["targetResourceId"] = fc["targetResourceId"], fc["principalId"]
		},
		"move email to name": func(fc map[string]models.FieldCommitment) {
			fc["details.name"] = fc["details.email"]
			delete(fc, "details.email")
		},
		"add a field": func(fc map[string]models.FieldCommitment) {
			fc["details.userAgent"] = models.FieldCommitment{Digest: strings.Repeat("0", 64), State: models.FieldErased, MAC: strings.Repeat("0", 64)}
		},
	}
	for name, edit := range relabel {
		c := maps.Clone(fc)
		edit(c)
		e := *stored
		e.FieldCommitments, _ = json.Marshal(c)
		if h, _, err := models.RecomputeEvent(&e); err != nil || h == stored.Hash {
			t.Errorf("%s: RecomputeEvent = %s, %v: still the stored hash", name, h, err)
		}
		if v, err := s.Verify(&e); err != nil || v.HashOK {
			t.Errorf("%s: Verify = %+v, %v", name, v, err)
		}
	}
	for _, name := range []string{"details.foo", "details.Email", "details.", "principalid", "subject"} {
		c := maps.Clone(fc)
		c[name] = fc["details.email"]
		e := *stored
		e.FieldCommitments, _ = json.Marshal(c)
		if _, err := s.Verify(&e); models.FieldOf(err) != "field_commitments" {
			t.Errorf("name %q: Verify error %v, want invalid field_commitments", name, err)
		}
	}
}

func mismatchOf(fields []models.FieldCheck) string {
	for _, f := range fields {
		if f.State == models.FieldMismatch {
			return f.Name
		}
	}
	return ""
}

func TestV2DisclosedValueNotMatchingIsMismatch(t *testing.T) {
	s := testSealer(t)
	stored := storedV2(t, s)
	e := *stored
	e.TargetResourceID = ptr("pat-999999")
	checks, err := models.CheckFieldCommitments(&e)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range checks {
		want := models.FieldDisclosedOK
		if f.Name == "targetResourceId" {
			want = models.FieldMismatch
		}
		if f.State != want {
			t.Errorf("%s: %s (%s), want %s", f.Name, f.State, f.Reason, want)
		}
	}
	if v, _ := s.Verify(&e); v.HashOK || v.ComputedHash != v.ExpectedHash {
		t.Fatalf("Verify = %+v: the content hash matches but the field must fail it", v)
	}
}

// TestV1EventsStillVerify: events the first scheme sealed (stored before the column existed:
// NULL field commitments) verify as they always did, next to v2 events.
func TestV1EventsStillVerify(t *testing.T) {
	s := testSealer(t)
	org := testOrg(t, "")
	v1 := roundTripWith(t, s.SealV1, []models.Event{sampleEvent(org, time.Now().Add(-time.Hour))})[0]
	if v1.HashAlgorithm != models.HashAlgorithmV1 || v1.FieldCommitments != nil || len(v1.SubjectSalt) != 16 {
		t.Fatalf("v1 event stored as %s, commitments %s, salt %x", v1.HashAlgorithm, v1.FieldCommitments, v1.SubjectSalt)
	}
	v, err := s.Verify(v1)
	if err != nil || !v.HashOK || !v.SignatureOK || v.Fields != nil {
		t.Fatalf("v1 Verify = %+v, %v", v, err)
	}
	if h, d, err := models.RecomputeEvent(v1); err != nil || h != v1.Hash || d != v1.SubjectDigest {
		t.Fatalf("v1 RecomputeEvent = %s %s %v", h, d, err)
	}
	if checks, err := models.CheckFieldCommitments(v1); err != nil || checks != nil {
		t.Fatalf("CheckFieldCommitments of a v1 event = %v, %v; want nil", checks, err)
	}
	unknown := *v1
	unknown.HashAlgorithm = "sha256-jcs-v9"
	if _, _, err := models.RecomputeEvent(&unknown); models.FieldOf(err) != "hash_algorithm" {
		t.Fatalf("unknown scheme: %v", err)
	}
}

func TestFieldDigest(t *testing.T) {
	d, err := models.FieldDigest("AAECAwQFBgcICQoLDA0ODw", "details.ip", json.RawMessage(` "10.0.0.1" `))
	if err != nil {
		t.Fatal(err)
	}
	if want := refFieldDigest(t, "AAECAwQFBgcICQoLDA0ODw", "details.ip", json.RawMessage(`"10.0.0.1"`)); d != want {
		t.Fatalf("FieldDigest %s, reference %s", d, want)
	}
	if _, err := models.FieldDigest("s", "n", json.RawMessage(`{"a":`)); models.KindOf(err) != models.KindInvalid {
		t.Fatalf("bad value: %v", err)
	}
}

// TestCompactFieldCommitments: a never-redacted v3 event stores only its event salt and
// verifies from it; the forms are read strictly (an event salt beside a commitment, an
// explicit form keeping its event salt, a bad event salt, a compact v2 event: malformed),
// and ExpandFieldCommitments gives the explicit form with the same digests and no event salt.
func TestCompactFieldCommitments(t *testing.T) {
	s := testSealer(t)
	ev := sampleEvent("compact-org", time.Now())
	if err := s.Seal(&ev); err != nil {
		t.Fatal(err)
	}
	if !models.CompactFieldCommitments(ev.FieldCommitments) || len(ev.FieldCommitments) != len(`{"salt":""}`)+22 {
		t.Fatalf("a sealed v3 event stores %s", ev.FieldCommitments)
	}
	var stored map[string]string
	_ = json.Unmarshal(ev.FieldCommitments, &stored)
	if v, err := s.Verify(&ev); err != nil || !v.HashOK || len(v.Fields) == 0 {
		t.Fatalf("compact: %+v, %v", v, err)
	}
	// The jsonb text form (a space after the colon) reads the same.
	spaced := ev
	spaced.FieldCommitments = json.RawMessage(`{"salt": "` + stored["salt"] + `"}`)
	if v, err := s.Verify(&spaced); err != nil || !v.HashOK {
		t.Fatalf("compact with a space: %+v, %v", v, err)
	}
	expanded, err := models.ExpandFieldCommitments(&ev)
	if err != nil {
		t.Fatal(err)
	}
	derived, _ := models.EventFieldCommitments(&ev)
	explicit, err := models.ParseFieldCommitments(expanded, ev.HashAlgorithm)
	if err != nil || !reflect.DeepEqual(explicit, derived) || strings.Contains(string(expanded), stored["salt"]) {
		t.Fatalf("expanded %s (%v), derived %v", expanded, err, derived)
	}
	ex := ev
	ex.FieldCommitments = expanded
	if v, err := s.Verify(&ex); err != nil || !v.HashOK {
		t.Fatalf("expanded: %+v, %v", v, err)
	}
	if _, err := models.ParseFieldCommitments(ev.FieldCommitments, ev.HashAlgorithm); models.KindOf(err) != models.KindInvalid {
		t.Fatalf("ParseFieldCommitments of the compact form: %v", err)
	}
	if _, err := s.MarkField(ev.FieldCommitments, ev.HashAlgorithm, ev.Hash, "principalId", models.FieldPseudonymized,
		models.JSONString("p")); models.KindOf(err) != models.KindInvalid {
		t.Fatalf("MarkField on the compact form: %v", err)
	}
	var anyDigest string
	for _, c := range derived {
		anyDigest = c.Digest
		break
	}
	for name, tc := range map[string]struct {
		alg, raw string
	}{
		"compact with a digest":       {models.HashAlgorithmV3, `{"salt":"` + stored["salt"] + `","digest":"` + anyDigest + `"}`},
		"explicit keeping the salt":   {models.HashAlgorithmV3, strings.Replace(string(expanded), "{", `{"salt":"`+stored["salt"]+`",`, 1)},
		"short event salt":            {models.HashAlgorithmV3, `{"salt":"AAECAwQFBgcICQoLDA0O"}`},
		"event salt not text":         {models.HashAlgorithmV3, `{"salt":{"digest":"` + anyDigest + `"}}`},
		"event salt not base64url":    {models.HashAlgorithmV3, `{"salt":"AAECAwQFBgcICQoLDA0O+/"}`},
		"compact under sha256-jcs-v2": {models.HashAlgorithmV2, `{"salt":"` + stored["salt"] + `"}`},
		"event salt given twice":      {models.HashAlgorithmV3, `{"salt":"` + stored["salt"] + `","salt":"` + stored["salt"] + `"}`},
	} {
		t.Run(name, func(t *testing.T) {
			bad := ev
			bad.HashAlgorithm, bad.FieldCommitments = tc.alg, json.RawMessage(tc.raw)
			if _, err := s.Verify(&bad); models.KindOf(err) != models.KindInvalid || models.FieldOf(err) != "field_commitments" {
				t.Fatalf("Verify of %s: %v", tc.raw, err)
			}
			if tc.alg == models.HashAlgorithmV3 && models.CompactFieldCommitments(bad.FieldCommitments) {
				t.Fatalf("%s taken for the compact form", tc.raw)
			}
		})
	}
	// Field names longer than a block and escaped ones derive their salts as crypto/hmac does.
	long := sampleEvent("compact-org", time.Now())
	long.Details = json.RawMessage(`{"` + strings.Repeat("k", 100) + `":1,"q\"uote\u00e9":2,"ip":"10.0.0.1"}`)
	if err := s.Seal(&long); err != nil {
		t.Fatal(err)
	}
	checkV2AgainstReference(t, long)
	// A value added to a compact event (a new details key) changes its hash.
	added := ev
	added.Details = json.RawMessage(`{"ip":"10.0.0.1","userAgent":"curl","extra":1}`)
	if v, err := s.Verify(&added); err != nil || v.HashOK {
		t.Fatalf("a details key added to a compact event verifies: %+v, %v", v, err)
	}
}
