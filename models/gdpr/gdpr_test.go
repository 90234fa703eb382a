package gdpr_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/gdpr"
	"auditdb/models/gdpr/gdprtest"
	"auditdb/models/ingest"
	"auditdb/models/pgtest"
	"auditdb/models/reports"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var (
	alice = models.Actor{UserID: 101, Email: "alice@example.com"}
	bob   = models.Actor{UserID: 102, Email: "bob@example.com"}
)

type fixture struct {
	db     *gorm.DB
	store  *gdpr.Store
	runner *gdpr.Runner
	engine *gdprtest.Engine
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := pgtest.DB(t)
	trail := models.NewAuditTrail(db, pgtest.Sealer(t), models.NewPartitionManager(db))
	store := gdpr.NewStore(db, trail)
	engine := &gdprtest.Engine{Events: 3, Pseudonym: "psn_7f3a"}
	runner := gdpr.NewRunner(db, store, trail, engine, nil)
	t.Cleanup(func() { runner.Shutdown(context.Background()) })
	return &fixture{db: db, store: store, runner: runner, engine: engine}
}

// write seals and copies events of org: one per (principal, resource type, resource id).
func write(t *testing.T, db *gorm.DB, org string, subjects ...[3]string) {
	t.Helper()
	sealer := pgtest.Sealer(t)
	now := time.Now().UTC()
	evs := make([]models.Event, len(subjects))
	for i, s := range subjects {
		ev := models.Event{OrganizationID: org, Timestamp: now.Add(-time.Duration(len(subjects)-i) * time.Second),
			Action: "patient.record.read", Status: "success", DataClassification: "PHI", RetentionPolicy: "standard",
			EventVersion: "1.0", Details: []byte(`{"ip":"10.0.0.1","note":"=cmd"}`)}
		if s[0] != "" {
			ev.PrincipalID = &s[0]
		}
		if s[1] != "" {
			ev.TargetResourceType, ev.TargetResourceID = &s[1], &s[2]
		}
		if err := sealer.Seal(&ev); err != nil {
			t.Fatal(err)
		}
		evs[i] = ev
	}
	if _, err := ingest.CopyEvents(context.Background(), db, models.NewPartitionManager(db), evs); err != nil {
		t.Fatal(err)
	}
}

func access(subject gdpr.Subject) gdpr.Input {
	return gdpr.Input{Type: gdpr.TypeAccess, Subject: subject, IdentityCheck: "passport seen", RequestedBy: "Jane Roe"}
}

func TestCreateRefusesBadInput(t *testing.T) {
	f := newFixture(t)
	org := pgtest.NewOrg(t, "a")
	ok := access(gdpr.Subject{PrincipalID: "jane"})
	for _, tc := range []struct {
		name, field string
		change      func(*gdpr.Input)
	}{
		{"no subject", "subject", func(in *gdpr.Input) { in.Subject = gdpr.Subject{} }},
		{"unknown type", "type", func(in *gdpr.Input) { in.Type = "forget-me" }},
		{"resource type without id", "resource_id", func(in *gdpr.Input) { in.Subject.ResourceType = "Patient" }},
		{"resource id without type", "resource_type", func(in *gdpr.Input) { in.Subject.ResourceID = "p-1" }},
		{"principal too long", "principal_id", func(in *gdpr.Input) { in.Subject.PrincipalID = strings.Repeat("x", 256) }},
		{"no identity check", "identity_check", func(in *gdpr.Input) { in.IdentityCheck = " " }},
		{"nobody asked", "requested_by", func(in *gdpr.Input) { in.RequestedBy = "" }},
		{"received in the future", "received_at", func(in *gdpr.Input) { in.ReceivedAt = time.Now().Add(48 * time.Hour) }},
		{"notes with NUL", "notes", func(in *gdpr.Input) { in.Notes = "a\x00b" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ok
			tc.change(&in)
			_, err := f.store.Create(context.Background(), org, in, alice)
			if models.KindOf(err) != models.KindInvalid || models.FieldOf(err) != tc.field {
				t.Fatalf("err = %v (field %q), want invalid %s", err, models.FieldOf(err), tc.field)
			}
		})
	}
	list, err := f.store.List(context.Background(), org)
	if err != nil || len(list) != 0 {
		t.Fatalf("refused requests were stored: %d, %v", len(list), err)
	}
}

