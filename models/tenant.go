package models

import (
	"context"
	"fmt"

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
// trip (set_config is SET LOCAL with bind parameters).
func enterTenant(tx *gorm.DB, org string) error {
	err := tx.Exec("SELECT set_config('role', ?, true), set_config(?, ?, true)", TenantRole, TenantSetting, org).Error
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
