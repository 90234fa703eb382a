package models_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/pgtest"
)

// writeAged writes events of org with the given classification and policy, one at each
// of the given instants.
func writeAged(t *testing.T, org, classification, policy string, principal string, at ...time.Time) {
	t.Helper()
	db := pgtest.DB(t)
	evs := make([]models.Event, len(at))
	for i, ts := range at {
		p := principal
		evs[i] = models.Event{OrganizationID: org, Timestamp: ts.UTC(), Action: "test.event", Status: "success",
			DataClassification: classification, RetentionPolicy: policy, EventVersion: "1.0", PrincipalID: &p,
			Details: []byte(`{"n":1}`)}
		if err := testSealer(t).Seal(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ingest.CopyEvents(context.Background(), db, models.NewPartitionManager(db), evs); err != nil {
		t.Fatal(err)
	}
}

func policyInput(name, class string, days int) models.RetentionPolicyInput {
	return models.RetentionPolicyInput{Name: name, Classification: class, RetentionDays: days, Active: true}
}

func TestRetentionPolicyValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    models.RetentionPolicyInput
		field string
	}{
		{"zero retention", policyInput("p", "INTERNAL", 0), "retention_days"},
		{"negative retention", policyInput("p", "INTERNAL", -5), "retention_days"},
		{"retention over a century", policyInput("p", "INTERNAL", 36501), "retention_days"},
		{"unknown classification", policyInput("p", "SECRET", 30), "classification"},
		{"empty name", policyInput("", "INTERNAL", 30), "name"},
		{"archive on the deletion day", func() models.RetentionPolicyInput {
			in := policyInput("p", "INTERNAL", 30)
			in.ArchiveAfterDays = ptr(30)
			return in
		}(), "archive_after_days"},
		{"archive after delete_after_days", func() models.RetentionPolicyInput {
			in := policyInput("p", "INTERNAL", 30)
			in.DeleteAfterDays, in.ArchiveAfterDays = ptr(40), ptr(45)
			return in
		}(), "archive_after_days"},
		{"delete before retention", func() models.RetentionPolicyInput {
			in := policyInput("p", "INTERNAL", 30)
			in.DeleteAfterDays = ptr(29)
			return in
		}(), "delete_after_days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.in.Validate()
			var e *models.Error
			if models.KindOf(err) != models.KindInvalid || !asError(err, &e) || e.Field != tc.field {
				t.Fatalf("err %v, want invalid %s", err, tc.field)
			}
		})
	}
	ok := policyInput("ok", "INTERNAL", 30)
	ok.ArchiveAfterDays, ok.DeleteAfterDays = ptr(29), ptr(60)
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid policy refused: %v", err)
	}
}

func asError(err error, target **models.Error) bool {
	e, ok := err.(*models.Error)
	if ok {
		*target = e
	}
	return ok
}

func fieldOf(err error) string {
	if e, ok := err.(*models.Error); ok {
		return e.Field
	}
	return ""
}

