package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"auditdb/models"
	"auditdb/web/webtest"
)

// TestSettingsPermissions asks every settings page as each default role and a superadmin:
// the organization's settings and API keys are the owner's, presets are read by members
// and managed by admins, dead letters are read by whoever reads events.
func TestSettingsPermissions(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("set")
	clients := map[string]*webtest.Client{
		"member":     env.Login(env.User(org, "org:member")),
		"admin":      env.Login(env.User(org, "org:admin")),
		"owner":      env.Login(env.User(org, models.OwnerRole)),
		"superadmin": env.Login(env.User("", "")),
	}
	clients["superadmin"].SwitchOrg(org)
	all := []string{"member", "admin", "owner", "superadmin"}
	cases := []struct {
		path    string
		allowed []string
	}{
		{"/settings", []string{"owner", "superadmin"}},
		{"/settings/apikeys", []string{"owner", "superadmin"}},
		{"/settings/presets", all},
		{"/settings/presets/new", []string{"admin", "owner", "superadmin"}},
		{"/settings/dead-letters", all},
		{"/settings/alert-rules", []string{"admin", "owner", "superadmin"}},
	}
	for _, tc := range cases {
		for _, who := range all {
			t.Run(tc.path+" as "+who, func(t *testing.T) {
				want := http.StatusForbidden
				if slices.Contains(tc.allowed, who) {
					want = http.StatusOK
				}
				if r := clients[who].Get(tc.path); r.StatusCode != want {
					t.Fatalf("status %d, want %d", r.StatusCode, want)
				}
			})
		}
	}
	t.Run("an admin cannot create a key", func(t *testing.T) {
		r := clients["admin"].PostForm("/settings/apikeys", url.Values{"name": {"x"}, "scope": {"ingest"}})
		if r.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", r.StatusCode)
		}
	})
	t.Run("a member cannot create a preset", func(t *testing.T) {
		r := clients["member"].PostForm("/settings/presets", url.Values{"name": {"x"}, "max_string_length": {"10"},
			"max_custom_field_depth": {"1"}, "allowed_event_versions": {"1.0"}})
		if r.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", r.StatusCode)
		}
	})
	index := clients["owner"].Get("/settings")
	for _, id := range []string{"settings-apikeys", "settings-presets", "settings-alert-rules", "settings-dead-letters"} {
		if !strings.Contains(index.Body, `data-testid="`+id+`"`) {
			t.Errorf("settings index lacks %s for the owner", id)
		}
	}
}

var newKeyPattern = regexp.MustCompile(`data-testid="new-key-value"[^>]*>(adb_[A-Za-z0-9_-]{43})<`)

func TestAPIKeysInTheConsole(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("keys")
	admin := env.Login(env.User(org, models.OwnerRole))

	r := admin.PostForm("/settings/apikeys", url.Values{"name": {"billing"}, "scope": {"ingest"}})
	m := newKeyPattern.FindStringSubmatch(r.Body)
	if r.StatusCode != http.StatusCreated || m == nil {
		t.Fatalf("create: status %d, key not shown", r.StatusCode)
	}
	key := m[1]
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("the page that shows a key must not be cached")
	}
	page := admin.Get("/settings/apikeys")
	if strings.Contains(page.Body, key) || !strings.Contains(page.Body, key[:12]+"…") {
		t.Fatal("after creation only the prefix is shown")
	}
	if !strings.Contains(page.Body, `data-testid="apikey-last-used">never<`) {
		t.Fatal("an unused key shows last used: never")
	}
	if r := env.API("POST", "/api/v1/events", key, jsonType, `{"action":"a","status":"success"}`); r.StatusCode != 201 {
		t.Fatalf("the new key does not work: %d", r.StatusCode)
	}
	if page := admin.Get("/settings/apikeys"); strings.Contains(page.Body, `data-testid="apikey-last-used">never<`) {
		t.Fatal("the last-used time is not shown after use")
	}

	bad := []struct {
		name  string
		form  url.Values
		field string
	}{
		{"empty name", url.Values{"name": {" "}, "scope": {"ingest"}}, "name"},
		{"unknown scope", url.Values{"name": {"x"}, "scope": {"admin"}}, "scope"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := admin.PostForm("/settings/apikeys", tc.form)
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, `data-testid="form-error-field">`+tc.field+`<`) {
				t.Fatalf("status %d: %.300s", r.StatusCode, r.Body)
			}
		})
	}
	if r := admin.PostRaw("/settings/apikeys", url.Values{"name": {"x"}, "scope": {"ingest"}}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("create without CSRF: status %d", r.StatusCode)
	}

	keys, _ := env.Services.APIKeys.List(t.Context(), org)
	revoke := fmt.Sprintf("/settings/apikeys/%d/revoke", keys[0].ID)
	other := env.Login(env.User(env.Org("keys-other"), models.OwnerRole))
	if r := other.PostForm(revoke, url.Values{}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("another organization's revoke: status %d", r.StatusCode)
	}
	if r := admin.PostForm(revoke, url.Values{}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: status %d", r.StatusCode)
	}
	if r := env.API("POST", "/api/v1/events", key, jsonType, `{"action":"a","status":"success"}`); r.StatusCode != 401 {
		t.Fatalf("a revoked key still works: %d", r.StatusCode)
	}
	if page := admin.Get("/settings/apikeys"); !strings.Contains(page.Body, `data-testid="apikey-revoked"`) {
		t.Fatal("the list should show the key as revoked")
	}
}

