package models_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/pgtest"
)

func strp(s string) *string { return &s }

// The archiver's hand-written line encoder writes what encoding/json's Marshal writes for an
// ArchiveLine, byte for byte, for plain and awkward values alike.
func TestArchiveLineEncoderMatchesMarshal(t *testing.T) {
	lat := int32(-42)
	at := time.Date(2026, 3, 1, 2, 3, 4, 567891000, time.UTC)
	cases := map[string]models.ArchiveLine{
		"minimal": {ID: 1, Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), OrganizationID: "o", Action: "a",
			Status: "success", Hash: "h", HashAlgorithm: "sha256-jcs-v1", EventVersion: "1.0", DataClassification: "PUBLIC",
			RetentionPolicy: "minimal"},
		"everything": {ID: 9_007_199_254_740_993, Timestamp: at, TTL: strp("30d"), PrincipalID: strp("user-1"),
			OrganizationID: "org-1", Action: "patient.record.read", TargetResourceType: strp("document"),
			TargetResourceID: strp("doc-7"), Status: "failure", OutcomeDescription: strp("denied"), Hash: "ab12",
			HashAlgorithm: "sha256-jcs-v1", EventVersion: "1.0", CorrelationID: strp("c-1"), DataClassification: "PHI",
			RetentionPolicy: "phi_extended", ProcessingLatency: &lat, ArchivedAt: &at,
			Details: json.RawMessage(`{"b": [1, 2.5, true, null], "a": {"x": "y"}}`), SubjectSalt: []byte{0, 1, 2, 250, 255},
			SubjectDigest: "dd", Signature: "ss", LeafIndex: 123456},
		"awkward strings": {ID: 2, Timestamp: at, OrganizationID: "o", Action: "a<b>&c\"d\\e",
			PrincipalID:        strp("tab\there\nnew\rline\b\f\x01\x1f\x7f"),
			OutcomeDescription: strp("bad utf8 \xff\xfe, sep \u2028 \u2029, emoji 🙂, é"),
			Status:             "success", Hash: "h", HashAlgorithm: "x", EventVersion: "1.0", DataClassification: "INTERNAL",
			RetentionPolicy: "standard", Details: json.RawMessage("{\"html\": \"<script>&amp;</script>\", \"sep\": \"\u2028\", \"n\": 1e3}"),
			LeafIndex: 0},
		"v2 commitments": {ID: 4, Timestamp: at, OrganizationID: "o", Action: "a", Status: "success", Hash: "h",
			HashAlgorithm: "sha256-jcs-v2", EventVersion: "1.0", DataClassification: "PHI", RetentionPolicy: "p",
			FieldCommitments: json.RawMessage(`{"principalId": {"digest": "ab", "salt": "c<d"}, "details.email": {"digest": "ef", "state": "erased"}}`),
			LeafIndex:        5},
		"zone and zero nanos": {ID: 3, Timestamp: time.Date(2026, 5, 6, 7, 8, 9, 100, time.FixedZone("x", 3600)),
			OrganizationID: "o", Action: "a", Status: "attempt", Hash: "h", HashAlgorithm: "x", EventVersion: "1.0",
			DataClassification: "CONFIDENTIAL", RetentionPolicy: "p", Details: json.RawMessage(`[]`), SubjectSalt: []byte{}},
		"jsonb text with spaces and escapes": {ID: 5, Timestamp: at, OrganizationID: "o", Action: "a", Status: "success",
			Hash: "h", HashAlgorithm: "x", EventVersion: "1.0", DataClassification: "PUBLIC", RetentionPolicy: "p",
			Details: json.RawMessage("{ \"q\" : \"say \\\"hi\\\" \\\\\", \"sp\": \" a  b\\t \",\n\t\"n\": [1, {\"x\": \" \"}, \"\\\\\"],\r\n \"e\": {} }")},
	}
	for name, l := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(&l)
			if err != nil {
				t.Fatal(err)
			}
			for _, encode := range []func(*models.ArchiveLine) ([]byte, error){models.EncodeArchiveLine, models.EncodeArchiveLineFromJSONB} {
				got, err := encode(&l)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("encoder wrote\n%s\nMarshal writes\n%s", got, want)
				}
			}
		})
	}
	bad := cases["minimal"]
	bad.Details = json.RawMessage(`{"unterminated": `)
	if _, err := models.EncodeArchiveLine(&bad); err == nil {
		t.Fatal("invalid details were encoded")
	}
}

