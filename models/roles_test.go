package models_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// accessFixture is one organization with stores over the package database and a member
// of each default role.
type accessFixture struct {
	db                   *gorm.DB
	org                  string
	roles                *models.RoleStore
	members              *models.MemberStore
	users                *models.UserStore
	trail                *models.AuditTrail
	sealer               *models.Sealer
	owner, admin, member models.Actor
}

func newAccessFixture(t *testing.T) *accessFixture {
	t.Helper()
	db := pgtest.DB(t)
	sealer := testSealer(t)
	trail := models.NewAuditTrail(db, sealer, models.NewPartitionManager(db))
	f := &accessFixture{db: db, org: testOrg(t, ""), roles: models.NewRoleStore(db, trail),
		members: models.NewMemberStore(db, trail), users: models.NewUserStore(db), trail: trail, sealer: sealer}
	if _, err := models.NewOrgStore(db).Create(context.Background(), f.org, "Org "+f.org); err != nil {
		t.Fatal(err)
	}
	f.owner = f.user(t, "owner", models.OwnerRole)
	f.admin = f.user(t, "admin", "org:admin")
	f.member = f.user(t, "member", "org:member")
	return f
}

func (f *accessFixture) user(t *testing.T, label, role string) models.Actor {
	t.Helper()
	email := label + "-" + f.org + "@example.test"
	u, err := f.users.Create(context.Background(), models.NewUser{Email: email, Password: "long enough password",
		OrgID: f.org, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return models.Actor{UserID: u.ID, Email: email, IP: "192.0.2.1", UserAgent: "test"}
}

func perm(s string) models.Permission {
	p, err := models.ParsePermission(s)
	if err != nil {
		panic(err)
	}
	return p
}

func permsOf(ss ...string) []models.Permission {
	out := make([]models.Permission, len(ss))
	for i, s := range ss {
		out[i] = perm(s)
	}
	return out
}

func permSet(ps []models.Permission) map[string]bool {
	out := map[string]bool{}
	for _, p := range ps {
		out[p.String()] = true
	}
	return out
}

func TestRoleEffectivePermissionsTwoLevels(t *testing.T) {
	f := newAccessFixture(t)
	ctx := context.Background()
	if _, err := f.roles.Create(ctx, f.org, models.RoleInput{Name: "reviewer", Permissions: permsOf("audit.reports:read")}, f.owner); err != nil {
		t.Fatal(err)
	}
	if _, err := f.roles.Create(ctx, f.org, models.RoleInput{Name: "auditor", Permissions: permsOf("audit.alerts:read"),
		Inherits: []string{"reviewer", "org:member"}}, f.owner); err != nil {
		t.Fatal(err)
	}
	if _, err := f.roles.Create(ctx, f.org, models.RoleInput{Name: "lead-auditor", Inherits: []string{"auditor"}}, f.owner); err != nil {
		t.Fatal(err)
	}
	set, err := f.roles.Set(ctx, f.org)
	if err != nil {
		t.Fatal(err)
	}
	got := permSet(set.Effective("lead-auditor"))
	for _, want := range []string{"audit.alerts:read", "audit.reports:read", "audit.events:read", "audit.events:create", "audit.metrics:read"} {
		if !got[want] {
			t.Errorf("lead-auditor lacks %s (two levels of inheritance): %v", want, got)
		}
	}
	if got["audit.events:delete"] {
		t.Error("lead-auditor holds audit.events:delete it never inherited")
	}
}

func TestRoleStoreRefuses(t *testing.T) {
	f := newAccessFixture(t)
	ctx := context.Background()
	other := testOrg(t, "other")
	if _, err := models.NewOrgStore(f.db).Create(ctx, other, "Other"); err != nil {
		t.Fatal(err)
	}
	mustCreate := func(org, name string, inherits ...string) {
		t.Helper()
		if _, err := f.roles.Create(ctx, org, models.RoleInput{Name: name, Permissions: permsOf("audit.events:read"), Inherits: inherits},
			models.SystemActor("test")); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate(f.org, "base")
	mustCreate(f.org, "middle", "base")
	mustCreate(f.org, "top", "middle")
	mustCreate(f.org, "held")
	mustCreate(other, "foreign-role")
	if _, err := f.users.Create(ctx, models.NewUser{Email: "holder-" + f.org + "@example.test", Password: "long enough password",
		OrgID: f.org, Role: "held"}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		do      func() error
		kind    models.Kind
		message string
	}{
		{"duplicate name", func() error {
			_, err := f.roles.Create(ctx, f.org, models.RoleInput{Name: "base"}, f.owner)
			return err
		}, models.KindConflict, "already exists"},
		{"name of a default role", func() error {
			_, err := f.roles.Create(ctx, f.org, models.RoleInput{Name: "org:member"}, f.owner)
			return err
		}, models.KindConflict, "default role"},
		{"reserved character", func() error {
			_, err := f.roles.Create(ctx, f.org, models.RoleInput{Name: "user:1"}, f.owner)
			return err
		}, models.KindInvalid, "reserved"},
		{"unknown resource", func() error {
			_, err := f.roles.Create(ctx, f.org, models.RoleInput{Name: "x1", Permissions: permsOf("audit.billing:read")}, f.owner)
			return err
		}, models.KindInvalid, "unknown resource"},
		{"unknown action", func() error {
			_, err := f.roles.Create(ctx, f.org, models.RoleInput{Name: "x2", Permissions: permsOf("audit.events:invite")}, f.owner)
			return err
		}, models.KindInvalid, "unknown action"},
		{"unknown inherited role", func() error {
			_, err := f.roles.Create(ctx, f.org, models.RoleInput{Name: "x3", Inherits: []string{"nope"}}, f.owner)
			return err
		}, models.KindInvalid, "unknown role"},
		{"inheriting another organization's role", func() error {
			_, err := f.roles.Create(ctx, f.org, models.RoleInput{Name: "x4", Inherits: []string{"foreign-role"}}, f.owner)
			return err
		}, models.KindInvalid, "unknown role"},
		{"inheriting itself", func() error {
			_, err := f.roles.Update(ctx, f.org, "base", models.RoleInput{Inherits: []string{"base"}}, f.owner)
			return err
		}, models.KindInvalid, "itself"},
		{"cycle over three roles", func() error {
			_, err := f.roles.Update(ctx, f.org, "base", models.RoleInput{Permissions: permsOf("audit.events:read"), Inherits: []string{"top"}}, f.owner)
			return err
		}, models.KindInvalid, "base → top → middle → base"},
		{"editing a default role", func() error {
			_, err := f.roles.Update(ctx, f.org, "org:member", models.RoleInput{}, f.owner)
			return err
		}, models.KindForbidden, "copy one"},
		{"editing another organization's role", func() error {
			_, err := f.roles.Update(ctx, f.org, "foreign-role", models.RoleInput{}, f.owner)
			return err
		}, models.KindNotFound, "role not found"},
		{"deleting a default role", func() error { return f.roles.Delete(ctx, f.org, "org:admin", f.owner) }, models.KindForbidden, "cannot be deleted"},
		{"deleting a role in use", func() error { return f.roles.Delete(ctx, f.org, "held", f.owner) }, models.KindConflict, "held by 1 member"},
		{"deleting an inherited role", func() error { return f.roles.Delete(ctx, f.org, "base", f.owner) }, models.KindConflict, "inherited by middle"},
		{"deleting another organization's role", func() error { return f.roles.Delete(ctx, f.org, "foreign-role", f.owner) }, models.KindNotFound, "not found"},
		{"unknown organization", func() error {
			_, err := f.roles.Create(ctx, "no-such-org", models.RoleInput{Name: "x5"}, models.SystemActor("test"))
			return err
		}, models.KindNotFound, "organization"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if err == nil {
				t.Fatal("accepted")
			}
			if models.KindOf(err) != tc.kind || !strings.Contains(models.MessageOf(err), tc.message) {
				t.Fatalf("got kind %v %q, want kind %v containing %q", models.KindOf(err), models.MessageOf(err), tc.kind, tc.message)
			}
		})
	}
	// Nothing was saved by the refusals.
	set, _ := f.roles.Set(ctx, f.org)
	if len(set["base"].Inherits) != 0 {
		t.Fatalf("base changed: %+v", set["base"])
	}
	if _, err := f.roles.Get(ctx, f.org, "foreign-role"); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("another organization's role is visible: %v", err)
	}
}

func TestRoleStoreNoEscalation(t *testing.T) {
	f := newAccessFixture(t)
	ctx := context.Background()
	cases := []struct {
		name  string
		by    models.Actor
		input models.RoleInput
		ok    bool
	}{
		{"admin grants what it holds", f.admin, models.RoleInput{Name: "e1", Permissions: permsOf("audit.events:read", "audit.alerts:resolve")}, true},
		{"admin grants a permission it lacks", f.admin, models.RoleInput{Name: "e2", Permissions: permsOf("organization.members:update")}, false},
		{"admin grants a wildcard wider than it holds", f.admin, models.RoleInput{Name: "e3", Permissions: permsOf("audit.*:read")}, false},
		{"admin grants everything", f.admin, models.RoleInput{Name: "e4", Permissions: permsOf("*:*")}, false},
		{"admin inherits a stronger role", f.admin, models.RoleInput{Name: "e5", Inherits: []string{models.OwnerRole}}, false},
		{"admin inherits its own role", f.admin, models.RoleInput{Name: "e6", Inherits: []string{"org:admin"}}, true},
		{"member grants what it holds", f.member, models.RoleInput{Name: "e7", Permissions: permsOf("audit.events:read")}, true},
		{"member grants delete", f.member, models.RoleInput{Name: "e8", Permissions: permsOf("audit.events:delete")}, false},
		{"superadmin grants anything", models.Actor{UserID: 0, Email: "root@example.test", Superadmin: true},
			models.RoleInput{Name: "e9", Permissions: permsOf("*:*")}, true},
		{"non-member grants anything", models.Actor{UserID: f.owner.UserID + 10_000, Email: "stranger@example.test"},
			models.RoleInput{Name: "e10", Permissions: permsOf("audit.events:read")}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.roles.Create(ctx, f.org, tc.input, tc.by)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && models.KindOf(err) != models.KindForbidden {
				t.Fatalf("got %v, want forbidden", err)
			}
		})
	}

	// Editing a role one holds cannot lift oneself: held permissions are those before the edit.
	if _, err := f.roles.Create(ctx, f.org, models.RoleInput{Name: "self", Permissions: permsOf("audit.events:read", "audit.roles:update")},
		models.SystemActor("test")); err != nil {
		t.Fatal(err)
	}
	lifter := f.user(t, "lifter", "self")
	_, err := f.roles.Update(ctx, f.org, "self", models.RoleInput{Permissions: permsOf("audit.events:read", "audit.roles:update", "audit.events:delete")}, lifter)
	if models.KindOf(err) != models.KindForbidden {
		t.Fatalf("self-lift: got %v, want forbidden", err)
	}
}

