package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/web/webtest"
)

// TestRoutePermissions asks every console route as each default role, a superadmin and a
// signed-in user of no organization, and checks who gets through and who gets the 403
// page. One row per route.
func TestRoutePermissions(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("perm")
	clients := map[string]*webtest.Client{
		"member":     env.Login(env.User(org, "org:member")),
		"admin":      env.Login(env.User(org, "org:admin")),
		"owner":      env.Login(env.User(org, models.OwnerRole)),
		"superadmin": env.Login(env.User("", "")),
	}
	clients["superadmin"].SwitchOrg(org)
	// A user whose only membership is gone: signed in, in no organization.
	loner := env.User(env.Org("gone"), "org:member")
	clients["nobody"] = env.Login(loner)
	env.DB.Exec(`DELETE FROM memberships WHERE user_id = ?`, env.UserID(loner))
	env.Services.Policy.Refresh(context.Background())

	all := []string{"member", "admin", "owner", "superadmin", "nobody"}
	cases := []struct {
		path    string
		allowed []string
	}{
		{"/", all},
		{"/events", []string{"member", "admin", "owner", "superadmin"}},
		{"/alerts", []string{"admin", "owner", "superadmin"}},
		{"/errors", []string{"admin", "owner", "superadmin"}},
		{"/reports", []string{"member", "admin", "owner", "superadmin"}},
		{"/retention", []string{"owner", "superadmin"}},
		{"/gdpr", []string{"owner", "superadmin"}},
		{"/settings", []string{"owner", "superadmin"}},
		{"/roles", []string{"owner", "superadmin"}},
		{"/roles/new", []string{"owner", "superadmin"}},
		{"/roles/org:member", []string{"owner", "superadmin"}},
		{"/members", []string{"owner", "superadmin"}},
		{"/orgs", []string{"superadmin"}},
		{"/account/password", all},
	}
	for _, tc := range cases {
		for _, who := range all {
			t.Run(tc.path+" as "+who, func(t *testing.T) {
				r := clients[who].Get(tc.path)
				want := http.StatusForbidden
				for _, a := range tc.allowed {
					if a == who {
						want = http.StatusOK
					}
				}
				if r.StatusCode != want {
					t.Fatalf("status %d, want %d", r.StatusCode, want)
				}
				if want == http.StatusForbidden && !strings.Contains(r.Body, `data-testid="error-status">403`) {
					t.Fatalf("no 403 page: %.300s", r.Body)
				}
			})
		}
	}

	t.Run("navigation shows only what the role allows", func(t *testing.T) {
		body := clients["member"].Get("/").Body
		for _, key := range []string{"dashboard", "events", "reports"} {
			if !strings.Contains(body, `data-testid="nav-`+key+`"`) {
				t.Errorf("member lacks nav %s", key)
			}
		}
		for _, key := range []string{"alerts", "errors", "retention", "gdpr", "roles", "members", "orgs", "settings"} {
			if strings.Contains(body, `data-testid="nav-`+key+`"`) {
				t.Errorf("member sees nav %s", key)
			}
		}
		if !strings.Contains(clients["superadmin"].Get("/").Body, `data-testid="nav-orgs"`) {
			t.Error("superadmin lacks the organizations entry")
		}
	})
}

// tenantObjects are objects of one organization that console routes address by id.
type tenantObjects struct {
	Org          string
	EventID      int64
	Role         string
	MemberID     int64
	PresetID     int64
	APIKeyID     int64
	DeadLetterID int64
	Marker       string // a string only this organization's objects contain
}

