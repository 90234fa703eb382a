package handlers

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/apijson"
	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/models/export"
)

// EventExporter reads pages of events with every column an export carries.
type EventExporter interface {
	ResolveFilter(ctx context.Context, org string, f models.EventFilter) (models.EventFilter, error)
	ListFull(ctx context.Context, org string, f models.EventFilter, after *models.Cursor, limit int) (models.EventPage, error)
}

// Export formats of the events list.
const (
	ExportCSV   = "csv"
	ExportJSONL = "jsonl"
)

// exportPage is how many events an export reads per query: memory stays at one page.
const exportPage = 500

// exportWriteIdle is how long an export waits for a client that stops reading.
const exportWriteIdle = time.Minute

// exportColumns are the CSV export's header, in the order exportRow writes them.
var exportColumns = []string{"id", "timestamp", "action", "status", "principal_id", "target_resource_type",
	"target_resource_id", "outcome_description", "correlation_id", "data_classification", "retention_policy",
	"event_version", "hash_algorithm", "hash", "signature"}

// ExportEvents downloads the events list's current view (its query and range) as CSV or
// JSON Lines (GET /events/export.csv, /events/export.jsonl), newest first. The export is
// self-audited as data.export with the query before the first byte, then streamed page by
// page, so memory stays flat however many events match. CSV goes through export.NewCSV,
// which neutralizes formula cells.
func ExportEvents(events EventExporter, audit Auditor, format string, now func() time.Time) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		if v.OrgID == "" {
			return models.Forbidden("you are not a member of any organization")
		}
		filter, values, err := ParseEventFilter(func(k string) string { return c.Query(k) }, now())
		if err != nil {
			return err
		}
		filter.ExcludeRestricted = true // a GDPR restriction keeps a subject out of exports
		release, refused := exportSlots.take(v.OrgID)
		if refused != refusedNone {
			return models.TooMany(fmt.Sprintf("your organization already runs %d exports; try again when one has finished", maxExportsPerOrg))
		}
		streaming := false
		defer func() {
			if !streaming {
				release()
			}
		}()
		details := map[string]any{"format": format, "query": values.Q, "from": filter.From.UTC().Format(time.RFC3339),
			"to": filter.To.UTC().Format(time.RFC3339)}
		if err := audit.Record(c.UserContext(), models.AuditEntry{Org: v.OrgID, Action: models.ActionDataExport,
			Actor: ActorOf(c), TargetType: "events", Outcome: "Exported events as " + format, Details: details}); err != nil {
			return err
		}
		name := "events-" + now().UTC().Format("20060102T150405Z") + "." + format
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
		c.Set(fiber.HeaderCacheControl, "no-store")
		if format == ExportCSV {
			c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		} else {
			c.Set(fiber.HeaderContentType, "application/jsonl; charset=utf-8")
		}
		org := v.OrgID
		// The server's write timeout is one deadline for the whole answer, which would cut a
		// long export short (the client saw a download that just ended). Each page pushes
		// the deadline on instead: a client that stops reading still times out, an export
		// that makes progress does not.
		conn := c.Context().Conn()
		progress := func() { conn.SetWriteDeadline(time.Now().Add(exportWriteIdle)) }
		// The stream outlives the handler: it gets its own context, bounded in time, and
		// keeps its organization's export slot until it ends.
		streaming = true
		c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
			defer release()
			ctx, cancel := context.WithTimeout(context.Background(), exportBudget)
			defer cancel()
			streamEvents(ctx, events, org, filter, format, w, progress)
		})
		return nil
	}
}

// streamEvents writes every event of org matching filter to w. A failure part-way ends the
// stream with a line saying so (the status line is long gone by then).
func streamEvents(ctx context.Context, events EventExporter, org string, filter models.EventFilter, format string, w *bufio.Writer,
	progress func()) {
	var csvw *export.CSV
	enc := json.NewEncoder(w)
	if format == ExportCSV {
		csvw = export.NewCSV(w)
		if csvw.Write(exportColumns) != nil {
			return
		}
	}
	// Resolved once, not for every page: a resolved filter is not looked up again.
	filter, err := events.ResolveFilter(ctx, org, filter)
	var after *models.Cursor
	for {
		progress()
		var page models.EventPage
		if err == nil {
			page, err = events.ListFull(ctx, org, filter, after, exportPage)
		}
		if err != nil {
			if csvw != nil {
				csvw.Write([]string{exportFailed(err)})
				csvw.Flush()
			} else {
				enc.Encode(map[string]string{"error": exportFailed(err)})
			}
			w.Flush()
			return
		}
		for i := range page.Events {
			ev := &page.Events[i]
			if csvw != nil {
				err = csvw.Write(exportRow(ev))
			} else {
				err = enc.Encode(apijson.NewEvent(ev))
			}
			if err != nil {
				return // the client went away
			}
		}
		if csvw != nil {
			if csvw.Flush() != nil {
				return
			}
		}
		if w.Flush() != nil || page.Next == nil {
			return
		}
		after = page.Next
	}
}

func exportRow(ev *models.Event) []string {
	return []string{strconv.FormatInt(ev.ID, 10), ev.Timestamp.UTC().Format(time.RFC3339Nano), ev.Action, ev.Status,
		deref(ev.PrincipalID), deref(ev.TargetResourceType), deref(ev.TargetResourceID), deref(ev.OutcomeDescription),
		deref(ev.CorrelationID), ev.DataClassification, ev.RetentionPolicy, ev.EventVersion, ev.HashAlgorithm, ev.Hash,
		ev.Signature}
}

// An export runs for at most exportBudget, and an organization runs at most
// maxExportsPerOrg at once, so one user cannot keep the database busy with exports.
const (
	exportBudget     = 10 * time.Minute
	maxExportsPerOrg = 2
)

var exportSlots = newSlots(maxExportsPerOrg, 0)

// exportFailed is the line that ends a stream cut short: what happened in words, never the
// database's own message.
func exportFailed(err error) string {
	if errors.Is(err, context.DeadlineExceeded) || models.IsQueryTimeout(err) {
		return "export stopped: it ran out of time; the rows above are complete — narrow the search and export again"
	}
	return "export stopped by a server error; the rows above are complete — export again"
}
