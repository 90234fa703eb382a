package reports

import (
	"context"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"auditdb/models"
)

// Report is one generated report: what it covers, its summary, the events per day, its
// tables and the integrity summary. The event rows themselves are not held here: the CSV
// and the PDF stream them from the database.
type Report struct {
	XMLName      xml.Name  `json:"-" xml:"report"`
	Organization string    `json:"organization" xml:"organization"`
	Type         string    `json:"type" xml:"type"`
	Title        string    `json:"title" xml:"title"`
	From         time.Time `json:"from" xml:"from"`
	To           time.Time `json:"to" xml:"to"`
	GeneratedAt  time.Time `json:"generated_at" xml:"generated_at"`
	// Events is how many events the report covers; Empty says the period holds none.
	Events    int64            `json:"events" xml:"events"`
	Empty     bool             `json:"empty" xml:"empty"`
	Criteria  []Pair           `json:"criteria" xml:"criteria>item"`
	Summary   []Pair           `json:"summary" xml:"summary>item"`
	Days      []Day            `json:"days" xml:"days>day"`
	Sections  []Section        `json:"sections" xml:"sections>section"`
	Integrity IntegritySummary `json:"integrity" xml:"integrity"`

	criteria Criteria
}

// Pair is one labelled value.
type Pair struct {
	Name  string `json:"name" xml:"name,attr"`
	Value string `json:"value" xml:",chardata"`
}

// Day is the events of one UTC day.
type Day struct {
	Day      string `json:"day" xml:"date,attr"`
	Events   int64  `json:"events" xml:"events,attr"`
	Failures int64  `json:"failures" xml:"failures,attr"`
}

// Section is one table of a report, with a note when it has something to say (why it is
// empty, what a flag means).
type Section struct {
	Title   string   `json:"title" xml:"title,attr"`
	Note    string   `json:"note,omitempty" xml:"note,omitempty"`
	Columns []string `json:"columns" xml:"columns>column"`
	Rows    []Row    `json:"rows" xml:"rows>row"`
}

// Row is one row of a section.
type Row struct {
	Cells []string `json:"cells" xml:"cell"`
}

// CheckpointRef names the signed checkpoint a report was checked against.
type CheckpointRef struct {
	Number    int64     `json:"number" xml:"number,attr"`
	TreeSize  int64     `json:"tree_size" xml:"tree_size,attr"`
	RootHash  string    `json:"root_hash" xml:"root_hash,attr"`
	CreatedAt time.Time `json:"created_at" xml:"created_at,attr"`
}

// IntegritySummary is how the report's events stand against the Merkle log: the latest
// signed checkpoint, how many of the period's events it covers, the period's verification
// outcomes, the latest sweep and the events removed by policy.
type IntegritySummary struct {
	Checkpoint *CheckpointRef `json:"checkpoint,omitempty" xml:"checkpoint,omitempty"`
	// Covered is how many of the period's events (any filter aside) the checkpoint covers;
	// Pending how many were not yet in it when the report was made.
	Covered  int64 `json:"covered" xml:"covered"`
	Pending  int64 `json:"pending" xml:"pending"`
	Verified int64 `json:"verified" xml:"verified"`
	Tampered int64 `json:"tampered" xml:"tampered"`
	// Failed are verifications that could not be carried out.
	Failed    int64  `json:"failed" xml:"failed"`
	Removed   int64  `json:"removed" xml:"removed"`
	LastSweep string `json:"last_sweep" xml:"last_sweep"`
	Note      string `json:"note" xml:"note"`
}

// Generator builds reports from the database.
type Generator struct {
	db *gorm.DB
}

// NewGenerator returns a generator over db.
func NewGenerator(db *gorm.DB) *Generator { return &Generator{db: db} }

// tableRows is how many rows a report's tables show at most (the CSV holds every event).
const tableRows = 50

