package ingest_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// The package's tests share one database cloned from the migrated template; every test
// works in organizations of its own (pgtest.OrgID, pgtest.NewOrg).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func countWhere(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pgtest.DB(t).Raw(sql, args...).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testTrail returns a self-audit trail sealing with the test key.
func testTrail(t testing.TB) *models.AuditTrail {
	t.Helper()
	db := pgtest.DB(t)
	return models.NewAuditTrail(db, pgtest.Sealer(t), models.NewPartitionManager(db))
}

// actor is a console user acting, named by email ("admin" becomes admin@example.test).
func actor(name string) models.Actor {
	if !strings.Contains(name, "@") {
		name += "@example.test"
	}
	return models.Actor{UserID: 1, Email: name}
}
