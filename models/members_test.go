package models_test

import (
	"context"
	"strings"
	"testing"

	"auditdb/models"
)

func TestMemberAddNewUserGetsOneTimePassword(t *testing.T) {
	f := newAccessFixture(t)
	ctx := context.Background()
	email := "new-" + f.org + "@example.test"
	added, err := f.members.Add(ctx, f.org, models.NewMember{Email: email, Name: "New Person", Role: "org:member"}, models.SystemActor("test"))
	if err != nil {
		t.Fatal(err)
	}
	if !added.NewUser || len(added.OneTimePassword) < models.MinPasswordLength || !added.MustChangePassword {
		t.Fatalf("added %+v", added)
	}
	u, err := f.users.Authenticate(ctx, email, added.OneTimePassword)
	if err != nil || !u.MustChangePassword {
		t.Fatalf("sign in with the one-time password: %v %+v", err, u)
	}
	if err := f.users.ChangePassword(ctx, u.ID, added.OneTimePassword, "a brand new password", nil); err != nil {
		t.Fatal(err)
	}
	if u, _ := f.users.Authenticate(ctx, email, "a brand new password"); u == nil || u.MustChangePassword {
		t.Fatalf("after change: %+v", u)
	}
	if _, err := f.users.Authenticate(ctx, email, added.OneTimePassword); err != models.ErrBadCredentials {
		t.Fatalf("the one-time password still works: %v", err)
	}

	// An existing user is added without a password; adding twice is refused.
	other := testOrg(t, "second")
	if _, err := models.NewOrgStore(f.db).Create(ctx, other, "Second"); err != nil {
		t.Fatal(err)
	}
	again, err := f.members.Add(ctx, other, models.NewMember{Email: strings.ToUpper(email[:1]) + email[1:], Role: "org:admin"}, models.SystemActor("test"))
	if err != nil || again.NewUser || again.OneTimePassword != "" || again.UserID != u.ID {
		t.Fatalf("existing user: %+v %v", again, err)
	}
	if _, err := f.members.Add(ctx, other, models.NewMember{Email: email, Role: "org:member"}, models.SystemActor("test")); models.KindOf(err) != models.KindConflict {
		t.Fatalf("second add: %v", err)
	}
	if _, err := f.members.Add(ctx, other, models.NewMember{Email: "x-" + email, Role: "nope"}, models.SystemActor("test")); models.KindOf(err) != models.KindInvalid {
		t.Fatalf("unknown role: %v", err)
	}
}

