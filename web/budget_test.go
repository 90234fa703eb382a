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