func TestPresetsInTheConsole(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("pre")
	admin := env.Login(env.User(org, "org:admin"))
	super := env.Login(env.User("", ""))

	list := admin.Get("/settings/presets")
	if !strings.Contains(list.Body, "phi-access") || !strings.Contains(list.Body, `data-testid="preset-global"`) ||
		strings.Contains(list.Body, `data-testid="preset-edit"`) {
		t.Fatal("the list shows the global presets, not editable by an organization admin")
	}
	form := url.Values{"name": {"lab-result"}, "action": {"lab.result.view"}, "data_classification": {"PHI"},
		"required_fields": {"principalId", "targetResourceId"}, "default_values": {`{"targetResourceType":"Observation"}`},
		"max_string_length": {"500"}, "max_custom_field_depth": {"2"}, "allowed_event_versions": {"1.0, 1.1"}}
	r := admin.PostForm("/settings/presets", form)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/settings/presets?done=preset-saved&name=lab-result" {
		t.Fatalf("create: status %d %s", r.StatusCode, r.Body)
	}
	presets, _ := env.Services.Presets.List(t.Context(), org)
	own := presets[0]
	if own.Name != "lab-result" || own.Global() || len(own.RequiredFields) != 2 || own.Validation.MaxCustomFieldDepth != 2 {
		t.Fatalf("saved %+v", own)
	}

	key := env.APIKey(org, models.ScopeIngest)
	r = env.API("POST", "/api/v1/events", key, jsonType, `{"status":"success","preset":"lab-result","principalId":"p"}`)
	if r.StatusCode != 400 || decode[apiError](t, r).Error.Field != "targetResourceId" {
		t.Fatalf("the preset's required field is not enforced: %d %s", r.StatusCode, r.Body)
	}
	r = env.API("POST", "/api/v1/events", key, jsonType, `{"status":"success","preset":"lab-result","principalId":"p","targetResourceId":"o-1"}`)
	if r.StatusCode != 201 {
		t.Fatalf("ingest with the preset: %d %s", r.StatusCode, r.Body)
	}
	ev, _ := env.Services.Events.Get(t.Context(), org, decode[receipt](t, r).ID)
	if ev.Action != "lab.result.view" || ev.DataClassification != "PHI" || *ev.TargetResourceType != "Observation" {
		t.Fatalf("preset defaults not applied: %+v", ev)
	}

	edit := fmt.Sprintf("/settings/presets/%d", own.ID)
	page := admin.Get(edit)
	if !strings.Contains(page.Body, `value="lab-result"`) || !strings.Contains(page.Body, `value="principalId" checked`) {
		t.Fatalf("edit form not filled: %.500s", page.Body)
	}
	form.Set("max_custom_field_depth", "nope")
	if r := admin.PostForm(edit, form); r.StatusCode != http.StatusBadRequest ||
		!strings.Contains(r.Body, `data-testid="form-error-field">max_custom_field_depth<`) {
		t.Fatalf("bad number: status %d", r.StatusCode)
	}
	form.Set("max_custom_field_depth", "3")
	form.Set("default_values", `{"colour":"red"}`)
	if r := admin.PostForm(edit, form); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "colour") {
		t.Fatalf("bad default: status %d", r.StatusCode)
	}
	form.Set("default_values", "")
	form.Set("action", "lab.result.read")
	if r := admin.PostForm(edit, form); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("update: status %d %s", r.StatusCode, r.Body)
	}
	if p, _ := env.Services.Presets.Get(t.Context(), org, own.ID); *p.Action != "lab.result.read" {
		t.Fatalf("update not saved: %+v", p)
	}

	var global models.Preset
	for _, p := range presets {
		if p.Global() {
			global = p
			break
		}
	}
	globalEdit := fmt.Sprintf("/settings/presets/%d", global.ID)
	if r := admin.Get(globalEdit); r.StatusCode != http.StatusForbidden {
		t.Fatalf("an organization admin editing a global preset: status %d", r.StatusCode)
	}
	if r := super.Get(globalEdit); r.StatusCode != http.StatusOK {
		t.Fatalf("a superadmin editing a global preset: status %d", r.StatusCode)
	}
	other := env.Login(env.User(env.Org("pre-other"), "org:admin"))
	if r := other.Get(edit); r.StatusCode != http.StatusNotFound {
		t.Fatalf("another organization's preset: status %d", r.StatusCode)
	}
	form.Del("_csrf") // PostForm filled in the first client's token
	if r := other.PostForm(edit, form); r.StatusCode != http.StatusNotFound {
		t.Fatalf("another organization's preset update: status %d", r.StatusCode)
	}
}