// Build generates the report of org for c at now. Every figure is an aggregate computed
// by PostgreSQL; events are never loaded one by one. It returns a KindInvalid error for
// bad criteria.
func (g *Generator) Build(ctx context.Context, org string, c Criteria, now time.Time) (*Report, error) {
	if err := c.ValidateAt(now); err != nil {
		return nil, err
	}
	r := &Report{
		Organization: org, Type: c.Type, Title: TypeTitles[c.Type],
		From: c.From.UTC(), To: c.To.UTC(), GeneratedAt: now.UTC().Truncate(time.Second),
		Criteria: c.Pairs(), criteria: c,
	}
	where, args := c.scope(org)
	var failures, principals int64
	var first, last *time.Time
	err := g.tenant(ctx, org, `SELECT count(*), count(*) FILTER (WHERE status = 'failure'),
		count(DISTINCT principal_id), min("timestamp"), max("timestamp") FROM audit_log WHERE `+where, args,
		nil, []any{&r.Events, &failures, &principals, &first, &last})
	if err != nil {
		return nil, err
	}
	r.Empty = r.Events == 0
	r.Summary = []Pair{
		{"Events", strconv.FormatInt(r.Events, 10)},
		{"Failures", strconv.FormatInt(failures, 10)},
		{"Failure rate", rate(failures, r.Events)},
		{"Distinct principals", strconv.FormatInt(principals, 10)},
	}
	if r.Empty {
		r.Summary = append(r.Summary, Pair{"Note", "No events matched in this period: the report is complete and empty."})
	} else {
		r.Summary = append(r.Summary, Pair{"First event", first.UTC().Format(time.RFC3339)},
			Pair{"Last event", last.UTC().Format(time.RFC3339)})
	}
	if r.Days, err = g.days(ctx, org, c, where, args); err != nil {
		return nil, err
	}
	if err := g.sections(ctx, org, c, where, args, r); err != nil {
		return nil, err
	}
	if r.Integrity, err = g.integrity(ctx, org, c, now); err != nil {
		return nil, err
	}
	if c.Type == TypeIntegrity {
		r.Sections = append(r.Sections, integritySection(r.Integrity))
	}
	return r, nil
}

// CriteriaUsed returns the criteria the report was built for.
func (r *Report) CriteriaUsed() Criteria { return r.criteria }

// tenant runs one query over audit_log or alerts confined to org. With scan nil, the query
// returns one row read into into.
func (g *Generator) tenant(ctx context.Context, org, query string, args []any, scan func(pgx.Rows) error, into []any) error {
	if scan == nil {
		scan = func(r pgx.Rows) error {
			_, err := pgx.ForEachRow(r, into, func() error { return nil })
			return err
		}
	}
	if err := models.QueryInTenant(ctx, g.db, org, query, args, scan); err != nil {
		return fmt.Errorf("reports: query: %w", err)
	}
	return nil
}

// plain runs one query over tables that are not tenant-confined (integrity, checkpoints,
// sweeps, removals); every such query filters by organization itself.
func (g *Generator) plain(ctx context.Context, query string, args []any, scan func(pgx.Rows) error) error {
	err := models.WithPgx(ctx, g.db, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		if err := scan(rows); err != nil {
			return err
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("reports: query: %w", err)
	}
	return nil
}

// table runs query (its rows are text cells) and returns them as a section's rows.
func (g *Generator) table(ctx context.Context, org, query string, args []any) ([]Row, error) {
	var out []Row
	err := g.tenant(ctx, org, query, args, func(r pgx.Rows) error {
		for r.Next() {
			vals, err := r.Values()
			if err != nil {
				return err
			}
			row := Row{Cells: make([]string, len(vals))}
			for i, v := range vals {
				row.Cells[i] = cell(v)
			}
			out = append(out, row)
		}
		return r.Err()
	}, nil)
	return out, err
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05 UTC")
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case bool:
		if x {
			return "yes"
		}
		return "no"
	}
	return fmt.Sprint(v)
}

func rate(n, of int64) string {
	if of == 0 {
		return "0.0%"
	}
	return strconv.FormatFloat(100*float64(n)/float64(of), 'f', 1, 64) + "%"
}

