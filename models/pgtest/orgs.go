package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/ingest"
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

// WriteEvents seals n test events of org (one a second up to now, with personal details)
// with Sealer's key, writes them with one COPY and returns them with their ids; it fails
// the test when they cannot be written.
func WriteEvents(t testing.TB, db *gorm.DB, org string, n int) []models.Event {
	t.Helper()
	ctx := context.Background()
	sealer := Sealer(t)
	evs := make([]models.Event, n)
	now := time.Now().UTC()
	principal := "user-1"
	for i := range evs {
		evs[i] = models.Event{OrganizationID: org, Timestamp: now.Add(-time.Duration(n-i) * time.Second),
			Action: "test.event", Status: "success", DataClassification: "INTERNAL", RetentionPolicy: "standard",
			EventVersion: "1.0", PrincipalID: &principal, Details: []byte(`{"ip":"10.0.0.1","n":1}`)}
		if err := sealer.Seal(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ingest.CopyEvents(ctx, db, models.NewPartitionManager(db), evs); err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		if err := db.Raw(`SELECT id FROM audit_log WHERE organization_id = ? AND hash = ?`, org, evs[i].Hash).Scan(&evs[i].ID).Error; err != nil {
			t.Fatal(err)
		}
	}
	return evs
}
