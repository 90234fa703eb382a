package models_test

import (
	"context"
	"testing"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// TestCreateWithOwner: an organization and its first owner are one change. A refusal about
// the owner, before or inside the transaction, leaves no organization behind; a new email
// gets an account with a one-time password, an existing account is attached directly.
func TestCreateWithOwner(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	orgs := models.NewAuditedOrgStore(db, testTrail(t))
	refreshed := 0
	orgs.Refresh.Set(func(context.Context) { refreshed++ })
	super := models.SystemActor("test")
	orgExists := func(id string) bool {
		return countWhere(t, `SELECT count(*) FROM organizations WHERE id = ?`, id) == 1
	}

	refused := []struct {
		name  string
		owner models.NewMember
		by    models.Actor
		kind  models.Kind
		field string
	}{
		{"a bad email", models.NewMember{Email: "not an email"}, super, models.KindInvalid, "owner"},
		{"an unknown role, refused inside the transaction", models.NewMember{Email: "x@example.test", Role: "no-such-role"}, super, models.KindInvalid, "role"},
		{"an actor who must invite", models.NewMember{Email: "y@example.test"}, actor("owner"), models.KindForbidden, ""},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			id := testOrg(t, "")
			_, _, err := orgs.CreateWithOwner(ctx, id, "Refused", tc.owner, tc.by)
			if models.KindOf(err) != tc.kind || models.FieldOf(err) != tc.field {
				t.Fatalf("err %v (kind %v field %q), want kind %v field %q", err, models.KindOf(err), models.FieldOf(err), tc.kind, tc.field)
			}
			if orgExists(id) || refreshed != 0 {
				t.Fatal("the organization was created although its owner was refused")
			}
		})
	}

	before := refreshed
	id := testOrg(t, "new")
	email := "founder-" + id + "@example.test"
	org, added, err := orgs.CreateWithOwner(ctx, id, "New", models.NewMember{Email: email}, super)
	if err != nil || org.ID != id || added == nil || !added.NewUser || added.OneTimePassword == "" || added.Role != models.OwnerRole {
		t.Fatalf("create with a new owner: %+v %+v %v", org, added, err)
	}
	if refreshed != before+1 {
		t.Fatalf("policy refreshed %d times after one change, want once", refreshed-before)
	}

	// The same account becomes the owner of a second organization without a new password.
	second := testOrg(t, "second")
	_, again, err := orgs.CreateWithOwner(ctx, second, "Second", models.NewMember{Email: email}, super)
	if err != nil || again.NewUser || again.OneTimePassword != "" || again.UserID != added.UserID {
		t.Fatalf("existing account: %+v %v", again, err)
	}
	// Without an email, only the organization is created.
	third := testOrg(t, "third")
	if _, none, err := orgs.CreateWithOwner(ctx, third, "Third", models.NewMember{}, super); err != nil || none != nil || !orgExists(third) {
		t.Fatalf("no owner: %+v %v", none, err)
	}
	// A taken id is a conflict on the id, and the owner is not touched.
	if _, _, err := orgs.CreateWithOwner(ctx, id, "Again", models.NewMember{Email: "z-" + email}, super); models.KindOf(err) != models.KindConflict || models.FieldOf(err) != "id" {
		t.Fatalf("taken id: %v", err)
	}
	if n := countWhere(t, `SELECT count(*) FROM users WHERE email = ?`, "z-"+email); n != 0 {
		t.Fatalf("the owner of a refused organization was created: %d", n)
	}
	if n := countWhere(t, `SELECT count(*) FROM memberships WHERE organization_id IN (?, ?) AND role = ?`, id, second, models.OwnerRole); n != 2 {
		t.Fatalf("%d owners, want one per organization", n)
	}
}
