package handlers_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/bundle"
	"auditdb/web/webtest"
)

func TestEvidenceBundleDownload(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("bdl"), env.Org("bdlo")
	now := time.Now().UTC()
	var evs []models.Event
	for i := range 12 {
		evs = append(evs, models.Event{OrganizationID: org, Timestamp: now.Add(-time.Duration(i+1) * time.Minute),
			Action: []string{"record.read", "record.update"}[i%2], Status: "success"})
	}
	env.Events(evs...)
	env.Events(models.Event{OrganizationID: other, Timestamp: now.Add(-time.Minute), Action: "foreign.secret", Status: "success"})
	env.Sequence()
	env.Role(org, "event-reader", []string{"audit.events:read"})
	admin := env.Login(env.User(org, "org:admin"))
	reader := env.Login(env.User(org, "event-reader"))
	rng := url.Values{"from": {now.Add(-time.Hour).Format("2006-01-02T15:04")}, "to": {now.Add(time.Hour).Format("2006-01-02T15:04")}}

	// The link carries the list's filter, and only for those who may export.
	page := admin.Get("/events?action=record.read")
	if page.StatusCode != 200 || !strings.Contains(page.Body, `data-testid="events-bundle"`) ||
		!strings.Contains(page.Body, `href="/events/bundle?`) || !strings.Contains(page.Body, `record.read`) {
		t.Fatalf("admin's events page: %d, bundle link missing", page.StatusCode)
	}
	if page := reader.Get("/events"); page.StatusCode != 200 || strings.Contains(page.Body, "events-bundle") {
		t.Fatalf("a reader without export sees the bundle link (%d)", page.StatusCode)
	}
	if res := reader.Get("/events/bundle?" + rng.Encode()); res.StatusCode != 403 {
		t.Fatalf("a reader without export downloads a bundle: %d", res.StatusCode)
	}

	q := url.Values{"action": {"record.read"}}
	for k, v := range rng {
		q[k] = v
	}
	res := admin.Get("/events/bundle?" + q.Encode())
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/zip" ||
		!strings.HasPrefix(res.Header.Get("Content-Disposition"), `attachment; filename="evidence-`+org+"-") {
		t.Fatalf("download: %d %v\n%.300s", res.StatusCode, res.Header, res.Body)
	}
	rep, err := bundle.Verify(strings.NewReader(res.Body), int64(len(res.Body)), []string{env.Log.Key().VerifierKey()})
	if err != nil || !rep.OK() || rep.Events != 6 || rep.TrustedKey == "" {
		t.Fatalf("the downloaded bundle: %v %+v", err, rep)
	}
	if strings.Contains(res.Body, "foreign.secret") {
		t.Fatal("the bundle holds another organization's event")
	}
	var audited int64
	env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = 'data.export'
		AND target_resource_type = 'evidence_bundle' AND details->>'action' = 'record.read' AND details->>'events' = '6'`, org).Scan(&audited)
	if audited != 1 {
		t.Fatalf("%d self-audit events of the download; want 1", audited)
	}

	for _, tc := range []struct {
		name, query string
		status      int
		want        string
	}{
		{"over a year", "from=2020-01-01&to=2021-06-01", 400, "one year"},
		{"end before start", "from=2021-01-02&to=2021-01-01", 400, "to"},
		{"unknown status", "status=nope", 400, "status"},
		{"unreadable time", "from=yesterday", 400, "from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := admin.Get("/events/bundle?" + tc.query)
			if res.StatusCode != tc.status || !strings.Contains(res.Body, tc.want) || res.Header.Get("Content-Type") == "application/zip" {
				t.Fatalf("%d, want %d naming %q\n%.400s", res.StatusCode, tc.status, tc.want, res.Body)
			}
		})
	}
	var refused int64
	env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = 'data.export'`, org).Scan(&refused)
	if refused != 1 {
		t.Fatalf("refused downloads were audited as exports: %d", refused)
	}
}
