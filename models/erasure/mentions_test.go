package erasure_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/erasure"
	"auditdb/models/ingest"
	"auditdb/models/merkle"
)

// mentionEvents are, for one scheme, events whose free text names the subject (user-3,
// patient p-42) in the outcome description and nested details: a kept critical event of the
// subject, another principal's event, and the console's data.export and report.run
// self-audit events.
func mentionEvents(org string, ts time.Time, policy string) []models.Event {
	admin, doctor, subj := "admin", "dr-who", "user-3"
	ev := func(action string, principal *string, outcome, details string) models.Event {
		return models.Event{OrganizationID: org, Timestamp: ts, Action: action, Status: "success",
			DataClassification: "INTERNAL", RetentionPolicy: policy, EventVersion: "1.0", PrincipalID: principal,
			OutcomeDescription: &outcome, Details: json.RawMessage(details)}
	}
	return []models.Event{
		ev("auth.login.failure", &subj, "USER-3 typed a wrong password",
			`{"note":{"lines":["again user-3","seen with p-42"]},"attempt":2}`),
		ev("record.read", &doctor, "looked up the chart of P-42 for User-3",
			`{"search":{"q":"user-3 and p-42"},"email":"dr-who@example.com","count":3}`),
		ev("data.export", &admin, "exported 12 events",
			`{"format":"csv","query":"user-3","filter":{"principalId":"user-3","resourceId":"p-42"}}`),
		ev("report.run", &admin, "report of the events of user-3",
			`{"criteria":{"principalId":"user-3","resourceType":"Patient","resourceId":"p-42"},"rows":12}`),
	}
}