func TestRetentionPolicyStore(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	s := models.NewRetentionPolicyStore(db, testTrail(t))
	org, other := pgtest.NewOrg(t, ""), pgtest.NewOrg(t, "")
	owner := actor("owner")

	p, err := s.CreatePolicy(ctx, org, policyInput("short", "PUBLIC", 30), owner)
	if err != nil {
		t.Fatal(err)
	}
	if countWhere(t, `SELECT count(*) FROM config_change_event WHERE organization_id = ? AND field = 'retention_policy.short'`, org) != 1 ||
		countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = ?`, org, models.ActionRetentionPolicyCreate) != 1 {
		t.Fatal("creation not recorded in config_change_event and the audit log")
	}

	t.Run("duplicate name", func(t *testing.T) {
		_, err := s.CreatePolicy(ctx, org, policyInput("short", "INTERNAL", 60), owner)
		if models.KindOf(err) != models.KindConflict || fieldOf(err) != "name" {
			t.Fatalf("err %v, want conflict on name", err)
		}
		// Another organization may use the name.
		if _, err := s.CreatePolicy(ctx, other, policyInput("short", "PUBLIC", 30), owner); err != nil {
			t.Fatalf("other organization: %v", err)
		}
	})

	t.Run("below the statutory floor", func(t *testing.T) {
		before := countWhere(t, `SELECT count(*) FROM audit_retention_policy WHERE organization_id = ?`, org)
		_, err := s.CreatePolicy(ctx, org, policyInput("phi_short", "PHI", 365), owner)
		if models.KindOf(err) != models.KindInvalid || fieldOf(err) != "floor_override_reason" || !strings.Contains(err.Error(), "2190") {
			t.Fatalf("err %v, want invalid floor_override_reason naming 2190", err)
		}
		if countWhere(t, `SELECT count(*) FROM audit_retention_policy WHERE organization_id = ?`, org) != before {
			t.Fatal("a refused policy was written")
		}
		in := policyInput("phi_short", "PHI", 365)
		in.FloorOverrideReason = "research data under a one-year consent"
		got, err := s.CreatePolicy(ctx, org, in, owner)
		if err != nil || got.FloorOverrideReason == nil || *got.FloorOverrideReason != in.FloorOverrideReason {
			t.Fatalf("override: %+v, %v", got, err)
		}
		if countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = ? AND details->>'reason' = ?`,
			org, models.ActionRetentionFloorBypass, in.FloorOverrideReason) != 1 {
			t.Fatal("the override is not self-audited with its reason")
		}
	})

	t.Run("global policies", func(t *testing.T) {
		var std int64
		db.Raw(`SELECT id FROM audit_retention_policy WHERE organization_id = '*' AND policy_name = 'standard'`).Scan(&std)
		in := policyInput("standard", "INTERNAL", 2555)
		in.ArchiveAfterDays = ptr(365)
		if _, err := s.UpdatePolicy(ctx, org, std, in, owner); models.KindOf(err) != models.KindForbidden {
			t.Fatalf("owner editing a global policy: %v, want forbidden", err)
		}
		in.Description = "edited"
		if _, err := s.UpdatePolicy(ctx, org, std, in, models.Actor{UserID: 9, Email: "root@example.test", Superadmin: true}); err != nil {
			t.Fatalf("superadmin editing a global policy: %v", err)
		}
		if _, err := s.DeletePolicy(ctx, org, std, owner); models.KindOf(err) != models.KindForbidden {
			t.Fatalf("owner deleting a global policy: %v, want forbidden", err)
		}
	})

	t.Run("another organization's policy", func(t *testing.T) {
		if _, err := s.Policy(ctx, other, p.ID); models.KindOf(err) != models.KindNotFound {
			t.Fatalf("read: %v, want not found", err)
		}
		if _, err := s.UpdatePolicy(ctx, other, p.ID, policyInput("short", "PUBLIC", 40), owner); models.KindOf(err) != models.KindNotFound {
			t.Fatalf("update: %v, want not found", err)
		}
		if _, err := s.DeletePolicy(ctx, other, p.ID, owner); models.KindOf(err) != models.KindNotFound {
			t.Fatalf("delete: %v, want not found", err)
		}
	})

	t.Run("deactivating the only active policy of a classification in use", func(t *testing.T) {
		lone := pgtest.NewOrg(t, "")
		root := models.Actor{UserID: 9, Email: "root@example.test", Superadmin: true}
		own, err := s.CreatePolicy(ctx, lone, policyInput("conf_own", "CONFIDENTIAL", 400), owner)
		if err != nil {
			t.Fatal(err)
		}
		writeAged(t, lone, "CONFIDENTIAL", "conf_own", "u", time.Now().Add(-time.Hour), time.Now().Add(-2*time.Hour))
		// The global confidential policy still covers the classification: allowed.
		off := policyInput("conf_own", "CONFIDENTIAL", 400)
		off.Active = false
		if _, err := s.UpdatePolicy(ctx, lone, own.ID, off, owner); err != nil {
			t.Fatalf("deactivating with the global policy still active: %v", err)
		}
		// Now the global policy is the only active CONFIDENTIAL one for lone's two events.
		var conf int64
		db.Raw(`SELECT id FROM audit_retention_policy WHERE organization_id = '*' AND policy_name = 'confidential'`).Scan(&conf)
		glob := policyInput("confidential", "CONFIDENTIAL", 1825)
		glob.ArchiveAfterDays, glob.Active = ptr(365), false
		_, err = s.UpdatePolicy(ctx, lone, conf, glob, root)
		if models.KindOf(err) != models.KindConflict || fieldOf(err) != "active" || !strings.Contains(err.Error(), "events use") {
			t.Fatalf("err %v, want conflict on active with the count", err)
		}
		if _, err := s.DeletePolicy(ctx, lone, conf, root); models.KindOf(err) != models.KindConflict {
			t.Fatalf("deleting the last global CONFIDENTIAL policy: %v, want conflict", err)
		}
		// Events name conf_own: it keeps its name.
		renamed := policyInput("conf_renamed", "CONFIDENTIAL", 400)
		if _, err := s.UpdatePolicy(ctx, lone, own.ID, renamed, owner); models.KindOf(err) != models.KindConflict || fieldOf(err) != "name" {
			t.Fatalf("renaming a policy events name: %v, want conflict on name", err)
		}
		if _, err := s.UpdatePolicy(ctx, lone, own.ID, policyInput("conf_own", "CONFIDENTIAL", 400), owner); err != nil {
			t.Fatal(err)
		}
		if countWhere(t, `SELECT count(*) FROM audit_retention_policy WHERE id = ? AND is_active`, conf) != 1 {
			t.Fatal("the refused change was written")
		}
	})

	t.Run("floors", func(t *testing.T) {
		root := models.Actor{UserID: 9, Email: "root@example.test", Superadmin: true}
		if err := s.SetFloor(ctx, org, "CONFIDENTIAL", 100, "", owner); models.KindOf(err) != models.KindForbidden {
			t.Fatalf("owner setting a floor: %v, want forbidden", err)
		}
		if err := s.SetFloor(ctx, org, "CONFIDENTIAL", 100, "", root); err != nil {
			t.Fatal(err)
		}
		if err := s.SetFloor(ctx, org, "CONFIDENTIAL", 50, "", root); models.KindOf(err) != models.KindInvalid || fieldOf(err) != "reason" {
			t.Fatalf("lowering without a reason: %v, want invalid reason", err)
		}
		if err := s.SetFloor(ctx, org, "CONFIDENTIAL", 0, "no statute applies", root); err != nil {
			t.Fatal(err)
		}
		if countWhere(t, `SELECT count(*) FROM config_change_event WHERE field = 'retention_floor.CONFIDENTIAL' AND organization_id = ?`, org) != 2 {
			t.Fatal("floor changes not in config_change_event")
		}
		if err := s.SetFloor(ctx, org, "SECRET", 10, "", root); models.KindOf(err) != models.KindInvalid {
			t.Fatalf("unknown classification: %v", err)
		}
	})
}

