package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"auditdb/models"
	"auditdb/web/webtest"
)

// TestFormConventions: every form answers the same way. A path id that is not a positive
// number is a 404; a success redirects to the list with ?done=&name=, whose page shows the
// one confirmation; an unknown or incomplete confirmation shows nothing; a refusal renders
// the form with the status of its kind and the field it concerns.
func TestFormConventions(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("forms")
	owner := env.Login(env.User(org, models.OwnerRole))
	super := env.Login(env.User("", ""))
	taken := env.Org("taken")

	cases := []struct {
		name     string
		client   *webtest.Client
		method   string
		path     string
		form     url.Values
		status   int
		location string
		want     []string
		unwanted []string
	}{
		{name: "a member id that is not a number", method: http.MethodPost, path: "/members/abc/role", form: url.Values{"role": {"org:member"}}, status: http.StatusNotFound},
		{name: "a zero API key id", method: http.MethodPost, path: "/settings/apikeys/0/revoke", status: http.StatusNotFound},
		{name: "a negative preset id", method: http.MethodGet, path: "/settings/presets/-1", status: http.StatusNotFound},
		{name: "a dead letter id that is not a number", method: http.MethodPost, path: "/settings/dead-letters/x/replay", status: http.StatusNotFound},
		{name: "an invitation id that is not a number", method: http.MethodPost, path: "/invitations/x/accept", status: http.StatusNotFound},
		{name: "a created role redirects with its confirmation", method: http.MethodPost, path: "/roles",
			form: url.Values{"name": {"triage"}, "perm": {"audit.events:read"}}, status: http.StatusSeeOther, location: "/roles?done=role-created&name=triage"},
		{name: "the role list confirms", method: http.MethodGet, path: "/roles?done=role-created&name=triage", status: http.StatusOK,
			want: []string{`data-testid="roles-flash"`, "Role triage created."}},
		{name: "a confirmation without its name shows nothing", method: http.MethodGet, path: "/roles?done=role-created", status: http.StatusOK,
			unwanted: []string{`data-testid="roles-flash"`}},
		{name: "an unknown confirmation shows nothing", method: http.MethodGet, path: "/members?done=<b>hi</b>", status: http.StatusOK,
			unwanted: []string{`data-testid="members-flash"`, "<b>hi</b>"}},
		{name: "the members page confirms", method: http.MethodGet, path: "/members?done=member-removed", status: http.StatusOK,
			want: []string{`data-testid="members-flash"`, "Member removed."}},
		{name: "the API keys page confirms a revocation", method: http.MethodGet, path: "/settings/apikeys?done=apikey-revoked", status: http.StatusOK,
			want: []string{`data-testid="apikey-flash"`, "API key revoked"}},
		{name: "a name is shown escaped", method: http.MethodGet, path: "/settings/presets?done=preset-saved&name=" + url.QueryEscape("<i>x</i>"), status: http.StatusOK,
			want: []string{`data-testid="preset-saved"`, "Preset &lt;i&gt;x&lt;/i&gt; saved."}, unwanted: []string{"<i>x</i>"}},
		{name: "an invalid role names its field", method: http.MethodPost, path: "/roles", form: url.Values{"name": {" "}}, status: http.StatusBadRequest,
			want: []string{`data-testid="form-error"`, `data-testid="form-error-field">name<`}},
		{name: "an unknown API key scope is a 400 naming the field", method: http.MethodPost, path: "/settings/apikeys",
			form: url.Values{"name": {"k"}, "scope": {"root"}}, status: http.StatusBadRequest, want: []string{`data-testid="form-error-field">scope<`}},
		{name: "a taken organization id is a 409 naming the field", client: super, method: http.MethodPost, path: "/orgs",
			form: url.Values{"id": {taken}, "name": {"Again"}}, status: http.StatusConflict, want: []string{`data-testid="form-error-field">id<`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client
			if c == nil {
				c = owner
			}
			var r webtest.Response
			if tc.method == http.MethodGet {
				r = c.Get(tc.path)
			} else {
				form := tc.form
				if form == nil {
					form = url.Values{}
				}
				r = c.PostForm(tc.path, form)
			}
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.400s", r.StatusCode, tc.status, r.Body)
			}
			if tc.location != "" && r.Header.Get("Location") != tc.location {
				t.Fatalf("location %q, want %q", r.Header.Get("Location"), tc.location)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Body, w) {
					t.Errorf("missing %q", w)
				}
			}
			for _, u := range tc.unwanted {
				if strings.Contains(r.Body, u) {
					t.Errorf("unexpected %q", u)
				}
			}
		})
	}
}
