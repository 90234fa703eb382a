package models

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// TenantRole is the PostgreSQL role tenant-scoped transactions switch to. Row-level
// security on audit_log and alerts restricts it to the organization named by the
// transaction setting TenantSetting; the connecting role (owner or superuser) is not
// restricted, so system paths (migrations, partition jobs, the demo seeder, the ingest
// writer) work unchanged.
const TenantRole = "auditdb_tenant"

// TenantSetting is the per-transaction setting row-level security compares
// organization_id with. Without it the tenant role sees no rows at all.
const TenantSetting = "auditdb.org"

// InTenant runs fn in a transaction that row-level security confines to org: the
// transaction switches to TenantRole and sets TenantSetting, both undone at its end. The
// queries inside still filter by organization (the data layer's own isolation); the
// database refuses anything that forgets to. It returns fn's error, after rolling back.
func InTenant(ctx context.Context, db *gorm.DB, org string, fn func(tx *gorm.DB) error) error {
	if org == "" {
		return NotFound("organization")
	}
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := enterTenant(tx, org); err != nil {
			return err
		}
		return fn(tx)
	})
}

// enterTenant switches the current transaction to the tenant role for org, in one round
// trip (set_config is SET LOCAL with bind parameters). When the transaction's context
// carries a request's budget (WithStatementTimeout), its statement_timeout is set to it.
func enterTenant(tx *gorm.DB, org string) error {
	var err error
	if ms := statementTimeoutSetting(tx.Statement.Context); ms != "" {
		err = tx.Exec("SELECT set_config('role', ?, true), set_config(?, ?, true), set_config('statement_timeout', ?, true)",
			TenantRole, TenantSetting, org, ms).Error
	} else {
		err = tx.Exec("SELECT set_config('role', ?, true), set_config(?, ?, true)", TenantRole, TenantSetting, org).Error
	}
	if err != nil {
		return fmt.Errorf("models: enter tenant %s: %w", org, err)
	}
	return nil
}

// leaveTenant returns the current transaction to the connecting role, so a caller's later
// statements in the same transaction are not confined.
func leaveTenant(tx *gorm.DB) error {
	err := tx.Exec("SELECT set_config('role', 'none', true), set_config(?, '', true)", TenantSetting).Error
	if err != nil {
		return fmt.Errorf("models: leave tenant: %w", err)
	}
	return nil
}

// QueryInTenant runs one read-only query confined to org (see queryInTenant) and hands its
// rows to scan, which may stream them: the pipelines under models (reports) read audit_log
// and alerts through it. It returns the query's or scan's error.
func QueryInTenant(ctx context.Context, db *gorm.DB, org, query string, args []any, scan func(pgx.Rows) error) error {
	return queryInTenant(ctx, db, org, query, args, scan)
}

// queryInTenant runs one read-only query confined to org and hands its rows to scan. The
// transaction's BEGIN, the tenant settings, the query and the COMMIT go to the server as
// one pgx pipeline, so the confinement costs no extra network round trips on the hottest
// read path (the events list). A request's budget (WithStatementTimeout) goes with the
// tenant settings.
func queryInTenant(ctx context.Context, db *gorm.DB, org, query string, args []any, scan func(pgx.Rows) error) error {
	return queryInTenantPlan(ctx, db, org, false, query, args, scan)
}

// queryInTenantPlan is queryInTenant; with generic, the query runs with PostgreSQL's generic
// plan from its first execution on (plan_cache_mode, for this transaction only).
func queryInTenantPlan(ctx context.Context, db *gorm.DB, org string, generic bool, query string, args []any,
	scan func(pgx.Rows) error) error {
	if org == "" {
		return NotFound("organization")
	}
	return WithPgx(ctx, db, func(conn *pgx.Conn) error {
		b := &pgx.Batch{}
		b.Queue("BEGIN READ ONLY")
		settings := "SELECT set_config('role', $1, true), set_config($2, $3, true)"
		settingArgs := []any{TenantRole, TenantSetting, org}
		if ms := statementTimeoutSetting(ctx); ms != "" {
			settings += ", set_config('statement_timeout', $4, true)"
			settingArgs = append(settingArgs, ms)
		}
		if generic {
			settings += ", set_config('plan_cache_mode', 'force_generic_plan', true)"
		}
		b.Queue(settings, settingArgs...)
		b.Queue(query, args...)
		b.Queue("COMMIT")
		err := runTenantBatch(conn.SendBatch(ctx, b), scan)
		if err != nil && conn.PgConn().TxStatus() != 'I' {
			// Never hand a connection back inside a (failed) transaction.
			conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
		return err
	})
}

func runTenantBatch(br pgx.BatchResults, scan func(pgx.Rows) error) error {
	defer br.Close()
	for i := 0; i < 2; i++ {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	err = scan(rows)
	rows.Close()
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return err
	}
	if _, err := br.Exec(); err != nil {
		return err
	}
	return br.Close()
}
