package eventjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"auditdb/models/eventjson"
)

func TestDecodeOne(t *testing.T) {
	t.Run("every field", func(t *testing.T) {
		body := `{"timestamp":"2026-11-26T10:00:00Z","action":"record.read","status":"success","principalId":"dr.who",
			"targetResourceType":"Patient","targetResourceId":"p-1","outcomeDescription":"<b>opened</b>","correlationId":"c-1",
			"dataClassification":"PHI","retentionPolicy":"phi_extended","eventVersion":"1.1","ttl":"30d","preset":"phi-access",
			"organizationId":"acme","details": {"ip":"10.0.0.1","nested":{"list":[1,{"deep":true}]}}}`
		in, err := eventjson.DecodeOne([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		for name, got := range map[string]*string{"timestamp": in.Timestamp, "action": in.Action, "status": in.Status,
			"principalId": in.PrincipalID, "targetResourceType": in.TargetResourceType, "targetResourceId": in.TargetResourceID,
			"outcomeDescription": in.OutcomeDescription, "correlationId": in.CorrelationID, "dataClassification": in.DataClassification,
			"retentionPolicy": in.RetentionPolicy, "eventVersion": in.EventVersion, "ttl": in.TTL, "preset": in.Preset,
			"organizationId": in.OrganizationID} {
			if got == nil || *got == "" {
				t.Errorf("%s not decoded", name)
			}
		}
		if *in.OutcomeDescription != "<b>opened</b>" {
			t.Errorf("outcomeDescription = %q, want it exactly as sent", *in.OutcomeDescription)
		}
		if string(in.Details) != `{"ip":"10.0.0.1","nested":{"list":[1,{"deep":true}]}}` {
			t.Errorf("details = %s, want the object as sent", in.Details)
		}
		if in.DetailsDepth != 4 {
			t.Errorf("depth = %d, want 4", in.DetailsDepth)
		}
		if in.DetailsLongestString != len("10.0.0.1") {
			t.Errorf("longest string = %d", in.DetailsLongestString)
		}
	})
	t.Run("null means absent", func(t *testing.T) {
		in, err := eventjson.DecodeOne([]byte(`{"action":"a","status":"success","principalId":null,"details":null}`))
		if err != nil {
			t.Fatal(err)
		}
		if in.PrincipalID != nil || in.Details != nil {
			t.Fatalf("null members should decode as absent: %+v", in)
		}
	})
	t.Run("escapes are decoded", func(t *testing.T) {
		in, err := eventjson.DecodeOne([]byte(`{"action":"caf\u00e9 \ud83d\ude00","status":"success"}`))
		if err != nil {
			t.Fatal(err)
		}
		if *in.Action != "café 😀" {
			t.Fatalf("action = %q", *in.Action)
		}
	})
}

func TestDecodeBadInput(t *testing.T) {
	cases := []struct {
		name, body, field, message string
	}{
		{"invalid JSON", `{"action":"a",`, "", "invalid JSON"},
		{"not an object", `["action"]`, "", "must be a JSON object"},
		{"trailing data", `{"action":"a"} {}`, "", "after the JSON value"},
		{"invalid UTF-8", "{\"action\":\"caf\xe9\"}", "", "UTF-8"},
		{"lone surrogate escape", `{"action":"\ud800"}`, "", "invalid JSON"},
		{"unknown field named", `{"action":"a","colour":"red"}`, "colour", "is not an event field"},
		{"server field named", `{"action":"a","hash":"00"}`, "hash", "set by the server"},
		{"processing latency is the server's", `{"processingLatency":3}`, "processingLatency", "set by the server"},
		{"duplicate member", `{"action":"a","action":"b"}`, "action", "more than once"},
		{"duplicate inside details", `{"details":{"k":1,"k":2}}`, "details", "more than once"},
		{"number where a string belongs", `{"status":200}`, "status", "must be a string"},
		{"object where a string belongs", `{"action":{"a":1}}`, "action", "must be a string"},
		{"boolean where a string belongs", `{"ttl":true}`, "ttl", "must be a string"},
		{"details not an object", `{"details":[1,2]}`, "details", "must be a JSON object"},
		{"details a string", `{"details":"x"}`, "details", "must be a JSON object"},
		{"NUL in a field", `{"action":"a\u0000b"}`, "action", "NUL"},
		{"NUL in details", `{"details":{"k":"a\u0000"}}`, "details.k", "NUL"},
		{"NUL in nested details", `{"details":{"a":[1,{"b":"x\u0000"}]}}`, "details.a[1].b", "NUL"},
		{"NUL in a nested details name", `{"details":{"a":{"b\u0000c":1}}}`, `details.a.b\x00c`, "NUL"},
		{"details nested too deep", `{"details":` + strings.Repeat(`{"a":`, eventjson.MaxDepth+1) + `1` + strings.Repeat(`}`, eventjson.MaxDepth+1) + `}`, "details", "deeper"},
		{"empty body", ``, "", "invalid JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := eventjson.DecodeOne([]byte(tc.body))
			var e *eventjson.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *eventjson.Error", err)
			}
			if e.Field != tc.field || !strings.Contains(e.Message, tc.message) || e.Index != -1 {
				t.Fatalf("got field %q message %q index %d; want field %q message containing %q", e.Field, e.Message, e.Index, tc.field, tc.message)
			}
		})
	}
}