// days counts the events per UTC day. A GENERAL_COMPLIANCE report without filters over
// whole days reads the daily rollups when detection has counted every event of the
// organization; anything else groups audit_log.
func (g *Generator) days(ctx context.Context, org string, c Criteria, where string, args []any) ([]Day, error) {
	var out []Day
	collect := func(r pgx.Rows) error {
		var d Day
		_, err := pgx.ForEachRow(r, []any{&d.Day, &d.Events, &d.Failures}, func() error {
			out = append(out, d)
			return nil
		})
		return err
	}
	if ok, err := g.rollupsAnswer(ctx, org, c); err != nil {
		return nil, err
	} else if ok {
		err := g.plain(ctx, `SELECT to_char(day, 'YYYY-MM-DD'), sum(events)::bigint, sum(failures)::bigint
			FROM event_counts_daily WHERE organization_id = $1 AND kind = 'action' AND day >= $2::date AND day < $3::date
			GROUP BY day ORDER BY day`, []any{org, c.From.UTC(), c.To.UTC()}, collect)
		return out, err
	}
	err := g.tenant(ctx, org, `SELECT to_char(date_trunc('day', "timestamp" AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS d,
		count(*), count(*) FILTER (WHERE status = 'failure') FROM audit_log WHERE `+where+` GROUP BY d ORDER BY d`,
		args, collect, nil)
	return out, err
}

// rollupsAnswer reports whether the daily rollups hold exactly the counts c asks for: no
// filter, whole UTC days, and detection has counted every sequenced event of org with none
// waiting in the leaf queue, and no event was removed by policy (the rollups keep counting
// removed events).
func (g *Generator) rollupsAnswer(ctx context.Context, org string, c Criteria) (bool, error) {
	if c.Type != TypeGeneral || c.Narrowed() || !midnight(c.From) || !midnight(c.To) {
		return false, nil
	}
	var ok bool
	err := g.plain(ctx, `SELECT COALESCE((SELECT leaf_index FROM detection_cursor WHERE organization_id = $1), 0)
			>= COALESCE((SELECT max(leaf_index) + 1 FROM audit_leaf WHERE organization_id = $1), 0)
		AND EXISTS (SELECT 1 FROM audit_leaf WHERE organization_id = $1)
		AND NOT EXISTS (SELECT 1 FROM audit_leaf_queue WHERE organization_id = $1)
		AND NOT EXISTS (SELECT 1 FROM removed_events WHERE organization_id = $1)`, []any{org},
		func(r pgx.Rows) error {
			_, err := pgx.ForEachRow(r, []any{&ok}, func() error { return nil })
			return err
		})
	return ok, err
}

func midnight(t time.Time) bool {
	t = t.UTC()
	return t.Equal(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC))
}

