package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

// TestAddingAnExistingAccountInvitesIt: organization B adding the email of an account
// organization A created must not hand that account (and so A's people) B's events. The
// account becomes a member only when its owner, signed in, accepts; the form's answer is the
// same whether the email had an account or not; nobody else can accept for it; an expired
// invitation is refused.
func TestAddingAnExistingAccountInvitesIt(t *testing.T) {
	env := webtest.New(t)
	orgA, orgB := env.Org("claim-a"), env.Org("claim-b")
	victimEmail := env.User(orgA, "org:member") // an account org A created
	evB := env.Events(models.Event{OrganizationID: orgB, Timestamp: time.Now().Add(-time.Minute), Action: "b.secret", Status: "success"})
	ownerB := env.Login(env.User(orgB, models.OwnerRole))

	existing := ownerB.PostForm("/members", url.Values{"email": {victimEmail}, "role": {"org:member"}})
	newEmail := webtest.Unique("fresh") + "@example.test"
	fresh := ownerB.PostForm("/members", url.Values{"email": {newEmail}, "role": {"org:member"}})
	if existing.StatusCode != http.StatusOK || fresh.StatusCode != http.StatusOK {
		t.Fatalf("invite: status %d (existing) and %d (new): %.300s", existing.StatusCode, fresh.StatusCode, existing.Body)
	}
	if webtest.WithoutTokens(strings.ReplaceAll(existing.Body, victimEmail, "EMAIL")) != webtest.WithoutTokens(strings.ReplaceAll(fresh.Body, newEmail, "EMAIL")) {
		t.Fatal("the answer differs between an email with an account and one without")
	}
	if strings.Contains(ownerB.Get("/members").Body, victimEmail) {
		t.Fatal("the invited account is listed as a member before accepting")
	}

	// Before accepting, the account cannot enter B, let alone read its events.
	victim := env.Login(victimEmail)
	if r := victim.PostForm("/session/org", url.Values{"org": {orgB}}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("switch to B before accepting: status %d, want 404", r.StatusCode)
	}
	if r := victim.Get("/events/" + itoa(evB[0].ID)); r.StatusCode == http.StatusOK {
		t.Fatal("the invited account reads B's event before accepting")
	}

	// The invitation is on the account's dashboard, with accept and decline forms.
	home := victim.Get("/")
	accept := between(home.Body, `data-testid="invitation-accept" action="`, `"`)
	if home.StatusCode != http.StatusOK || accept == "" || !strings.Contains(home.Body, orgB) {
		t.Fatalf("dashboard: %d, no invitation to %s: %.500s", home.StatusCode, orgB, home.Body)
	}

	// Nobody else can accept it, not even B's owner.
	if r := ownerB.PostForm(accept, url.Values{}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("another account accepting: status %d, want 404", r.StatusCode)
	}
	// Without the form's token, the accept is refused.
	if r := victim.PostRaw(accept, url.Values{}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("accept without a CSRF token: status %d, want 403", r.StatusCode)
	}
	// An expired invitation is refused.
	if err := env.DB.Exec(`UPDATE membership_invitations SET expires_at = now() - interval '1 minute' WHERE organization_id = ?`, orgB).Error; err != nil {
		t.Fatal(err)
	}
	if r := victim.PostForm(accept, url.Values{}); r.StatusCode != http.StatusConflict || !strings.Contains(r.Body, "expired") {
		t.Fatalf("accept an expired invitation: status %d, want 409: %.300s", r.StatusCode, r.Body)
	}
	if err := env.DB.Exec(`UPDATE membership_invitations SET expires_at = now() + interval '1 day' WHERE organization_id = ?`, orgB).Error; err != nil {
		t.Fatal(err)
	}

	if r := victim.PostForm(accept, url.Values{}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("accept: status %d: %.300s", r.StatusCode, r.Body)
	}
	victim.SwitchOrg(orgB)
	if r := victim.Get("/events/" + itoa(evB[0].ID)); r.StatusCode != http.StatusOK {
		t.Fatalf("after accepting, B's event: status %d", r.StatusCode)
	}
	if !strings.Contains(ownerB.Get("/members").Body, victimEmail) {
		t.Fatal("the account is not listed as a member after accepting")
	}
	var actions []string
	env.DB.Raw(`SELECT action FROM audit_log WHERE organization_id = ? AND action LIKE 'member.%' ORDER BY id`, orgB).Scan(&actions)
	if strings.Join(actions, ",") != "member.invite,member.invite,member.invitation.accept" {
		t.Fatalf("self-audit of B: %v", actions)
	}
}

