package handlers_test

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/gdpr"
	"auditdb/models/gdpr/gdprtest"
	"auditdb/web/webtest"
)

var requestHref = regexp.MustCompile(`href="/gdpr/requests/(gdpr_[0-9a-f]+)"`)

// fileRequest files a request through the form as c and returns its id.
func fileRequest(t *testing.T, c *webtest.Client, form url.Values) string {
	t.Helper()
	r := c.PostForm("/gdpr/requests", form)
	if r.StatusCode != 303 {
		t.Fatalf("file request: %d %.500s", r.StatusCode, r.Body)
	}
	page := c.Get("/gdpr")
	m := requestHref.FindAllStringSubmatch(page.Body, -1)
	if len(m) == 0 {
		t.Fatal("the filed request is not listed")
	}
	return m[len(m)-1][1]
}

func requestForm(typ, principal string) url.Values {
	return url.Values{"type": {typ}, "principal_id": {principal}, "identity_check": {"passport seen"}, "requested_by": {"Jane Roe"}}
}

func TestGDPRPagesRefuseBadInput(t *testing.T) {
	env := webtest.New(t, webtest.Options{GDPREngine: &gdprtest.Engine{}})
	org := env.Org("gdpr")
	owner := env.Login(env.User(org, models.OwnerRole))
	page := owner.Get("/gdpr")
	if page.StatusCode != 200 || !strings.Contains(page.Body, `data-testid="requests-empty"`) ||
		!strings.Contains(page.Body, `data-testid="new-request-form"`) || strings.Contains(page.Body, "not built") {
		t.Fatalf("gdpr page: %d", page.StatusCode)
	}
	for _, tc := range []struct {
		name, key, value, field string
	}{
		{"no subject", "principal_id", "", "subject"},
		{"unknown type", "type", "forget-me", "type"},
		{"bad date", "received_at", "yesterday", "received_at"},
		{"year one", "received_at", "0001-01-01", "received_at"},
		{"no identity check", "identity_check", "", "identity_check"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := requestForm(gdpr.TypeAccess, "jane")
			form.Set(tc.key, tc.value)
			r := owner.PostForm("/gdpr/requests", form)
			if r.StatusCode != 400 || !strings.Contains(r.Body, `data-testid="form-error-field">`+tc.field+`<`) {
				t.Fatalf("status %d, want 400 naming %s", r.StatusCode, tc.field)
			}
		})
	}
	if page := owner.Get("/gdpr"); !strings.Contains(page.Body, `data-testid="requests-empty"`) {
		t.Fatal("a refused request was stored")
	}

	id := fileRequest(t, owner, requestForm(gdpr.TypeAccess, "jane"))
	detail := "/gdpr/requests/" + id
	for _, tc := range []struct {
		name, path string
		form       url.Values
		status     int
		field      string
	}{
		{"extension beyond 60 days", detail + "/extend", url.Values{"days": {"61"}, "reason": {"busy"}}, 400, "days"},
		{"extension without reason", detail + "/extend", url.Values{"days": {"10"}, "reason": {""}}, 400, "reason"},
		{"extension not a number", detail + "/extend", url.Values{"days": {"ten"}, "reason": {"busy"}}, 400, "days"},
		{"unknown export format", detail + "/export", url.Values{"format": {"docx"}}, 400, "format"},
		{"reject without reason", detail + "/reject", url.Values{"reason": {""}}, 400, "reason"},
		{"assignee outside the organization", detail + "/assign", url.Values{"assignee": {"999999"}}, 400, "assignee"},
		{"approve an access request", detail + "/erasure/approve", url.Values{}, 409, "status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := owner.PostForm(tc.path, tc.form)
			if r.StatusCode != tc.status || !strings.Contains(r.Body, `data-testid="form-error-field">`+tc.field+`<`) {
				t.Fatalf("status %d, want %d naming %s: %.300s", r.StatusCode, tc.status, tc.field, r.Body)
			}
		})
	}
	if r := owner.PostForm(detail+"/extend", url.Values{"days": {"20"}, "reason": {"archives to search"}}); r.StatusCode != 303 {
		t.Fatalf("extend: %d", r.StatusCode)
	}
	if r := owner.PostForm(detail+"/extend", url.Values{"days": {"5"}, "reason": {"again"}}); r.StatusCode != 409 {
		t.Fatalf("a second extension: %d, want 409", r.StatusCode)
	}
	if r := owner.Get(detail); !strings.Contains(r.Body, "archives to search") || !strings.Contains(r.Body, `data-testid="history-step"`) {
		t.Fatal("the request's page does not show the extension and its history")
	}
}