// sections adds the type's tables to r.
func (g *Generator) sections(ctx context.Context, org string, c Criteria, where string, args []any, r *Report) error {
	n := len(args) + 1
	limit := fmt.Sprintf(" LIMIT $%d", n)
	targs := append(append([]any{}, args...), tableRows)
	add := func(title, note string, columns []string, query string, qargs []any) error {
		rows, err := g.table(ctx, org, query, qargs)
		if err != nil {
			return err
		}
		if len(rows) == 0 && note == "" {
			note = "Nothing in this period."
		}
		r.Sections = append(r.Sections, Section{Title: title, Note: note, Columns: columns, Rows: rows})
		return nil
	}
	byPrincipal := `SELECT COALESCE(principal_id, '(none)') AS p, count(*) AS n, count(*) FILTER (WHERE status = 'failure'),
		count(DISTINCT target_resource_type || '/' || target_resource_id)` +
		fmt.Sprintf(`, count(*) > %d`, HighVolume) + ` FROM audit_log WHERE ` + where + ` GROUP BY p ORDER BY n DESC, p` + limit
	byAction := `SELECT action, count(*) AS n, count(*) FILTER (WHERE status = 'failure'),
		round(100.0 * count(*) FILTER (WHERE status = 'failure') / count(*), 1)::text || '%' FROM audit_log WHERE ` + where +
		` GROUP BY action ORDER BY n DESC, action` + limit
	failures := `SELECT "timestamp", COALESCE(principal_id, ''), action,
		COALESCE(target_resource_type || '/' || target_resource_id, target_resource_type, ''), COALESCE(outcome_description, '')
		FROM audit_log WHERE ` + where + ` AND status = 'failure' ORDER BY "timestamp" DESC, id DESC` + limit
	var err error
	switch c.Type {
	case TypeHIPAA:
		err = firstErr(
			func() error {
				return add("Access to PHI by principal", fmt.Sprintf("High-volume: more than %d events in the period.", HighVolume),
					[]string{"Principal", "Events", "Failures", "Distinct resources", "High-volume"}, byPrincipal, targs)
			},
			func() error {
				return add("Access to PHI by resource", "", []string{"Resource type", "Resource id", "Events", "Principals"},
					`SELECT COALESCE(target_resource_type, '(none)') AS t, COALESCE(target_resource_id, '') AS i, count(*) AS n,
					count(DISTINCT principal_id) FROM audit_log WHERE `+where+` GROUP BY t, i ORDER BY n DESC, t, i`+limit, targs)
			},
			func() error {
				return add("Failed access to PHI", "", []string{"Time", "Principal", "Action", "Resource", "Outcome"}, failures, targs)
			})
	case TypeGDPR:
		err = firstErr(
			func() error {
				return add("Processing by action", "", []string{"Action", "Events", "Failures", "Failure rate"}, byAction, targs)
			},
			func() error {
				return add("Processing by classification", "", []string{"Classification", "Events", "Principals"},
					`SELECT data_classification, count(*) AS n, count(DISTINCT principal_id) FROM audit_log WHERE `+where+
						` GROUP BY data_classification ORDER BY n DESC, data_classification`+limit, targs)
			},
			func() error {
				return add("Processing by purpose", "The purpose is the event's details.purpose, else its retention policy.",
					[]string{"Purpose", "Events"},
					`SELECT COALESCE(details->>'purpose', retention_policy) AS p, count(*) AS n FROM audit_log WHERE `+where+
						` GROUP BY p ORDER BY n DESC, p`+limit, targs)
			})
		if err == nil {
			r.Sections = append(r.Sections, Section{Title: "Data-subject requests",
				Note:    "The GDPR area is not built yet: data-subject requests and their timings are not recorded, so this section has none.",
				Columns: []string{"Request", "Received", "Handled", "Days"}})
		}
	case TypeGeneral:
		err = firstErr(
			func() error {
				return add("Top actions", "", []string{"Action", "Events", "Failures", "Failure rate"}, byAction, targs)
			},
			func() error {
				return add("Top principals", "", []string{"Principal", "Events", "Failures", "Distinct resources", fmt.Sprintf("Over %d", HighVolume)},
					byPrincipal, targs)
			},
			func() error {
				return add("Events by status", "", []string{"Status", "Events"},
					`SELECT status, count(*) AS n FROM audit_log WHERE `+where+` GROUP BY status ORDER BY n DESC, status`, args)
			},
			func() error {
				return add("Alerts raised and handled", "Alerts created in the period, by severity.",
					[]string{"Severity", "Raised", "Acknowledged", "Resolved"},
					`SELECT severity, count(*), count(*) FILTER (WHERE acknowledged), count(*) FILTER (WHERE resolved)
					FROM alerts WHERE organization_id = $1 AND created_at >= $2 AND created_at < $3
					GROUP BY severity ORDER BY severity`, []any{org, c.From.UTC(), c.To.UTC()})
			})
	case TypeIntegrity:
		err = firstErr(
			func() error {
				return g.plainSection(ctx, r, "Verification runs", []string{"Outcome", "Checks", "Events", "Last"},
					`SELECT verification_status, count(*), count(DISTINCT audit_log_id), max(verification_timestamp)
					FROM audit_integrity_log WHERE organization_id = $1 AND verification_timestamp >= $2 AND verification_timestamp < $3
					GROUP BY verification_status ORDER BY verification_status`, []any{org, c.From.UTC(), c.To.UTC()})
			},
			func() error {
				return g.plainSection(ctx, r, "Checkpoints in the period", []string{"Number", "Tree size", "Signed at"},
					`SELECT number, tree_size, created_at FROM audit_checkpoint
					WHERE organization_id = $1 AND created_at >= $2 AND created_at < $3 ORDER BY number DESC LIMIT $4`,
					[]any{org, c.From.UTC(), c.To.UTC(), tableRows})
			},
			func() error {
				return g.plainSection(ctx, r, "Integrity sweeps", []string{"Swept at", "OK", "Problems", "Events", "Error"},
					`SELECT swept_at, ok, problems, events, COALESCE(error, '') FROM integrity_sweep_runs
					WHERE organization_id = $1 AND swept_at >= $2 AND swept_at < $3 ORDER BY swept_at DESC LIMIT $4`,
					[]any{org, c.From.UTC(), c.To.UTC(), tableRows})
			},
			func() error {
				return g.plainSection(ctx, r, "Tampered or unverifiable events", []string{"Event", "Outcome", "Checked at", "Expected hash"},
					`SELECT audit_log_id, verification_status, verification_timestamp, COALESCE(expected_hash, '')
					FROM audit_integrity_log WHERE organization_id = $1 AND verification_timestamp >= $2 AND verification_timestamp < $3
					AND verification_status <> 'success' ORDER BY verification_timestamp DESC LIMIT $4`,
					[]any{org, c.From.UTC(), c.To.UTC(), tableRows})
			},
			func() error {
				return g.plainSection(ctx, r, "Events removed by policy", []string{"Reason", "Policy", "Events", "Last removed"},
					`SELECT reason, COALESCE(policy, ''), count(*), max(removed_at) FROM removed_events
					WHERE organization_id = $1 AND event_timestamp >= $2 AND event_timestamp < $3
					GROUP BY reason, policy ORDER BY reason, policy`, []any{org, c.From.UTC(), c.To.UTC()})
			})
	case TypePatientAccess:
		err = add("Every access to the patient's records", "Who, when, what and the outcome; the CSV lists every event.",
			[]string{"Time", "Principal", "Action", "Resource", "Outcome", "Status"},
			`SELECT "timestamp", COALESCE(principal_id, ''), action,
			COALESCE(target_resource_type || '/' || target_resource_id, target_resource_type, ''),
			COALESCE(outcome_description, ''), status FROM audit_log WHERE `+where+` ORDER BY "timestamp" DESC, id DESC LIMIT $`+
				strconv.Itoa(n), append(append([]any{}, args...), 1000))
	}
	return err
}