func TestRoleChangesAreAudited(t *testing.T) {
	f := newAccessFixture(t)
	ctx := context.Background()
	if _, err := f.roles.Create(ctx, f.org, models.RoleInput{Name: "audited", Description: "first", Permissions: permsOf("audit.events:read")}, f.owner); err != nil {
		t.Fatal(err)
	}
	if _, err := f.roles.Update(ctx, f.org, "audited", models.RoleInput{Description: "second", Permissions: permsOf("audit.events:read", "audit.reports:read")}, f.owner); err != nil {
		t.Fatal(err)
	}
	if err := f.roles.Delete(ctx, f.org, "audited", f.owner); err != nil {
		t.Fatal(err)
	}
	events := auditEvents(t, f.db, f.org)
	var actions []string
	for _, ev := range events {
		actions = append(actions, ev.Action)
		if *ev.PrincipalID != f.owner.Email {
			t.Errorf("%s: principal %q, want %q", ev.Action, *ev.PrincipalID, f.owner.Email)
		}
		v, err := f.sealer.Verify(&ev)
		if err != nil || !v.HashOK || !v.SignatureOK {
			t.Errorf("%s does not verify: %+v %v", ev.Action, v, err)
		}
	}
	if strings.Join(actions, ",") != "role.create,role.update,role.delete" {
		t.Fatalf("audit actions %v", actions)
	}
	var changes []struct {
		Field         string
		PreviousValue *string
		NewValue      *string
		ChangedBy     string
	}
	if err := f.db.Raw(`SELECT field, previous_value, new_value, changed_by FROM config_change_event
		WHERE organization_id = ? ORDER BY id`, f.org).Scan(&changes).Error; err != nil {
		t.Fatal(err)
	}
	if len(changes) != 3 {
		t.Fatalf("config changes: %+v", changes)
	}
	upd := changes[1]
	if upd.Field != "organization_role.audited" || upd.PreviousValue == nil || upd.NewValue == nil ||
		!strings.Contains(*upd.PreviousValue, `"first"`) || !strings.Contains(*upd.NewValue, "audit.reports") || upd.ChangedBy != f.owner.Email {
		t.Fatalf("update change row: %+v", upd)
	}
	if changes[2].NewValue != nil || changes[2].PreviousValue == nil {
		t.Fatalf("delete change row: %+v", changes[2])
	}
	// The events carry who and from where, the address and agent digested as personal data.
	var details map[string]any
	json.Unmarshal(events[0].Details, &details)
	if details["userId"] == nil || details["ip"] != "192.0.2.1" {
		t.Fatalf("details %v", details)
	}
}

