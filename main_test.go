package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/pgtest"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestRunHelpAndUnknown(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, env(nil), &out); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"serve", "migrate", "seed", "org create", "user create", "partitions"} {
		if !strings.Contains(out.String(), cmd) {
			t.Errorf("help lacks %q", cmd)
		}
	}
	if err := run(context.Background(), []string{"frobnicate"}, env(nil), &out); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("unknown command: %v", err)
	}
}

func TestUnreachableDatabaseIsOneClearLine(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"migrate"},
		env(map[string]string{"AUDITDB_DATABASE_URL": "postgres://postgres@127.0.0.1:1/auditdb?sslmode=disable"}), &out)
	if err == nil {
		t.Fatal("want an error for an unreachable database")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "127.0.0.1:1") || !strings.Contains(msg, "start it") {
		t.Fatalf("message should be one line naming the address and how to start PostgreSQL: %q", msg)
	}
}

func TestBadConfig(t *testing.T) {
	cases := []struct{ name, key, value string }{
		{"short signing key", "AUDITDB_SIGNING_KEY", "abcd"},
		{"bad trust proxy", "AUDITDB_TRUST_PROXY", "perhaps"},
		{"checkpoint key of the wrong size", "AUDITDB_CHECKPOINT_KEY", "abcd"},
		{"flushers not a number", "AUDITDB_INGEST_FLUSHERS", "two"},
		{"no flushers", "AUDITDB_INGEST_FLUSHERS", "0"},
		{"gather delay not a duration", "AUDITDB_INGEST_MAX_DELAY", "2"},
		{"gather delay too long", "AUDITDB_INGEST_MAX_DELAY", "5s"},
		{"hold not a number", "AUDITDB_INGEST_HOLD_BELOW", "many"},
		{"hold negative", "AUDITDB_INGEST_HOLD_BELOW", "-3"},
		{"sequencer interval not a duration", "AUDITDB_SEQUENCER_EVERY", "2"},
		{"sequencer interval too short", "AUDITDB_SEQUENCER_EVERY", "10ms"},
		{"profiles on every interface", "AUDITDB_PPROF_ADDR", ":6060"},
		{"profiles on a public address", "AUDITDB_PPROF_ADDR", "10.1.2.3:6060"},
		{"profiles without a port", "AUDITDB_PPROF_ADDR", "127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), []string{"migrate"}, env(map[string]string{tc.key: tc.value}), &out)
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error %v should name %s", err, tc.key)
			}
		})
	}
}

// TestServeGCDefaults: serve sets its collector defaults only where the environment says
// nothing, so GOGC and GOMEMLIMIT still override them.
func TestServeGCDefaults(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	tuneGC(env(nil))
	if got := debug.SetGCPercent(100); got != serveGCPercent {
		t.Errorf("GC percent = %d, want %d", got, serveGCPercent)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != serveMemoryLimit {
		t.Errorf("memory limit = %d, want %d", got, serveMemoryLimit)
	}
	tuneGC(env(map[string]string{"GOGC": "100", "GOMEMLIMIT": "1GiB"}))
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, GC percent = %d, want it left at 100", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set, memory limit = %d, want it left alone", got)
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
			err := run(context.Background(), tc.args, env(nil), &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v should name %s", err, tc.want)
			}
		})
	}
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

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
		if err := run(context.Background(), s.args, env(vars), &out); err != nil {
			t.Fatalf("%v: %v\n%s", s.args, err, out.String())
		}
		if !strings.Contains(out.String(), s.want) {
			t.Fatalf("%v: output lacks %q:\n%s", s.args, s.want, out.String())
		}
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"org", "create", "--id", "cli-org", "--name", "Again"}, env(vars), &out)
	if err == nil || !strings.Contains(models.MessageOfCLI(err), "already exists") {
		t.Fatalf("duplicate org: %v", err)
	}
	err = run(context.Background(), []string{"org", "create", "--id", "Bad Id!", "--name", "x"}, env(vars), &out)
	if err == nil || models.FieldOf(err) != "id" {
		t.Fatalf("bad org id: %v", err)
	}
}

// The ingest benchmark recreates its database, so it refuses one that is not a bench
// database by name, and leaves that database alone.
func TestBenchIngestDropsOnlyItsOwnDatabase(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"bench", "ingest", "--database", "auditdb"}, env(nil), &out)
	if err == nil || !strings.Contains(err.Error(), "--database") || !strings.Contains(err.Error(), "_bench_ingest") {
		t.Fatalf("err = %v, want a refusal naming --database", err)
	}
	for _, name := range []string{"_bench_ingest", "auditdb_bench_ingest_old"} {
		if err := dropBenchDatabase(context.Background(), "postgres://postgres@127.0.0.1:5432/"+name, "_bench_ingest"); err == nil {
			t.Errorf("%s: dropped", name)
		}
	}
}
