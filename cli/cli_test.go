package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/pgtest"
	"auditdb/models/session"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestRunHelpAndUnknown(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"help"}, env(nil), &out); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"serve", "migrate", "seed", "org create", "user create", "partitions"} {
		if !strings.Contains(out.String(), cmd) {
			t.Errorf("help lacks %q", cmd)
		}
	}
	if err := Run(context.Background(), []string{"frobnicate"}, env(nil), &out); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("unknown command: %v", err)
	}
}

func TestUnreachableDatabaseIsOneClearLine(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), []string{"migrate"},
		env(map[string]string{"AUDITDB_DATABASE_URL": "postgres://postgres@127.0.0.1:1/auditdb?sslmode=disable"}), &out)
	if err == nil {
		t.Fatal("want an error for an unreachable database")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "127.0.0.1:1") || !strings.Contains(msg, "start it") {
		t.Fatalf("message should be one line naming the address and how to start PostgreSQL: %q", msg)
	}
}

func TestCommandsAgainstTheDatabase(t *testing.T) {
	vars := map[string]string{"AUDITDB_DATABASE_URL": pgtest.DSN(t), "AUDITDB_DATA_DIR": t.TempDir()}
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"migrate"}, "migrated to"},
		{[]string{"seed"}, "seeded retention policies"},
		{[]string{"org", "create", "--id", "cli-org", "--name", "CLI Org"}, "created organization cli-org"},
		{[]string{"user", "create", "--email", "cli@example.test", "--password", "a long cli password", "--org", "cli-org", "--role", "org:admin"}, "created user"},
		{[]string{"user", "create", "--email", "root@example.test", "--password", "a long cli password", "--superadmin"}, "created user"},
		{[]string{"user", "revoke-sessions", "--email", "CLI@example.test"}, "revoked 0 live sessions of cli@example.test"},
		{[]string{"partitions", "ensure"}, "partitions"},
		{[]string{"partitions", "list"}, "audit_log_" + time.Now().UTC().Format("2006_01")},
		{[]string{"partitions", "drop-expired", "--dry-run"}, "would drop"},
		{[]string{"seed", "--demo", "--events", "300"}, "wrote 300 demo events"},
		{[]string{"seed", "--demo", "--events", "300"}, "demo users already exist"},
	}
	for _, s := range steps {
		var out bytes.Buffer
		if err := Run(context.Background(), s.args, env(vars), &out); err != nil {
			t.Fatalf("%v: %v\n%s", s.args, err, out.String())
		}
		if !strings.Contains(out.String(), s.want) {
			t.Fatalf("%v: output lacks %q:\n%s", s.args, s.want, out.String())
		}
	}
	var out bytes.Buffer
	err := Run(context.Background(), []string{"org", "create", "--id", "cli-org", "--name", "Again"}, env(vars), &out)
	if err == nil || !strings.Contains(models.MessageOfCLI(err), "already exists") {
		t.Fatalf("duplicate org: %v", err)
	}
	err = Run(context.Background(), []string{"org", "create", "--id", "Bad Id!", "--name", "x"}, env(vars), &out)
	if err == nil || models.FieldOf(err) != "id" {
		t.Fatalf("bad org id: %v", err)
	}
}

func TestUserCreateFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"neither org nor superadmin", []string{"user", "create", "--email", "a@b.c", "--password", "long enough pw"}, "--org"},
		{"both", []string{"user", "create", "--email", "a@b.c", "--password", "long enough pw", "--org", "x", "--role", "org:member", "--superadmin"}, "--superadmin"},
		{"org without role", []string{"user", "create", "--email", "a@b.c", "--password", "long enough pw", "--org", "x"}, "--role"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Run(context.Background(), tc.args, env(nil), &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v should name %s", err, tc.want)
			}
		})
	}
}

// TestResetPassword: the operator's reset prints a one-time password once, which signs the
// user in (and must be changed), while the old password and every session end, and an
// account an inviter had created becomes its holder's (it may accept invitations again).
func TestResetPassword(t *testing.T) {
	db := pgtest.DB(t)
	vars := map[string]string{"AUDITDB_DATABASE_URL": pgtest.DSN(t), "AUDITDB_DATA_DIR": t.TempDir()}
	ctx := context.Background()
	org := pgtest.NewOrg(t, "reset")
	users := models.NewUserStore(db)
	u, err := users.Create(ctx, models.NewUser{Email: org + "@example.test", Password: "the old long password", OrgID: org, Role: "org:member"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(`UPDATE users SET created_by_inviter = true WHERE id = ?`, u.ID).Error; err != nil {
		t.Fatal(err)
	}
	if _, _, err := session.NewStore(db, nil).Create(ctx, u.ID, org, "127.0.0.1", "test"); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Run(ctx, []string{"user", "reset-password", "--email", strings.ToUpper(u.Email)}, env(vars), &out); err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(strings.TrimSpace(out.String()))
	password := fields[len(fields)-1]
	if len(password) < 20 {
		t.Fatalf("no one-time password printed: %q", out.String())
	}
	if _, err := users.Authenticate(ctx, u.Email, "the old long password"); err == nil {
		t.Fatal("the old password still signs in")
	}
	got, err := users.Authenticate(ctx, u.Email, password)
	if err != nil || !got.MustChangePassword {
		t.Fatalf("the one-time password: %v, must change %v", err, got != nil && got.MustChangePassword)
	}
	var live, flagged int64
	db.Raw(`SELECT count(*) FROM sessions WHERE user_id = ? AND revoked_at IS NULL`, u.ID).Scan(&live)
	db.Raw(`SELECT count(*) FROM users WHERE id = ? AND created_by_inviter`, u.ID).Scan(&flagged)
	if live != 0 || flagged != 0 {
		t.Fatalf("%d live sessions and inviter mark %d after the reset, want 0 and 0", live, flagged)
	}
	if err := Run(ctx, []string{"user", "reset-password", "--email", "nobody@example.test"}, env(vars), &out); err == nil {
		t.Fatal("resetting an unknown user succeeded")
	}
}
