package web_test

import (
	"os"
	"testing"

	"auditdb/models/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
