package models_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"auditdb/models"
	"auditdb/models/pgtest"
)

const goodPassword = "correct horse battery"

// newOrg creates an organization for the test.
func newOrg(t *testing.T, suffix string) string {
	t.Helper()
	return pgtest.NewOrg(t, suffix)
}

func TestCreateAndAuthenticate(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	users := models.NewUserStore(db)
	org := newOrg(t, "")
	email := org + "@Example.org"
	u, err := users.Create(ctx, models.NewUser{Email: email, Name: " Jane Smith ", Password: goodPassword, OrgID: org, Role: "org:member"})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == 0 || u.Name != "Jane Smith" || u.PasswordHash == goodPassword || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("created %+v", u)
	}
	disabled, err := users.Create(ctx, models.NewUser{Email: "disabled-" + email, Password: goodPassword, OrgID: org, Role: "org:member"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(`UPDATE users SET disabled = true WHERE id = ?`, disabled.ID).Error; err != nil {
		t.Fatal(err)
	}

	t.Run("right password, email in any case", func(t *testing.T) {
		for _, e := range []string{email, strings.ToUpper(email), "  " + strings.ToLower(email) + " "} {
			got, err := users.Authenticate(ctx, e, goodPassword)
			if err != nil || got.ID != u.ID {
				t.Fatalf("Authenticate(%q) = %v, %v", e, got, err)
			}
		}
	})
	for _, c := range []struct{ name, email, password string }{
		{"wrong password", email, goodPassword + "!"},
		{"empty password", email, ""},
		{"password in other case", email, strings.ToUpper(goodPassword)},
		{"unknown user", "nobody-" + email, goodPassword},
		{"disabled user", "disabled-" + email, goodPassword},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := users.Authenticate(ctx, c.email, c.password)
			if got != nil || err != models.ErrBadCredentials || !errors.Is(err, models.ErrBadCredentials) {
				t.Fatalf("Authenticate = %v, %v; want ErrBadCredentials", got, err)
			}
			if models.KindOf(err) != models.KindUnauthorized || models.MessageOf(err) != "email or password is incorrect" {
				t.Fatalf("kind %v, message %q", models.KindOf(err), models.MessageOf(err))
			}
		})
	}
}

func TestCreateUserRejects(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	users := models.NewUserStore(db)
	org := newOrg(t, "")
	taken := org + "@example.org"
	if _, err := users.Create(ctx, models.NewUser{Email: taken, Password: goodPassword, OrgID: org, Role: "org:admin"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		nu    models.NewUser
		kind  models.Kind
		field string
	}{
		{"duplicate email", models.NewUser{Email: taken, Password: goodPassword, OrgID: org, Role: "org:member"}, models.KindConflict, "email"},
		{"duplicate email in other case", models.NewUser{Email: strings.ToUpper(taken), Password: goodPassword, Superadmin: true}, models.KindConflict, "email"},
		{"short password", models.NewUser{Email: "short-" + taken, Password: strings.Repeat("x", models.MinPasswordLength-1), OrgID: org, Role: "org:member"}, models.KindInvalid, "password"},
		{"not an email", models.NewUser{Email: "not-an-email", Password: goodPassword, OrgID: org, Role: "org:member"}, models.KindInvalid, "email"},
		{"display name form", models.NewUser{Email: "Jane <jane-" + taken + ">", Password: goodPassword, OrgID: org, Role: "org:member"}, models.KindInvalid, "email"},
		{"unknown role", models.NewUser{Email: "role-" + taken, Password: goodPassword, OrgID: org, Role: "org:god"}, models.KindInvalid, "role"},
		{"unknown organization", models.NewUser{Email: "org-" + taken, Password: goodPassword, OrgID: org + "-missing", Role: "org:member"}, models.KindNotFound, ""},
		{"neither organization nor superadmin", models.NewUser{Email: "none-" + taken, Password: goodPassword}, models.KindInvalid, "org"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, err := users.Create(ctx, c.nu)
			if u != nil || models.KindOf(err) != c.kind || models.FieldOf(err) != c.field {
				t.Fatalf("Create = %v, %v; want kind %v field %q", u, err, c.kind, c.field)
			}
		})
	}
	t.Run("a failed membership leaves no user behind", func(t *testing.T) {
		var n int64
		db.Raw(`SELECT count(*) FROM users WHERE lower(email) IN (lower(?), lower(?))`, "role-"+taken, "org-"+taken).Scan(&n)
		if n != 0 {
			t.Fatalf("%d users left by failed creates", n)
		}
	})
	t.Run("membership with unknown role", func(t *testing.T) {
		var id int64
		db.Raw(`SELECT id FROM users WHERE email = ?`, taken).Scan(&id)
		err := users.AddMembership(ctx, id, org, "superuser")
		if models.KindOf(err) != models.KindInvalid || models.FieldOf(err) != "role" {
			t.Fatalf("AddMembership = %v, want KindInvalid on role", err)
		}
		// A role defined by another organization is not a role here either.
		other := newOrg(t, "other")
		db.Exec(`INSERT INTO organization_role (organization_id, name) VALUES (?, 'org:auditor')`, other)
		err = users.AddMembership(ctx, id, org, "org:auditor")
		if models.KindOf(err) != models.KindInvalid {
			t.Fatalf("AddMembership with another organization's role = %v, want KindInvalid", err)
		}
	})
}

