package web

import (
	"testing"
)

// Every long-running route names a route of the tables, so a renamed path cannot silently
// fall back to the console's budget.
func TestLongRunningRoutesExist(t *testing.T) {
	d := &Services{}
	seen := map[string]bool{}
	for _, r := range append(consoleRoutes(d), apiRoutes(d)...) {
		seen[r.method+" "+r.path] = true
	}
	for k := range longRunning {
		if !seen[k] {
			t.Errorf("longRunning names %q, which no route has", k)
		}
	}
}
