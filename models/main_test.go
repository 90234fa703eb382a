package models_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// The package's tests share one database cloned from the migrated template; every test
// works in organizations of its own (see testOrg).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var nonIDChars = regexp.MustCompile(`[^a-z0-9]+`)

// testOrg returns an organization id unique to this test run, derived from the test name.
func testOrg(t testing.TB, suffix string) string {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	name := strings.Trim(nonIDChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 30 {
		name = name[len(name)-30:]
	}
	return strings.Trim(name+"-"+suffix, "-") + "-" + hex.EncodeToString(b[:])
}

// testSealer returns a sealer with a fixed test key.
func testSealer(t testing.TB) *models.Sealer {
	t.Helper()
	s, err := models.NewSealer([]byte("test-signing-key-0123456789abcdef0123"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ptr[T any](v T) *T { return &v }
