package web_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

// TestSlowQueriesEndWithAPlainAnswer: a console page or an API read whose query cannot
// finish within the statement timeout (here: the table it reads is locked by another
// transaction) ends at the budget with 503 and the sentence that says what to do, never a
// hung request; the page works again once the query can run.
func TestSlowQueriesEndWithAPlainAnswer(t *testing.T) {
	env := webtest.New(t, webtest.Options{StatementTimeout: 300 * time.Millisecond})
	org := env.Org("budget")
	admin := env.Login(env.User(org, "org:admin"))
	key := env.APIKey(org, models.ScopeRead)

	locker := env.DB.Begin()
	if err := locker.Exec("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE").Error; err != nil {
		t.Fatal(err)
	}
	defer locker.Rollback()

	start := time.Now()
	page := admin.Get("/alerts")
	if page.StatusCode != 503 || !strings.Contains(page.Body, "narrow the range or the query") {
		t.Fatalf("console: %d %.400s", page.StatusCode, page.Body)
	}
	api := env.API("GET", "/api/v1/alerts", key, "", "")
	var body struct {
		Error struct {
			Status  int
			Message string
		}
	}
	if err := json.Unmarshal([]byte(api.Body), &body); err != nil || api.StatusCode != 503 ||
		body.Error.Message != models.QueryTooSlowMessage || api.Header.Get("Retry-After") == "" {
		t.Fatalf("api: %d %s (%v)", api.StatusCode, api.Body, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("two requests over a 300 ms budget took %s", took)
	}

	locker.Rollback()
	if again := admin.Get("/alerts"); again.StatusCode != 200 {
		t.Fatalf("after the lock: %d", again.StatusCode)
	}
}

// TestDownloadsRunOnTheirOwnBudget: an evidence bundle is built while the client waits, so
// its route runs on the download budget. Behind a lock held longer than the console's
// budget, the events page ends in 503 while the bundle waits for the lock and is sent.
func TestDownloadsRunOnTheirOwnBudget(t *testing.T) {
	env := webtest.New(t, webtest.Options{StatementTimeout: 300 * time.Millisecond})
	org := env.Org("longbudget")
	admin := env.Login(env.User(org, "org:admin"))
	now := time.Now().UTC()
	rng := "from=" + now.Add(-time.Hour).Format("2006-01-02T15:04") + "&to=" + now.Add(time.Hour).Format("2006-01-02T15:04")
	env.Sequence() // the sign-in's self-audit, in a signed checkpoint

	locker := env.DB.Begin()
	if err := locker.Exec("LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE").Error; err != nil {
		t.Fatal(err)
	}
	if page := admin.Get("/events?" + rng); page.StatusCode != 503 {
		locker.Rollback()
		t.Fatalf("the events page behind the lock: %d, want 503 (the console's budget)", page.StatusCode)
	}
	released := time.AfterFunc(1500*time.Millisecond, func() { locker.Rollback() })
	defer released.Stop()
	res := admin.Get("/events/bundle?" + rng)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("the bundle behind the same lock: %d %s %.300s", res.StatusCode, res.Header.Get("Content-Type"), res.Body)
	}
}