func firstErr(fns ...func() error) error {
	for _, fn := range fns {
		if err := fn(); err != nil {
			return err
		}
	}
	return nil
}

// plainSection adds a table read from a table outside row-level security.
func (g *Generator) plainSection(ctx context.Context, r *Report, title string, columns []string, query string, args []any) error {
	var rows []Row
	err := g.plain(ctx, query, args, func(res pgx.Rows) error {
		for res.Next() {
			vals, err := res.Values()
			if err != nil {
				return err
			}
			row := Row{Cells: make([]string, len(vals))}
			for i, v := range vals {
				row.Cells[i] = cell(v)
			}
			rows = append(rows, row)
		}
		return nil
	})
	if err != nil {
		return err
	}
	note := ""
	if len(rows) == 0 {
		note = "Nothing in this period."
	}
	r.Sections = append(r.Sections, Section{Title: title, Note: note, Columns: columns, Rows: rows})
	return nil
}

// integrity summarizes how the period's events stand against the log.
func (g *Generator) integrity(ctx context.Context, org string, c Criteria, now time.Time) (IntegritySummary, error) {
	var s IntegritySummary
	var cp CheckpointRef
	var root []byte
	found := false
	err := g.plain(ctx, `SELECT number, tree_size, root_hash, created_at FROM audit_checkpoint
		WHERE organization_id = $1 AND created_at <= $2 ORDER BY number DESC LIMIT 1`, []any{org, now.UTC()},
		func(r pgx.Rows) error {
			_, err := pgx.ForEachRow(r, []any{&cp.Number, &cp.TreeSize, &root, &cp.CreatedAt}, func() error {
				found = true
				return nil
			})
			return err
		})
	if err != nil {
		return s, err
	}
	if found {
		cp.RootHash = hex.EncodeToString(root)
		cp.CreatedAt = cp.CreatedAt.UTC()
		s.Checkpoint = &cp
	}
	from, to := c.From.UTC(), c.To.UTC()
	var lastSweep *time.Time
	var sweepOK *bool
	var sweepProblems *int64
	err = g.plain(ctx, `SELECT
		(SELECT count(*) FROM audit_leaf WHERE organization_id = $1 AND event_timestamp >= $2 AND event_timestamp < $3 AND leaf_index < $4),
		(SELECT count(*) FROM audit_leaf WHERE organization_id = $1 AND event_timestamp >= $2 AND event_timestamp < $3 AND leaf_index >= $4)
		  + (SELECT count(*) FROM audit_leaf_queue q, unnest(q.event_timestamps) ts WHERE q.organization_id = $1 AND ts >= $2 AND ts < $3),
		(SELECT count(*) FILTER (WHERE verification_status = 'success') FROM audit_integrity_log i WHERE i.organization_id = $1 AND verification_timestamp >= $2 AND verification_timestamp < $3),
		(SELECT count(*) FILTER (WHERE verification_status = 'tampered') FROM audit_integrity_log i WHERE i.organization_id = $1 AND verification_timestamp >= $2 AND verification_timestamp < $3),
		(SELECT count(*) FILTER (WHERE verification_status NOT IN ('success', 'tampered')) FROM audit_integrity_log i WHERE i.organization_id = $1 AND verification_timestamp >= $2 AND verification_timestamp < $3),
		(SELECT count(*) FROM removed_events WHERE organization_id = $1 AND event_timestamp >= $2 AND event_timestamp < $3),
		s.swept_at, s.ok, s.problems
		FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT swept_at, ok, problems FROM integrity_sweep_runs
			WHERE organization_id = $1 ORDER BY swept_at DESC LIMIT 1) s ON true`,
		[]any{org, from, to, cp.TreeSize},
		func(r pgx.Rows) error {
			_, err := pgx.ForEachRow(r, []any{&s.Covered, &s.Pending, &s.Verified, &s.Tampered, &s.Failed, &s.Removed,
				&lastSweep, &sweepOK, &sweepProblems}, func() error { return nil })
			return err
		})
	if err != nil {
		return s, err
	}
	switch {
	case lastSweep == nil:
		s.LastSweep = "no integrity sweep has run"
	case *sweepOK:
		s.LastSweep = lastSweep.UTC().Format("2006-01-02 15:04:05 UTC") + ": every event checked out"
	default:
		s.LastSweep = fmt.Sprintf("%s: %d problems found", lastSweep.UTC().Format("2006-01-02 15:04:05 UTC"), *sweepProblems)
	}
	if s.Checkpoint == nil {
		s.Note = "No signed checkpoint exists yet for this organization."
	} else {
		s.Note = fmt.Sprintf("Checked against signed checkpoint %d (tree size %d).", cp.Number, cp.TreeSize)
	}
	return s, nil
}

func integritySection(s IntegritySummary) Section {
	cpText := "none"
	if s.Checkpoint != nil {
		cpText = fmt.Sprintf("#%d, tree size %d, root %s, signed %s", s.Checkpoint.Number, s.Checkpoint.TreeSize,
			s.Checkpoint.RootHash, s.Checkpoint.CreatedAt.Format("2006-01-02 15:04:05 UTC"))
	}
	row := func(a, b string) Row { return Row{Cells: []string{a, b}} }
	return Section{Title: "Integrity summary", Columns: []string{"Item", "Value"}, Rows: []Row{
		row("Checkpoint", cpText),
		row("Events of the period in the checkpoint", strconv.FormatInt(s.Covered, 10)),
		row("Events of the period not yet in a checkpoint", strconv.FormatInt(s.Pending, 10)),
		row("Verifications passed", strconv.FormatInt(s.Verified, 10)),
		row("Verifications found tampered", strconv.FormatInt(s.Tampered, 10)),
		row("Verifications that could not run", strconv.FormatInt(s.Failed, 10)),
		row("Events removed by policy", strconv.FormatInt(s.Removed, 10)),
		row("Latest sweep", s.LastSweep),
	}}
}