func TestWorkflowTransitions(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	org, other := pgtest.NewOrg(t, "a"), pgtest.NewOrg(t, "b")
	received := time.Now().UTC().AddDate(0, 0, -35)
	in := access(gdpr.Subject{ResourceType: "Patient", ResourceID: "p-1"})
	in.ReceivedAt = received
	r, err := f.store.Create(ctx, org, in, alice)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != gdpr.StatusReceived || !r.DueAt.Equal(received.AddDate(0, 0, 30).Truncate(time.Microsecond)) {
		t.Fatalf("new request: status %s due %v", r.Status, r.DueAt)
	}
	now := time.Now()
	if !r.Overdue(now) || r.DueThisWeek(now) {
		t.Fatal("received 35 days ago: overdue")
	}

	// Another organization sees nothing of it.
	if _, err := f.store.Get(ctx, other, r.ID); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("another organization's Get: %v", err)
	}
	if _, err := f.store.Start(ctx, other, r.ID, alice); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("another organization's Start: %v", err)
	}
	if _, err := f.store.Extend(ctx, other, r.ID, 10, "busy", alice); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("another organization's Extend: %v", err)
	}

	if r, err = f.store.Start(ctx, org, r.ID, alice); err != nil || r.Status != gdpr.StatusInProgress {
		t.Fatalf("start: %v", err)
	}
	if _, err := f.store.Start(ctx, org, r.ID, alice); models.KindOf(err) != models.KindConflict {
		t.Fatalf("starting twice: %v", err)
	}
	for _, tc := range []struct {
		days   int
		reason string
		field  string
	}{{61, "complex case", "days"}, {0, "complex case", "days"}, {30, "", "reason"}, {30, "  ", "reason"}} {
		if _, err := f.store.Extend(ctx, org, r.ID, tc.days, tc.reason, alice); models.FieldOf(err) != tc.field {
			t.Fatalf("extend %d %q: %v, want invalid %s", tc.days, tc.reason, err, tc.field)
		}
	}
	if r, err = f.store.Extend(ctx, org, r.ID, 60, "archives must be searched", alice); err != nil {
		t.Fatal(err)
	}
	if r.ExtensionDays != 60 || !r.DueAt.Equal(received.AddDate(0, 0, 90).Truncate(time.Microsecond)) || r.Overdue(now) {
		t.Fatalf("extended: %d days, due %v", r.ExtensionDays, r.DueAt)
	}
	if _, err := f.store.Extend(ctx, org, r.ID, 5, "again", alice); models.KindOf(err) != models.KindConflict {
		t.Fatalf("a second extension: %v", err)
	}
	if _, err := f.store.Reject(ctx, org, r.ID, "", alice); models.FieldOf(err) != "reason" {
		t.Fatalf("reject without reason: %v", err)
	}
	if r, err = f.store.Reject(ctx, org, r.ID, "identity not established", alice); err != nil || r.Status != gdpr.StatusRejected {
		t.Fatalf("reject: %v", err)
	}
	if _, err := f.store.Complete(ctx, org, r.ID, "", alice); models.KindOf(err) != models.KindConflict {
		t.Fatalf("completing a rejected request: %v", err)
	}
	steps, err := f.store.History(ctx, org, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range steps {
		names = append(names, s.Step)
	}
	if got := strings.Join(names, ","); got != "received,in progress,extended,rejected" {
		t.Fatalf("history %s", got)
	}
	// The self-audit events name the request, never the subject.
	var leaked int64
	f.db.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action LIKE 'gdpr.request.%'
		AND (details::text LIKE '%p-1%' OR coalesce(target_resource_id, '') = 'p-1')`, org).Scan(&leaked)
	var audited int64
	f.db.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action LIKE 'gdpr.request.%' AND target_resource_id = ?`,
		org, r.ID).Scan(&audited)
	if leaked != 0 || audited != 4 {
		t.Fatalf("self-audit: %d events name the subject, %d name the request (want 0, 4)", leaked, audited)
	}
}