// newTenantObjects makes a fresh set of objects in org.
func newTenantObjects(t *testing.T, env *webtest.Env, org string) tenantObjects {
	t.Helper()
	marker := webtest.Unique("secret-")
	ev := env.Events(models.Event{OrganizationID: org, Timestamp: time.Now().Add(-time.Minute), Action: marker + ".action", Status: "success"})
	role := strings.ReplaceAll(webtest.Unique("r"), "-", "")
	env.Role(org, role, []string{"audit.events:read"})
	env.DB.Exec(`UPDATE organization_role SET description = ? WHERE organization_id = ? AND name = ?`, marker, org, role)
	email := env.UserWithEmail(org, "org:member", marker+"@example.test")
	ctx, by := context.Background(), models.SystemActor("test")
	preset, err := env.Services.Presets.Create(ctx, org, models.PresetInput{Name: strings.ReplaceAll(role, ".", ""), Description: marker,
		MaxStringLength: 100, MaxCustomFieldDepth: 2, AllowedEventVersions: []string{"1.0"}}, by)
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := env.Services.APIKeys.Create(ctx, org, marker, models.ScopeIngest, by)
	if err != nil {
		t.Fatal(err)
	}
	dead := models.Event{OrganizationID: org, Timestamp: time.Now().UTC(), Action: marker + ".refused", Status: "success",
		DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0"}
	if err := env.Sealer.Seal(&dead); err != nil {
		t.Fatal(err)
	}
	letter, err := env.Services.DeadLetters.Add(ctx, ingest.WriteRequest{Org: org, Events: []models.Event{dead}, Received: time.Now()}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return tenantObjects{Org: org, EventID: ev[0].ID, Role: role, MemberID: env.UserID(email), PresetID: preset.ID,
		APIKeyID: key.ID, DeadLetterID: letter.ID, Marker: marker}
}

// requester sends a request as someone (or something) of one organization. A console
// client is one; an API client carrying an organization's key joins by implementing Send.
type requester interface {
	Send(method, path string, form url.Values) webtest.Response
}

// crossTenantCases are the routes that take an object's id. To add a route (the API's
// /api/v1/events/{id}, …/verify, …/proof), add a row here, and the object it needs to
// tenantObjects.
var crossTenantCases = []struct {
	name   string
	method string
	path   func(o tenantObjects) string
	form   url.Values
	// formFor, when set, builds the form from the object instead.
	formFor func(o tenantObjects) url.Values
}{
	{"event detail", http.MethodGet, func(o tenantObjects) string { return "/events/" + itoa(o.EventID) }, nil, nil},
	{"role page", http.MethodGet, func(o tenantObjects) string { return "/roles/" + o.Role }, nil, nil},
	{"role edit form", http.MethodGet, func(o tenantObjects) string { return "/roles/" + o.Role + "/edit" }, nil, nil},
	{"role update", http.MethodPost, func(o tenantObjects) string { return "/roles/" + o.Role },
		url.Values{"perm": {"audit.events:read", "audit.reports:read"}}, nil},
	{"role delete", http.MethodPost, func(o tenantObjects) string { return "/roles/" + o.Role + "/delete" }, nil, nil},
	{"member role change", http.MethodPost, func(o tenantObjects) string { return "/members/" + itoa(o.MemberID) + "/role" },
		url.Values{"role": {"org:member"}}, nil},
	{"member removal", http.MethodPost, func(o tenantObjects) string { return "/members/" + itoa(o.MemberID) + "/delete" }, nil, nil},
	{"event verification", http.MethodPost, func(o tenantObjects) string { return "/events/" + itoa(o.EventID) + "/verify" }, nil, nil},
	{"preset edit form", http.MethodGet, func(o tenantObjects) string { return "/settings/presets/" + itoa(o.PresetID) }, nil, nil},
	{"preset update", http.MethodPost, func(o tenantObjects) string { return "/settings/presets/" + itoa(o.PresetID) }, nil,
		func(o tenantObjects) url.Values {
			return url.Values{"name": {"renamed-" + itoa(o.PresetID)}, "max_string_length": {"10"},
				"max_custom_field_depth": {"1"}, "allowed_event_versions": {"1.0"}}
		}},
	{"API key revocation", http.MethodPost, func(o tenantObjects) string { return "/settings/apikeys/" + itoa(o.APIKeyID) + "/revoke" }, nil, nil},
	{"dead letter replay", http.MethodPost, func(o tenantObjects) string { return "/settings/dead-letters/" + itoa(o.DeadLetterID) + "/replay" }, nil, nil},
}

// TestCrossTenantMatrix: for every route that takes an id, a user of organization A asking
// for organization B's object gets 404 (not 403, not the data), and B's object is
// unchanged; the same request for A's own object works, so the 404 is not an accident of
// the route.
func TestCrossTenantMatrix(t *testing.T) {
	env := webtest.New(t)
	a, b := env.Org("ta"), env.Org("tb")
	super := env.Login(env.User("", ""))
	super.SwitchOrg(a)
	requesters := map[string]requester{
		"owner of A":              env.Login(env.User(a, models.OwnerRole)),
		"superadmin working in A": super,
	}
	for who, c := range requesters {
		for _, tc := range crossTenantCases {
			t.Run(tc.name+" as "+who, func(t *testing.T) {
				mine, theirs := newTenantObjects(t, env, a), newTenantObjects(t, env, b)
				before := snapshotOf(t, env, theirs)
				form := func(o tenantObjects) url.Values {
					if tc.formFor != nil {
						return tc.formFor(o)
					}
					return cloneForm(tc.form)
				}
				r := c.Send(tc.method, tc.path(theirs), form(theirs))
				if r.StatusCode != http.StatusNotFound {
					t.Fatalf("B's object: status %d, want 404", r.StatusCode)
				}
				if strings.Contains(r.Body, theirs.Marker) {
					t.Fatal("the 404 page shows B's data")
				}
				if after := snapshotOf(t, env, theirs); after != before {
					t.Fatalf("B's object changed:\n%s\n%s", before, after)
				}
				own := c.Send(tc.method, tc.path(mine), form(mine))
				if own.StatusCode != http.StatusOK && own.StatusCode != http.StatusSeeOther {
					t.Fatalf("A's own object: status %d: %.300s", own.StatusCode, own.Body)
				}
			})
		}
	}
}

func cloneForm(f url.Values) url.Values {
	out := url.Values{}
	for k, v := range f {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// snapshotOf renders the state of o's objects.
func snapshotOf(t *testing.T, env *webtest.Env, o tenantObjects) string {
	t.Helper()
	var role, member, preset, key, letter string
	var checks int64
	env.DB.Raw(`SELECT permissions::text || inherits::text FROM organization_role WHERE organization_id = ? AND name = ?`, o.Org, o.Role).Scan(&role)
	env.DB.Raw(`SELECT role FROM memberships WHERE organization_id = ? AND user_id = ?`, o.Org, o.MemberID).Scan(&member)
	env.DB.Raw(`SELECT name || validation::text FROM audit_preset WHERE id = ?`, o.PresetID).Scan(&preset)
	env.DB.Raw(`SELECT coalesce(revoked_at::text, 'live') FROM api_keys WHERE id = ?`, o.APIKeyID).Scan(&key)
	env.DB.Raw(`SELECT coalesce(replayed_at::text, 'waiting') FROM archive_dlq_event WHERE id = ?`, o.DeadLetterID).Scan(&letter)
	env.DB.Raw(`SELECT count(*) FROM audit_integrity_log WHERE audit_log_id = ?`, o.EventID).Scan(&checks)
	return fmt.Sprintf("role=%s member=%s preset=%s key=%s letter=%s checks=%d", role, member, preset, key, letter, checks)
}

// TestPrivilegeEscalation tries to gain permissions through the forms: directly posted by
// someone without the role editor's permission, granting what the editor lacks, and
// inheriting a stronger role.
func TestPrivilegeEscalation(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("esc")
	env.Role(org, "role-manager", []string{"audit.roles:*", "organization.members:read", "organization.members:update", "audit.events:read"})
	manager := env.Login(env.User(org, "role-manager"))
	member := env.Login(env.User(org, "org:member"))
	admin := env.Login(env.User(org, "org:admin"))
	ownerEmail := env.User(org, models.OwnerRole)
	memberID := env.UserID(env.User(org, "org:member"))

	roleExists := func(name string) bool {
		var n int64
		env.DB.Raw(`SELECT count(*) FROM organization_role WHERE organization_id = ? AND name = ?`, org, name).Scan(&n)
		return n > 0
	}
	cases := []struct {
		name    string
		client  *webtest.Client
		path    string
		form    url.Values
		status  int
		message string
		check   func() bool // true when nothing was gained
	}{
		{"member posts the role form directly", member, "/roles",
			url.Values{"name": {"mine"}, "perm": {"*:*"}}, http.StatusForbidden, "audit.roles:create",
			func() bool { return !roleExists("mine") }},
		{"admin posts the role form directly", admin, "/roles",
			url.Values{"name": {"admins-own"}, "perm": {"audit.events:read"}}, http.StatusForbidden, "audit.roles:create",
			func() bool { return !roleExists("admins-own") }},
		{"editor grants a permission it lacks", manager, "/roles",
			url.Values{"name": {"deleter"}, "perm": {"audit.events:read", "audit.events:delete"}}, http.StatusForbidden, "cannot grant audit.events:delete",
			func() bool { return !roleExists("deleter") }},
		{"editor grants a wildcard", manager, "/roles",
			url.Values{"name": {"wild"}, "perm": {"audit.*:read"}}, http.StatusForbidden, "cannot grant audit.*:read",
			func() bool { return !roleExists("wild") }},
		{"editor makes a role inherit a stronger one", manager, "/roles",
			url.Values{"name": {"heir"}, "perm": {"audit.events:read"}, "inherits": {"org:admin"}}, http.StatusForbidden, "cannot grant",
			func() bool { return !roleExists("heir") }},
		{"editor lifts its own role", manager, "/roles/role-manager",
			url.Values{"perm": {"audit.roles:*", "organization.members:read", "organization.members:update", "audit.events:read", "organization.settings:update"}},
			http.StatusForbidden, "cannot grant organization.settings:update",
			func() bool {
				var perms string
				env.DB.Raw(`SELECT permissions::text FROM organization_role WHERE organization_id = ? AND name = 'role-manager'`, org).Scan(&perms)
				return !strings.Contains(perms, "organization.settings")
			}},
		{"editor promotes a member to owner", manager, "/members/" + itoa(memberID) + "/role",
			url.Values{"role": {models.OwnerRole}}, http.StatusForbidden, "cannot grant",
			func() bool {
				var role string
				env.DB.Raw(`SELECT role FROM memberships WHERE organization_id = ? AND user_id = ?`, org, memberID).Scan(&role)
				return role == "org:member"
			}},
		{"editor demotes the owner", manager, "/members/" + itoa(env.UserID(ownerEmail)) + "/role",
			url.Values{"role": {"org:member"}}, http.StatusForbidden, "cannot grant",
			func() bool {
				var role string
				env.DB.Raw(`SELECT role FROM memberships WHERE organization_id = ? AND user_id = ?`, org, env.UserID(ownerEmail)).Scan(&role)
				return role == models.OwnerRole
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.client.PostForm(tc.path, tc.form)
			if r.StatusCode != tc.status || !strings.Contains(r.Body, tc.message) {
				t.Fatalf("status %d, want %d with %q: %.400s", r.StatusCode, tc.status, tc.message, r.Body)
			}
			if !tc.check() {
				t.Fatal("the attempt changed something")
			}
		})
	}
	t.Run("granting what it holds works", func(t *testing.T) {
		r := manager.PostForm("/roles", url.Values{"name": {"reader"}, "perm": {"audit.events:read"}})
		if r.StatusCode != http.StatusSeeOther || !roleExists("reader") {
			t.Fatalf("status %d", r.StatusCode)
		}
	})
}

// TestRoleEditorRefusals shows each refusal with a clear message and keeps what was typed.
func TestRoleEditorRefusals(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("ref")
	owner := env.Login(env.User(org, models.OwnerRole))
	env.Role(org, "base", []string{"audit.events:read"})
	env.Role(org, "child", []string{"audit.events:read"}, "base")
	env.User(org, "child")
	cases := []struct {
		name, path string
		form       url.Values
		status     int
		message    string
	}{
		{"duplicate name", "/roles", url.Values{"name": {"base"}}, http.StatusConflict, "already exists"},
		{"unknown resource", "/roles", url.Values{"name": {"x"}, "perm": {"audit.billing:read"}}, http.StatusBadRequest, "unknown resource"},
		{"unknown action", "/roles", url.Values{"name": {"x"}, "perm": {"audit.events:invite"}}, http.StatusBadRequest, "unknown action"},
		{"not resource:action", "/roles", url.Values{"name": {"x"}, "perm": {"nonsense"}}, http.StatusBadRequest, "not resource:action"},
		{"cycle", "/roles/base", url.Values{"perm": {"audit.events:read"}, "inherits": {"child"}}, http.StatusBadRequest, "cycle: base → child → base"},
		{"deleting a role in use", "/roles/child/delete", nil, http.StatusConflict, "still held by 1 member"},
		{"deleting an inherited role", "/roles/base/delete", nil, http.StatusConflict, "inherited by child"},
		{"editing a default", "/roles/org:member", url.Values{"perm": {"audit.events:read"}}, http.StatusForbidden, "copy one instead"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := owner.PostForm(tc.path, cloneForm(tc.form))
			if r.StatusCode != tc.status || !strings.Contains(r.Body, tc.message) {
				t.Fatalf("status %d, want %d with %q: %.500s", r.StatusCode, tc.status, tc.message, r.Body)
			}
		})
	}
	t.Run("the form keeps what was typed", func(t *testing.T) {
		r := owner.PostForm("/roles", url.Values{"name": {"keeper"}, "description": {"typed text"}, "perm": {"audit.reports:read", "audit.billing:read"}})
		if !strings.Contains(r.Body, `value="typed text"`) || !strings.Contains(r.Body, `value="keeper"`) {
			t.Fatal("typed values lost")
		}
		if !strings.Contains(r.Body, `data-testid="perm-audit.reports-read" class="h-4 w-4 rounded border-slate-300 text-accent-700" checked`) {
			t.Fatal("ticked permission lost")
		}
	})
}

// TestRoleLifecycleThroughTheForms creates, copies, edits and deletes roles as an owner,
// and checks the list shows effective permissions (own and inherited).
func TestRoleLifecycleThroughTheForms(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("life")
	owner := env.Login(env.User(org, models.OwnerRole))

	copyForm := owner.Get("/roles/new?copy=org:member")
	if copyForm.StatusCode != http.StatusOK || !strings.Contains(copyForm.Body, `data-testid="copied-from"`) ||
		!strings.Contains(copyForm.Body, `data-testid="perm-audit.events-create" class="h-4 w-4 rounded border-slate-300 text-accent-700" checked`) {
		t.Fatalf("copy form: %d", copyForm.StatusCode)
	}
	steps := []struct {
		path string
		form url.Values
	}{
		{"/roles", url.Values{"name": {"reviewer"}, "description": {"Reads reports"}, "perm": {"audit.reports:read"}}},
		{"/roles", url.Values{"name": {"auditor"}, "perm": {"audit.alerts:read"}, "inherits": {"reviewer", "org:member"}}},
		{"/roles/reviewer", url.Values{"description": {"Reads and updates reports"}, "perm": {"audit.reports:read", "audit.reports:update"}}},
	}
	for _, st := range steps {
		if r := owner.PostForm(st.path, st.form); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: status %d: %.500s", st.path, r.StatusCode, r.Body)
		}
	}
	list := owner.Get("/roles")
	for _, want := range []string{`data-role="auditor"`, `data-perm="audit.reports:update"`, `data-perm="audit.alerts:read"`,
		`data-perm="audit.events:create"`, "Reads and updates reports"} {
		if !strings.Contains(list.Body, want) {
			t.Errorf("roles list lacks %s", want)
		}
	}
	page := owner.Get("/roles/auditor")
	if !strings.Contains(page.Body, `data-perm="audit.reports:update"`) {
		t.Error("the role page lacks an inherited permission")
	}
	if r := owner.PostForm("/roles/auditor/delete", url.Values{}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %d", r.StatusCode)
	}
	if r := owner.Get("/roles/auditor"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("deleted role: %d", r.StatusCode)
	}
}

// TestMembersThroughTheForms invites a new email (no account created, no code shown; a
// superadmin creates the account, which accepts the invitation on its dashboard), changes
// roles, refuses to lose the last owner and removes a member.
func TestMembersThroughTheForms(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("mem")
	ownerEmail := env.User(org, models.OwnerRole)
	owner := env.Login(ownerEmail)
	newEmail := webtest.Unique("newbie") + "@example.test"

	r := owner.PostForm("/members", url.Values{"email": {newEmail}, "name": {"New Bie"}, "role": {"org:member"}})
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "Invitation recorded for "+newEmail) ||
		strings.Contains(r.Body, `data-testid="one-time-password"`) || !strings.Contains(r.Body, `data-testid="member-add-no-email"`) {
		t.Fatalf("add: %d %.300s", r.StatusCode, r.Body)
	}
	var accounts int64
	env.DB.Raw(`SELECT count(*) FROM users WHERE lower(email) = lower(?)`, newEmail).Scan(&accounts)
	if accounts != 0 {
		t.Fatal("inviting created an account")
	}
	// A superadmin creates the account elsewhere; signed in, it finds the invitation.
	env.UserWithEmail(env.Org("mem-home"), "org:member", newEmail)
	newbie := env.Login(newEmail)
	// It is a member only once it accepts the invitation on its dashboard.
	if r := newbie.PostForm("/session/org", url.Values{"org": {org}}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("before accepting: %d", r.StatusCode)
	}
	accept := between(newbie.Get("/").Body, `data-testid="invitation-accept" action="`, `"`)
	if r := newbie.PostForm(accept, url.Values{}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("accept: %d %.300s", r.StatusCode, r.Body)
	}
	if r := newbie.Get("/events"); r.StatusCode != http.StatusOK {
		t.Fatalf("after accepting: %d", r.StatusCode)
	}

	newID, ownerID := env.UserID(newEmail), env.UserID(ownerEmail)
	steps := []struct {
		name, path string
		form       url.Values
		status     int
		message    string
	}{
		{"adding the same user again", "/members", url.Values{"email": {newEmail}, "role": {"org:member"}}, http.StatusConflict, "member already"},
		{"unknown role", "/members/" + itoa(newID) + "/role", url.Values{"role": {"nope"}}, http.StatusBadRequest, "not a role of this organization"},
		{"the last owner cannot step down", "/members/" + itoa(ownerID) + "/role", url.Values{"role": {"org:admin"}}, http.StatusConflict, "last owner"},
		{"the last owner cannot leave", "/members/" + itoa(ownerID) + "/delete", nil, http.StatusConflict, "last owner"},
		{"promote", "/members/" + itoa(newID) + "/role", url.Values{"role": {"org:admin"}}, http.StatusSeeOther, ""},
		{"remove", "/members/" + itoa(newID) + "/delete", nil, http.StatusSeeOther, ""},
	}
	for _, st := range steps {
		r := owner.PostForm(st.path, cloneForm(st.form))
		if r.StatusCode != st.status || !strings.Contains(r.Body, st.message) {
			t.Fatalf("%s: status %d, want %d with %q: %.400s", st.name, r.StatusCode, st.status, st.message, r.Body)
		}
	}
	if r := newbie.PostForm("/session/org", url.Values{"org": {org}}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("a removed member still enters the organization: %d", r.StatusCode)
	}
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	if j := strings.Index(s, end); j >= 0 {
		return s[:j]
	}
	return s
}

// TestOrganizationsPage: a superadmin creates an organization with a new first owner, who
// can then sign in and manage it; nobody else may.
func TestOrganizationsPage(t *testing.T) {
	env := webtest.New(t)
	super := env.Login(env.User("", ""))
	id := webtest.Unique("neworg")
	ownerEmail := webtest.Unique("founder") + "@example.test"
	r := super.PostForm("/orgs", url.Values{"id": {id}, "name": {"New Org"}, "owner": {ownerEmail}})
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, `data-org="`+id+`"`) || !strings.Contains(r.Body, `data-testid="one-time-password"`) {
		t.Fatalf("create: %d %.400s", r.StatusCode, r.Body)
	}
	if r := super.PostForm("/orgs", url.Values{"id": {id}, "name": {"Again"}}); r.StatusCode != http.StatusConflict {
		t.Fatalf("duplicate id: %d", r.StatusCode)
	}
	// An organization and its owner are one change: a refused owner leaves no organization.
	refused := webtest.Unique("noowner")
	if r := super.PostForm("/orgs", url.Values{"id": {refused}, "name": {"No owner"}, "owner": {"not an email"}}); r.StatusCode != http.StatusBadRequest ||
		!strings.Contains(r.Body, `data-testid="form-error-field">owner<`) || strings.Contains(r.Body, "its owner was not added") {
		t.Fatalf("refused owner: %d %.400s", r.StatusCode, r.Body)
	}
	var orgs int64
	env.DB.Raw(`SELECT count(*) FROM organizations WHERE id = ?`, refused).Scan(&orgs)
	if orgs != 0 {
		t.Fatal("the organization was created although its owner was refused")
	}
	var role string
	env.DB.Raw(`SELECT role FROM memberships WHERE organization_id = ? AND user_id = ?`, id, env.UserID(ownerEmail)).Scan(&role)
	if role != models.OwnerRole {
		t.Fatalf("first owner's role %q", role)
	}
	owner := env.Login(env.User(id, models.OwnerRole))
	if r := owner.PostForm("/orgs", url.Values{"id": {"sneaky"}, "name": {"Sneaky"}}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("an owner created an organization: %d", r.StatusCode)
	}
	// A role holding everything still cannot reach the superadmin's page.
	env.Role(id, "everything", []string{"*:*"})
	all := env.Login(env.User(id, "everything"))
	if r := all.Get("/orgs"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("*:* reached /orgs: %d", r.StatusCode)
	}
}

