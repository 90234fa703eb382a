package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"

	"auditdb/models"
)

var nonIDChars = regexp.MustCompile(`[^a-z0-9]+`)

// OrgID returns an organization id unique to this test run, derived from the test name and
// suffix, so tests sharing the package's database work in organizations of their own.
func OrgID(t testing.TB, suffix string) string {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	name := strings.Trim(nonIDChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 30 {
		name = name[len(name)-30:]
	}
	return strings.Trim(name+"-"+suffix, "-") + "-" + hex.EncodeToString(b[:])
}

// NewOrg creates an organization named "Org "+suffix with an id from OrgID and returns the
// id; it fails the test when the organization cannot be created.
func NewOrg(t testing.TB, suffix string) string {
	t.Helper()
	id := OrgID(t, suffix)
	if _, err := models.NewOrgStore(DB(t)).Create(context.Background(), id, "Org "+suffix); err != nil {
		t.Fatal(err)
	}
	return id
}

// Sealer returns a sealer with a fixed test key; it fails the test if the key is refused.
func Sealer(t testing.TB) *models.Sealer {
	t.Helper()
	s, err := models.NewSealer([]byte("test-signing-key-0123456789abcdef0123"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
