package demo_test

import (
	"os"
	"testing"

	"auditdb/models/pgtest"
)

// The package's tests share one database cloned from the migrated template.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