// TestConsoleChangesAreAudited: sign-in success and failure, sign-out, role and membership
// changes appear in the organization's events browser with the acting user as principal
// (the invited account for its acceptance), and role changes also in config_change_event.
func TestConsoleChangesAreAudited(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("aud"), env.Org("aud-other")
	ownerEmail := env.User(org, models.OwnerRole)
	env.Anonymous().PostForm("/login", url.Values{"email": {ownerEmail}, "password": {"not the password!"}})
	owner := env.Login(ownerEmail)
	owner.PostForm("/roles", url.Values{"name": {"watcher"}, "perm": {"audit.events:read"}})
	owner.PostForm("/roles/watcher", url.Values{"perm": {"audit.events:read", "audit.reports:read"}})
	memberEmail := env.User(other, "org:member") // exists elsewhere: joins by accepting the invitation
	owner.PostForm("/members", url.Values{"email": {memberEmail}, "role": {"watcher"}})
	invited := env.Login(memberEmail)
	invited.PostForm(between(invited.Get("/").Body, `data-testid="invitation-accept" action="`, `"`), url.Values{})
	owner.PostForm("/members/"+itoa(env.UserID(memberEmail))+"/role", url.Values{"role": {"org:member"}})
	owner.PostForm("/members/"+itoa(env.UserID(memberEmail))+"/delete", url.Values{})
	owner.PostForm("/roles/watcher/delete", url.Values{})
	owner.PostForm("/logout", url.Values{})

	viewer := env.Login(env.User(org, "org:admin"))
	for _, action := range []string{"auth.login.failure", "auth.login.success", "role.create", "role.update", "role.delete",
		"member.invite", "member.update", "member.remove", "auth.logout"} {
		r := viewer.Get("/events?principal=" + url.QueryEscape(ownerEmail) + "&action=" + action)
		if r.StatusCode != http.StatusOK || countRows(r.Body) != 1 {
			t.Errorf("%s: %d rows in the events browser", action, countRows(r.Body))
		}
	}
	if r := viewer.Get("/events?principal=" + url.QueryEscape(memberEmail) + "&action=member.invitation.accept"); countRows(r.Body) != 1 {
		t.Errorf("member.invitation.accept: %d rows in the events browser", countRows(r.Body))
	}
	// The member's other organization heard nothing of this one's changes.
	var leaked int64
	env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND principal_id = ?`, other, ownerEmail).Scan(&leaked)
	if leaked != 0 {
		t.Errorf("%d events in the wrong organization", leaked)
	}
	var changes []struct{ Field, ChangedBy string }
	env.DB.Raw(`SELECT field, changed_by FROM config_change_event WHERE organization_id = ? ORDER BY id`, org).Scan(&changes)
	var fields []string
	for _, c := range changes {
		if c.ChangedBy != ownerEmail && !(strings.HasPrefix(c.Field, "membership.") && c.ChangedBy == memberEmail) {
			t.Errorf("changed_by %q", c.ChangedBy)
		}
		fields = append(fields, c.Field)
	}
	if len(fields) != 6 || fields[0] != "organization_role.watcher" {
		t.Errorf("config changes %v", fields)
	}
}

// TestPermissionChangeReachesAnotherInstance: a role edit made on one server is honoured by
// a second server on the same database and Redis within a second (its periodic version
// check is off: only the pub/sub signal can tell it).
func TestPermissionChangeReachesAnotherInstance(t *testing.T) {
	one := webtest.New(t)
	two := one.Twin()
	org := one.Org("inst")
	one.Role(org, "alert-reader", []string{"audit.alerts:read", "audit.events:read"})
	owner := one.Login(one.User(org, models.OwnerRole))
	reader := two.Login(one.User(org, "alert-reader"))
	waitStatus := func(path string, want int) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			r := reader.Get(path)
			if r.StatusCode == want {
				return time.Since(start)
			}
			if time.Since(start) > time.Second {
				t.Fatalf("%s on the second instance: status %d after a second, want %d", path, r.StatusCode, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitStatus("/alerts", http.StatusOK) // warms the second instance's caches
	reader.Get("/alerts")

	if r := owner.PostForm("/roles/alert-reader", url.Values{"perm": {"audit.events:read"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %d", r.StatusCode)
	}
	t.Logf("revocation honoured after %s", waitStatus("/alerts", http.StatusForbidden))
	if r := owner.PostForm("/roles/alert-reader", url.Values{"perm": {"audit.events:read", "audit.alerts:read"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %d", r.StatusCode)
	}
	t.Logf("grant honoured after %s", waitStatus("/alerts", http.StatusOK))
}

// TestChangesReachAnInstanceWithoutRedis: a second instance whose Redis is unreachable,
// caching sessions and API keys as serve does, still hears, within a second and through PostgreSQL alone, a role edited and a member
// demoted on the first instance, and an API key revoked as the CLI does it (the store,
// outside any server).
func TestChangesReachAnInstanceWithoutRedis(t *testing.T) {
	one := webtest.New(t, webtest.Options{FollowCaches: true})
	two := one.TwinWithoutRedis()
	org := one.Org("noredis")
	one.Role(org, "alert-reader", []string{"audit.alerts:read", "audit.events:read"})
	owner := one.Login(one.User(org, models.OwnerRole))
	readerEmail := one.User(org, "alert-reader")
	reader := two.Login(readerEmail)
	adminEmail := one.User(org, "org:admin")
	admin := two.Login(adminEmail)
	within := func(what string, c *webtest.Client, path string, want int) {
		t.Helper()
		start := time.Now()
		for {
			if r := c.Get(path); r.StatusCode == want {
				t.Logf("%s honoured after %s", what, time.Since(start).Round(time.Millisecond))
				return
			}
			if time.Since(start) > time.Second {
				t.Fatalf("%s: %s on the instance without Redis is not %d after a second", what, path, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	within("warm-up", reader, "/alerts", http.StatusOK)
	within("warm-up", admin, "/alerts", http.StatusOK)

	if r := owner.PostForm("/roles/alert-reader", url.Values{"perm": {"audit.events:read"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %d", r.StatusCode)
	}
	within("a role edit", reader, "/alerts", http.StatusForbidden)

	if r := owner.PostForm("/members/"+itoa(one.UserID(adminEmail))+"/role", url.Values{"role": {"org:member"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("demote: %d %s", r.StatusCode, r.Body)
	}
	within("a demotion", admin, "/alerts", http.StatusForbidden)

	raw, key, err := one.Services.APIKeys.Create(t.Context(), org, "cli", models.ScopeRead, models.SystemActor("test"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the second answer comes from the cache
		if r := two.API("GET", "/api/v1/events", raw, "", ""); r.StatusCode != http.StatusOK {
			t.Fatalf("a live key on the instance without Redis: %d %s", r.StatusCode, r.Body)
		}
	}
	cli := models.NewAPIKeyStore(one.DB, one.Services.Audit)
	if err := cli.Revoke(t.Context(), org, key.ID, models.SystemActor("cli")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for two.API("GET", "/api/v1/events", raw, "", "").StatusCode != http.StatusUnauthorized {
		if time.Since(start) > time.Second {
			t.Fatal("a key revoked by the CLI still works on the instance without Redis after a second")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("a CLI revocation honoured after %s", time.Since(start).Round(time.Millisecond))
}