// auditEvents returns org's self-audit events (source console), oldest first.
func auditEvents(t *testing.T, db *gorm.DB, org string) []models.Event {
	t.Helper()
	var evs []models.Event
	if err := db.Where("organization_id = ? AND details->>'source' = 'console'", org).Order(`"timestamp", id`).Find(&evs).Error; err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestRoleStoreNoWeakeningStrongerHolders: editing a role checks what it removes as well
// as what it grants. An admin may not strip a permission it does not hold, nor weaken a role
// (directly or through a role it inherits) held by a member stronger than the admin.
func TestRoleStoreNoWeakeningStrongerHolders(t *testing.T) {
	f := newAccessFixture(t)
	ctx := context.Background()
	sys := models.SystemActor("test")
	create := func(name string, perms []models.Permission, inherits ...string) {
		t.Helper()
		if _, err := f.roles.Create(ctx, f.org, models.RoleInput{Name: name, Permissions: perms, Inherits: inherits}, sys); err != nil {
			t.Fatal(err)
		}
	}
	create("lead", permsOf("audit.events:read", "organization.members:update"))
	create("deputy", nil, models.OwnerRole)
	create("base", permsOf("audit.alerts:resolve"))
	create("chief", permsOf("organization.members:update"), "base")
	create("assistants", permsOf("audit.events:read", "audit.alerts:resolve"))
	f.user(t, "lead", "lead")
	f.user(t, "deputy", "deputy")
	f.user(t, "chief", "chief")
	f.user(t, "assistant", "assistants")

	cases := []struct {
		name  string
		role  string
		input models.RoleInput
		ok    bool
	}{
		{"strip a permission the admin lacks", "lead", models.RoleInput{Permissions: permsOf("audit.events:read")}, false},
		{"drop the inherited owner role", "deputy", models.RoleInput{Permissions: permsOf("audit.events:read")}, false},
		{"weaken a role a stronger member inherits", "base", models.RoleInput{}, false},
		{"weaken a role only weaker members hold", "assistants", models.RoleInput{Permissions: permsOf("audit.events:read")}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, err := f.roles.Get(ctx, f.org, tc.role)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.roles.Update(ctx, f.org, tc.role, tc.input, f.admin)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if models.KindOf(err) != models.KindForbidden {
				t.Fatalf("got %v, want forbidden", err)
			}
			after, err := f.roles.Get(ctx, f.org, tc.role)
			if err != nil {
				t.Fatal(err)
			}
			if !sameRole(before, after) {
				t.Fatalf("a refused edit changed the role: %+v → %+v", before, after)
			}
		})
	}
	// The owner covers everyone, so the same edits are the owner's to make.
	if _, err := f.roles.Update(ctx, f.org, "deputy", models.RoleInput{Permissions: permsOf("audit.events:read")}, f.owner); err != nil {
		t.Fatalf("owner refused: %v", err)
	}
}

func sameRole(a, b *models.Role) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
