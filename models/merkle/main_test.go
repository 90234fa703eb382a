package merkle_test

import (
	"os"
	"testing"

	"auditdb/models/pgtest"
)

// The package's tests share one database cloned from the migrated template; every test
// works in organizations of its own (pgtest.NewOrg).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
