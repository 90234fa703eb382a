package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"strings"
	"testing"

	"auditdb/models/pgtest"
	"auditdb/web"
)

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

// buildServices gives an application that answers, with its writer and Merkle log
// attached, and its close stops everything without error.
func TestBuildServicesServesAndCloses(t *testing.T) {
	cfg, err := loadConfig(env(map[string]string{"AUDITDB_DATABASE_URL": pgtest.DSN(t), "AUDITDB_DATA_DIR": t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	svc, closeServices, err := buildServices(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if svc.Writer == nil || svc.Merkle == nil || svc.Integrity == nil || svc.Replayer == nil || svc.Authz == nil {
		t.Fatalf("services lack a part: %+v", svc)
	}
	resp, err := web.New(svc).Test(httptest.NewRequest(http.MethodGet, "/healthz", nil), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: status %d", resp.StatusCode)
	}
	var health struct {
		Detection map[string]any `json:"detection"`
	}
	if err := json.Unmarshal(body, &health); err != nil || health.Detection["status"] != "ok" ||
		health.Detection["lag_seconds"] == nil || health.Detection["pending_events"] == nil {
		t.Fatalf("healthz detail %s (%v), want detection's pending events and lag", body, err)
	}
	if err := closeServices(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// A Redis URL the services cannot use is refused, naming the variable.
func TestBuildServicesBadRedisURL(t *testing.T) {
	cfg, err := loadConfig(env(map[string]string{"AUDITDB_DATABASE_URL": pgtest.DSN(t), "AUDITDB_DATA_DIR": t.TempDir(),
		"AUDITDB_REDIS_URL": "http://not-redis"}))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = buildServices(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "AUDITDB_REDIS_URL") {
		t.Fatalf("err = %v, want one naming AUDITDB_REDIS_URL", err)
	}
}