func TestMemberChangesKeepAnOwnerAndRefuseEscalation(t *testing.T) {
	f := newAccessFixture(t)
	ctx := context.Background()
	outsider := testOrg(t, "outsider")
	if _, err := models.NewOrgStore(f.db).Create(ctx, outsider, "Outsider"); err != nil {
		t.Fatal(err)
	}
	stranger, err := f.users.Create(ctx, models.NewUser{Email: "stranger-" + f.org + "@example.test", Password: "long enough password",
		OrgID: outsider, Role: "org:member"})
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name string
		do   func() error
		kind models.Kind // KindInternal means success
	}{
		{"last owner cannot be demoted", func() error {
			return f.members.SetRole(ctx, f.org, f.owner.UserID, "org:admin", f.owner)
		}, models.KindConflict},
		{"last owner cannot be removed", func() error { return f.members.Remove(ctx, f.org, f.owner.UserID, f.owner) }, models.KindConflict},
		{"admin cannot make itself owner", func() error {
			return f.members.SetRole(ctx, f.org, f.admin.UserID, models.OwnerRole, f.admin)
		}, models.KindForbidden},
		{"admin cannot demote the owner", func() error {
			return f.members.SetRole(ctx, f.org, f.owner.UserID, "org:member", f.admin)
		}, models.KindForbidden},
		{"admin cannot invite an owner", func() error {
			_, err := f.members.Invite(ctx, f.org, models.NewMember{Email: "o2-" + f.org + "@example.test", Role: models.OwnerRole}, f.admin)
			return err
		}, models.KindForbidden},
		{"an owner cannot attach an account without its consent", func() error {
			_, err := f.members.Add(ctx, f.org, models.NewMember{Email: "o3-" + f.org + "@example.test", Role: "org:member"}, f.owner)
			return err
		}, models.KindForbidden},
		{"another organization's user is not a member here", func() error {
			return f.members.SetRole(ctx, f.org, stranger.ID, "org:admin", f.owner)
		}, models.KindNotFound},
		{"removing another organization's user", func() error { return f.members.Remove(ctx, f.org, stranger.ID, f.owner) }, models.KindNotFound},
		{"unknown role", func() error { return f.members.SetRole(ctx, f.org, f.member.UserID, "nope", f.owner) }, models.KindInvalid},
		{"owner promotes the admin", func() error {
			return f.members.SetRole(ctx, f.org, f.admin.UserID, models.OwnerRole, f.owner)
		}, models.KindInternal},
		{"with two owners one may step down", func() error {
			return f.members.SetRole(ctx, f.org, f.owner.UserID, "org:member", f.owner)
		}, models.KindInternal},
		{"the remaining owner is the last again", func() error { return f.members.Remove(ctx, f.org, f.admin.UserID, f.admin) }, models.KindConflict},
		{"owner removes a member", func() error { return f.members.Remove(ctx, f.org, f.member.UserID, f.admin) }, models.KindInternal},
	}
	for _, st := range steps {
		err := st.do()
		switch {
		case st.kind == models.KindInternal && err != nil:
			t.Fatalf("%s: %v", st.name, err)
		case st.kind != models.KindInternal && models.KindOf(err) != st.kind:
			t.Fatalf("%s: got %v (kind %v), want kind %v", st.name, err, models.KindOf(err), st.kind)
		}
	}
	list, err := f.members.List(ctx, f.org)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[int64]string{}
	for _, m := range list {
		roles[m.UserID] = m.Role
	}
	if roles[f.admin.UserID] != models.OwnerRole || roles[f.owner.UserID] != "org:member" || roles[f.member.UserID] != "" {
		t.Fatalf("final roles %v", roles)
	}
	var actions []string
	for _, ev := range auditEvents(t, f.db, f.org) {
		actions = append(actions, ev.Action)
	}
	if strings.Join(actions, ",") != "member.update,member.update,member.remove" {
		t.Fatalf("audited %v", actions)
	}
}

// TestInvitations: an invitation attaches nothing until the invited account accepts; only
// that account can accept or decline it; an expired one is refused; each step is audited.
func TestInvitations(t *testing.T) {
	f := newAccessFixture(t)
	ctx := context.Background()
	other := testOrg(t, "inv")
	if _, err := models.NewOrgStore(f.db).Create(ctx, other, "Other"); err != nil {
		t.Fatal(err)
	}
	// f.member belongs to f.org; the other organization's owner invites it.
	otherOwner, err := f.users.Create(ctx, models.NewUser{Email: "owner-" + other + "@example.test", Password: "long enough password",
		OrgID: other, Role: models.OwnerRole})
	if err != nil {
		t.Fatal(err)
	}
	by := models.Actor{UserID: otherOwner.ID, Email: otherOwner.Email}
	inv, err := f.members.Invite(ctx, other, models.NewMember{Email: f.member.Email, Role: "org:member"}, by)
	if err != nil || inv.Email != f.member.Email || inv.Emailed {
		t.Fatalf("invite: %+v %v", inv, err)
	}
	if _, err := f.members.Get(ctx, other, f.member.UserID); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("a member before accepting: %v", err)
	}
	pending, err := f.members.Invitations(ctx, f.member.UserID)
	if err != nil || len(pending) != 1 || pending[0].OrgID != other || pending[0].InvitedBy != otherOwner.Email {
		t.Fatalf("pending: %+v %v", pending, err)
	}
	id := pending[0].ID
	if _, err := f.members.AcceptInvitation(ctx, id, f.admin); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("another account accepting: %v, want not found", err)
	}
	if err := f.members.DeclineInvitation(ctx, id, by); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("the inviter declining: %v, want not found", err)
	}
	if err := f.db.Exec(`UPDATE membership_invitations SET expires_at = now() - interval '1 second' WHERE id = ?`, id).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := f.members.AcceptInvitation(ctx, id, f.member); models.KindOf(err) != models.KindConflict {
		t.Fatalf("accepting an expired invitation: %v, want conflict", err)
	}
	// A new invitation replaces the pending one.
	if _, err := f.members.Invite(ctx, other, models.NewMember{Email: f.member.Email, Role: "org:member"}, by); err != nil {
		t.Fatal(err)
	}
	if org, err := f.members.AcceptInvitation(ctx, id, f.member); err != nil || org != other {
		t.Fatalf("accept: %q %v", org, err)
	}
	m, err := f.members.Get(ctx, other, f.member.UserID)
	if err != nil || m.Role != "org:member" {
		t.Fatalf("after accepting: %+v %v", m, err)
	}
	if _, err := f.members.AcceptInvitation(ctx, id, f.member); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("accepting twice: %v", err)
	}
	var actions []string
	if err := f.db.Raw(`SELECT action FROM audit_log WHERE organization_id = ? AND action LIKE 'member.%' ORDER BY id`, other).
		Scan(&actions).Error; err != nil {
		t.Fatal(err)
	}
	if strings.Join(actions, ",") != "member.invite,member.invite,member.invitation.accept" {
		t.Fatalf("self-audit: %v", actions)
	}
}

