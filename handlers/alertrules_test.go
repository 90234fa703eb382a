package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"auditdb/models"
	"auditdb/web/webtest"
)

func TestAlertRulesSettings(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("rules")
	admin := env.Login(env.User(org, "org:admin"))
	owner := env.Login(env.User(org, models.OwnerRole))
	member := env.Login(env.User(org, "org:member"))
	// with is a fresh valid form (PostForm adds the poster's CSRF token to it) with key set
	// to value ("" removes it).
	with := func(key, value string) url.Values {
		v := url.Values{"enabled": {"on"}, "threshold": {"5"}, "window": {"5"}, "severity": {"HIGH"}}
		if key == "" {
			return v
		}
		if value == "" {
			v.Del(key)
		} else {
			v.Set(key, value)
		}
		return v
	}

	t.Run("page", func(t *testing.T) {
		for who, c := range map[string]*webtest.Client{"admin": admin, "owner": owner} {
			r := c.Get("/settings/alert-rules")
			if r.StatusCode != http.StatusOK {
				t.Fatalf("%s: status %d", who, r.StatusCode)
			}
			for _, rule := range models.DefaultAlertRules {
				if !strings.Contains(r.Body, `data-testid="alert-rule-`+rule.Rule+`"`) {
					t.Errorf("%s: page lacks rule %s", who, rule.Rule)
				}
			}
			if !strings.Contains(r.Body, `data-testid="time-zone"`) || !strings.Contains(r.Body, `value="UTC"`) {
				t.Errorf("%s: page lacks the time zone field with UTC", who)
			}
		}
		if r := member.Get("/settings/alert-rules"); r.StatusCode != http.StatusForbidden {
			t.Fatalf("member: status %d, want 403", r.StatusCode)
		}
		if r := member.PostForm("/settings/alert-rules/failed_logins", with("", "")); r.StatusCode != http.StatusForbidden {
			t.Fatalf("member posting: status %d, want 403", r.StatusCode)
		}
	})

	for _, tc := range []struct {
		name, path string
		form       url.Values
		field      string
	}{
		{"zero threshold", "/settings/alert-rules/failed_logins", with("threshold", "0"), "threshold"},
		{"negative threshold", "/settings/alert-rules/failed_logins", with("threshold", "-1"), "threshold"},
		{"absurd threshold", "/settings/alert-rules/failed_logins", with("threshold", "100001"), "threshold"},
		{"threshold not a number", "/settings/alert-rules/failed_logins", with("threshold", "five"), "threshold"},
		{"zero window", "/settings/alert-rules/failed_logins", with("window", "0"), "window"},
		{"negative window", "/settings/alert-rules/failed_logins", with("window", "-5"), "window"},
		{"window over 24 h", "/settings/alert-rules/failed_logins", with("window", "1441"), "window"},
		{"unknown severity", "/settings/alert-rules/failed_logins", with("severity", "URGENT"), "severity"},
		{"missing severity", "/settings/alert-rules/failed_logins", with("severity", ""), "severity"},
		{"unknown rule", "/settings/alert-rules/coffee_breaks", with("", ""), "rule"},
		{"invalid time zone", "/settings/alert-rules/time-zone", url.Values{"time_zone": {"Mars/Olympus_Mons"}}, "time_zone"},
		{"zoneinfo file that is no zone", "/settings/alert-rules/time-zone", url.Values{"time_zone": {"posixrules"}}, "time_zone"},
		{"empty time zone", "/settings/alert-rules/time-zone", url.Values{"time_zone": {""}}, "time_zone"},
		{"zero alert retention", "/settings/alert-rules/retention", url.Values{"retention_days": {"0"}}, "retention_days"},
		{"alert retention over ten years", "/settings/alert-rules/retention", url.Values{"retention_days": {"3651"}}, "retention_days"},
		{"alert retention not a number", "/settings/alert-rules/retention", url.Values{"retention_days": {"ninety"}}, "retention_days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := admin.PostForm(tc.path, tc.form)
			if r.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", r.StatusCode)
			}
			if !strings.Contains(r.Body, `data-testid="error-`+tc.field+`"`) {
				t.Fatalf("no error next to %s in %s", tc.field, r.Body)
			}
		})
	}
	var changes int64
	env.DB.Raw(`SELECT count(*) FROM config_change_event WHERE organization_id = ?`, org).Scan(&changes)
	if changes != 0 {
		t.Fatalf("refused changes wrote %d config changes", changes)
	}

	t.Run("saves a rule and the time zone", func(t *testing.T) {
		r := admin.PostForm("/settings/alert-rules/data_access_velocity", url.Values{"threshold": {"80"}, "window": {"2"}, "severity": {"HIGH"}})
		if r.StatusCode != http.StatusSeeOther && r.StatusCode != http.StatusFound {
			t.Fatalf("save rule: status %d: %s", r.StatusCode, r.Body)
		}
		if r := admin.PostForm("/settings/alert-rules/time-zone", url.Values{"time_zone": {"Europe/Berlin"}}); r.StatusCode/100 != 3 {
			t.Fatalf("save time zone: status %d", r.StatusCode)
		}
		page := admin.Get("/settings/alert-rules")
		if !strings.Contains(page.Body, `value="Europe/Berlin"`) || !strings.Contains(page.Body, `value="80"`) ||
			!strings.Contains(page.Body, `data-testid="alert-rule-customized"`) {
			t.Fatalf("page does not show the saved settings")
		}
		var rows int64
		env.DB.Raw(`SELECT count(*) FROM config_change_event WHERE organization_id = ? AND field IN ('alert_rule.data_access_velocity', 'time_zone')`, org).Scan(&rows)
		if rows != 2 {
			t.Fatalf("%d config changes, want 2", rows)
		}
		env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = 'settings.update'`, org).Scan(&rows)
		if rows != 2 {
			t.Fatalf("%d self-audit events, want 2", rows)
		}
	})
	t.Run("saves the alert retention", func(t *testing.T) {
		if r := admin.PostForm("/settings/alert-rules/retention", url.Values{"retention_days": {"30"}}); r.StatusCode/100 != 3 {
			t.Fatalf("save retention: status %d: %s", r.StatusCode, r.Body)
		}
		page := admin.Get("/settings/alert-rules?done=alert-retention-saved&name=30")
		if !strings.Contains(page.Body, `value="30"`) || !strings.Contains(page.Body, "kept for 30 days") {
			t.Fatalf("page does not show the saved retention")
		}
		var days int
		env.DB.Raw(`SELECT retention_days FROM organizations WHERE id = ?`, org).Scan(&days)
		var changes int64
		env.DB.Raw(`SELECT count(*) FROM config_change_event WHERE organization_id = ? AND field = 'retention_days'`, org).Scan(&changes)
		if days != 30 || changes != 1 {
			t.Fatalf("retention_days %d with %d config changes, want 30 and 1", days, changes)
		}
	})
}
