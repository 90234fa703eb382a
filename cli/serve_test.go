package cli

import (
	"math"
	"runtime/debug"
	"testing"
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
