package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/pgtest"
)

func TestAPIKeyCommands(t *testing.T) {
	vars := map[string]string{"AUDITDB_DATABASE_URL": pgtest.DSN(t), "AUDITDB_DATA_DIR": t.TempDir()}
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, []string{"org", "create", "--id", "key-org", "--name", "Keys"}, env(vars), &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"apikey", "create", "--org", "key-org", "--name", "billing", "--scope", "read"}, env(vars), &out); err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`adb_[A-Za-z0-9_-]{43}`).FindString(out.String())
	if key == "" {
		t.Fatalf("no key printed: %s", out.String())
	}
	db := pgtest.DB(t)
	if k, err := models.NewAPIKeyStore(db, nil).Authenticate(ctx, key); err != nil || k.Scope != models.ScopeRead || k.OrganizationID != "key-org" {
		t.Fatalf("the printed key: %+v %v", k, err)
	}
	out.Reset()
	if err := run(ctx, []string{"apikey", "list", "--org", "key-org"}, env(vars), &out); err != nil || !strings.Contains(out.String(), key[:12]+"…") ||
		strings.Contains(out.String(), key) {
		t.Fatalf("list shows the prefix only: %v\n%s", err, out.String())
	}
	bad := []struct {
		name  string
		args  []string
		field string
	}{
		{"no organization", []string{"apikey", "create", "--name", "x"}, "--org"},
		{"bad scope", []string{"apikey", "create", "--org", "key-org", "--name", "x", "--scope", "admin"}, "scope"},
		{"unknown organization", []string{"apikey", "create", "--org", "nobody", "--name", "x"}, ""},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := run(ctx, tc.args, env(vars), &out)
			if err == nil || (tc.field != "" && models.FieldOf(err) != tc.field) {
				t.Fatalf("err = %v, want one on %q", err, tc.field)
			}
		})
	}
	keys, _ := models.NewAPIKeyStore(db, nil).List(ctx, "key-org")
	out.Reset()
	if err := run(ctx, []string{"apikey", "revoke", "--org", "key-org", "--id", strconv.FormatInt(keys[0].ID, 10)}, env(vars), &out); err != nil {
		t.Fatal(err)
	}
	if _, err := models.NewAPIKeyStore(db, nil).Authenticate(ctx, key); err != models.ErrBadAPIKey {
		t.Fatalf("revoked from the command line, the key still works: %v", err)
	}
}

func TestVerifyCommand(t *testing.T) {
	vars := map[string]string{"AUDITDB_DATABASE_URL": pgtest.DSN(t), "AUDITDB_DATA_DIR": t.TempDir()}
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, []string{"org", "create", "--id", "verify-org", "--name", "Verify"}, env(vars), &out); err != nil {
		t.Fatal(err)
	}
	// Events sealed and logged with the keys the command line finds in the data directory.
	cfg, err := loadConfig(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	sealer, ck, err := integrityKeys(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.DB(t)
	evs := make([]models.Event, 5)
	for i := range evs {
		evs[i] = models.Event{OrganizationID: "verify-org", Timestamp: time.Now().UTC().Add(-time.Duration(i) * time.Second),
			Action: "cli.verify", Status: "success", DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0"}
		if err := sealer.Seal(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := models.NewEventStore(db).CopyEvents(ctx, models.NewPartitionManager(db), evs); err != nil {
		t.Fatal(err)
	}
	mlog := models.NewMerkleLog(db, ck)
	mlog.CheckpointEvery = 0
	if _, err := mlog.Sequence(ctx, 1000); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{{"verify"}, {"verify", "--org", "verify-org", "--all"}} {
		if err := run(ctx, args, env(vars), &out); err == nil || models.FieldOf(err) != "--org" {
			t.Fatalf("%v: err = %v", args, err)
		}
	}
	out.Reset()
	if err := run(ctx, []string{"verify", "--org", "verify-org"}, env(vars), &out); err != nil ||
		!strings.Contains(out.String(), "verify-org: OK — 5 events") || !strings.Contains(out.String(), ck.VerifierKey()) {
		t.Fatalf("clean organization: %v\n%s", err, out.String())
	}

	err = db.Transaction(func(tx *gorm.DB) error {
		tx.Exec(`SET LOCAL session_replication_role = replica`)
		return tx.Exec(`UPDATE audit_log SET status = 'failure' WHERE id = ?`, evs[2].ID).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = run(ctx, []string{"verify", "--all"}, env(vars), &out)
	want := "tampered   event " + strconv.FormatInt(evs[2].ID, 10)
	if err == nil || !strings.Contains(err.Error(), "integrity check failed") || !strings.Contains(out.String(), want) {
		t.Fatalf("after tampering: %v\n%s", err, out.String())
	}
}