// An archived event, read back from its archive, is the audit_log row it was (every column),
// and its hash and signature still verify.
func TestRetentionArchivedEventVerifiesAndEqualsRow(t *testing.T) {
	f := newRetentionFixture(t) // "short": archive after 10 days, delete after 30
	ctx := context.Background()
	sealer := pgtest.Sealer(t)
	now := day(2026, 6, 15, 12)
	lat := int32(17)
	var evs []models.Event
	for i, d := range []string{`{"ip": "10.0.0.1", "note": "<b>bold</b> & co", "sep": "a\u2028b"}`,
		`{"email": "é@example.test", "nested": {"list": [1, 2.50, "x"]}, "emoji": "🙂"}`, ``} {
		ev := models.Event{OrganizationID: f.org, Timestamp: now.AddDate(0, 0, -12-i).Add(time.Duration(i) * 123456 * time.Microsecond),
			Action: "test.retention", Status: "success", DataClassification: "INTERNAL", RetentionPolicy: "short",
			EventVersion: "1.0", PrincipalID: strp("p<" + string(rune('a'+i)) + ">"), TargetResourceType: strp("document"),
			TargetResourceID: strp("doc\t1"), OutcomeDescription: strp("quote \" and backslash \\"), CorrelationID: strp("c-1"),
			ProcessingLatency: &lat}
		if d != "" {
			ev.Details = json.RawMessage(d)
		}
		if err := sealer.Seal(&ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if _, err := ingest.CopyEvents(ctx, f.db, models.NewPartitionManager(f.db), evs); err != nil {
		t.Fatal(err)
	}
	if _, err := f.log.Sequence(ctx, 100_000); err != nil {
		t.Fatal(err)
	}
	var rows []models.Event
	if err := f.db.Raw(`SELECT * FROM audit_log WHERE organization_id = ? ORDER BY id`, f.org).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(evs) {
		t.Fatalf("%d rows, want %d", len(rows), len(evs))
	}
	res := f.run(now)
	if res.Archived != int64(len(evs)) {
		t.Fatalf("archived %d, want %d", res.Archived, len(evs))
	}
	var archives []string
	if err := f.db.Raw(`SELECT id FROM archive_storage WHERE organization_id = ? ORDER BY id`, f.org).Scan(&archives).Error; err != nil {
		t.Fatal(err)
	}
	byID := map[int64]models.Event{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	seen := 0
	for _, id := range archives {
		r, err := models.OpenArchive(ctx, f.db, f.org, id)
		if err != nil {
			t.Fatal(err)
		}
		var last int64
		for {
			l, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.ID <= last {
				t.Fatalf("archive %s: event %d after %d; lines must be in id order (the browser pages by id)", id, l.ID, last)
			}
			last = l.ID
			seen++
			got, want := l.Event(), byID[l.ID]
			v, err := sealer.Verify(got)
			if err != nil || !v.HashOK || !v.SignatureOK {
				t.Fatalf("event %d read back from archive %s does not verify: %+v %v", l.ID, id, v, err)
			}
			if !got.Timestamp.Equal(want.Timestamp) {
				t.Fatalf("event %d: timestamp %s, the row's %s", l.ID, got.Timestamp, want.Timestamp)
			}
			var gotD, wantD any
			if len(got.Details) > 0 || len(want.Details) > 0 {
				if err := json.Unmarshal(got.Details, &gotD); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(want.Details, &wantD); err != nil {
					t.Fatal(err)
				}
			}
			gj, _ := json.Marshal(gotD)
			wj, _ := json.Marshal(wantD)
			if !bytes.Equal(gj, wj) {
				t.Fatalf("event %d: details %s, the row's %s", l.ID, got.Details, want.Details)
			}
			got.Timestamp, want.Timestamp, got.Details, want.Details = time.Time{}, time.Time{}, nil, nil
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			if !bytes.Equal(gb, wb) {
				t.Fatalf("event %d differs from its row:\narchive %s\nrow     %s", l.ID, gb, wb)
			}
			var leaf int64
			if err := f.db.Raw(`SELECT leaf_index FROM audit_leaf WHERE organization_id = ? AND audit_log_id = ?`, f.org, l.ID).
				Scan(&leaf).Error; err != nil || leaf != l.LeafIndex {
				t.Fatalf("event %d: leaf index %d, the log's %d (%v)", l.ID, l.LeafIndex, leaf, err)
			}
		}
		r.Close()
	}
	if seen != len(evs) {
		t.Fatalf("read %d archived events back, want %d", seen, len(evs))
	}
	if rep := f.verify(); !rep.OK() {
		t.Fatalf("verify after archival: %+v", rep)
	}
}

// The rules' SQL side (governsSQL, which every retention query narrows by) and their Go side
// (governing, which decides for archived lines and the page's counts) pick the same policy
// for every combination of an event's policy name and classification; no event is selected
// by two policies.
func TestRetentionRulesSQLAndGoAgree(t *testing.T) {
	f := newRetentionFixture(t) // the organization's own "short" (INTERNAL)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO audit_retention_policy (organization_id, policy_name, retention_days, data_classification, description)
			VALUES ('` + f.org + `', 'short-later', 40, 'INTERNAL', 'second own INTERNAL policy: the older one governs by classification')`,
		`INSERT INTO audit_retention_policy (organization_id, policy_name, retention_days, data_classification, description)
			VALUES ('` + f.org + `', 'minimal', 50, 'CONFIDENTIAL', 'own policy named like a global one')`,
		`INSERT INTO audit_retention_policy (organization_id, policy_name, retention_days, data_classification, description, is_active)
			VALUES ('` + f.org + `', 'retired', 60, 'PHI', 'inactive: governs nothing', false)`,
	} {
		if err := f.db.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	sealer := pgtest.Sealer(t)
	now := day(2026, 6, 15, 12)
	names := []string{"short", "short-later", "minimal", "standard", "confidential", "phi_extended", "retired", "unknown"}
	classes := []string{"PUBLIC", "INTERNAL", "CONFIDENTIAL", "PHI"}
	var evs []models.Event
	for _, n := range names {
		for _, c := range classes {
			ev := models.Event{OrganizationID: f.org, Timestamp: now.AddDate(0, 0, -1), Action: "test.rules", Status: "success",
				DataClassification: c, RetentionPolicy: n, EventVersion: "1.0"}
			if err := sealer.Seal(&ev); err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
	}
	if _, err := ingest.CopyEvents(ctx, f.db, models.NewPartitionManager(f.db), evs); err != nil {
		t.Fatal(err)
	}
	bySQL, err := models.GovernedBySQL(ctx, f.db, f.org, now)
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		ID                 int64
		RetentionPolicy    string
		DataClassification string
	}
	if err := f.db.Raw(`SELECT id, retention_policy, data_classification FROM audit_log WHERE organization_id = ?`, f.org).
		Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(evs) {
		t.Fatalf("%d rows, want %d", len(rows), len(evs))
	}
	for _, r := range rows {
		goSide, err := models.GoverningPolicy(ctx, f.db, f.org, now, r.RetentionPolicy, r.DataClassification)
		if err != nil {
			t.Fatal(err)
		}
		if bySQL[r.ID] != goSide {
			t.Errorf("%s/%s: SQL picks %q, Go picks %q", r.RetentionPolicy, r.DataClassification, bySQL[r.ID], goSide)
		}
	}
	// Spot checks of the rule itself.
	for _, c := range []struct{ name, class, want string }{
		{"short-later", "INTERNAL", "short-later"},  // own by name
		{"standard", "INTERNAL", "short"},           // own by classification: the older of two
		{"minimal", "PUBLIC", "minimal"},            // own by name wins over the global of that name
		{"standard", "PUBLIC", "standard"},          // global by name
		{"phi_extended", "CONFIDENTIAL", "minimal"}, // own CONFIDENTIAL policy by classification
		{"retired", "PHI", ""},                      // an inactive policy governs nothing
		{"unknown", "PHI", ""},
	} {
		got, err := models.GoverningPolicy(ctx, f.db, f.org, now, c.name, c.class)
		if err != nil || got != c.want {
			t.Errorf("%s/%s governed by %q, want %q (%v)", c.name, c.class, got, c.want, err)
		}
	}
}

// A backfilled event not yet in the Merkle log, inside a month being archived, stays in
// audit_log (the part falls back from its one-pass delete) and goes with a later run once
// sequenced; every event is in exactly one place throughout.
func TestRetentionArchiveLeavesUnsequencedRows(t *testing.T) {
	f := newRetentionFixture(t) // "short": archive after 10 days, delete after 30
	ctx := context.Background()
	now := day(2026, 6, 15, 12)
	f.write(now.AddDate(0, 0, -12), now.AddDate(0, 0, -13))
	sealer := pgtest.Sealer(t)
	late := models.Event{OrganizationID: f.org, Timestamp: now.AddDate(0, 0, -12).Add(time.Hour), Action: "test.retention",
		Status: "success", DataClassification: "INTERNAL", RetentionPolicy: "short", EventVersion: "1.0"}
	if err := sealer.Seal(&late); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.CopyEvents(ctx, f.db, models.NewPartitionManager(f.db), []models.Event{late}); err != nil {
		t.Fatal(err)
	}
	res := f.run(now)
	if res.Archived != 2 {
		t.Fatalf("archived %d, want the 2 sequenced events", res.Archived)
	}
	if live, archived, _ := f.checkExactlyOnce(); live != 1 || archived != 2 {
		t.Fatalf("live %d, archived %d; want the unsequenced event still live", live, archived)
	}
	if _, err := f.log.Sequence(ctx, 100_000); err != nil {
		t.Fatal(err)
	}
	if res := f.run(now); res.Archived != 1 {
		t.Fatalf("second run archived %d, want 1", res.Archived)
	}
	if live, archived, _ := f.checkExactlyOnce(); live != 0 || archived != 3 {
		t.Fatalf("live %d, archived %d after the second run", live, archived)
	}
}

// The details' HTML escaping, decided by looking for each special byte, agrees with
// json.Marshal for every character that needs it and for look-alikes that do not.
func TestArchiveLineEscapesDetailsAsMarshal(t *testing.T) {
	for _, details := range []string{`{"a": "b"}`, `{"a": "<b"}`, `{"a": "b>"}`, `{"a": "&"}`,
		"{\"a\": \"\u2028\"}", "{\"a\": \"\u2029\"}", "{\"a\": \"\u2030 \u20ac\"}", `{"a": "\\u2028"}`} {
		t.Run(details, func(t *testing.T) {
			l := models.ArchiveLine{ID: 1, Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), OrganizationID: "o",
				Action: "a", Status: "success", Hash: "h", HashAlgorithm: "sha256-jcs-v1", EventVersion: "1.0",
				DataClassification: "PUBLIC", RetentionPolicy: "standard", Details: json.RawMessage(details)}
			got, err := models.EncodeArchiveLine(&l)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(&l)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded\n%s\nMarshal\n%s", got, want)
			}
		})
	}
}

// The archiver encodes lines on a goroutine of its own while the next rows are read: the
// archive it builds so is the one line-by-line encoding builds, byte for byte, metadata
// included; and a line that cannot be encoded fails the archive however many lines follow it.
func TestArchivePipeBuildsTheSameArchive(t *testing.T) {
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	lines := make([]models.ArchiveLine, 3000) // many batches, more than the pipe holds at once
	for i := range lines {
		lines[i] = models.ArchiveLine{ID: int64(10_000 + i*7%3000), Timestamp: base.Add(time.Duration(i*13%3000) * time.Second),
			OrganizationID: "org-a", Action: "patient.record.read", Status: "success", Hash: "h", HashAlgorithm: "sha256-jcs-v3",
			EventVersion: "1.0", DataClassification: "PHI", RetentionPolicy: "hipaa", PrincipalID: strp("dr.smith"),
			Details: json.RawMessage(`{"n":` + string(rune('0'+i%10)) + `}`), LeafIndex: int64(i)}
	}
	direct, da, err := models.BuildArchive(lines, false)
	if err != nil {
		t.Fatal(err)
	}
	piped, pa, err := models.BuildArchive(lines, true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(direct, piped) {
		t.Fatalf("piped archive differs: %d bytes against %d", len(piped), len(direct))
	}
	if da != pa || pa.EventCount != 3000 || pa.MinEventID != 10_000 || pa.MaxEventID != 12_999 || pa.MaxLeafIndex != 2999 {
		t.Fatalf("metadata: piped %+v, direct %+v", pa, da)
	}
	lines[1200].Details = json.RawMessage(`{"n":`)
	if _, _, err := models.BuildArchive(lines, true); err == nil {
		t.Fatal("a line with invalid details was archived")
	}
}

// Without holds the plan counts (policy, classification, day) groups and applies the rules in
// Go; it agrees with the SQL rules applied to every row, at every cutoff, for every policy the
// organization's own and the global ones can make govern.
func TestRetentionPlanByDayAgreesWithTheSQLRules(t *testing.T) {
	f := newRetentionFixture(t) // the organization's own "short" (INTERNAL): archive after 10 days, delete after 30
	ctx := context.Background()
	if err := f.db.Exec(`INSERT INTO audit_retention_policy (organization_id, policy_name, retention_days, archive_after_days,
		data_classification, description) VALUES (?, 'minimal', 50, 20, 'CONFIDENTIAL', 'own policy named like a global one')`,
		f.org).Error; err != nil {
		t.Fatal(err)
	}
	sealer := pgtest.Sealer(t)
	now := day(2026, 6, 15, 12)
	var evs []models.Event
	for d := 0; d < 120; d += 3 {
		for i, n := range []string{"short", "minimal", "standard", "confidential", "phi_extended", "unknown"} {
			class := []string{"PUBLIC", "INTERNAL", "CONFIDENTIAL", "PHI"}[(d/3+i)%4]
			ev := models.Event{OrganizationID: f.org, Timestamp: now.AddDate(0, 0, -d).Add(-time.Duration(i) * time.Hour),
				Action: "test.plan", Status: "success", DataClassification: class, RetentionPolicy: n, EventVersion: "1.0"}
			if err := sealer.Seal(&ev); err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
	}
	if _, err := ingest.CopyEvents(ctx, f.db, models.NewPartitionManager(f.db), evs); err != nil {
		t.Fatal(err)
	}
	byDay, byCase, err := models.RetentionPlans(ctx, f.db, f.org, now)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(byDay) != fmt.Sprint(byCase) {
		t.Fatalf("plans differ:\nby day  %v\nby case %v", byDay, byCase)
	}
	var archive, del int64
	for _, r := range byCase {
		archive, del = archive+r.Archive, del+r.Delete
	}
	if archive == 0 || del == 0 {
		t.Fatalf("the data exercises too little: %v", byCase)
	}
}