func erasure(t *testing.T, f *fixture, org string, s gdpr.Subject) *gdpr.Request {
	t.Helper()
	ctx := context.Background()
	r, err := f.store.Create(ctx, org, gdpr.Input{Type: gdpr.TypeErasure, Subject: s, IdentityCheck: "id card",
		RequestedBy: "John Doe"}, alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Start(ctx, org, r.ID, alice); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestErasureFourEyes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	org, other := pgtest.NewOrg(t, "a"), pgtest.NewOrg(t, "b")
	subject := gdpr.Subject{PrincipalID: "john", ResourceType: "Patient", ResourceID: "p-9"}
	write(t, f.db, org, [3]string{"john", "", ""}, [3]string{"dr-x", "Patient", "p-9"}, [3]string{"dr-x", "Patient", "p-1"})
	r := erasure(t, f, org, subject)

	// The subject's access request and its export: both go with the erasure.
	acc, err := f.store.Create(ctx, org, access(gdpr.Subject{PrincipalID: "john"}), alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.runner.StartExport(ctx, org, acc.ID, gdpr.FormatCSV, alice); err != nil {
		t.Fatal(err)
	}
	f.runner.Wait()
	if ex, _ := f.store.Exports(ctx, org, acc.ID); len(ex) != 1 || ex[0].Events != 1 {
		t.Fatalf("access export: %+v", ex)
	}

	if _, err := f.runner.Approve(ctx, org, r.ID, bob); models.KindOf(err) != models.KindConflict {
		t.Fatalf("approving before it is requested: %v", err)
	}
	if _, err := f.runner.RequestErasure(ctx, other, r.ID, alice); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("another organization requests the erasure: %v", err)
	}
	if r, err = f.runner.RequestErasure(ctx, org, r.ID, alice); err != nil || r.Status != gdpr.StatusAwaitingApproval {
		t.Fatalf("request erasure: %v", err)
	}
	if _, err := f.runner.Approve(ctx, org, r.ID, alice); models.KindOf(err) != models.KindForbidden {
		t.Fatalf("approving one's own erasure: %v, want forbidden", err)
	}
	if _, err := f.runner.Approve(ctx, other, r.ID, bob); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("another organization approves: %v", err)
	}
	if r, err = f.runner.Approve(ctx, org, r.ID, bob); err != nil || r.Operation != gdpr.OpRunning {
		t.Fatalf("approve: %v", err)
	}
	f.runner.Wait()
	if _, err := f.runner.Approve(ctx, org, r.ID, bob); models.KindOf(err) != models.KindConflict {
		t.Fatalf("approving twice: %v, want conflict", err)
	}
	r, err = f.store.Get(ctx, org, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != gdpr.StatusCompleted || r.Result == nil || r.Result.Deleted != 3 || r.ApprovedBy != bob.Email {
		t.Fatalf("after the erasure: %+v", r)
	}
	want := gdpr.Subject{PrincipalID: "psn_7f3a", ResourceType: "Patient", ResourceID: "psn_7f3a"}
	if r.Subject != want || r.Pseudonym != "psn_7f3a" {
		t.Fatalf("subject on the request %+v, want %+v", r.Subject, want)
	}
	if acc, _ = f.store.Get(ctx, org, acc.ID); acc.Subject.PrincipalID != "psn_7f3a" {
		t.Fatalf("the access request still names %+v", acc.Subject)
	}
	var n int64
	f.db.Raw(`SELECT count(*) FROM gdpr_exports e JOIN gdpr_export_chunks c USING (request_id, format) WHERE e.organization_id = ?`, org).Scan(&n)
	var left int64
	f.db.Raw(`SELECT count(*) FROM gdpr_requests WHERE organization_id = ? AND ('john' IN (principal_id, resource_id) OR resource_id = 'p-9')`, org).Scan(&left)
	if n != 0 || left != 0 {
		t.Fatalf("after the erasure: %d export chunks, %d requests naming the subject", n, left)
	}
}

func TestErasureBlockedByHold(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	org := pgtest.NewOrg(t, "a")
	r := erasure(t, f, org, gdpr.Subject{PrincipalID: "held"})
	f.engine.HoldsOf = map[string][]gdpr.Hold{"held": {{ID: 7, Name: "Litigation 2026-14", Reason: "court order"}}}
	_, err := f.runner.RequestErasure(ctx, org, r.ID, alice)
	if models.KindOf(err) != models.KindConflict || !strings.Contains(models.MessageOf(err), "Litigation 2026-14") {
		t.Fatalf("erasure of a held subject: %v, want a conflict naming the hold", err)
	}
	got, _ := f.store.Get(ctx, org, r.ID)
	if got.Status != gdpr.StatusInProgress || got.SubmittedBy != "" || len(f.engine.Erased) != 0 {
		t.Fatalf("a blocked erasure changed the request: %+v", got)
	}
	// A hold placed after the request but before the approval blocks the approval too.
	f.engine.HoldsOf = nil
	if _, err := f.runner.RequestErasure(ctx, org, r.ID, alice); err != nil {
		t.Fatal(err)
	}
	f.engine.HoldsOf = map[string][]gdpr.Hold{"held": {{ID: 7, Name: "Litigation 2026-14"}}}
	if _, err := f.runner.Approve(ctx, org, r.ID, bob); models.KindOf(err) != models.KindConflict {
		t.Fatalf("approval under a hold: %v", err)
	}
	if got, _ = f.store.Get(ctx, org, r.ID); got.ApprovedBy != "" || got.Operation == gdpr.OpRunning {
		t.Fatalf("a refused approval was recorded: %+v", got)
	}
}

func TestPseudonymizationAndLookup(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	org := pgtest.NewOrg(t, "a")
	f.engine.Originals = map[string]string{"psn_7f3a": "mary"}
	r, err := f.store.Create(ctx, org, gdpr.Input{Type: gdpr.TypePseudonymization, Subject: gdpr.Subject{PrincipalID: "mary"},
		IdentityCheck: "email", RequestedBy: "Mary"}, alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.runner.StartPseudonymization(ctx, org, r.ID, "rot13", alice); models.FieldOf(err) != "strategy" {
		t.Fatalf("unknown strategy: %v", err)
	}
	if _, err := f.runner.StartPseudonymization(ctx, org, r.ID, gdpr.StrategyEncryption, alice); err != nil {
		t.Fatal(err)
	}
	f.runner.Wait()
	r, _ = f.store.Get(ctx, org, r.ID)
	if r.Status != gdpr.StatusCompleted || r.Strategy != gdpr.StrategyEncryption || r.Subject.PrincipalID != "psn_7f3a" {
		t.Fatalf("after pseudonymization: %+v", r)
	}
	if _, err := f.runner.Lookup(ctx, org, "psn_7f3a", " ", bob); models.FieldOf(err) != "reason" {
		t.Fatalf("lookup without reason: %v", err)
	}
	if got, err := f.runner.Lookup(ctx, org, "psn_7f3a", "court order 14", bob); err != nil || got != "mary" {
		t.Fatalf("lookup: %q, %v", got, err)
	}
}

func TestRestrictionAndRectification(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	org := pgtest.NewOrg(t, "a")
	write(t, f.db, org, [3]string{"rita", "", ""}, [3]string{"dr-x", "Patient", "rita-p"}, [3]string{"sam", "", ""})
	res, err := f.store.Create(ctx, org, gdpr.Input{Type: gdpr.TypeRestriction, Subject: gdpr.Subject{PrincipalID: "rita"},
		IdentityCheck: "letter", RequestedBy: "Rita"}, alice)
	if err != nil {
		t.Fatal(err)
	}
	acc, _ := f.store.Create(ctx, org, access(gdpr.Subject{PrincipalID: "rita"}), alice)
	if _, err := f.store.Complete(ctx, org, res.ID, "", alice); err != nil {
		t.Fatal(err)
	}
	events := models.NewEventStore(f.db)
	filter := models.EventFilter{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute), Action: "patient.record.read",
		ExcludeRestricted: true}
	page, err := events.ListFull(ctx, org, filter, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range page.Events {
		if ev.PrincipalID != nil && *ev.PrincipalID == "rita" {
			t.Fatal("an export shows a restricted subject's event")
		}
	}
	if len(page.Events) != 2 {
		t.Fatalf("%d events outside the restriction, want 2", len(page.Events))
	}
	// The restriction request's own export has the events; another request's does not.
	for _, tc := range []struct {
		id   string
		want int
	}{{res.ID, 1}, {acc.ID, 0}} {
		r, _ := f.store.Get(ctx, org, tc.id)
		var buf bytes.Buffer
		n, err := gdpr.WriteExport(ctx, f.db, r, gdpr.FormatJSON, &buf, time.Now(), nil)
		if err != nil || n != int64(tc.want) {
			t.Fatalf("export of %s: %d events, %v; want %d", tc.id, n, err, tc.want)
		}
	}
	if _, err := f.store.Lift(ctx, org, res.ID, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Lift(ctx, org, res.ID, alice); models.KindOf(err) != models.KindConflict {
		t.Fatalf("lifting twice: %v", err)
	}
	if page, _ = events.ListFull(ctx, org, filter, nil, 100); len(page.Events) != 3 {
		t.Fatalf("after lifting: %d events, want 3", len(page.Events))
	}

	// Rectification: recorded as not applicable, with a correcting event linked to the
	// original, sealed like every event.
	other := pgtest.NewOrg(t, "b")
	write(t, f.db, other, [3]string{"z", "", ""})
	var foreign, original int64
	f.db.Raw(`SELECT id FROM audit_log WHERE organization_id = ?`, other).Scan(&foreign)
	f.db.Raw(`SELECT id FROM audit_log WHERE organization_id = ? AND principal_id = 'sam'`, org).Scan(&original)
	rect, _ := f.store.Create(ctx, org, gdpr.Input{Type: gdpr.TypeRectification, Subject: gdpr.Subject{PrincipalID: "sam"},
		IdentityCheck: "phone", RequestedBy: "Sam"}, alice)
	if _, err := f.runner.Rectify(ctx, org, rect.ID, foreign, "name is Samuel", alice); models.FieldOf(err) != "event_id" {
		t.Fatalf("correcting another organization's event: %v", err)
	}
	if _, err := f.runner.Rectify(ctx, org, rect.ID, original, "", alice); models.FieldOf(err) != "correction" {
		t.Fatalf("correction without text: %v", err)
	}
	rect, err = f.runner.Rectify(ctx, org, rect.ID, original, "name is Samuel", alice)
	if err != nil || rect.Status != gdpr.StatusCompleted {
		t.Fatalf("rectify: %v", err)
	}
	var correcting []models.Event
	f.db.Raw(`SELECT * FROM audit_log WHERE organization_id = ? AND action = ?`, org, gdpr.ActionRectification).Scan(&correcting)
	if len(correcting) != 1 || !strings.Contains(string(correcting[0].Details), `"correctsEventId"`) {
		t.Fatalf("correcting events: %+v", correcting)
	}
	var d struct {
		CorrectsEventID int64 `json:"correctsEventId"`
	}
	json.Unmarshal(correcting[0].Details, &d)
	if d.CorrectsEventID != original {
		t.Fatalf("correctsEventId %d, want %d", d.CorrectsEventID, original)
	}
	if v, err := pgtest.Sealer(t).Verify(&correcting[0]); err != nil || !v.HashOK || !v.SignatureOK {
		t.Fatalf("the correcting event does not verify: %+v, %v", v, err)
	}
}

func TestExportFormatsAndEmpty(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	org, other := pgtest.NewOrg(t, "a"), pgtest.NewOrg(t, "b")
	write(t, f.db, org, [3]string{"eve", "", ""}, [3]string{"dr-x", "Patient", "eve-p"}, [3]string{"dr-y", "Patient", "zed"})
	write(t, f.db, other, [3]string{"eve", "", ""})
	r, _ := f.store.Create(ctx, org, access(gdpr.Subject{PrincipalID: "eve", ResourceType: "Patient", ResourceID: "eve-p"}), alice)
	if _, err := f.runner.StartExport(ctx, org, r.ID, "docx", alice); models.FieldOf(err) != "format" {
		t.Fatalf("unknown format: %v", err)
	}
	if _, err := f.runner.StartExport(ctx, other, r.ID, "json", alice); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("another organization's export: %v", err)
	}
	for _, format := range gdpr.Formats {
		if _, err := f.runner.StartExport(ctx, org, r.ID, format, alice); err != nil {
			t.Fatal(err)
		}
		f.runner.Wait()
	}
	read := func(format string) []byte {
		t.Helper()
		file, rc, err := f.store.OpenExport(ctx, org, r.ID, format)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		if int64(len(b)) != file.Size || file.Events != 2 {
			t.Fatalf("%s: %d bytes read, %d recorded, %d events", format, len(b), file.Size, file.Events)
		}
		return b
	}
	var doc struct {
		Organization string `json:"organization"`
		Events       []struct {
			PrincipalID      *string         `json:"principalId"`
			TargetResourceID *string         `json:"targetResourceId"`
			Details          json.RawMessage `json:"details"`
			Hash             string          `json:"hash"`
		} `json:"events"`
		Count int `json:"count"`
	}
	if err := json.Unmarshal(read("json"), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Organization != org || doc.Count != 2 || len(doc.Events) != 2 || *doc.Events[0].PrincipalID != "eve" ||
		*doc.Events[1].TargetResourceID != "eve-p" || len(doc.Events[0].Hash) != 64 || !json.Valid(doc.Events[0].Details) {
		t.Fatalf("json export: %+v", doc)
	}
	rows, err := csv.NewReader(bytes.NewReader(read("csv"))).ReadAll()
	if err != nil || len(rows) != 3 || rows[0][0] != "id" || rows[1][4] != "eve" {
		t.Fatalf("csv export: %v %v", rows, err)
	}
	if !strings.Contains(rows[1][12], `"note": "=cmd"`) {
		t.Fatalf("csv details cell %q", rows[1][12])
	}
	var x struct {
		Events []struct {
			ID string `xml:"id,attr"`
		} `xml:"event"`
	}
	if err := xml.Unmarshal(read("xml"), &x); err != nil || len(x.Events) != 2 {
		t.Fatalf("xml export: %+v %v", x, err)
	}

	// A subject with no events completes with an empty export, and says so.
	empty, _ := f.store.Create(ctx, org, access(gdpr.Subject{PrincipalID: "nobody"}), alice)
	if _, err := f.runner.StartExport(ctx, org, empty.ID, gdpr.FormatJSON, alice); err != nil {
		t.Fatal(err)
	}
	f.runner.Wait()
	ex, _ := f.store.Exports(ctx, org, empty.ID)
	if len(ex) != 1 || !ex[0].Complete || ex[0].Events != 0 {
		t.Fatalf("empty export: %+v", ex)
	}
	steps, _ := f.store.History(ctx, org, empty.ID)
	if last := steps[len(steps)-1]; !strings.Contains(last.Detail, "no events") {
		t.Fatalf("the empty export's step says %q", last.Detail)
	}
	if _, rc, err := f.store.OpenExport(ctx, other, empty.ID, gdpr.FormatJSON); models.KindOf(err) != models.KindNotFound {
		if rc != nil {
			rc.Close()
		}
		t.Fatalf("another organization opens the export: %v", err)
	}
}

func TestFailStaleOperations(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	org := pgtest.NewOrg(t, "a")
	r := erasure(t, f, org, gdpr.Subject{PrincipalID: "stale"})
	fresh := erasure(t, f, org, gdpr.Subject{PrincipalID: "fresh"})
	// Two erasures left running by a stopped instance: one long silent, one just now.
	f.db.Exec(`UPDATE gdpr_requests SET operation = 'running', approved_by = 'bob@example.com', heartbeat_at = now() - interval '1 hour'
		WHERE id = ?`, r.ID)
	f.db.Exec(`UPDATE gdpr_requests SET operation = 'running', heartbeat_at = now() WHERE id = ?`, fresh.ID)
	n, err := f.runner.FailStale(ctx)
	if err != nil || n < 1 {
		t.Fatalf("FailStale: %d, %v", n, err)
	}
	got, _ := f.store.Get(ctx, org, r.ID)
	if got.Operation != gdpr.OpFailed || got.ApprovedBy != "" || got.Status != gdpr.StatusInProgress || got.Error == "" {
		t.Fatalf("the stale erasure: %+v", got)
	}
	if got, _ := f.store.Get(ctx, org, fresh.ID); got.Operation != gdpr.OpRunning {
		t.Fatalf("a live operation was failed: %+v", got)
	}
	// It can be requested and approved again; the engine resumes.
	if _, err := f.runner.RequestErasure(ctx, org, r.ID, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := f.runner.Approve(ctx, org, r.ID, bob); err != nil {
		t.Fatal(err)
	}
	f.runner.Wait()
	if got, _ := f.store.Get(ctx, org, r.ID); got.Status != gdpr.StatusCompleted {
		t.Fatalf("after resuming: %+v", got)
	}
}

func TestRestrictionKeepsSubjectOutOfReports(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	org := pgtest.NewOrg(t, "a")
	write(t, f.db, org, [3]string{"dr-a", "Patient", "restricted-p"}, [3]string{"dr-a", "Patient", "free-p"})
	r, err := f.store.Create(ctx, org, gdpr.Input{Type: gdpr.TypeRestriction, Subject: gdpr.Subject{ResourceType: "Patient",
		ResourceID: "restricted-p"}, IdentityCheck: "letter", RequestedBy: "Parent"}, alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Complete(ctx, org, r.ID, "", alice); err != nil {
		t.Fatal(err)
	}
	c := reports.Criteria{Type: reports.TypeGeneral, From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute),
		Filters: reports.Filters{Action: "patient.record.read"}}
	var ids []string
	if _, err := reports.StreamEvents(ctx, f.db, org, c, func(cells []string) error {
		ids = append(ids, cells[5])
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != "free-p" {
		t.Fatalf("the report's events name %v, want only free-p", ids)
	}
}

// Duplicate erasure requests of one subject approved at the same time all complete: their
// finishes do not deadlock on each other's rows, and none is left running.
func TestDuplicateErasuresApprovedTogetherComplete(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.engine.Gate = make(chan struct{})
	org := pgtest.NewOrg(t, "a")
	subject := gdpr.Subject{PrincipalID: "john"}
	var ids []string
	for range 4 {
		r := erasure(t, f, org, subject)
		if _, err := f.runner.RequestErasure(ctx, org, r.ID, alice); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	for _, id := range ids {
		if _, err := f.runner.Approve(ctx, org, id, bob); err != nil {
			t.Fatal(err)
		}
	}
	close(f.engine.Gate)
	f.runner.Wait()
	for _, id := range ids {
		r, err := f.store.Get(ctx, org, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != gdpr.StatusCompleted || r.Operation == gdpr.OpRunning {
			t.Errorf("request %s: %s / %s (%s)", id, r.Status, r.Operation, r.Error)
		}
	}
}

// heldMidway is an engine whose first erasure is stopped part way by a legal hold, as the
// real engine's batch stops when it finds a hold placed since the run started.
type heldMidway struct {
	*gdprtest.Engine
	stopped bool
}

func (e *heldMidway) Erase(ctx context.Context, org, requestID string, s gdpr.Subject, by models.Actor, progress func(gdpr.Progress)) (gdpr.Result, error) {
	if !e.stopped {
		e.stopped = true
		return gdpr.Result{Matched: 5, Deleted: 5}, models.Conflict("legal_hold",
			`the legal hold "Case 9" (#3) covers events of this subject; release it before erasing`)
	}
	return e.Engine.Erase(ctx, org, requestID, s, by, progress)
}

// An erasure a hold stops part way is not left running: the request names the hold and
// how to resume, and once approved again it completes.
func TestErasureStoppedByHoldMidwayResumes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.runner.Engine = &heldMidway{Engine: f.engine}
	org := pgtest.NewOrg(t, "a")
	r := erasure(t, f, org, gdpr.Subject{PrincipalID: "john"})
	if _, err := f.runner.RequestErasure(ctx, org, r.ID, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := f.runner.Approve(ctx, org, r.ID, bob); err != nil {
		t.Fatal(err)
	}
	f.runner.Wait()
	r, err := f.store.Get(ctx, org, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Operation == gdpr.OpRunning || r.Status != gdpr.StatusInProgress || !strings.Contains(r.Error, "stopped by a legal hold after 5") ||
		!strings.Contains(r.Error, `"Case 9"`) || !strings.Contains(r.Error, "resumes") {
		t.Fatalf("after the hold: %s / %s: %q", r.Status, r.Operation, r.Error)
	}
	if _, err := f.runner.RequestErasure(ctx, org, r.ID, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := f.runner.Approve(ctx, org, r.ID, bob); err != nil {
		t.Fatal(err)
	}
	f.runner.Wait()
	if r, _ = f.store.Get(ctx, org, r.ID); r.Status != gdpr.StatusCompleted {
		t.Fatalf("resumed erasure: %s / %s %q", r.Status, r.Operation, r.Error)
	}
}
