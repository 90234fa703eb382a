package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

func TestPerformancePage(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("perf"), env.Org("perfother")
	member := env.Login(env.User(org, "org:member"))
	owner := env.Login(env.User(org, models.OwnerRole))
	root := env.Login(env.User("", ""))
	root.SwitchOrg(org)
	ctx := context.Background()
	if _, err := env.Services.Perf.SaveSnapshot(ctx, models.SnapshotSlot(time.Now().Add(-time.Hour)), time.Millisecond,
		models.PerfFigures{IngestPerSec: 12.5, Latency: map[string]models.Quantiles{"/events": {P50: 3, P95: 9}},
			Cache: models.CacheFigures{Reads: 10, Ratio: 0.8}, SequencerLagSec: 42.5}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		who      *webtest.Client
		path     string
		status   int
		want     []string
		unwanted []string
	}{
		{"superadmin sees the database", root, "/performance", 200,
			[]string{`data-testid="perf-health-overall"`, `data-testid="perf-health-database"`, `data-testid="perf-tables"`,
				`data-testid="perf-indexes"`, `data-testid="perf-pool-open"`, `data-testid="perf-cache-ratio"`,
				`data-testid="perf-24h-ingest-svg"`, `data-testid="perf-7d-latency-svg"`, `data-testid="perf-slow"`,
				`data-testid="perf-24h-lag-svg"`, "Sequencer (oldest waiting write)", "42.5 s",
				`data-testid="perf-vacuum-choose"`, `data-testid="perf-explain-hours"`,
				`data-testid="perf-writer-pool-stats"`, `data-testid="perf-writer-pool-success"`}, nil},
		{"a member sees its organization's figures only", member, "/performance", 200,
			[]string{`data-testid="perf-health"`, `data-testid="perf-explain-hours"`},
			[]string{`data-testid="perf-tables"`, `data-testid="perf-slow"`, `data-testid="perf-pool"`, `data-testid="perf-vacuum`,
				`data-testid="perf-writer-pool`}},
		{"another organization's figures are not found", member, "/performance?org=" + other, 404, nil, nil},
		{"another organization's plans are not found", owner, "/performance/explain/hours?org=" + other, 404, nil, nil},
		{"a superadmin may read another organization's plans", root, "/performance/explain/hours?org=" + other, 200,
			[]string{`data-testid="perf-explain-plan"`, "Execution Time"}, nil},
		{"a named plan", member, "/performance/explain/hours", 200, []string{`data-testid="perf-explain-plan"`, "Execution Time"}, nil},
		{"an unknown query name", member, "/performance/explain/" + url.PathEscape("SELECT 1"), 404, nil, nil},
		{"a confirmation step", root, "/performance?vacuum=alerts", 200,
			[]string{`data-testid="perf-vacuum-form"`, "Type alerts to confirm"}, nil},
		{"a confirmation step for a table not ours", root, "/performance?vacuum=pg_class", 400, []string{`data-testid="form-error"`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.who.Get(tc.path)
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tc.status)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tc.unwanted {
				if strings.Contains(r.Body, w) {
					t.Errorf("page shows %q", w)
				}
			}
		})
	}

	// The writer's pgx pool beside the console's: after real acquisitions its count is
	// nonzero and its success rate a percentage.
	t.Run("writer pool", func(t *testing.T) {
		pool := env.Pool
		for range 3 {
			if _, err := pool.Exec(ctx, `SELECT 1`); err != nil {
				t.Fatal(err)
			}
		}
		r := root.Get("/performance")
		acquires := testidText(r.Body, "perf-writer-pool-acquires")
		if n, err := strconv.ParseInt(strings.ReplaceAll(acquires, ",", ""), 10, 64); err != nil || n < 3 {
			t.Fatalf("writer pool acquisitions %q, want at least 3", acquires)
		}
		rate := testidText(r.Body, "perf-writer-pool-success")
		pct, err := strconv.ParseFloat(strings.TrimSuffix(rate, " %"), 64)
		if err != nil || pct < 0 || pct > 100 {
			t.Fatalf("writer pool success rate %q, want a percentage in [0, 100]", rate)
		}
	})

	// pg_stat_statements: without it the page explains how to enable it.
	env.DB.Exec(`DROP EXTENSION IF EXISTS pg_stat_statements`)
	if r := root.Get("/performance"); r.StatusCode != 200 || !strings.Contains(r.Body, `data-testid="perf-slow-missing"`) ||
		!strings.Contains(r.Body, "shared_preload_libraries") || !strings.Contains(r.Body, "CREATE EXTENSION pg_stat_statements") {
		t.Fatalf("without pg_stat_statements: status %d, no explanation", r.StatusCode)
	}
	var preload string
	env.DB.Raw(`SHOW shared_preload_libraries`).Scan(&preload)
	if strings.Contains(preload, "pg_stat_statements") {
		if err := env.DB.Exec(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`).Error; err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { env.DB.Exec(`DROP EXTENSION IF EXISTS pg_stat_statements`) })
		if r := root.Get("/performance"); r.StatusCode != 200 || strings.Contains(r.Body, `data-testid="perf-slow-missing"`) {
			t.Fatalf("with pg_stat_statements: status %d or still explained as missing", r.StatusCode)
		}
	}

	audited := func() int64 {
		var n int64
		env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = ?`, org, models.ActionPerfVacuum).Scan(&n)
		return n
	}
	t.Run("maintenance", func(t *testing.T) {
		if r := owner.PostForm("/performance/vacuum", url.Values{"table": {"alerts"}, "confirm": {"alerts"}}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("owner: status %d, want 403", r.StatusCode)
		}
		r := root.PostForm("/performance/vacuum", url.Values{"table": {"alerts"}, "confirm": {"alert"}})
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, `data-testid="form-error-field">confirm<`) {
			t.Fatalf("mistyped confirmation: status %d", r.StatusCode)
		}
		r = root.PostForm("/performance/vacuum", url.Values{"table": {"pg_authid"}, "confirm": {"pg_authid"}})
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, `data-testid="form-error-field">table<`) {
			t.Fatalf("a table not ours: status %d", r.StatusCode)
		}
		if audited() != 0 {
			t.Fatal("a refused maintenance was recorded")
		}
		r = root.PostForm("/performance/vacuum", url.Values{"table": {"alerts"}, "confirm": {"alerts"}})
		if r.StatusCode != http.StatusSeeOther && r.StatusCode != http.StatusFound {
			t.Fatalf("vacuum: status %d", r.StatusCode)
		}
		if audited() != 1 {
			t.Fatal("the maintenance was not recorded in the audit log")
		}
	})
}
