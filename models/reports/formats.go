package reports

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/export"
)

// CSVHeader is the first row of a report's CSV: one row per event after it.
var CSVHeader = []string{"id", "timestamp", "principal_id", "action", "target_resource_type", "target_resource_id",
	"status", "data_classification", "outcome_description", "correlation_id", "hash"}

// eventsSQL selects the report's events oldest first, every column already text (the
// timestamp in RFC 3339 UTC with microseconds), so rows go to the CSV writer without
// conversion.
func eventsSQL(org string, c Criteria) (string, []any) {
	where, args := c.scope(org)
	return `SELECT id::text, to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
		principal_id, action, target_resource_type, target_resource_id, status, data_classification,
		outcome_description, correlation_id, hash FROM audit_log WHERE ` + where + ` ORDER BY "timestamp", id`, args
}

// EventsSQL is the query behind the CSV with its arguments, exported so the benchmark can
// copy the very same rows with psql.
func EventsSQL(org string, c Criteria) (string, []any) { return eventsSQL(org, c) }

// StreamEvents hands each of the report's events to row as text cells (NULL is ""), oldest
// first, straight from the database cursor: memory stays flat whatever the number of rows.
// The slice is reused between calls.
func StreamEvents(ctx context.Context, db *gorm.DB, org string, c Criteria, row func([]string) error) (int64, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	query, args := eventsSQL(org, c)
	var n int64
	cells := make([]string, len(CSVHeader))
	err := models.QueryInTenant(ctx, db, org, query, args, func(r pgx.Rows) error {
		for r.Next() {
			for i, raw := range r.RawValues() {
				cells[i] = string(raw)
			}
			if err := row(cells); err != nil {
				return err
			}
			n++
		}
		return r.Err()
	})
	if err != nil {
		return n, fmt.Errorf("reports: stream events: %w", err)
	}
	return n, nil
}

// WriteCSV writes the report's events to w as CSV through the one export writer (RFC 4180,
// formula cells neutralized), a header first, and returns how many events it wrote.
// progress, when not nil, is called every few thousand rows with the count so far.
func WriteCSV(ctx context.Context, db *gorm.DB, org string, c Criteria, w io.Writer, progress func(int64)) (int64, error) {
	out := export.NewCSV(w)
	if err := out.Write(CSVHeader); err != nil {
		return 0, err
	}
	n, err := StreamEvents(ctx, db, org, c, func(cells []string) error {
		if err := out.Write(cells); err != nil {
			return err
		}
		if progress != nil && out.Rows()%5000 == 0 {
			progress(int64(out.Rows() - 1))
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	return n, out.Flush()
}

// WriteJSON writes the report (summary, days, tables, integrity) as one JSON document.
func WriteJSON(r *Report, w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("reports: json: %w", err)
	}
	return nil
}

// WriteXML writes the report as one XML document. Text the XML character set cannot hold
// (control characters) is replaced by U+FFFD by encoding/xml's escaping.
func WriteXML(r *Report, w io.Writer) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("reports: xml: %w", err)
	}
	return enc.Flush()
}