func TestGDPRTenantIsolationAndPermissions(t *testing.T) {
	env := webtest.New(t, webtest.Options{GDPREngine: &gdprtest.Engine{Originals: map[string]string{"psn_1": "jane"}}})
	org, other := env.Org("gdpr"), env.Org("gdpr-other")
	owner := env.Login(env.User(org, models.OwnerRole))
	otherOwner := env.Login(env.User(other, models.OwnerRole))
	admin := env.Login(env.User(org, "org:admin"))
	env.Role(org, "privacy-clerk", []string{"audit.gdpr:read", "audit.gdpr:update"})
	clerk := env.Login(env.User(org, "privacy-clerk"))
	id := fileRequest(t, owner, requestForm(gdpr.TypeAccess, "jane"))
	detail := "/gdpr/requests/" + id

	for _, path := range []string{detail, detail + "/exports/json?exp=9999999999&sig=00"} {
		if r := otherOwner.Get(path); r.StatusCode != 404 {
			t.Errorf("another organization's GET %s: %d, want 404", path, r.StatusCode)
		}
	}
	for _, step := range []string{"/start", "/extend", "/reject", "/export", "/erasure/approve", "/notes"} {
		if r := otherOwner.PostForm(detail+step, url.Values{"days": {"5"}, "reason": {"x"}, "format": {"json"}}); r.StatusCode != 404 {
			t.Errorf("another organization's POST %s: %d, want 404", step, r.StatusCode)
		}
	}
	if r := admin.Get("/gdpr"); r.StatusCode != 403 {
		t.Errorf("an admin without audit.gdpr: %d, want 403", r.StatusCode)
	}
	// Looking a pseudonym up needs its own permission and a reason.
	if r := clerk.PostForm("/gdpr/lookup", url.Values{"pseudonym": {"psn_1"}, "reason": {"audit"}}); r.StatusCode != 403 {
		t.Errorf("lookup without reidentify: %d, want 403", r.StatusCode)
	}
	if r := clerk.Get("/gdpr"); r.StatusCode != 200 || strings.Contains(r.Body, `data-testid="lookup-link"`) {
		t.Errorf("the clerk's list: %d, shows the lookup link", r.StatusCode)
	}
	if r := owner.PostForm("/gdpr/lookup", url.Values{"pseudonym": {"psn_1"}, "reason": {" "}}); r.StatusCode != 400 ||
		!strings.Contains(r.Body, `data-testid="form-error-field">reason<`) {
		t.Errorf("lookup without reason: %d, want 400 naming reason", r.StatusCode)
	}
	r := owner.PostForm("/gdpr/lookup", url.Values{"pseudonym": {"psn_1"}, "reason": {"court order 14"}})
	if r.StatusCode != 200 || !strings.Contains(r.Body, `data-testid="lookup-original"`) || !strings.Contains(r.Body, "jane") {
		t.Errorf("lookup: %d", r.StatusCode)
	}
	if r := owner.PostForm("/gdpr/lookup", url.Values{"pseudonym": {"psn_unknown"}, "reason": {"x"}}); r.StatusCode != 404 {
		t.Errorf("unknown pseudonym: %d, want 404", r.StatusCode)
	}
}