func TestOrganizationsOfUser(t *testing.T) {
	ctx := context.Background()
	users := models.NewUserStore(pgtest.DB(t))
	a, b := newOrg(t, "a"), newOrg(t, "b")
	member, err := users.Create(ctx, models.NewUser{Email: a + "@example.org", Password: goodPassword, OrgID: a, Role: "org:member"})
	if err != nil {
		t.Fatal(err)
	}
	super, err := users.Create(ctx, models.NewUser{Email: "root-" + a + "@example.org", Password: goodPassword, Superadmin: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := users.Organizations(ctx, member)
	if err != nil || len(got) != 1 || got[0].ID != a || got[0].Role != "org:member" {
		t.Fatalf("member sees %+v, %v; want only %s as org:member", got, err, a)
	}
	if err := users.AddMembership(ctx, member.ID, b, "org:admin"); err != nil {
		t.Fatal(err)
	}
	if err := users.AddMembership(ctx, member.ID, a, "org:owner"); err != nil { // changes the role
		t.Fatal(err)
	}
	got, _ = users.Organizations(ctx, member)
	roles := map[string]string{}
	for _, o := range got {
		roles[o.ID] = o.Role
	}
	if len(got) != 2 || roles[a] != "org:owner" || roles[b] != "org:admin" {
		t.Fatalf("member sees %+v", got)
	}
	all, err := models.NewOrgStore(pgtest.DB(t)).All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err = users.Organizations(ctx, super)
	if err != nil || len(got) != len(all) {
		t.Fatalf("superadmin sees %d organizations (%v), there are %d", len(got), err, len(all))
	}
	for _, o := range got {
		if o.Role != "superadmin" {
			t.Fatalf("superadmin listed with role %q in %s", o.Role, o.ID)
		}
	}
}

// TestChangePasswordByIsOneChange: the new password and its audit event commit together;
// when the audit cannot be written the password stays as it was.
func TestChangePasswordByIsOneChange(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	org := testOrg(t, "")
	if _, err := models.NewOrgStore(db).Create(ctx, org, "Passwords"); err != nil {
		t.Fatal(err)
	}
	email := "pw-" + org + "@example.test"
	u, err := models.NewUserStore(db).Create(ctx, models.NewUser{Email: email, Password: "the first password", OrgID: org, Role: "org:member"})
	if err != nil {
		t.Fatal(err)
	}
	by := models.Actor{UserID: u.ID, Email: email}

	// A store without a trail cannot audit, so nothing changes.
	if err := models.NewUserStore(db).ChangePasswordBy(ctx, u.ID, "the first password", "the second password", nil, "", by); err == nil {
		t.Fatal("a password changed without its audit event")
	}
	users := models.NewAuditedUserStore(db, testTrail(t))
	if _, err := users.Authenticate(ctx, email, "the first password"); err != nil {
		t.Fatalf("the first password stopped working after a refused change: %v", err)
	}
	if err := users.ChangePasswordBy(ctx, u.ID, "the first password", "the second password", nil, "", by); err != nil {
		t.Fatal(err)
	}
	if _, err := users.Authenticate(ctx, email, "the second password"); err != nil {
		t.Fatalf("the new password: %v", err)
	}
	if n := countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = ?`, org, models.ActionPasswordChange); n != 1 {
		t.Fatalf("%d auth.password.change events, want 1", n)
	}
}

// TestTimeZoneLocationRefusesWhatIsNotAZone: IANA names load; the longest one in the tz
// database fits the column; names that are not zones, the server's "Local" and paths are
// refused on the field time_zone.
func TestTimeZoneLocationRefusesWhatIsNotAZone(t *testing.T) {
	longest := "America/Argentina/ComodRivadavia"
	for _, ok := range []string{"Europe/Berlin", "America/Indiana/Indianapolis", "UTC", longest} {
		if _, err := models.TimeZoneLocation(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if len(longest) > models.MaxTimeZoneLength {
		t.Fatalf("%s does not fit users.time_zone", longest)
	}
	var width int
	if err := pgtest.DB(t).Raw(`SELECT character_maximum_length FROM information_schema.columns
		WHERE table_name = 'users' AND column_name = 'time_zone'`).Scan(&width).Error; err != nil || width != models.MaxTimeZoneLength {
		t.Fatalf("users.time_zone is %d wide (%v), want %d", width, err, models.MaxTimeZoneLength)
	}
	for _, bad := range []string{"", "Local", "Mars/Base", "/etc/localtime", "../zoneinfo/UTC", "Europe/" + strings.Repeat("x", 64), "posixrules"} {
		_, err := models.TimeZoneLocation(bad)
		if models.KindOf(err) != models.KindInvalid || !strings.Contains(err.Error(), "time_zone") {
			t.Errorf("%q: %v, want a refusal on time_zone", bad, err)
		}
	}
}
