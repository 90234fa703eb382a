package models_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gowebpki/jcs"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/pgtest"
)

// sampleEvent returns a fully populated, unsealed event of org.
func sampleEvent(org string, ts time.Time) models.Event {
	return models.Event{
		Timestamp:          ts,
		TTL:                ptr("P7Y"),
		PrincipalID:        ptr("dr.jane.smith"),
		OrganizationID:     org,
		Action:             "patient.record.read",
		TargetResourceType: ptr("Patient"),
		TargetResourceID:   ptr("pat-004213"),
		Status:             "success",
		OutcomeDescription: ptr("Viewed patient chart summary"),
		CorrelationID:      ptr("0f8fad5b-d9cb-469f-a165-70867728950e"),
		DataClassification: "PHI",
		RetentionPolicy:    "phi_extended",
		EventVersion:       "1.0",
		ProcessingLatency:  ptr(int32(12)),
		Details:            json.RawMessage(`{"ip":"10.20.1.2","userAgent":"Mozilla/5.0","sessionId":"sess-1","method":"GET"}`),
	}
}

// --- reference encoding --------------------------------------------------------------
//
// The scheme as first written: build a map, encoding/json it, run it through the JCS
// transform. Seal writes the canonical document directly for speed; these functions pin
// that both give the very same bytes.

func refSplit(details json.RawMessage) (rest, personal map[string]json.RawMessage, err error) {
	if len(details) == 0 || string(details) == "null" {
		return nil, nil, nil
	}
	if err := json.Unmarshal(details, &rest); err != nil || rest == nil {
		return nil, nil, fmt.Errorf("details must be a JSON object")
	}
	for _, k := range models.DefaultPersonalKeys {
		if v, ok := rest[k]; ok {
			if personal == nil {
				personal = map[string]json.RawMessage{}
			}
			personal[k] = v
			delete(rest, k)
		}
	}
	return rest, personal, nil
}

func refCanonical(doc any) ([]byte, error) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}

func refSubjectDigest(ev *models.Event) (string, error) {
	_, personal, err := refSplit(ev.Details)
	if err != nil {
		return "", err
	}
	doc := map[string]any{}
	if ev.PrincipalID != nil {
		doc["principalId"] = *ev.PrincipalID
	}
	if len(personal) > 0 {
		doc["details"] = personal
	}
	canon, err := refCanonical(doc)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(ev.SubjectSalt)
	h.Write(canon)
	return hex.EncodeToString(h.Sum(nil)), nil
}

