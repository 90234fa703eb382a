package cli

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"auditdb/models"
	"auditdb/models/pgtest"
)

func TestAPIKeyCommands(t *testing.T) {
	vars := map[string]string{"AUDITDB_DATABASE_URL": pgtest.DSN(t), "AUDITDB_DATA_DIR": t.TempDir()}
	ctx := context.Background()
	var out bytes.Buffer
	if err := Run(ctx, []string{"org", "create", "--id", "key-org", "--name", "Keys"}, env(vars), &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := Run(ctx, []string{"apikey", "create", "--org", "key-org", "--name", "billing", "--scope", "read"}, env(vars), &out); err != nil {
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
	if err := Run(ctx, []string{"apikey", "list", "--org", "key-org"}, env(vars), &out); err != nil || !strings.Contains(out.String(), key[:12]+"…") ||
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
			err := Run(ctx, tc.args, env(vars), &out)
			if err == nil || (tc.field != "" && models.FieldOf(err) != tc.field) {
				t.Fatalf("err = %v, want one on %q", err, tc.field)
			}
		})
	}
	keys, _ := models.NewAPIKeyStore(db, nil).List(ctx, "key-org")
	out.Reset()
	if err := Run(ctx, []string{"apikey", "revoke", "--org", "key-org", "--id", strconv.FormatInt(keys[0].ID, 10)}, env(vars), &out); err != nil {
		t.Fatal(err)
	}
	if _, err := models.NewAPIKeyStore(db, nil).Authenticate(ctx, key); err != models.ErrBadAPIKey {
		t.Fatalf("revoked from the command line, the key still works: %v", err)
	}
}
