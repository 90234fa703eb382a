package models

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultStatementTimeout is the query budget of a console or API request when none is
// configured (AUDITDB_STATEMENT_TIMEOUT).
const DefaultStatementTimeout = 5 * time.Second

// QueryTooSlowMessage is what a user reads when a request's queries ran out of time.
const QueryTooSlowMessage = "the query took too long — narrow the range or the query and try again"

type budgetKey struct{}

// WithStatementTimeout returns a context whose database work is limited to d: tenant
// transactions begun under it set PostgreSQL's statement_timeout to d (the server stops the
// query itself), and the context's deadline, d and a little more, ends whatever waits
// outside a tenant transaction. Cancel it when the request is answered. A d of zero or
// less returns ctx unchanged.
func WithStatementTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	ctx = context.WithValue(ctx, budgetKey{}, d)
	// The grace lets the server's own timeout answer first, with its precise error, and
	// leaves time to render that answer.
	return context.WithTimeout(ctx, d+d/5+100*time.Millisecond)
}

// statementTimeoutOf returns the budget WithStatementTimeout put on ctx, or 0.
func statementTimeoutOf(ctx context.Context) time.Duration {
	d, _ := ctx.Value(budgetKey{}).(time.Duration)
	return d
}

// statementTimeoutSetting is the value for set_config('statement_timeout', …): the
// context's budget in milliseconds, or "" when it carries none (the setting is left alone).
func statementTimeoutSetting(ctx context.Context) string {
	d := statementTimeoutOf(ctx)
	if d <= 0 {
		return ""
	}
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return strconv.FormatInt(ms, 10)
}

// IsQueryTimeout reports whether err is a query that ran out of its budget: PostgreSQL
// cancelled it (statement_timeout, SQLSTATE 57014) or the request's deadline passed.
func IsQueryTimeout(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "57014" {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// QueryTooSlow returns the KindUnavailable error a request answers with when its queries
// ran out of time (see IsQueryTimeout); err is kept as the cause, never shown.
func QueryTooSlow(err error) error {
	return &Error{Kind: KindUnavailable, Message: QueryTooSlowMessage, Err: err}
}