func refContentHash(ev *models.Event) (string, error) {
	rest, _, err := refSplit(ev.Details)
	if err != nil {
		return "", err
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
		"subjectDigest":      ev.SubjectDigest,
	}
	for k, v := range map[string]*string{
		"ttl": ev.TTL, "targetResourceType": ev.TargetResourceType, "targetResourceId": ev.TargetResourceID,
		"outcomeDescription": ev.OutcomeDescription, "correlationId": ev.CorrelationID,
	} {
		if v != nil {
			doc[k] = *v
		}
	}
	if rest != nil {
		doc["details"] = rest
	}
	canon, err := refCanonical(doc)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// checkAgainstReference seals ev with the first scheme and compares the digest and hash with
// the reference path.
func checkAgainstReference(t *testing.T, s *models.Sealer, ev models.Event) {
	t.Helper()
	if err := s.SealV1(&ev); err != nil {
		t.Fatalf("Seal: %v", err)
	}
	wantDigest, err := refSubjectDigest(&ev)
	if err != nil {
		t.Fatalf("reference digest: %v", err)
	}
	if ev.SubjectDigest != wantDigest {
		t.Errorf("subject digest %s, reference %s", ev.SubjectDigest, wantDigest)
	}
	wantHash, err := refContentHash(&ev)
	if err != nil {
		t.Fatalf("reference hash: %v", err)
	}
	if ev.Hash != wantHash {
		t.Errorf("hash %s, reference %s", ev.Hash, wantHash)
	}
}

var awkwardDetails = []struct{ name, json string }{
	{"absent", ``},
	{"json null", `null`},
	{"empty object", `{}`},
	{"only personal", `{"ip":"10.0.0.1","email":"a@b.example"}`},
	{"all personal keys", `{"ip":"1","ipAddress":"2","email":"3","name":"4","userAgent":"5","x":6}`},
	{"numbers", `{"a":1.0,"b":1e2,"c":-0,"d":1E-7,"e":12345678901234567000,"f":0.1,"g":-1.5e300}`},
	{"unicode and html", `{"note":"<script>alert('x')</script> & café 東京 😀","ip":"::1"}`},
	{"escapes", `{"s":"quote \" backslash \\ slash \/ tab \t nl \n cr \r bs \b ff \f ctl \u0001 \u001f del \u007f","u":"\u00e9\u2028\u2029"}`},
	{"utf16 key order", `{"\ue000":1,"😀":2,"a":3,"A":4,"é":5}`},
	{"escaped personal key", `{"\u0069p":"10.1.1.1","other":"x"}`},
	{"nested", `{"req":{"headers":{"b":[1,2,{"z":null,"a":true}],"a":false}},"arr":[[],{}],"ip":{"v4":"10.0.0.2"}}`},
	{"key with quote", `{"a\"b":1,"a\\b":2,"a":{"\"":3}}`},
	{"whitespace", " \n {\t\"b\" : 1 ,\r\n \"a\" : [ 1 , 2 ] } \n"},
}

func TestSealMatchesReferenceEncoding(t *testing.T) {
	s := testSealer(t)
	base := sampleEvent("ref-org", time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.FixedZone("x", -5*3600)))
	for _, d := range awkwardDetails {
		t.Run("details "+d.name, func(t *testing.T) {
			ev := base
			ev.Details = json.RawMessage(d.json)
			checkAgainstReference(t, s, ev)
		})
	}
	// Every combination of the optional members present or absent.
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
			checkAgainstReference(t, s, ev)
		})
	}
	strs := map[string]string{
		"control characters": "line1\nline2\ttab\x00nul\x1f\x7f",
		"invalid utf-8":      "bad \xff\xfe bytes \xed\xa0\x80 surrogate",
		"html":               `<a href="x">&amp;</a>`,
		"line separators":    "a\u2028b\u2029c",
		"empty":              "",
	}
	for name, v := range strs {
		t.Run("strings "+name, func(t *testing.T) {
			ev := base
			ev.Action, ev.OutcomeDescription, ev.PrincipalID, ev.TargetResourceID = v, ptr(v), ptr(v), ptr(v)
			checkAgainstReference(t, s, ev)
		})
	}
}

// FuzzSealMatchesReference: whenever Seal accepts an input, it hashes it exactly as the
// reference encoding does.
func FuzzSealMatchesReference(f *testing.F) {
	for _, d := range awkwardDetails {
		f.Add(d.json, "outcome", "dr.x")
	}
	f.Add(`{"a":"\ud83d\ude00"}`, "\xff", "\x00")
	f.Fuzz(func(t *testing.T, details, outcome, principal string) {
		s := testSealer(t)
		ev := sampleEvent("fuzz", time.Unix(1700000000, 123456789))
		ev.Details, ev.OutcomeDescription, ev.PrincipalID = json.RawMessage(details), &outcome, &principal
		v2 := ev
		if err := s.SealV1(&ev); err != nil {
			if s.Seal(&v2) == nil {
				t.Fatalf("details %q: the second scheme accepts what the first refuses", details)
			}
			return // rejected input: nothing to compare
		}
		if err := s.Seal(&v2); err != nil {
			t.Fatalf("details %q: the second scheme refuses what the first accepts: %v", details, err)
		}
		checkV2AgainstReference(t, v2)
		want, err := refContentHash(&ev)
		if err != nil {
			t.Fatalf("Seal accepted %q but the reference rejects it: %v", details, err)
		}
		if ev.Hash != want {
			t.Fatalf("details %q: hash %s, reference %s", details, ev.Hash, want)
		}
		if d, _ := refSubjectDigest(&ev); d != ev.SubjectDigest {
			t.Fatalf("details %q: digest %s, reference %s", details, ev.SubjectDigest, d)
		}
	})
}