// TestEraseRedactsMentionsInFreeText: after erasing user-3 / p-42 among events of several
// subjects sealed with v1, v2 and v3 (live and archived), no row of audit_log and no
// archived line of scheme v3 names the subject anywhere (case-insensitively), their
// redacted fields verify with the server's MAC, the organization verifies, inclusion proofs
// of the redacted events hold, a change to a redacted field is detected, and the v1/v2
// events still naming the subject are counted and named. A run stopped between batches
// resumes without counting anything twice.
func TestEraseRedactsMentionsInFreeText(t *testing.T) {
	f := newFixture(t, 300, 60)
	ctx := context.Background()
	now := time.Now().UTC().Add(-time.Minute)
	old := time.Date(2022, time.March, 2, 0, 0, 0, 0, time.UTC)
	var evs []models.Event
	for _, seal := range []func(*models.Event) error{f.sealer.SealV1, f.sealer.SealV2, f.sealer.Seal} {
		for _, set := range [][]models.Event{mentionEvents(f.org, now, "standard"), mentionEvents(f.org, old, "short")} {
			for _, ev := range set {
				if err := seal(&ev); err != nil {
					t.Fatal(err)
				}
				evs = append(evs, ev)
			}
		}
	}
	parts := models.NewPartitionManager(f.db)
	if _, err := ingest.CopyEvents(ctx, f.db, parts, evs); err != nil {
		t.Fatal(err)
	}
	f.sequence()
	re := models.NewRetentionEngine(f.db, models.NewAuditTrail(f.db, f.sealer, parts), parts)
	re.Now = func() time.Time { return time.Date(2022, time.May, 1, 0, 0, 0, 0, time.UTC) }
	if res, err := re.Run(ctx, models.RetentionOptions{Org: f.org}); err != nil || res.Archived != 12 {
		t.Fatalf("archived %+v, %v; want the 12 old mention events", res, err)
	}
	f.sequence()
	// Never redacted, a v3 row stores the compact form: its event salt alone.
	var stored []string
	f.db.Raw(`SELECT field_commitments::text FROM audit_log WHERE organization_id = ? AND hash_algorithm = ?`,
		f.org, models.HashAlgorithmV3).Scan(&stored)
	if len(stored) == 0 {
		t.Fatal("no v3 rows")
	}
	for _, c := range stored {
		if !models.CompactFieldCommitments(json.RawMessage(c)) {
			t.Fatalf("a never-redacted v3 row stores %s, not the compact form", c)
		}
	}
	var redactable []int64 // the live v3 events of other principals mentioning the subject
	f.db.Raw(`SELECT id FROM audit_log WHERE organization_id = ? AND hash_algorithm = ? AND principal_id IN ('dr-who', 'admin')
		AND lower(audit_log::text) LIKE '%user-3%' ORDER BY id`, f.org, models.HashAlgorithmV3).Scan(&redactable)
	if len(redactable) != 3 {
		t.Fatalf("%d live v3 mention events of other principals, want 3", len(redactable))
	}

	// Stop the run after a few batches, then let a second call finish it.
	f.engine.Batch = 3
	calls := 0
	stopCtx, stop := context.WithCancel(ctx)
	f.engine.AfterBatch = func() {
		if calls++; calls == 4 {
			stop()
		}
	}
	if _, err := f.engine.Erase(stopCtx, f.org, "req-m", subject, dpo, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("the stopped run: %v", err)
	}
	f.engine.AfterBatch = nil
	res, err := f.engine.Erase(ctx, f.org, "req-m", subject, dpo, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Redacted: the four v3 mention events, live and archived. Left: the v1 and v2 ones.
	if res.MentionsRedacted != 8 || res.MentionsLeft != 16 || len(res.MentionsLeftIDs) != 16 || len(res.MentionsLeftWhy) != 16 {
		t.Fatalf("mentions: %d redacted, %d left (%v); want 8 and 16", res.MentionsRedacted, res.MentionsLeft, res.MentionsLeftIDs)
	}
	for i, why := range res.MentionsLeftWhy {
		if why != erasure.WhyOlderScheme+models.HashAlgorithmV1 && why != erasure.WhyOlderScheme+models.HashAlgorithmV2 {
			t.Errorf("event %d left because %q, want the older scheme", res.MentionsLeftIDs[i], why)
		}
	}

	for _, id := range []string{"user-3", "p-42"} {
		like := "%" + id + "%"
		if n := f.count(`SELECT count(*) FROM audit_log x WHERE x.organization_id = ? AND x.hash_algorithm = ?
			AND lower(x::text) LIKE ?`, f.org, models.HashAlgorithmV3, like); n != 0 {
			t.Errorf("%d v3 rows of audit_log still hold %q", n, id)
		}
		if n := f.count(`SELECT count(*) FROM audit_log x WHERE x.organization_id = ? AND x.hash_algorithm <> ?
			AND lower(x::text) LIKE ?`, f.org, models.HashAlgorithmV3, like); n == 0 {
			t.Errorf("no v1/v2 row holds %q: the older schemes' text was changed", id)
		}
		if n := f.count(`SELECT count(*) FROM audit_log x WHERE x.organization_id = ? AND x.id IN ?
			AND lower(x::text) LIKE ?`, f.org, res.MentionsLeftIDs, like); n == 0 && id == "user-3" {
			t.Errorf("the events named as left do not hold %q", id)
		}
	}
	var archivedV3, archivedLeft int
	eachArchivedLine(t, f, func(l *models.ArchiveLine) {
		b, _ := json.Marshal(l)
		text := strings.ToLower(string(b))
		holds := strings.Contains(text, "user-3") || strings.Contains(text, "p-42")
		if l.HashAlgorithm == models.HashAlgorithmV3 {
			archivedV3++
			if holds {
				t.Errorf("archived v3 event %d still names the subject: %s", l.ID, b)
			}
			v, err := f.sealer.Verify(l.Event())
			if err != nil || !v.HashOK || !v.SignatureOK {
				t.Errorf("archived v3 event %d: %+v %v", l.ID, v, err)
			}
		} else if holds {
			archivedLeft++
		}
	})
	if archivedV3 == 0 || archivedLeft == 0 {
		t.Fatalf("archives: %d v3 lines, %d older lines naming the subject", archivedV3, archivedLeft)
	}

	// The redacted events of other principals show the pseudonym in their text, their
	// fields are marked pseudonymized under the server's MAC, and they verify.
	for _, id := range redactable {
		var ev models.Event
		if err := f.db.Where("organization_id = ? AND id = ?", f.org, id).Take(&ev).Error; err != nil {
			t.Fatal(err)
		}
		v, err := f.sealer.Verify(&ev)
		if err != nil || !v.HashOK || !v.SignatureOK {
			t.Fatalf("redacted event %d: %+v %v", id, v, err)
		}
		pseudonymized := 0
		for _, c := range v.Fields {
			if c.State == models.FieldPseudonymized {
				pseudonymized++
			}
		}
		if pseudonymized == 0 || !strings.Contains(string(ev.Details), res.Pseudonym) {
			t.Fatalf("event %d: fields %+v, details %s", id, v.Fields, ev.Details)
		}
		// Redacted, it stores the expanded form: one commitment per field, no event salt.
		var members map[string]json.RawMessage
		if err := json.Unmarshal(ev.FieldCommitments, &members); err != nil || models.CompactFieldCommitments(ev.FieldCommitments) {
			t.Fatalf("redacted event %d stores %s (%v)", id, ev.FieldCommitments, err)
		}
		if _, ok := members["salt"]; ok || len(members) != len(v.Fields) {
			t.Fatalf("redacted event %d: commitments %s for fields %+v", id, ev.FieldCommitments, v.Fields)
		}
		p, err := f.log.Prove(ctx, f.org, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := merkle.VerifyInclusion(p); err != nil {
			t.Fatalf("inclusion of redacted event %d: %v", id, err)
		}
		// Changing a redacted field, even to other text naming the pseudonym, is detected.
		tampered := ev
		tampered.Details = json.RawMessage(strings.Replace(string(ev.Details), res.Pseudonym, res.Pseudonym+"x", 1))
		if v, err := f.sealer.Verify(&tampered); err != nil || v.HashOK {
			t.Fatalf("a changed redacted field of event %d verifies: %+v %v", id, v, err)
		}
	}
	var report models.Event
	if err := f.db.Where("organization_id = ? AND action = 'report.run' AND hash_algorithm = ?", f.org, models.HashAlgorithmV3).
		Take(&report).Error; err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("report of the events of %s", res.Pseudonym); report.OutcomeDescription == nil || *report.OutcomeDescription != want {
		t.Fatalf("report.run outcome %v, want %q", report.OutcomeDescription, want)
	}

	rep := f.verify()
	if !rep.OK() {
		t.Fatalf("verify after: %d problems: %+v", rep.Problems, rep.Findings)
	}
	// A repeated call redacts nothing more and counts the same.
	again, err := f.engine.Erase(ctx, f.org, "req-m", subject, dpo, nil)
	if err != nil || again.MentionsRedacted != res.MentionsRedacted || again.MentionsLeft != res.MentionsLeft {
		t.Fatalf("second call: %+v %v", again, err)
	}
}

// TestPseudonymizeRedactsMentions: a pseudonymization puts its pseudonym into the v3 free
// text that named the subject, and the events verify.
func TestPseudonymizeRedactsMentions(t *testing.T) {
	f := newFixture(t, 50, 0)
	ctx := context.Background()
	evs := mentionEvents(f.org, time.Now().UTC().Add(-time.Minute), "standard")
	f.seal(evs)
	f.sequence()
	res, err := f.engine.Pseudonymize(ctx, f.org, "req-pm", subject, erasure.StrategyHash, dpo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.MentionsRedacted != 4 || res.MentionsLeft != 0 {
		t.Fatalf("mentions: %d redacted, %d left", res.MentionsRedacted, res.MentionsLeft)
	}
	if n := f.count(`SELECT count(*) FROM audit_log x WHERE x.organization_id = ? AND x.hash_algorithm = ?
		AND (lower(x::text) LIKE '%user-3%' OR lower(x::text) LIKE '%p-42%')`, f.org, models.HashAlgorithmV3); n != 0 {
		t.Fatalf("%d v3 rows still name the subject", n)
	}
	if n := f.count(`SELECT count(*) FROM audit_log x WHERE x.organization_id = ? AND strpos(x.details::text, ?) > 0
		AND action IN ('data.export', 'report.run', 'record.read')`, f.org, res.Pseudonym); n != 3 {
		t.Fatalf("%d mention events of other principals show the pseudonym, want 3", n)
	}
	if rep := f.verify(); !rep.OK() {
		t.Fatalf("verify after: %+v", rep.Findings)
	}
}

func eachArchivedLine(t *testing.T, f *fixture, fn func(*models.ArchiveLine)) {
	t.Helper()
	var archives []string
	f.db.Raw(`SELECT id FROM archive_storage WHERE organization_id = ? AND deleted_at IS NULL AND content IS NOT NULL`, f.org).Scan(&archives)
	for _, a := range archives {
		r, err := models.OpenArchive(context.Background(), f.db, f.org, a)
		if err != nil {
			t.Fatal(err)
		}
		for {
			l, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			fn(l)
		}
		r.Close()
	}
}

// TestEraseLeavesHeldAndUnredactableMentions: free text naming the subject in an event under
// an active legal hold (live or archived) is left as it is, and so are an identifier that is
// a details key's name or a number; each is counted and named with its reason, the held
// events keep their compact commitments, and the one event that can be redacted is, in the
// expanded form.
func TestEraseLeavesHeldAndUnredactableMentions(t *testing.T) {
	f := newFixture(t, 50, 0)
	ctx := context.Background()
	subj := erasure.Subject{PrincipalID: "424242"}
	now := time.Now().UTC().Add(-time.Minute)
	old := time.Date(2022, time.March, 2, 0, 0, 0, 0, time.UTC)
	ev := func(ts time.Time, policy, principal, outcome, details string) models.Event {
		return models.Event{OrganizationID: f.org, Timestamp: ts, Action: "record.read", Status: "success",
			DataClassification: "INTERNAL", RetentionPolicy: policy, EventVersion: "1.0", PrincipalID: &principal,
			OutcomeDescription: &outcome, Details: json.RawMessage(details)}
	}
	evs := []models.Event{
		ev(now, "standard", "dr-held", "looked up 424242", `{"q":"424242"}`),
		ev(old, "short", "dr-held", "looked up 424242 long ago", `{"q":"424242"}`),
		ev(now, "standard", "admin", "seen", `{"424242":"as a key"}`),
		ev(now, "standard", "admin", "counted", `{"ref":424242}`),
		ev(now, "standard", "admin", "exported 424242", `{"format":"csv"}`),
	}
	f.seal(evs)
	parts := models.NewPartitionManager(f.db)
	f.sequence()
	trail := models.NewAuditTrail(f.db, f.sealer, parts)
	re := models.NewRetentionEngine(f.db, trail, parts)
	re.Now = func() time.Time { return time.Date(2022, time.May, 1, 0, 0, 0, 0, time.UTC) }
	if res, err := re.Run(ctx, models.RetentionOptions{Org: f.org}); err != nil || res.Archived != 1 {
		t.Fatalf("archived %+v, %v; want the old held event", res, err)
	}
	f.sequence()
	store := models.NewRetentionPolicyStore(f.db, trail)
	if _, err := store.PlaceHold(ctx, f.org, models.LegalHoldInput{Name: "Case 7", Reason: "litigation",
		Scope: models.HoldScopePrincipal, PrincipalID: "dr-held"}, dpo); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for _, k := range []struct{ key, principal, outcome string }{{"held", "dr-held", "looked up 424242"},
		{"key", "admin", "seen"}, {"number", "admin", "counted"}, {"redacted", "admin", "exported 424242"}} {
		var id int64
		f.db.Raw(`SELECT id FROM audit_log WHERE organization_id = ? AND principal_id = ? AND outcome_description = ?`,
			f.org, k.principal, k.outcome).Scan(&id)
		ids[k.key] = id
	}

	res, err := f.engine.Erase(ctx, f.org, "req-held", subj, dpo, nil)
	if err != nil {
		t.Fatal(err)
	}
	why := map[int64]string{}
	for i, id := range res.MentionsLeftIDs {
		why[id] = res.MentionsLeftWhy[i]
	}
	if res.MentionsRedacted != 1 || res.MentionsLeft != 4 || len(why) != 4 {
		t.Fatalf("mentions: %d redacted, %d left %v; want 1 and 4", res.MentionsRedacted, res.MentionsLeft, why)
	}
	for key, want := range map[string]string{"held": erasure.WhyHeld + "Case 7",
		"key": erasure.WhyKeyName + "details.424242", "number": erasure.WhyNumber + "details.ref"} {
		if why[ids[key]] != want {
			t.Errorf("%s event %d left because %q, want %q", key, ids[key], why[ids[key]], want)
		}
	}
	archivedHeld := false
	eachArchivedLine(t, f, func(l *models.ArchiveLine) {
		if l.PrincipalID != nil && *l.PrincipalID == "dr-held" {
			archivedHeld = true
			if why[l.ID] != erasure.WhyHeld+"Case 7" || *l.OutcomeDescription != "looked up 424242 long ago" ||
				!models.CompactFieldCommitments(l.FieldCommitments) {
				t.Errorf("archived held event %d: left because %q, outcome %q, commitments %s", l.ID, why[l.ID],
					*l.OutcomeDescription, l.FieldCommitments)
			}
		}
	})
	if !archivedHeld {
		t.Fatal("the archived held event is gone")
	}
	for key, id := range ids {
		var e models.Event
		if err := f.db.Where("organization_id = ? AND id = ?", f.org, id).Take(&e).Error; err != nil {
			t.Fatal(err)
		}
		if v, err := f.sealer.Verify(&e); err != nil || !v.HashOK || !v.SignatureOK {
			t.Fatalf("%s event %d: %+v %v", key, id, v, err)
		}
		compact := models.CompactFieldCommitments(e.FieldCommitments)
		switch key {
		case "redacted":
			if compact || strings.Contains(*e.OutcomeDescription, "424242") {
				t.Errorf("redacted event: outcome %q, commitments %s", *e.OutcomeDescription, e.FieldCommitments)
			}
		default:
			if !compact || !strings.Contains(*e.OutcomeDescription+string(e.Details), "424242") {
				t.Errorf("%s event changed: outcome %q, details %s, commitments %s", key, *e.OutcomeDescription,
					e.Details, e.FieldCommitments)
			}
		}
	}
	if rep := f.verify(); !rep.OK() {
		t.Fatalf("verify after: %+v", rep.Findings)
	}
}

// TestEraseReachesOtherColumnsNamingTheSubject: a principal or a target id that names the
// subject without being the subject's own (another case, the same id as a resource of
// another type) is pseudonymized like free text; an identifier in a column every scheme
// hashes in clear (action, correlation id, resource type) is counted and named with that
// reason; one standing only inside a longer identifier (scan-of-pat-123.pdf,
// patient.pat-123.read) is left and named as such; pat-1234 is another patient and is not
// even named.
func TestEraseReachesOtherColumnsNamingTheSubject(t *testing.T) {
	f := newFixture(t, 20, 0)
	ctx := context.Background()
	subj := erasure.Subject{PrincipalID: "sam.kelly", ResourceType: "Patient", ResourceID: "pat-123"}
	now := time.Now().UTC().Add(-time.Minute)
	ev := func(action, principal, typ, id, corr string) models.Event {
		e := models.Event{OrganizationID: f.org, Timestamp: now, Action: action, Status: "success",
			DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0", PrincipalID: &principal}
		if typ != "" {
			e.TargetResourceType, e.TargetResourceID = &typ, &id
		}
		if corr != "" {
			e.CorrelationID = &corr
		}
		return e
	}
	evs := []models.Event{
		ev("record.read", "Sam.Kelly", "", "", ""),                       // 0: the principal in another case
		ev("record.read", "dr-jones", "Invoice", "pat-123", ""),          // 1: the id as a resource of another type
		ev("file.upload", "dr-jones", "File", "scan-of-pat-123.pdf", ""), // 2: a longer id holding it
		ev("patient.pat-123.read", "dr-jones", "", "", ""),               // 3: in the action
		ev("record.read", "dr-jones", "", "", "PAT-123"),                 // 4: the correlation id
		ev("record.read", "dr-jones", "Patient", "pat-1234", ""),         // 5: another patient
	}
	f.seal(evs)
	var ids []int64
	f.db.Raw(`SELECT id FROM audit_log WHERE organization_id = ? AND "timestamp" = ? ORDER BY id`, f.org, evs[0].Timestamp).Scan(&ids)
	if len(ids) != len(evs) {
		t.Fatalf("%d events stored, want %d", len(ids), len(evs))
	}
	f.sequence()
	res, err := f.engine.Erase(ctx, f.org, "req-cols", subj, dpo, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.sequence()
	type row struct {
		PrincipalID, TargetResourceID *string
	}
	get := func(i int) row {
		var r row
		f.db.Raw(`SELECT principal_id, target_resource_id FROM audit_log WHERE id = ?`, ids[i]).Scan(&r)
		return r
	}
	if r := get(0); r.PrincipalID == nil || *r.PrincipalID != res.Pseudonym {
		t.Errorf("principal in another case: %v, want the pseudonym", r.PrincipalID)
	}
	if r := get(1); r.TargetResourceID == nil || *r.TargetResourceID != res.Pseudonym {
		t.Errorf("the id as another type's resource: %v, want the pseudonym", r.TargetResourceID)
	}
	if r := get(2); r.TargetResourceID == nil || *r.TargetResourceID != "scan-of-pat-123.pdf" {
		t.Errorf("a longer id holding it changed: %v", *r.TargetResourceID)
	}
	if r := get(5); r.TargetResourceID == nil || *r.TargetResourceID != "pat-1234" {
		t.Errorf("another patient's id changed: %v", r.TargetResourceID)
	}
	why := map[int64]string{}
	for i, id := range res.MentionsLeftIDs {
		why[id] = res.MentionsLeftWhy[i]
	}
	if why[ids[2]] != erasure.WhyEmbedded+"targetResourceId" || why[ids[3]] != erasure.WhyEmbedded+"action" ||
		why[ids[4]] != erasure.WhyInClear+"correlationId" || len(why) != 3 {
		t.Errorf("left: %v; want the longer ids named as such and the correlation id as hashed in clear", why)
	}
	if rep := f.verify(); !rep.OK() {
		t.Fatalf("the organization does not verify after the erasure: %+v", rep)
	}
}