func TestDecodeArray(t *testing.T) {
	ok := `{"action":"a","status":"success"}`
	cases := []struct {
		name    string
		body    string
		max     int
		want    int
		index   int
		field   string
		tooMany bool
	}{
		{"three events", "[" + ok + "," + ok + "," + ok + "]", 5, 3, 0, "", false},
		{"exactly the limit", "[" + ok + "," + ok + "]", 2, 2, 0, "", false},
		{"over the limit", "[" + ok + "," + ok + "," + ok + "]", 2, 0, 0, "", true},
		{"bad event names its index", "[" + ok + `,{"action":"a","nope":1},` + ok + "]", 5, 0, 1, "nope", false},
		{"duplicate in the third event", "[" + ok + "," + ok + `,{"status":"a","status":"b"}]`, 5, 0, 2, "status", false},
		{"not an array", ok, 5, 0, -1, "", false},
		{"empty array", "[]", 5, 0, -1, "", false},
		{"element not an object", "[" + ok + ",3]", 5, 0, 1, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := eventjson.DecodeArray([]byte(tc.body), tc.max)
			var tm *eventjson.TooManyError
			if tc.tooMany {
				if !errors.As(err, &tm) || tm.Max != tc.max {
					t.Fatalf("err = %v, want TooManyError{%d}", err, tc.max)
				}
				return
			}
			if tc.want > 0 {
				if err != nil || len(got) != tc.want {
					t.Fatalf("got %d events, err %v; want %d", len(got), err, tc.want)
				}
				return
			}
			var e *eventjson.Error
			if !errors.As(err, &e) || e.Index != tc.index || e.Field != tc.field {
				t.Fatalf("err = %#v, want index %d field %q", err, tc.index, tc.field)
			}
		})
	}
}