func TestRetentionPreviewAndHolds(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	s := models.NewRetentionPolicyStore(db, testTrail(t))
	org, other := pgtest.NewOrg(t, ""), pgtest.NewOrg(t, "")
	owner := actor("owner")
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	// The global minimal policy: archived after 30 days, deleted after 90.
	writeAged(t, org, "PUBLIC", "minimal", "alice", now.Add(-29*day), now.Add(-31*day), now.Add(-32*day))
	writeAged(t, org, "PUBLIC", "minimal", "alice", now.Add(-91*day))
	writeAged(t, org, "PUBLIC", "minimal", "bob", now.Add(-95*day), now.Add(-100*day))
	writeAged(t, other, "PUBLIC", "minimal", "bob", now.Add(-100*day))

	p, err := s.RetentionPreview(ctx, org, now)
	if err != nil {
		t.Fatal(err)
	}
	if p.Archive != 2 || p.Delete != 3 || p.KeptByHolds != 0 {
		t.Fatalf("preview %+v, want archive 2, delete 3", p)
	}
	if strings.Join(p.ArchiveMonths, ",") != "2026-10" || strings.Join(p.DeleteMonths, ",") != "2026-08" {
		t.Fatalf("months %v / %v", p.ArchiveMonths, p.DeleteMonths)
	}
	// Days are whole UTC days, as the run counts them: the 31-day-old event (written
	// 2026-10-29) is due for the archive from 2026-11-28 on, the 91-day-old one (2026-08-30)
	// for deletion from 2026-11-28 on. So late on 2026-11-27 neither is, and the 91-day-old
	// one is due for the archive only; early on 2026-11-28 both are.
	if p, _ := s.RetentionPreview(ctx, org, time.Date(2026, 11, 27, 23, 59, 0, 0, time.UTC)); p.Archive != 2 || p.Delete != 2 {
		t.Fatalf("on 2026-11-27: %+v, want archive 2, delete 2", p)
	}
	if p, _ := s.RetentionPreview(ctx, org, time.Date(2026, 11, 28, 0, 1, 0, 0, time.UTC)); p.Archive != 2 || p.Delete != 3 {
		t.Fatalf("on 2026-11-28: %+v, want archive 2, delete 3", p)
	}

	t.Run("bad holds", func(t *testing.T) {
		from, to := now.Add(-day), now.Add(-2*day)
		for _, tc := range []struct {
			name  string
			in    models.LegalHoldInput
			field string
		}{
			{"principal scope without principal", models.LegalHoldInput{Name: "h", Reason: "r", Scope: "principal"}, "principal_id"},
			{"resource scope without id", models.LegalHoldInput{Name: "h", Reason: "r", Scope: "resource", ResourceType: "Patient"}, "resource_id"},
			{"correlation scope empty", models.LegalHoldInput{Name: "h", Reason: "r", Scope: "correlation", CorrelationID: "  "}, "correlation_id"},
			{"no scope", models.LegalHoldInput{Name: "h", Reason: "r"}, "scope"},
			{"range ends before it starts", models.LegalHoldInput{Name: "h", Reason: "r", Scope: "time_range", From: &from, To: &to}, "to"},
			{"no reason", models.LegalHoldInput{Name: "h", Scope: "organization"}, "reason"},
		} {
			if _, err := s.PlaceHold(ctx, org, tc.in, owner); models.KindOf(err) != models.KindInvalid || fieldOf(err) != tc.field {
				t.Errorf("%s: %v, want invalid %s", tc.name, err, tc.field)
			}
		}
		if n := countWhere(t, `SELECT count(*) FROM legal_holds WHERE organization_id = ?`, org); n != 0 {
			t.Fatalf("%d refused holds written", n)
		}
	})

	h, err := s.PlaceHold(ctx, org, models.LegalHoldInput{Name: "Matter 42", Reason: "litigation", Scope: "principal", PrincipalID: "bob"}, owner)
	if err != nil {
		t.Fatal(err)
	}
	if countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = ?`, org, models.ActionLegalHoldPlace) != 1 {
		t.Fatal("placing the hold is not self-audited")
	}
	p, err = s.RetentionPreview(ctx, org, now)
	if err != nil {
		t.Fatal(err)
	}
	if p.Delete != 1 || p.KeptByHolds != 2 || p.Archive != 4 || len(p.ByHold) != 1 || p.ByHold[0].Events != 2 || p.ByHold[0].HoldID != h.ID {
		t.Fatalf("preview with the hold %+v, want delete 1, kept 2 (and archived 4)", p)
	}
	// The predicate counts the held events directly, and the other organization's are not held.
	held, args := models.HeldPredicate("e", org)
	if n := countWhere(t, `SELECT count(*) FROM audit_log e WHERE e.organization_id = ? AND `+held, append([]any{org}, args...)...); n != 2 {
		t.Fatalf("held events %d, want 2", n)
	}
	heldOther, argsOther := models.HeldPredicate("e", other)
	if n := countWhere(t, `SELECT count(*) FROM audit_log e WHERE e.organization_id = ? AND `+heldOther, append([]any{other}, argsOther...)...); n != 0 {
		t.Fatalf("other organization's held events %d, want 0", n)
	}

	if _, err := s.ReleaseHold(ctx, other, h.ID, owner); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("releasing another organization's hold: %v, want not found", err)
	}
	if _, err := s.ReleaseHold(ctx, org, h.ID, owner); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReleaseHold(ctx, org, h.ID, owner); models.KindOf(err) != models.KindConflict {
		t.Fatalf("releasing a released hold: %v, want conflict", err)
	}
	if countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = ?`, org, models.ActionLegalHoldRelease) != 1 {
		t.Fatal("releasing is not self-audited")
	}
	if p, _ := s.RetentionPreview(ctx, org, now); p.Delete != 3 || p.KeptByHolds != 0 {
		t.Fatalf("after release: %+v, want delete 3", p)
	}
}