func TestNewSealerRejectsShortKey(t *testing.T) {
	if _, err := models.NewSealer(make([]byte, 31)); err == nil {
		t.Fatal("NewSealer accepted a 31-byte key")
	}
}

func TestSealRejectsBadDetails(t *testing.T) {
	s := testSealer(t)
	for _, d := range []struct{ name, json string }{
		{"array", `[1,2]`},
		{"string", `"x"`},
		{"number", `42`},
		{"spaces only", `   `},
		{"broken", `{"a":`},
		{"duplicate key", `{"a":1,"a":2}`},
		{"nested duplicate key", `{"a":{"b":1,"b":2}}`},
		{"number out of range", `{"a":1e400}`},
	} {
		t.Run(d.name, func(t *testing.T) {
			ev := sampleEvent("bad-details", time.Now())
			ev.Details = json.RawMessage(d.json)
			err := s.Seal(&ev)
			if models.KindOf(err) != models.KindInvalid || models.FieldOf(err) != "details" {
				t.Fatalf("Seal(%s) = %v, want KindInvalid on details", d.json, err)
			}
		})
	}
}

// The signature is the plain HMAC-SHA256 of the hash under the key, however often and from
// however many goroutines the sealer signs (it reuses keyed states).
func TestSignatureIsHMACOfTheHash(t *testing.T) {
	key := []byte("test-signing-key-0123456789abcdef0123")
	s := testSealer(t)
	want := func(hash string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(hash))
		return hex.EncodeToString(m.Sum(nil))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				hash := fmt.Sprintf("%064x", g*1000+i)
				if got := s.Sign(hash); got != want(hash) {
					errs <- fmt.Sprintf("Sign(%s) = %s, want %s", hash, got, want(hash))
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestSealThenVerify(t *testing.T) {
	s := testSealer(t)
	ev := sampleEvent("verify-org", time.Now())
	if err := s.SealV1(&ev); err != nil {
		t.Fatal(err)
	}
	if ev.HashAlgorithm != models.HashAlgorithm || len(ev.SubjectSalt) != 16 || len(ev.Hash) != 64 ||
		len(ev.Signature) != 64 || len(ev.SubjectDigest) != 64 {
		t.Fatalf("sealed fields incomplete: %+v", ev)
	}
	v, err := s.Verify(&ev)
	if err != nil || !v.HashOK || !v.SignatureOK || v.ComputedHash != v.ExpectedHash {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
	other, _ := models.NewSealer([]byte("another-key-another-key-another-key!"))
	if v, _ := other.Verify(&ev); !v.HashOK || v.SignatureOK {
		t.Fatalf("another key: Verify = %+v, want hash ok, signature not", v)
	}
	ev2 := sampleEvent("verify-org", ev.Timestamp)
	if err := s.SealV1(&ev2); err != nil {
		t.Fatal(err)
	}
	if ev2.SubjectDigest == ev.SubjectDigest {
		t.Fatal("two seals of the same subject gave the same digest: the salt is not random")
	}
}

// roundTrip seals (with the current scheme) and copies events into org and reads them back
// with Get, in insertion order (the list returns newest first; ids grow with COPY order).
func roundTrip(t *testing.T, s *models.Sealer, events []models.Event) []*models.Event {
	t.Helper()
	return roundTripWith(t, s.Seal, events)
}

// roundTripWith is roundTrip sealing with seal (s.Seal or s.SealV1).
func roundTripWith(t *testing.T, seal func(*models.Event) error, events []models.Event) []*models.Event {
	t.Helper()
	ctx := context.Background()
	db := pgtest.DB(t)
	store := models.NewEventStore(db)
	for i := range events {
		if err := seal(&events[i]); err != nil {
			t.Fatalf("Seal %d: %v", i, err)
		}
	}
	n, err := ingest.CopyEvents(ctx, db, models.NewPartitionManager(db), events)
	if err != nil || n != int64(len(events)) {
		t.Fatalf("CopyEvents = %d, %v", n, err)
	}
	org := events[0].OrganizationID
	var ids []int64
	if err := db.Raw(`SELECT id FROM audit_log WHERE organization_id = ? ORDER BY id`, org).Scan(&ids).Error; err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(events) {
		t.Fatalf("found %d rows of %s, want %d", len(ids), org, len(events))
	}
	out := make([]*models.Event, len(ids))
	for i, id := range ids {
		if out[i], err = store.Get(ctx, org, id); err != nil {
			t.Fatalf("Get %d: %v", id, err)
		}
	}
	return out
}

// TestRoundTripVerifies is the old system's bug: a hash computed over the event as sent must
// still verify once PostgreSQL has stored the timestamp (microseconds, its own time zone)
// and the details (jsonb: reordered keys, rewritten numbers and escapes).
func TestRoundTripVerifies(t *testing.T) {
	s := testSealer(t)
	t.Run("v1", func(t *testing.T) { testRoundTripVerifies(t, s, s.SealV1, models.HashAlgorithmV1) })
	t.Run("v2", func(t *testing.T) { testRoundTripVerifies(t, s, s.SealV2, models.HashAlgorithmV2) })
	t.Run("v3", func(t *testing.T) { testRoundTripVerifies(t, s, s.Seal, models.HashAlgorithmV3) })
}

func testRoundTripVerifies(t *testing.T, s *models.Sealer, seal func(*models.Event) error, alg string) {
	org := testOrg(t, "")
	zones := []*time.Location{time.FixedZone("UTC-5", -5*3600), time.FixedZone("UTC+5:30", 5*3600+1800), time.UTC}
	var events []models.Event
	for i, d := range awkwardDetails {
		ts := time.Date(2026, 10, 31, 23, 59, 59, 999_999_999-i, zones[i%len(zones)]) // sub-microsecond nanoseconds
		ev := sampleEvent(org, ts)
		ev.Details = json.RawMessage(d.json)
		ev.OutcomeDescription = ptr("Viewed <chart> & notes \"quoted\" — café")
		events = append(events, ev)
	}
	inputs := make([]time.Time, len(events))
	for i := range events {
		inputs[i] = events[i].Timestamp
	}
	stored := roundTripWith(t, seal, events)
	for i, ev := range stored {
		t.Run(awkwardDetails[i].name, func(t *testing.T) {
			if ev.HashAlgorithm != alg {
				t.Fatalf("stored hash algorithm %s, want %s", ev.HashAlgorithm, alg)
			}
			if want := inputs[i].Truncate(time.Microsecond); !ev.Timestamp.Equal(want) {
				t.Errorf("timestamp %v, want %v (input %v)", ev.Timestamp, want, inputs[i])
			}
			v, err := s.Verify(ev)
			if err != nil || !v.HashOK || !v.SignatureOK {
				t.Fatalf("stored event does not verify: %+v, %v (details stored as %s)", v, err, ev.Details)
			}
		})
	}
	// The test means something only if the database did rewrite the input.
	for i, d := range awkwardDetails {
		if d.name == "numbers" {
			if got := string(stored[i].Details); strings.Contains(got, "1e2") || !strings.Contains(got, "100") {
				t.Errorf("jsonb kept the numbers as written (%s): the round trip proves nothing", got)
			}
		}
	}
}

// TestTamperingIsDetected: the first scheme (events sealed before the second keep verifying
// by these rules).
func TestTamperingIsDetected(t *testing.T) {
	s := testSealer(t)
	org := testOrg(t, "")
	ev := sampleEvent(org, time.Date(2026, 9, 1, 8, 0, 0, 123456789, time.UTC))
	ev.Details = json.RawMessage(`{"ip":"10.20.1.2","userAgent":"Mozilla/5.0","method":"GET","count":1.0,"nested":{"a":[1,2]}}`)
	stored := roundTripWith(t, s.SealV1, []models.Event{ev})[0]

	cases := []struct {
		name        string
		mutate      func(e *models.Event)
		hashOK      bool
		signatureOK bool
	}{
		{"unchanged", func(e *models.Event) {}, true, true},
		{"action", func(e *models.Event) { e.Action = "patient.record.update" }, false, true},
		{"timestamp by 1µs", func(e *models.Event) { e.Timestamp = e.Timestamp.Add(time.Microsecond) }, false, true},
		{"timestamp by 1s", func(e *models.Event) { e.Timestamp = e.Timestamp.Add(-time.Second) }, false, true},
		{"status", func(e *models.Event) { e.Status = "failure" }, false, true},
		{"outcome", func(e *models.Event) { e.OutcomeDescription = ptr("Nothing happened") }, false, true},
		{"outcome removed", func(e *models.Event) { e.OutcomeDescription = nil }, false, true},
		{"organization", func(e *models.Event) { e.OrganizationID = "someone-else" }, false, true},
		{"classification", func(e *models.Event) { e.DataClassification = "PUBLIC" }, false, true},
		{"retention policy", func(e *models.Event) { e.RetentionPolicy = "minimal" }, false, true},
		{"target id", func(e *models.Event) { e.TargetResourceID = ptr("pat-000001") }, false, true},
		{"correlation id", func(e *models.Event) { e.CorrelationID = ptr("x") }, false, true},
		{"ttl", func(e *models.Event) { e.TTL = nil }, false, true},
		{"details value", func(e *models.Event) {
			e.Details = json.RawMessage(strings.Replace(string(e.Details), `"GET"`, `"DELETE"`, 1))
		}, false, true},
		{"details number", func(e *models.Event) { e.Details = json.RawMessage(strings.Replace(string(e.Details), `1.0`, `2`, 1)) }, false, true},
		{"details key added", func(e *models.Event) { e.Details = json.RawMessage(`{"extra":1,` + string(e.Details)[1:]) }, false, true},
		{"subject digest", func(e *models.Event) { e.SubjectDigest = strings.Repeat("0", 64) }, false, true},
		{"hash algorithm", func(e *models.Event) { e.HashAlgorithm = "sha256-jcs-v0" }, false, true},
		{"signature", func(e *models.Event) { e.Signature = strings.Repeat("a", 64) }, true, false},
		{"hash rewritten to match", func(e *models.Event) {
			e.Action = "forged"
			e.Hash, _ = s.ContentHash(e)
		}, true, false},
		{"not part of the hash: latency", func(e *models.Event) { e.ProcessingLatency = ptr(int32(999)) }, true, true},
		{"not part of the hash: id", func(e *models.Event) { e.ID++ }, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := *stored
			c.mutate(&e)
			v, err := s.Verify(&e)
			if err != nil {
				t.Fatal(err)
			}
			if v.HashOK != c.hashOK || v.SignatureOK != c.signatureOK {
				t.Fatalf("Verify = hash %v signature %v, want %v %v", v.HashOK, v.SignatureOK, c.hashOK, c.signatureOK)
			}
		})
	}
}

// TestPersonalFieldsStayOutOfTheHash: in the first scheme, pseudonymizing or erasing the
// personal fields keeps the event hash valid; only the subject digest (recomputed under the
// salt) tells the change.
func TestPersonalFieldsStayOutOfTheHash(t *testing.T) {
	s := testSealer(t)
	org := testOrg(t, "")
	stored := roundTripWith(t, s.SealV1, []models.Event{sampleEvent(org, time.Now())})[0]
	if d, err := s.RecomputeSubjectDigest(stored); err != nil || d != stored.SubjectDigest {
		t.Fatalf("stored digest does not recompute: %s vs %s (%v)", d, stored.SubjectDigest, err)
	}
	cases := []struct {
		name   string
		mutate func(e *models.Event)
	}{
		{"principal_id", func(e *models.Event) { e.PrincipalID = ptr("pseudonym-7f3a") }},
		{"principal_id removed", func(e *models.Event) { e.PrincipalID = nil }},
		{"details.ip", func(e *models.Event) {
			e.Details = json.RawMessage(strings.Replace(string(e.Details), "10.20.1.2", "10.0.0.0", 1))
		}},
		{"details.userAgent", func(e *models.Event) {
			e.Details = json.RawMessage(strings.Replace(string(e.Details), "Mozilla/5.0", "redacted", 1))
		}},
		{"details.email added", func(e *models.Event) { e.Details = json.RawMessage(`{"email":"x@y.example",` + string(e.Details)[1:]) }},
		{"salt destroyed", func(e *models.Event) { e.SubjectSalt = nil }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := *stored
			c.mutate(&e)
			v, err := s.Verify(&e)
			if err != nil || !v.HashOK || !v.SignatureOK {
				t.Fatalf("Verify = %+v, %v: a personal field must not break the hash", v, err)
			}
			d, err := s.RecomputeSubjectDigest(&e)
			if err != nil {
				t.Fatal(err)
			}
			if d == e.SubjectDigest {
				t.Fatal("recomputed subject digest still matches after the personal data changed")
			}
		})
	}
}

// BenchmarkSeal measures sealing one typical event (personal and other details keys), the
// per-event cost every writer pays, with each scheme (v3 is what Seal writes):
// go test ./models -run '^$' -bench Seal.
// (auditdb bench seal runs both interleaved and prints their ratio.)
func BenchmarkSeal(b *testing.B) {
	sealer, err := models.NewSealer([]byte("bench-signing-key-0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	principal, resType, resID, outcome := "dr.jane.smith", "Patient", "pt-48213", "record read"
	details := json.RawMessage(`{"ip":"10.1.2.3","userAgent":"Mozilla/5.0","sessionId":"s-91ab","method":"GET","fields":["allergies","medications"],"durationMs":12.5}`)
	now := time.Now()
	for _, sc := range []struct {
		name string
		seal func(*models.Event) error
	}{{"v1", sealer.SealV1}, {"v2", sealer.SealV2}, {"v3", sealer.Seal}} {
		b.Run(sc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				ev := models.Event{OrganizationID: "acme-health", Timestamp: now, Action: "patient.record.read", Status: "success",
					PrincipalID: &principal, TargetResourceType: &resType, TargetResourceID: &resID, OutcomeDescription: &outcome,
					DataClassification: "PHI", RetentionPolicy: "phi_extended", EventVersion: "1.0", Details: details}
				if err := sc.seal(&ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A details number rewritten in the database to another decimal that rounds to the same
// float64 (so RFC 8785 canonicalizes it alike) must not verify.
func TestVerifyRefusesRewrittenNumbers(t *testing.T) {
	s := testSealer(t)
	for _, tc := range []struct{ sealed, stored string }{
		{`{"amount":12.5}`, `{"amount":12.50000000000000000001}`},
		{`{"amount":0}`, `{"amount":1e-400}`},
		{`{"n":{"xs":[1,2,3]}}`, `{"n":{"xs":[1,2,3.0000000000000000001]}}`},
	} {
		ev := sampleEvent("verify-org", time.Now())
		ev.Details = []byte(tc.sealed)
		if err := s.Seal(&ev); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Verify(&ev); err != nil || !v.HashOK {
			t.Fatalf("%s as sealed: Verify = %+v, %v", tc.sealed, v, err)
		}
		ev.Details = []byte(tc.stored)
		if v, err := s.Verify(&ev); err == nil && v.HashOK {
			t.Fatalf("%s rewritten as %s still verifies", tc.sealed, tc.stored)
		}
	}
}