func TestGDPRExportDownloadLinks(t *testing.T) {
	env := webtest.New(t, webtest.Options{GDPREngine: &gdprtest.Engine{}})
	org, other := env.Org("gdpr"), env.Org("gdpr-other")
	owner := env.Login(env.User(org, models.OwnerRole))
	otherOwner := env.Login(env.User(other, models.OwnerRole))
	jane, dr := "jane", "dr-who"
	now := time.Now().UTC()
	env.Events(models.Event{OrganizationID: org, Timestamp: now.Add(-time.Hour), Action: "data.read", Status: "success", PrincipalID: &jane},
		models.Event{OrganizationID: org, Timestamp: now.Add(-time.Hour), Action: "data.read", Status: "success", PrincipalID: &dr},
		models.Event{OrganizationID: other, Timestamp: now.Add(-time.Hour), Action: "data.read", Status: "success", PrincipalID: &jane})
	id := fileRequest(t, owner, requestForm(gdpr.TypeAccess, "jane"))
	detail := "/gdpr/requests/" + id
	if r := owner.PostForm(detail+"/export", url.Values{"format": {"csv"}}); r.StatusCode != 303 {
		t.Fatalf("export: %d %.300s", r.StatusCode, r.Body)
	}
	env.Services.GDPRRunner.Wait()
	page := owner.Get(detail)
	link := regexp.MustCompile(`href="(/gdpr/requests/[^"]+/exports/csv\?[^"]+)"`).FindStringSubmatch(page.Body)
	if link == nil {
		t.Fatalf("no download link on the page")
	}
	href := strings.ReplaceAll(link[1], "&amp;", "&")
	r := owner.Get(href)
	if r.StatusCode != 200 || !strings.Contains(r.Body, "jane") || strings.Contains(r.Body, "dr-who") || strings.Count(r.Body, "\n") != 2 {
		t.Fatalf("download: %d %q", r.StatusCode, r.Body)
	}
	var audited int64
	env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = 'gdpr.data.export' AND target_resource_id = ?`,
		org, id).Scan(&audited)
	if audited != 1 {
		t.Fatalf("%d gdpr.data.export events for one download", audited)
	}
	expired := detail + "/exports/csv?" + env.Services.GDPRLinks.Query(org, id, "csv", -time.Hour)
	foreign := detail + "/exports/csv?" + env.Services.GDPRLinks.Query(other, id, "csv", time.Hour)
	for _, tc := range []struct {
		name   string
		c      *webtest.Client
		path   string
		status int
	}{
		{"expired", owner, expired, 410},
		{"tampered", owner, strings.Replace(href, "sig=", "sig=0", 1), 404},
		{"expiry with a leading 0", owner, strings.Replace(href, "exp=", "exp=0", 1), 404},
		{"expiry with a +", owner, strings.Replace(href, "exp=", "exp=%2B", 1), 404},
		{"sig given twice", owner, href + "&sig=00", 404},
		{"another format", owner, strings.Replace(href, "/csv?", "/json?", 1), 404},
		{"another organization's session", otherOwner, href, 404},
		{"made for another organization", otherOwner, foreign, 404},
	} {
		if r := tc.c.Get(tc.path); r.StatusCode != tc.status {
			t.Errorf("%s link: %d, want %d", tc.name, r.StatusCode, tc.status)
		}
	}

	// A subject with no events completes with an empty export, and the page says so.
	empty := fileRequest(t, owner, requestForm(gdpr.TypeAccess, "nobody-at-all"))
	owner.PostForm("/gdpr/requests/"+empty+"/export", url.Values{"format": {"json"}})
	env.Services.GDPRRunner.Wait()
	if r := owner.Get("/gdpr/requests/" + empty); !strings.Contains(r.Body, `data-testid="export-empty"`) {
		t.Fatal("the empty export does not say so")
	}
	if r := owner.PostForm("/gdpr/requests/"+empty+"/complete", url.Values{}); r.StatusCode != 303 {
		t.Fatalf("complete: %d", r.StatusCode)
	}
}

func TestGDPRErasureFourEyesPages(t *testing.T) {
	engine := &gdprtest.Engine{Events: 12, Pseudonym: "psn_abc", LeftIDs: []int64{77, 78},
		LeftWhy: []string{"under legal hold Lawsuit 14", "the field name itself names the subject: details.x"}}
	env := webtest.New(t, webtest.Options{GDPREngine: engine})
	org := env.Org("gdpr")
	a := env.Login(env.User(org, models.OwnerRole))
	b := env.Login(env.User(org, models.OwnerRole))
	id := fileRequest(t, a, requestForm(gdpr.TypeErasure, "john"))
	detail := "/gdpr/requests/" + id
	a.PostForm(detail+"/start", url.Values{})

	engine.HoldsOf = map[string][]gdpr.Hold{"john": {{ID: 3, Name: "Lawsuit 14"}}}
	r := a.PostForm(detail+"/erasure/request", url.Values{})
	if r.StatusCode != 409 || !strings.Contains(r.Body, "Lawsuit 14") {
		t.Fatalf("erasure under a hold: %d", r.StatusCode)
	}
	if r := a.Get(detail); !strings.Contains(r.Body, `data-testid="request-holds"`) || !strings.Contains(r.Body, "Lawsuit 14") {
		t.Fatal("the page does not name the hold")
	}
	engine.HoldsOf = nil

	if r := a.PostForm(detail+"/erasure/request", url.Values{}); r.StatusCode != 303 {
		t.Fatalf("request erasure: %d %.300s", r.StatusCode, r.Body)
	}
	if r := a.Get(detail); strings.Contains(r.Body, `data-testid="step-approve"`) || !strings.Contains(r.Body, `data-testid="approve-note"`) {
		t.Fatal("the requester is offered the approval")
	}
	if r := a.PostForm(detail+"/erasure/approve", url.Values{}); r.StatusCode != 403 {
		t.Fatalf("approving one's own erasure: %d, want 403", r.StatusCode)
	}
	if r := b.Get(detail); !strings.Contains(r.Body, `data-testid="step-approve"`) || !strings.Contains(r.Body, "12 events") {
		t.Fatal("the second person is not offered the approval with the count")
	}
	if r := b.PostForm(detail+"/erasure/approve", url.Values{}); r.StatusCode != 303 {
		t.Fatalf("approve: %d %.300s", r.StatusCode, r.Body)
	}
	env.Services.GDPRRunner.Wait()
	if r := b.PostForm(detail+"/erasure/approve", url.Values{}); r.StatusCode != 409 {
		t.Fatalf("approving twice: %d, want 409", r.StatusCode)
	}
	r = b.Get(detail)
	if !strings.Contains(r.Body, `data-status="completed"`) || !strings.Contains(r.Body, "psn_abc") || strings.Contains(r.Body, "john") {
		t.Fatalf("after the erasure the page shows: completed %v, pseudonym %v, identifier %v",
			strings.Contains(r.Body, `data-status="completed"`), strings.Contains(r.Body, "psn_abc"), strings.Contains(r.Body, "john"))
	}
	for _, want := range []string{"Left naming the subject", "event 77 (under legal hold Lawsuit 14)",
		"event 78 (the field name itself names the subject: details.x)"} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("the completed request's page lacks %q", want)
		}
	}
	if len(engine.Erased) != 1 || engine.Erased[0] != id {
		t.Fatalf("engine calls %v", engine.Erased)
	}
}

func TestGDPRAPI(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("gdpr"), env.Org("gdpr-other")
	key, otherKey := env.APIKey(org, models.ScopeGDPR), env.APIKey(other, models.ScopeGDPR)
	read := env.APIKey(org, models.ScopeRead)
	body := `{"type":"erasure","resource_type":"Patient","resource_id":"p-77","identity_check":"portal sign-in","requested_by":"Pat"}`
	for _, tc := range []struct {
		name, body, field string
	}{
		{"unknown field", `{"type":"access","principal_id":"x","identity_check":"y","requested_by":"z","subjectt":"x"}`, "subjectt"},
		{"trailing data", body + `{"type":"access"}`, "body"},
		{"trailing garbage", body + ` x`, "body"},
		{"wrong type", `{"type":7}`, "type"},
		{"no subject", `{"type":"access","identity_check":"y","requested_by":"z"}`, "subject"},
		{"unknown type", `{"type":"forget","principal_id":"x","identity_check":"y","requested_by":"z"}`, "type"},
		{"bad time", `{"type":"access","principal_id":"x","identity_check":"y","requested_by":"z","received_at":"monday"}`, "received_at"},
		{"two bodies", body + body, "body"},
		{"year one", `{"type":"access","principal_id":"x","identity_check":"y","requested_by":"z","received_at":"0001-01-01T00:00:00Z"}`, "received_at"},
		{"before 2000", `{"type":"access","principal_id":"x","identity_check":"y","requested_by":"z","received_at":"1999-12-31T23:59:59Z"}`, "received_at"},
		{"future", `{"type":"access","principal_id":"x","identity_check":"y","requested_by":"z","received_at":"2999-01-01T00:00:00Z"}`, "received_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := env.API("POST", "/api/v1/gdpr/requests", key, "application/json", tc.body)
			if r.StatusCode != 400 || !strings.Contains(r.Body, `"field":"`+tc.field+`"`) {
				t.Fatalf("status %d, want 400 naming %s: %s", r.StatusCode, tc.field, r.Body)
			}
		})
	}
	for _, ct := range []string{"text/plain", "", "application/x-www-form-urlencoded"} {
		if r := env.API("POST", "/api/v1/gdpr/requests", key, ct, body); r.StatusCode != 415 {
			t.Fatalf("Content-Type %q: %d, want 415: %s", ct, r.StatusCode, r.Body)
		}
	}
	if r := env.API("POST", "/api/v1/gdpr/requests", read, "application/json", body); r.StatusCode != 403 {
		t.Fatalf("a read key files a request: %d", r.StatusCode)
	}
	r := env.API("POST", "/api/v1/gdpr/requests", key, "application/json", body)
	if r.StatusCode != 201 || !strings.Contains(r.Body, `"status":"received"`) || !strings.Contains(r.Body, `"resource_id":"p-77"`) {
		t.Fatalf("file: %d %s", r.StatusCode, r.Body)
	}
	loc := r.Header.Get("Location")
	if g := env.API("GET", loc, key, "", ""); g.StatusCode != 200 || !strings.Contains(g.Body, `"type":"erasure"`) {
		t.Fatalf("get: %d %s", g.StatusCode, g.Body)
	}
	if g := env.API("GET", loc, otherKey, "", ""); g.StatusCode != 404 {
		t.Fatalf("another organization's key: %d, want 404", g.StatusCode)
	}
	list, err := env.Services.GDPR.List(context.Background(), org)
	if err != nil || len(list) != 1 || list[0].FiledBy == "" || !strings.HasPrefix(list[0].FiledBy, "system:apikey:") {
		t.Fatalf("stored: %+v %v", list, err)
	}
}

func TestGDPRRestrictionKeepsSubjectOutOfExports(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("gdpr")
	owner := env.Login(env.User(org, models.OwnerRole))
	rita, sam := "rita-restricted", "sam-free"
	now := time.Now().UTC()
	env.Events(models.Event{OrganizationID: org, Timestamp: now.Add(-time.Hour), Action: "data.read", Status: "success", PrincipalID: &rita},
		models.Event{OrganizationID: org, Timestamp: now.Add(-time.Hour), Action: "data.read", Status: "success", PrincipalID: &sam})
	id := fileRequest(t, owner, requestForm(gdpr.TypeRestriction, rita))
	export := func() string {
		t.Helper()
		r := owner.Get("/events/export.csv?range=24h")
		if r.StatusCode != 200 {
			t.Fatalf("export: %d", r.StatusCode)
		}
		return r.Body
	}
	if body := export(); !strings.Contains(body, rita) {
		t.Fatal("before the restriction the export lacks the subject")
	}
	if r := owner.PostForm("/gdpr/requests/"+id+"/complete", url.Values{}); r.StatusCode != 303 {
		t.Fatalf("restrict: %d", r.StatusCode)
	}
	if body := export(); strings.Contains(body, rita) || !strings.Contains(body, sam) {
		t.Fatal("the export still holds the restricted subject's events (or lost the others)")
	}
	if r := owner.Get("/events?range=24h"); !strings.Contains(r.Body, rita) {
		t.Fatal("the events list itself should still show the subject to readers of events")
	}
	if r := owner.PostForm("/gdpr/requests/"+id+"/lift", url.Values{}); r.StatusCode != 303 {
		t.Fatalf("lift: %d", r.StatusCode)
	}
	if body := export(); !strings.Contains(body, rita) {
		t.Fatal("after lifting, the export lacks the subject")
	}
}

func TestGDPRListHighlightsDueDatesAndPseudonymizes(t *testing.T) {
	engine := &gdprtest.Engine{Events: 2, Pseudonym: "psn_tok"}
	env := webtest.New(t, webtest.Options{GDPREngine: engine})
	org := env.Org("gdpr")
	owner := env.Login(env.User(org, models.OwnerRole))
	day := func(ago int) string { return time.Now().UTC().AddDate(0, 0, -ago).Format("2006-01-02") }
	for _, ago := range []int{35, 26, 1} {
		form := requestForm(gdpr.TypePseudonymization, "p-"+day(ago))
		form.Set("received_at", day(ago))
		fileRequest(t, owner, form)
	}
	page := owner.Get("/gdpr").Body
	if strings.Count(page, `data-testid="due-overdue"`) != 1 || strings.Count(page, `data-testid="due-soon"`) != 1 ||
		!strings.Contains(page, `data-testid="due-summary"`) {
		t.Fatalf("overdue %d, due soon %d", strings.Count(page, `data-testid="due-overdue"`), strings.Count(page, `data-testid="due-soon"`))
	}
	// The overdue one comes first (open requests by due date).
	if first := requestHref.FindStringSubmatch(page); first == nil || strings.Index(page, `data-testid="due-overdue"`) > strings.Index(page, `data-testid="due-soon"`) {
		t.Fatal("the overdue request is not listed first")
	}
	id := requestHref.FindStringSubmatch(page)[1]
	detail := "/gdpr/requests/" + id
	if r := owner.PostForm(detail+"/pseudonymize", url.Values{"strategy": {"rot13"}}); r.StatusCode != 400 {
		t.Fatalf("unknown strategy: %d", r.StatusCode)
	}
	if r := owner.PostForm(detail+"/pseudonymize", url.Values{"strategy": {"token"}}); r.StatusCode != 303 {
		t.Fatalf("pseudonymize: %d %.300s", r.StatusCode, r.Body)
	}
	env.Services.GDPRRunner.Wait()
	r := owner.Get(detail)
	if !strings.Contains(r.Body, `data-status="completed"`) || !strings.Contains(r.Body, "psn_tok") || !strings.Contains(r.Body, "token") {
		t.Fatal("the pseudonymized request does not show its completion, strategy and pseudonym")
	}
}

func TestGDPRErasureProgressOnThePage(t *testing.T) {
	engine := &gdprtest.Engine{Events: 40, Pseudonym: "psn_slow", Gate: make(chan struct{})}
	env := webtest.New(t, webtest.Options{GDPREngine: engine})
	org := env.Org("gdpr")
	a := env.Login(env.User(org, models.OwnerRole))
	b := env.Login(env.User(org, models.OwnerRole))
	id := fileRequest(t, a, requestForm(gdpr.TypeErasure, "slow-subject"))
	detail := "/gdpr/requests/" + id
	a.PostForm(detail+"/start", url.Values{})
	a.PostForm(detail+"/erasure/request", url.Values{})
	if r := b.PostForm(detail+"/erasure/approve", url.Values{}); r.StatusCode != 303 {
		t.Fatalf("approve: %d", r.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	var r webtest.Response
	for {
		r = b.GetHTMX(detail)
		if strings.Contains(r.Body, "0 of 40 events") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(r.Body, `data-testid="request-progress"`) || !strings.Contains(r.Body, `hx-trigger="every 1s"`) ||
		!strings.Contains(r.Body, "0 of 40 events") {
		t.Fatalf("a running erasure's page shows no progress: %.600s", r.Body)
	}
	if r := b.PostForm(detail+"/reject", url.Values{"reason": {"too late"}}); r.StatusCode != 409 {
		t.Fatalf("rejecting a running erasure: %d, want 409", r.StatusCode)
	}
	close(engine.Gate)
	env.Services.GDPRRunner.Wait()
	if r := b.Get(detail); !strings.Contains(r.Body, `data-status="completed"`) || strings.Contains(r.Body, `hx-trigger="every 1s"`) {
		t.Fatal("the completed erasure's page still polls or is not completed")
	}
}
