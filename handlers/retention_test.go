package handlers_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

func TestRetentionPages(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("ret")
	other := env.Org("ret-other")
	owner := env.Login(env.User(org, models.OwnerRole))
	admin := env.Login(env.User(org, "org:admin"))
	member := env.Login(env.User(org, "org:member"))
	otherOwner := env.Login(env.User(other, models.OwnerRole))
	root := env.Login(env.User("", ""))
	root.SwitchOrg(org)

	now := time.Now().UTC()
	// minimal: archived after 30 days, deleted after 90.
	env.Events(
		models.Event{OrganizationID: org, Timestamp: now.Add(-40 * 24 * time.Hour), Action: "a", Status: "success", DataClassification: "PUBLIC", RetentionPolicy: "minimal"},
		models.Event{OrganizationID: org, Timestamp: now.Add(-100 * 24 * time.Hour), Action: "a", Status: "success", DataClassification: "PUBLIC", RetentionPolicy: "minimal"},
	)

	for _, tc := range []struct {
		name   string
		who    *webtest.Client
		path   string
		status int
		want   []string
		not    []string
	}{
		{"owner sees policies", owner, "/retention", 200,
			[]string{`data-testid="policy-standard"`, `data-testid="policy-phi_extended"`, `data-testid="policy-global"`,
				`data-testid="retention-meaning"`, "is deleted at delete_after_days", `data-testid="preview-archive"`,
				`data-testid="policy-new"`, `data-testid="floor-PHI"`, "2190 days"},
			[]string{`data-testid="floor-form"`, `data-testid="policy-edit"`}},
		{"superadmin may set floors and edit globals", root, "/retention", 200,
			[]string{`data-testid="floor-form"`, `data-testid="policy-edit"`}, nil},
		{"admin lacks audit.retention", admin, "/retention", 403, nil, nil},
		{"member lacks audit.retention", member, "/retention", 403, nil, nil},
		{"owner: new policy form", owner, "/retention/policies/new", 200, []string{`data-testid="policy-form"`, "PHI at least 2190 days"}, nil},
		{"admin: no new policy form", admin, "/retention/policies/new", 403, nil, nil},
		{"owner: holds", owner, "/retention/holds", 200, []string{`data-testid="hold-form"`, `data-testid="holds-empty"`}, nil},
		{"member: no holds", member, "/retention/holds", 403, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.who.Get(tc.path)
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tc.status)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(r.Body, w) {
					t.Errorf("page shows %q", w)
				}
			}
		})
	}

	t.Run("preview counts", func(t *testing.T) {
		body := owner.Get("/retention").Body
		if !strings.Contains(body, "Would archive <strong>1</strong> events of "+now.Add(-40*24*time.Hour).Format("2006-01")) ||
			!strings.Contains(body, "Would delete <strong>1</strong> events") {
			t.Fatalf("preview does not say archive 1, delete 1")
		}
	})

	policy := func(key, value string) url.Values {
		v := url.Values{"name": {"web_short"}, "classification": {"PUBLIC"}, "retention_days": {"60"}, "archive_after_days": {"10"},
			"delete_after_days": {""}, "description": {"short-lived"}, "active": {"on"}}
		if key != "" {
			v.Set(key, value)
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		field  string
	}{
		{"zero retention", policy("retention_days", "0"), 400, "retention_days"},
		{"negative retention", policy("retention_days", "-1"), 400, "retention_days"},
		{"retention over 36500", policy("retention_days", "36501"), 400, "retention_days"},
		{"retention not a number", policy("retention_days", "sixty"), 400, "retention_days"},
		{"archive on the deletion day", policy("archive_after_days", "60"), 400, "archive_after_days"},
		{"delete below retention", policy("delete_after_days", "59"), 400, "delete_after_days"},
		{"unknown classification", policy("classification", "TOPSECRET"), 400, "classification"},
		{"below the PHI floor without a reason", func() url.Values { v := policy("classification", "PHI"); return v }(), 400, "floor_override_reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := owner.PostForm("/retention/policies", tc.form)
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tc.status)
			}
			if !strings.Contains(r.Body, `data-testid="form-error-field">`+tc.field+`<`) {
				t.Fatalf("no error naming %s", tc.field)
			}
			if !strings.Contains(r.Body, `value="`+tc.form.Get("retention_days")+`"`) {
				t.Fatalf("the form is not shown as typed")
			}
		})
	}
	var written int64
	env.DB.Raw(`SELECT count(*) FROM audit_retention_policy WHERE organization_id = ?`, org).Scan(&written)
	if written != 0 {
		t.Fatalf("refused policies wrote %d rows", written)
	}

	var ownID int64
	t.Run("create, duplicate, edit", func(t *testing.T) {
		r := owner.PostForm("/retention/policies", policy("", ""))
		if r.StatusCode/100 != 3 {
			t.Fatalf("create: status %d: %s", r.StatusCode, r.Body)
		}
		page := owner.Get(r.Header.Get("Location"))
		if !strings.Contains(page.Body, "Retention policy web_short saved") || !strings.Contains(page.Body, `data-testid="policy-web_short"`) {
			t.Fatalf("list lacks the flash or the policy")
		}
		if r := owner.PostForm("/retention/policies", policy("", "")); r.StatusCode != http.StatusConflict ||
			!strings.Contains(r.Body, `data-testid="form-error-field">name<`) {
			t.Fatalf("duplicate: status %d, want 409 naming name", r.StatusCode)
		}
		env.DB.Raw(`SELECT id FROM audit_retention_policy WHERE organization_id = ? AND policy_name = 'web_short'`, org).Scan(&ownID)
		path := "/retention/policies/" + strconv.FormatInt(ownID, 10)
		if r := owner.Get(path); r.StatusCode != 200 || !strings.Contains(r.Body, `value="web_short"`) {
			t.Fatalf("edit form: status %d", r.StatusCode)
		}
		if r := otherOwner.Get(path); r.StatusCode != http.StatusNotFound {
			t.Fatalf("another organization's policy: status %d, want 404", r.StatusCode)
		}
		if r := otherOwner.PostForm(path, policy("", "")); r.StatusCode != http.StatusNotFound {
			t.Fatalf("another organization's policy, posted: status %d, want 404", r.StatusCode)
		}
		if r := otherOwner.PostForm(path+"/delete", url.Values{}); r.StatusCode != http.StatusNotFound {
			t.Fatalf("another organization's policy, deleted: status %d, want 404", r.StatusCode)
		}
		override := policy("classification", "PHI")
		override.Set("floor_override_reason", "pilot study, one-year consent")
		if r := owner.PostForm(path, override); r.StatusCode/100 != 3 {
			t.Fatalf("override: status %d", r.StatusCode)
		}
		var n int64
		env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = ?`, org, models.ActionRetentionFloorBypass).Scan(&n)
		if n != 1 {
			t.Fatalf("%d floor override events, want 1", n)
		}
		env.DB.Raw(`SELECT count(*) FROM config_change_event WHERE organization_id = ? AND field = 'retention_policy.web_short'`, org).Scan(&n)
		if n != 2 {
			t.Fatalf("%d config changes, want 2 (create, update)", n)
		}
	})

	t.Run("global policies", func(t *testing.T) {
		var minimal int64
		env.DB.Raw(`SELECT id FROM audit_retention_policy WHERE organization_id = '*' AND policy_name = 'minimal'`).Scan(&minimal)
		path := "/retention/policies/" + strconv.FormatInt(minimal, 10)
		if r := owner.Get(path); r.StatusCode != http.StatusForbidden {
			t.Fatalf("owner editing a global policy: status %d, want 403", r.StatusCode)
		}
		off := func() url.Values {
			return url.Values{"name": {"minimal"}, "classification": {"PUBLIC"}, "retention_days": {"90"}, "archive_after_days": {"30"}}
		}
		if r := owner.PostForm(path, off()); r.StatusCode != http.StatusForbidden {
			t.Fatalf("owner posting a global policy: status %d, want 403", r.StatusCode)
		}
		if r := root.Get(path); r.StatusCode != 200 {
			t.Fatalf("superadmin editing a global policy: status %d", r.StatusCode)
		}
		// The only active PUBLIC policy (the organization's own is PHI now), used by events.
		r := root.PostForm(path, off())
		if r.StatusCode != http.StatusConflict || !strings.Contains(r.Body, `data-testid="form-error-field">active<`) ||
			!strings.Contains(r.Body, "events use") {
			t.Fatalf("deactivating the only PUBLIC policy: status %d, want 409 with the count: %s", r.StatusCode, r.Body)
		}
	})

	t.Run("floors", func(t *testing.T) {
		if r := owner.PostForm("/retention/floors", url.Values{"classification": {"PHI"}, "min_days": {"10"}}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("owner setting a floor: status %d, want 403", r.StatusCode)
		}
		r := root.PostForm("/retention/floors", url.Values{"classification": {"PHI"}, "min_days": {"100"}})
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, `data-testid="form-error-field">reason<`) {
			t.Fatalf("lowering without a reason: status %d, want 400 naming reason", r.StatusCode)
		}
		r = root.PostForm("/retention/floors", url.Values{"classification": {"PHI"}, "min_days": {"many"}})
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, `data-testid="form-error-field">min_days<`) {
			t.Fatalf("floor not a number: status %d", r.StatusCode)
		}
	})

	t.Run("legal holds", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			form  url.Values
			field string
		}{
			{"principal scope, no principal", url.Values{"name": {"h"}, "reason": {"r"}, "scope": {"principal"}}, "principal_id"},
			{"resource scope, no type", url.Values{"name": {"h"}, "reason": {"r"}, "scope": {"resource"}, "resource_id": {"7"}}, "resource_type"},
			{"no scope", url.Values{"name": {"h"}, "reason": {"r"}, "scope": {""}}, "scope"},
			{"range ends before it starts", url.Values{"name": {"h"}, "reason": {"r"}, "scope": {"time_range"},
				"from": {"2026-05-02T00:00"}, "to": {"2026-05-01T00:00"}}, "to"},
			{"range not a date", url.Values{"name": {"h"}, "reason": {"r"}, "scope": {"time_range"}, "from": {"yesterday"}}, "from"},
		} {
			r := owner.PostForm("/retention/holds", tc.form)
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, `data-testid="form-error-field">`+tc.field+`<`) {
				t.Errorf("%s: status %d, want 400 naming %s", tc.name, r.StatusCode, tc.field)
			}
		}
		if r := member.PostForm("/retention/holds", url.Values{"name": {"h"}, "reason": {"r"}, "scope": {"organization"}}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("member placing a hold: status %d, want 403", r.StatusCode)
		}
		r := owner.PostForm("/retention/holds", url.Values{"name": {"Matter 7"}, "reason": {"subpoena"}, "scope": {"organization"}})
		if r.StatusCode/100 != 3 {
			t.Fatalf("place: status %d: %s", r.StatusCode, r.Body)
		}
		page := owner.Get(r.Header.Get("Location"))
		if !strings.Contains(page.Body, "Legal hold Matter 7 placed") || !strings.Contains(page.Body, `data-testid="hold-release"`) {
			t.Fatalf("holds page lacks the flash or the release button")
		}
		if body := owner.Get("/retention").Body; !strings.Contains(body, "Legal holds keep <strong>1</strong>") ||
			!strings.Contains(body, "Matter 7: 1 events") {
			t.Fatalf("the preview does not show what the hold keeps")
		}
		var id int64
		env.DB.Raw(`SELECT id FROM legal_holds WHERE organization_id = ?`, org).Scan(&id)
		release := "/retention/holds/" + strconv.FormatInt(id, 10) + "/release"
		if r := otherOwner.PostForm(release, url.Values{}); r.StatusCode != http.StatusNotFound {
			t.Fatalf("another organization's hold: status %d, want 404", r.StatusCode)
		}
		if r := owner.PostForm(release, url.Values{}); r.StatusCode/100 != 3 {
			t.Fatalf("release: status %d", r.StatusCode)
		}
		if r := owner.PostForm(release, url.Values{}); r.StatusCode != http.StatusConflict || !strings.Contains(r.Body, "already released") {
			t.Fatalf("releasing a released hold: status %d, want 409", r.StatusCode)
		}
		var n int64
		env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action IN (?, ?)`, org,
			models.ActionLegalHoldPlace, models.ActionLegalHoldRelease).Scan(&n)
		if n != 2 {
			t.Fatalf("%d hold self-audit events, want 2", n)
		}
	})

	t.Run("delete", func(t *testing.T) {
		path := "/retention/policies/" + strconv.FormatInt(ownID, 10) + "/delete"
		if r := admin.PostForm(path, url.Values{}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("admin deleting: status %d, want 403", r.StatusCode)
		}
		if r := owner.PostForm(path, url.Values{}); r.StatusCode/100 != 3 {
			t.Fatalf("owner deleting: status %d", r.StatusCode)
		}
	})
}