// TestInvitingCreatesNoAccount: an invitation to an email without an account creates none
// and hands the inviter nothing that signs in; the account a superadmin creates later for
// that email finds the invitation and may accept it, and only an account whose email the
// invitation names may.
func TestInvitingCreatesNoAccount(t *testing.T) {
	f := newAccessFixture(t)
	ctx := context.Background()
	email := "Newhire-" + f.org + "@Example.test"
	inv, err := f.members.Invite(ctx, f.org, models.NewMember{Email: email, Name: "New Hire", Role: "org:member"}, f.admin)
	if err != nil || inv.Emailed {
		t.Fatalf("invite: %+v %v", inv, err)
	}
	var accounts int64
	if err := f.db.Raw(`SELECT count(*) FROM users WHERE lower(email) = lower(?)`, email).Scan(&accounts).Error; err != nil {
		t.Fatal(err)
	}
	if accounts != 0 {
		t.Fatalf("inviting created %d accounts", accounts)
	}
	// Another account cannot accept it, not even one the invitation is recorded against.
	var id int64
	if err := f.db.Raw(`UPDATE membership_invitations SET user_id = ? WHERE organization_id = ? AND email = ? RETURNING id`,
		f.member.UserID, f.org, email).Scan(&id).Error; err != nil || id == 0 {
		t.Fatalf("invitation id %d: %v", id, err)
	}
	if _, err := f.members.AcceptInvitation(ctx, id, f.member); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("an account of another email accepting: %v, want not found", err)
	}
	if pending, err := f.members.Invitations(ctx, f.member.UserID); err != nil || len(pending) != 0 {
		t.Fatalf("another email's invitation listed: %+v %v", pending, err)
	}
	// A superadmin creates the account in another organization (emails compare
	// case-insensitively).
	home := testOrg(t, "home")
	if _, err := models.NewOrgStore(f.db).Create(ctx, home, "Home"); err != nil {
		t.Fatal(err)
	}
	u, err := f.users.Create(ctx, models.NewUser{Email: strings.ToLower(email), Password: "long enough password", OrgID: home, Role: "org:member"})
	if err != nil {
		t.Fatal(err)
	}
	pending, err := f.members.Invitations(ctx, u.ID)
	if err != nil || len(pending) != 1 || pending[0].ID != id {
		t.Fatalf("pending of the new account: %+v %v", pending, err)
	}
	// An account an inviter created with a password it saw (the earlier flow) accepts nothing.
	if err := f.db.Exec(`UPDATE users SET created_by_inviter = true WHERE id = ?`, u.ID).Error; err != nil {
		t.Fatal(err)
	}
	newcomer := models.Actor{UserID: u.ID, Email: u.Email}
	if _, err := f.members.AcceptInvitation(ctx, id, newcomer); err != models.ErrCreatedByInviter {
		t.Fatalf("an account created by an inviter accepting: %v", err)
	}
	if err := f.db.Exec(`UPDATE users SET created_by_inviter = false WHERE id = ?`, u.ID).Error; err != nil {
		t.Fatal(err)
	}
	if org, err := f.members.AcceptInvitation(ctx, id, newcomer); err != nil || org != f.org {
		t.Fatalf("accept: %q %v", org, err)
	}
	if m, err := f.members.Get(ctx, f.org, u.ID); err != nil || m.Role != "org:member" {
		t.Fatalf("after accepting: %+v %v", m, err)
	}
}
