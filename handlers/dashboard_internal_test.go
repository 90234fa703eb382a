package handlers

import (
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/views/components"
)

// TestOverviewView: detection lag, the sweep's outcome and the failure rate in words, for
// each state the store can report.
func TestOverviewView(t *testing.T) {
	now := time.Date(2026, 11, 29, 19, 21, 28, 0, time.UTC)
	base := func() *models.DashboardOverview {
		return &models.DashboardOverview{Counted: true, Recorded: true, ActiveAlerts: map[string]int64{},
			Hours: []models.HourCount{{Hour: now.Truncate(time.Hour), Events: 200, Failures: 5}}}
	}
	cases := []struct {
		name      string
		ov        func() *models.DashboardOverview
		lag       time.Duration
		detecting bool
		figure    string // data-testid of a figure
		value     string
		sweep     string
		variant   components.Variant
	}{
		{"detection not running", base, 0, false, "stat-detection", "Not running", "The sweep runs daily", components.Neutral},
		{"detection lag shown", base, 1234 * time.Millisecond, true, "stat-detection", "1.2s", "The sweep runs daily", components.Neutral},
		{"failure rate", base, 0, false, "stat-failure-rate", "2.5 %", "", ""},
		{"no events in 24 hours", func() *models.DashboardOverview {
			o := base()
			o.Hours = nil
			return o
		}, 0, false, "stat-failure-rate", "—", "", ""},
		{"sweep passed", func() *models.DashboardOverview {
			o := base()
			o.LastSweep = &models.SweepRun{SweptAt: now.Add(-3 * time.Hour), OK: true, Events: 1200}
			return o
		}, 0, false, "", "", "No problems in 1,200 events at 2026-11-29 16:21:28 UTC (3 h ago).", components.Success},
		{"sweep found problems", func() *models.DashboardOverview {
			o := base()
			o.LastSweep = &models.SweepRun{SweptAt: now.Add(-time.Minute), Problems: 2}
			return o
		}, 0, false, "", "", "2 problems found at 2026-11-29 19:20:28 UTC (1 min ago)", components.Danger},
		{"sweep could not run", func() *models.DashboardOverview {
			o := base()
			o.LastSweep = &models.SweepRun{SweptAt: now.Add(-time.Minute), Error: "connection refused"}
			return o
		}, 0, false, "", "", "Could not check at", components.Danger},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := overviewView(tc.ov(), nil, tc.lag, tc.detecting, now)
			if tc.figure != "" {
				found := false
				for _, st := range v.Figures {
					if st.TestID == tc.figure {
						found = true
						if st.Value != tc.value {
							t.Fatalf("%s = %q, want %q", tc.figure, st.Value, tc.value)
						}
					}
				}
				if !found {
					t.Fatalf("no figure %s", tc.figure)
				}
			}
			if tc.sweep != "" && (!strings.Contains(v.Integrity.Sweep, tc.sweep) || v.Integrity.SweepVariant != tc.variant) {
				t.Fatalf("sweep %q (%s), want %q (%s)", v.Integrity.Sweep, v.Integrity.SweepVariant, tc.sweep, tc.variant)
			}
		})
	}
}
