package models_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// The package's tests share one database cloned from the migrated template; every test
// works in organizations of its own (see testOrg).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// testOrg returns an organization id unique to this test run, derived from the test name.
func testOrg(t testing.TB, suffix string) string {
	t.Helper()
	return pgtest.OrgID(t, suffix)
}

// testSealer returns a sealer with a fixed test key.
func testSealer(t testing.TB) *models.Sealer {
	t.Helper()
	return pgtest.Sealer(t)
}

func ptr[T any](v T) *T { return &v }

func itoa(i int) string { return strconv.Itoa(i) }

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

// logOrg creates an organization (the sequencer publishes for organizations) and returns
// its id.
func logOrg(t *testing.T, db *gorm.DB) string {
	t.Helper()
	return pgtest.NewOrg(t, "")
}

// testTrail returns a self-audit trail sealing with the test key.
func testTrail(t testing.TB) *models.AuditTrail {
	t.Helper()
	db := pgtest.DB(t)
	return models.NewAuditTrail(db, testSealer(t), models.NewPartitionManager(db))
}

// actor is a console user acting, named by email ("admin" becomes admin@example.test).
func actor(name string) models.Actor {
	if !strings.Contains(name, "@") {
		name += "@example.test"
	}
	return models.Actor{UserID: 1, Email: name}
}
