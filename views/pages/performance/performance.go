// Package performance is the performance page: the health panel, the database's own
// statistics, the query cache, the reports' charts, the named query plans and maintenance.
package performance

import (
	"net/url"
	"time"

	"auditdb/views/components"
)

// HealthRow is one component of the health panel.
type HealthRow struct {
	Name, State, Detail string
}

// SlowRow is one slow statement.
type SlowRow struct {
	Query, Calls, Mean, Total, HitPct string
}

// IndexRow is one index.
type IndexRow struct {
	Table, Index, Scans, Size string
	Unused                    bool
}

// TableRow is one table or partition.
type TableRow struct {
	Table, Parent, Size, Live, Dead, LastVacuum, LastAnalyze string
	Needs                                                    string // "", "VACUUM ANALYZE" or "ANALYZE"
}

// Stat is one labelled figure.
type Stat struct {
	Label, Value, TestID string
}

// Explain is the plan of one named statement.
type Explain struct {
	Name  string
	Lines []string
}

// Props is the page. Superadmin-only parts are nil/empty for an organization's viewer.
type Props struct {
	Superadmin bool
	OrgName    string
	CSRF       string
	Flash      string
	Error      *components.FormError
	// Org is the organization whose figures are shown (the ?org= of the links).
	Org string

	Health        []HealthRow
	HealthOverall string

	SlowAvailable bool
	SlowThreshold string
	Slow          []SlowRow
	Indexes       []IndexRow
	Tables        []TableRow
	Pool          []Stat
	WriterPool    []Stat // the ingest writer's pgx pool; empty without one
	Cache         []Stat
	Suggestions   []string
	Charts24h     []components.LineChart
	Charts7d      []components.LineChart
	LastReport    string     // how long the last report took, and its automatic actions
	LastReportAt  *time.Time // nil before the first report

	// ExplainNames are the named statements; Explain is the one asked for.
	ExplainNames []string
	Explain      *Explain

	// VacuumTables are the tables maintenance may run on; Confirm the one chosen for the
	// confirmation step.
	VacuumTables []components.Option
	Confirm      string
}

func healthVariant(state string) components.Variant {
	switch state {
	case "ok":
		return components.Success
	case "warning", "degraded":
		return components.Warning
	case "critical":
		return components.Danger
	}
	return components.Neutral
}

func pageDescription(p Props) string {
	if p.Superadmin {
		return "The database as a whole: health, slow statements, indexes, tables, the pool and the query cache, reported every five minutes."
	}
	return "Figures of " + p.OrgName + ": health and the plans of its dashboard's statements."
}

func explainHref(org, name string) string {
	q := url.Values{"org": {org}}
	return "/performance/explain/" + url.PathEscape(name) + "?" + q.Encode()
}
