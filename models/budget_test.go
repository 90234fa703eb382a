package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// serverCancelled reports whether PostgreSQL itself cancelled the statement (SQLSTATE
// 57014), which proves the budget reached the server and was not only a client deadline.
func serverCancelled(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "57014"
}

// TestStatementTimeoutInTenant: a slow statement in a tenant transaction begun under a
// request's budget is stopped by the server at the budget, and the error is a query
// timeout that answers with the plain message.
func TestStatementTimeoutInTenant(t *testing.T) {
	db := pgtest.DB(t)
	org := testOrg(t, "slow")
	ctx, cancel := models.WithStatementTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := models.InTenant(ctx, db, org, func(tx *gorm.DB) error {
		return tx.Exec("SELECT pg_sleep(10)").Error
	})
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the slow statement ran %s, past its budget", took)
	}
	if !serverCancelled(err) || !models.IsQueryTimeout(err) {
		t.Fatalf("err = %v, want the server's statement timeout", err)
	}
	answer := models.QueryTooSlow(err)
	if models.KindOf(answer) != models.KindUnavailable || models.MessageOf(answer) != models.QueryTooSlowMessage {
		t.Fatalf("answer = %v (kind %v)", answer, models.KindOf(answer))
	}

	// Without a budget the same transaction is not limited by it: a short sleep passes.
	if err := models.InTenant(context.Background(), db, org, func(tx *gorm.DB) error {
		return tx.Exec("SELECT pg_sleep(0.3)").Error
	}); err != nil {
		t.Fatalf("without a budget: %v", err)
	}
	// The setting was local to the transaction: the pool's connections keep the default.
	var setting string
	if err := db.Raw("SHOW statement_timeout").Scan(&setting).Error; err != nil || setting != "0" {
		t.Fatalf("statement_timeout after the request = %q, %v; want 0", setting, err)
	}
}

// TestStatementTimeoutPipelinedRead: the pipelined tenant read (the events and alerts
// lists) is bounded too. A read stuck behind a lock waits already while its statements
// are prepared, before the pipeline's settings run, so here the request's deadline is what
// ends it; either way it is a query timeout, not a hung request.
func TestStatementTimeoutPipelinedRead(t *testing.T) {
	db := pgtest.DB(t)
	org := testOrg(t, "locked")
	alerts := models.NewAlertStore(db)

	locker := db.Begin()
	if err := locker.Exec("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE").Error; err != nil {
		t.Fatal(err)
	}
	defer locker.Rollback()

	ctx, cancel := models.WithStatementTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := alerts.ActiveCount(ctx, org)
	if !models.IsQueryTimeout(err) {
		t.Fatalf("err = %v, want a query timeout", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the blocked read ran %s, past its budget", took)
	}
	locker.Rollback()
	if n, err := alerts.ActiveCount(context.Background(), org); err != nil || n != 0 {
		t.Fatalf("after the lock: %d, %v", n, err)
	}
}

// TestIsQueryTimeout tells a budget's end from other failures.
func TestIsQueryTimeout(t *testing.T) {
	for name, c := range map[string]struct {
		err  error
		want bool
	}{
		"nil":              {nil, false},
		"server cancel":    {&pgconn.PgError{Code: "57014"}, true},
		"wrapped deadline": {models.Unavailable("cannot read presets", context.DeadlineExceeded), true},
		"unique violation": {&pgconn.PgError{Code: "23505"}, false},
		"client went away": {context.Canceled, false},
		"invalid input":    {models.Invalid("q", "bad"), false},
	} {
		if got := models.IsQueryTimeout(c.err); got != c.want {
			t.Errorf("%s: IsQueryTimeout = %v, want %v", name, got, c.want)
		}
	}
}
