package models_test

import (
	"context"
	"strings"
	"testing"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// The server's connections run without JIT compilation (its cost thresholds made short
// console queries compile for hundreds of milliseconds), unless the database URL sets jit.
func TestConnectionsRunWithoutJITUnlessTheURLSetsIt(t *testing.T) {
	ctx := context.Background()
	show := func(t *testing.T, dsn string) (gormJIT, poolJIT string) {
		t.Helper()
		db, err := models.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		if sqlDB, err := db.DB(); err == nil {
			defer sqlDB.Close()
		}
		if err := db.Raw(`SHOW jit`).Scan(&gormJIT).Error; err != nil {
			t.Fatal(err)
		}
		pool, err := models.OpenPool(ctx, dsn, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		if err := pool.QueryRow(ctx, `SHOW jit`).Scan(&poolJIT); err != nil {
			t.Fatal(err)
		}
		return gormJIT, poolJIT
	}
	dsn := pgtest.DSN(t)
	if g, p := show(t, dsn); g != "off" || p != "off" {
		t.Fatalf("jit on the server's connections: %s (console), %s (ingest pool); want off", g, p)
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	if g, p := show(t, dsn+sep+"jit=on"); g != "on" || p != "on" {
		t.Fatalf("jit with ?jit=on: %s (console), %s (ingest pool); want on", g, p)
	}
	if g, p := show(t, dsn+sep+"options=-c%20jit%3Don"); g != "on" || p != "on" {
		t.Fatalf("jit with options=-c jit=on: %s (console), %s (ingest pool); want on", g, p)
	}
	// Another jit setting leaves jit itself to the server's default: off.
	if g, p := show(t, dsn+sep+"options=-c%20jit_above_cost%3D1"); g != "off" || p != "off" {
		t.Fatalf("jit with options=-c jit_above_cost=1: %s (console), %s (ingest pool); want off", g, p)
	}
}