// TestDecliningAnInvitation: a declined invitation cannot be accepted afterwards.
func TestDecliningAnInvitation(t *testing.T) {
	env := webtest.New(t)
	orgA, orgB := env.Org("decl-a"), env.Org("decl-b")
	email := env.User(orgA, "org:member")
	ownerB := env.Login(env.User(orgB, models.OwnerRole))
	if r := ownerB.PostForm("/members", url.Values{"email": {email}, "role": {"org:member"}}); r.StatusCode != http.StatusOK {
		t.Fatalf("invite: %d", r.StatusCode)
	}
	c := env.Login(email)
	home := c.Get("/")
	accept := between(home.Body, `data-testid="invitation-accept" action="`, `"`)
	decline := between(home.Body, `data-testid="invitation-decline" action="`, `"`)
	if r := c.PostForm(decline, url.Values{}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("decline: status %d", r.StatusCode)
	}
	if r := c.PostForm(accept, url.Values{}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("accept after declining: status %d, want 404", r.StatusCode)
	}
	if strings.Contains(c.Get("/").Body, `data-testid="invitation-accept"`) {
		t.Fatal("a declined invitation is still offered")
	}
}

// TestAnInviterCannotPreClaimAnAccount: organization A invites an email that has no account.
// Nothing A sees signs anyone in, and no account exists, so when organization B later invites
// the same email, A has no way to accept B's invitation; only the account a superadmin
// creates for that email can. An account an inviter created under the earlier flow (with a
// password the inviter saw) accepts nothing.
func TestAnInviterCannotPreClaimAnAccount(t *testing.T) {
	env := webtest.New(t)
	acme, northwind := env.Org("acme"), env.Org("northwind")
	acmeOwner := env.Login(env.User(acme, models.OwnerRole))
	northwindOwner := env.Login(env.User(northwind, models.OwnerRole))
	newhire := webtest.Unique("newhire") + "@northwind-clinic.example"

	r := acmeOwner.PostForm("/members", url.Values{"email": {newhire}, "role": {"org:member"}})
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "Invitation recorded for "+newhire) {
		t.Fatalf("invite: %d %.300s", r.StatusCode, r.Body)
	}
	if strings.Contains(r.Body, "one-time-password") || strings.Contains(r.Body, "One-time password") {
		t.Fatalf("the answer shows a code or password: %.500s", r.Body)
	}
	var accounts int64
	env.DB.Raw(`SELECT count(*) FROM users WHERE lower(email) = lower(?)`, newhire).Scan(&accounts)
	if accounts != 0 {
		t.Fatalf("inviting created %d accounts", accounts)
	}
	// Nothing signs in as the email.
	if r := env.Anonymous().PostForm("/login", url.Values{"email": {newhire}, "password": {webtest.Password}}); r.StatusCode == http.StatusSeeOther {
		t.Fatal("someone signed in as the invited email")
	}

	// B invites the same email as admin; the person who controls the address gets an
	// account from a superadmin and sees both invitations.
	if r := northwindOwner.PostForm("/members", url.Values{"email": {newhire}, "role": {"org:admin"}}); r.StatusCode != http.StatusOK {
		t.Fatalf("northwind invites: %d", r.StatusCode)
	}
	env.UserWithEmail(env.Org("home"), "org:member", newhire)
	person := env.Login(newhire)
	home := person.Get("/")
	if strings.Count(home.Body, `data-testid="invitation-accept"`) != 2 {
		t.Fatalf("dashboard does not offer both invitations: %.600s", home.Body)
	}

	// An account an inviter created with a password it saw accepts no invitation.
	if err := env.DB.Exec(`UPDATE users SET created_by_inviter = true WHERE lower(email) = lower(?)`, newhire).Error; err != nil {
		t.Fatal(err)
	}
	accept := between(home.Body, `data-testid="invitation-accept" action="`, `"`)
	if r := person.PostForm(accept, url.Values{}); r.StatusCode != http.StatusConflict || !strings.Contains(r.Body, "created by an organization") {
		t.Fatalf("an inviter-created account accepting: %d %.300s", r.StatusCode, r.Body)
	}
	if err := env.DB.Exec(`UPDATE users SET created_by_inviter = false WHERE lower(email) = lower(?)`, newhire).Error; err != nil {
		t.Fatal(err)
	}
	if r := person.PostForm(accept, url.Values{}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("accept: %d %.300s", r.StatusCode, r.Body)
	}
}
