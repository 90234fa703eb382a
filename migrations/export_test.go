package migrations

import (
	"context"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// UpTo applies the migrations up to and including id, for tests of one migration.
func UpTo(ctx context.Context, db *gorm.DB, id string) error {
	return locked(ctx, db, func(conn *gorm.DB) error {
		return gormigrate.New(conn, options(), list()).MigrateTo(id)
	})
}
