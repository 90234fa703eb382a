package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"auditdb/models"
	"auditdb/web/webtest"
)

// TestTimeZonePreference: a user saves an IANA zone on /account (audited, shown back, the
// page's example time in that zone); a name that is not a zone, or longer than the column,
// is refused next to its field and changes nothing; an empty name goes back to UTC.
func TestTimeZonePreference(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("tz")
	email := env.User(org, "org:member")
	s := env.Login(email)
	zoneOf := func() *string {
		t.Helper()
		var z *string
		if err := env.DB.Raw(`SELECT time_zone FROM users WHERE email = ?`, email).Scan(&z).Error; err != nil {
			t.Fatal(err)
		}
		return z
	}

	if r := s.Get("/account"); r.StatusCode != http.StatusOK || !strings.Contains(r.Body, `data-testid="time-zone-form"`) {
		t.Fatalf("account page: %d", r.StatusCode)
	}
	r := s.PostForm("/account/time-zone", url.Values{"time_zone": {"Europe/Berlin"}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d %s", r.StatusCode, r.Body)
	}
	if z := zoneOf(); z == nil || *z != "Europe/Berlin" {
		t.Fatalf("saved zone %v, want Europe/Berlin", z)
	}
	r = s.Get("/account?done=time-zone-saved")
	if !strings.Contains(r.Body, `value="Europe/Berlin"`) || !strings.Contains(r.Body, "(Europe/Berlin)") ||
		!strings.Contains(r.Body, "Time zone saved.") {
		t.Fatalf("the page does not show the saved zone: %s", r.Body)
	}
	var audited int64
	env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = ? AND principal_id = ?`,
		org, models.ActionTimeZoneChange, email).Scan(&audited)
	if audited != 1 {
		t.Fatalf("%d user.time_zone.change events, want 1", audited)
	}

	for _, bad := range []string{"Mars/Olympus_Mons", "Local", "../../etc/passwd", "Europe/" + strings.Repeat("x", 70)} {
		r := s.PostForm("/account/time-zone", url.Values{"time_zone": {bad}})
		if r.StatusCode != http.StatusUnprocessableEntity && r.StatusCode != http.StatusBadRequest {
			t.Fatalf("%q: %d, want a refusal", bad, r.StatusCode)
		}
		if !strings.Contains(r.Body, "time_zone") || !strings.Contains(r.Body, "is not a time zone name") {
			t.Fatalf("%q: the refusal does not name the field and why: %s", bad, r.Body)
		}
		if z := zoneOf(); z == nil || *z != "Europe/Berlin" {
			t.Fatalf("%q changed the saved zone to %v", bad, z)
		}
	}

	if r := s.PostForm("/account/time-zone", url.Values{"time_zone": {""}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("clear: %d", r.StatusCode)
	}
	if z := zoneOf(); z != nil {
		t.Fatalf("cleared zone is %q, want NULL (UTC)", *z)
	}
}