func TestDecodeNDJSON(t *testing.T) {
	ok := `{"action":"a","status":"success"}`
	t.Run("lines and blank lines", func(t *testing.T) {
		got, err := eventjson.DecodeNDJSON([]byte(ok+"\n\n"+ok+"\r\n"+ok), 10)
		if err != nil || len(got) != 3 {
			t.Fatalf("got %d, err %v", len(got), err)
		}
	})
	t.Run("bad line names index and line", func(t *testing.T) {
		_, err := eventjson.DecodeNDJSON([]byte(ok+"\n\n"+`{"action":1}`+"\n"), 10)
		var e *eventjson.Error
		if !errors.As(err, &e) || e.Index != 1 || e.Field != "action" || !strings.Contains(e.Message, "line 3") {
			t.Fatalf("err = %#v", err)
		}
	})
	t.Run("two values on one line", func(t *testing.T) {
		_, err := eventjson.DecodeNDJSON([]byte(ok+ok), 10)
		var e *eventjson.Error
		if !errors.As(err, &e) || e.Index != 0 {
			t.Fatalf("err = %#v", err)
		}
	})
	t.Run("over the limit", func(t *testing.T) {
		_, err := eventjson.DecodeNDJSON([]byte(strings.Repeat(ok+"\n", 4)), 3)
		var tm *eventjson.TooManyError
		if !errors.As(err, &tm) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("only blank lines", func(t *testing.T) {
		if _, err := eventjson.DecodeNDJSON([]byte("\n \n"), 3); err == nil {
			t.Fatal("an empty batch should be refused")
		}
	})
}

// FuzzDecodeOne checks the decoder's promises on arbitrary input: it never panics, and
// whatever it accepts is valid UTF-8 without NUL characters, with details (if any) a JSON
// object whose recorded depth and longest string match a second, independent reading.
func FuzzDecodeOne(f *testing.F) {
	for _, seed := range []string{
		`{"action":"a","status":"success"}`,
		`{"timestamp":"2026-01-01T00:00:00Z","action":"x","status":"failure","details":{"ip":"1.2.3.4","a":[1,{"b":null}]}}`,
		`{"action":"a","action":"b"}`,
		`{"details":{"k":"\u0000"}}`,
		`{"action":"\ud83d\ude00","details":{"e":1e400}}`,
		`{"organizationId":"o","preset":"p","ttl":null}`,
		`[{"action":"a"}]`,
		"{\"action\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := eventjson.DecodeOne(data)
		if err != nil {
			var e *eventjson.Error
			if !errors.As(err, &e) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		for _, p := range []*string{in.Timestamp, in.Action, in.Status, in.PrincipalID, in.TargetResourceType,
			in.TargetResourceID, in.OutcomeDescription, in.CorrelationID, in.DataClassification, in.RetentionPolicy,
			in.EventVersion, in.TTL, in.Preset, in.OrganizationID} {
			if p != nil && (!utf8.ValidString(*p) || strings.IndexByte(*p, 0) >= 0) {
				t.Fatalf("accepted a field with invalid UTF-8 or NUL: %q", *p)
			}
		}
		if in.Details == nil {
			return
		}
		var v map[string]any
		dec := json.NewDecoder(bytes.NewReader(in.Details))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("details %q is not a JSON object: %v", in.Details, err)
		}
		depth, longest := measure(v)
		if depth != in.DetailsDepth || longest != in.DetailsLongestString {
			t.Fatalf("details %s: depth %d longest %d, decoder said %d and %d", in.Details, depth, longest,
				in.DetailsDepth, in.DetailsLongestString)
		}
		again, err := eventjson.DecodeOne(data)
		if err != nil || !bytes.Equal(again.Details, in.Details) {
			t.Fatal("decoding is not deterministic")
		}
	})
}

// measure returns the nesting depth of v (an object is 1) and its longest string.
func measure(v any) (depth, longest int) {
	switch x := v.(type) {
	case map[string]any:
		inner := 0
		for k, e := range x {
			longest = max(longest, utf8.RuneCountInString(k))
			d, l := measure(e)
			inner, longest = max(inner, d), max(longest, l)
		}
		return 1 + inner, longest
	case []any:
		inner := 0
		for _, e := range x {
			d, l := measure(e)
			inner, longest = max(inner, d), max(longest, l)
		}
		return 1 + inner, longest
	case string:
		return 0, utf8.RuneCountInString(x)
	}
	return 0, 0
}

// BenchmarkDecodeOne measures decoding the body of one typical single-event request, a cost
// every request pays: go test ./models/eventjson -run '^$' -bench DecodeOne.
func BenchmarkDecodeOne(b *testing.B) {
	body := []byte(`{"action":"patient.record.read","status":"success","principalId":"clinician-212",` +
		`"targetResourceType":"Patient","targetResourceId":"patient-48213",` +
		`"outcomeDescription":"Chart section opened from the ward view during a scheduled round",` +
		`"correlationId":"9f2c4e7a1b3d5f60","dataClassification":"PHI","details":{"ip":"10.1.2.3",` +
		`"userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) EHRClient/4.2","method":"GET",` +
		`"path":"/fhir/Patient/48213","ward":"ward-7","durationMs":412}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		if _, err := eventjson.DecodeOne(body); err != nil {
			b.Fatal(err)
		}
	}
}

func TestStringMembersCountsFields(t *testing.T) {
	n := 0
	for _, f := range eventjson.Fields {
		var in eventjson.Input
		if in.Field(f) != nil {
			n++
		}
	}
	if n != eventjson.StringMembers {
		t.Fatalf("%d string members in Fields, the decoder reserves room for %d", n, eventjson.StringMembers)
	}
}

// TestEventRoundTrip: an Event encoded with encoding/json decodes to the same fields, so
// dead letters kept in this form replay unchanged.
func TestEventRoundTrip(t *testing.T) {
	s := func(v string) *string { return &v }
	ev := eventjson.Event{Timestamp: "2026-11-26T10:00:00.123456Z", Action: "record.read", Status: "success",
		PrincipalID: s("dr.who"), TargetResourceType: s("Patient"), TargetResourceID: s("p-1"),
		OutcomeDescription: s("opened"), CorrelationID: s("c-1"), DataClassification: "PHI",
		RetentionPolicy: "phi_extended", EventVersion: "1.1", TTL: s("30d"), Details: json.RawMessage(`{"ip":"10.0.0.1"}`)}
	body, err := json.Marshal([]eventjson.Event{ev, {Timestamp: ev.Timestamp, Action: "a", Status: "failure"}})
	if err != nil {
		t.Fatal(err)
	}
	ins, err := eventjson.DecodeArray(body, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 2 {
		t.Fatalf("decoded %d events, want 2", len(ins))
	}
	in := ins[0]
	got := map[string]*string{"timestamp": in.Timestamp, "action": in.Action, "status": in.Status,
		"principalId": in.PrincipalID, "targetResourceType": in.TargetResourceType, "targetResourceId": in.TargetResourceID,
		"outcomeDescription": in.OutcomeDescription, "correlationId": in.CorrelationID,
		"dataClassification": in.DataClassification, "retentionPolicy": in.RetentionPolicy,
		"eventVersion": in.EventVersion, "ttl": in.TTL}
	want := map[string]string{"timestamp": ev.Timestamp, "action": ev.Action, "status": ev.Status,
		"principalId": "dr.who", "targetResourceType": "Patient", "targetResourceId": "p-1",
		"outcomeDescription": "opened", "correlationId": "c-1", "dataClassification": "PHI",
		"retentionPolicy": "phi_extended", "eventVersion": "1.1", "ttl": "30d"}
	for field, w := range want {
		if got[field] == nil || *got[field] != w {
			t.Errorf("%s = %v, want %q", field, got[field], w)
		}
	}
	if string(in.Details) != `{"ip":"10.0.0.1"}` {
		t.Errorf("details = %s", in.Details)
	}
	if in.Preset != nil || in.OrganizationID != nil {
		t.Errorf("preset/organizationId decoded from an Event: %v %v", in.Preset, in.OrganizationID)
	}
	if p := ins[1]; p.PrincipalID != nil || p.TTL != nil || p.Details != nil {
		t.Errorf("omitted members decoded as present: %+v", p)
	}
}

func TestExactNumber(t *testing.T) {
	cases := []struct {
		text string
		ok   bool
	}{
		{"0", true}, {"-0", true}, {"12", true}, {"12.5", true}, {"12.50", true}, {"0.1", true}, {"1e300", true},
		{"1.5E-7", true}, {"9007199254740992", true}, {"-1.7976931348623157e308", true}, {"0e5", true}, {"5e-324", true},
		{"123456789012345678901234567890", false}, {"9007199254740993", false}, {"1e-400", false},
		{"0.1000000000000000000001", false}, {"1e309", false}, {"1e400", false}, {"1e200000", false}, {"0e1001", false},
		{"1." + strings.Repeat("0", 1001), false},
	}
	for _, tc := range cases {
		if got := eventjson.ExactNumber(tc.text); got != tc.ok {
			t.Errorf("ExactNumber(%.40s) = %v, want %v", tc.text, got, tc.ok)
		}
	}
}
