package reports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
)

// EvidenceFunc writes the evidence bundle of org's events matching f to w and returns how
// many events it holds.
type EvidenceFunc func(ctx context.Context, org string, f models.EventFilter, w io.Writer) (events int64, err error)

// Deliverer sends an execution's files to a schedule's delivery target; it returns an
// error when the target refused them or could not be reached.
type Deliverer interface {
	Deliver(ctx context.Context, org string, d Delivery, e *Execution, links func(File) string) error
}

// MaxRunning is how many reports one organization may have running at once (started on
// demand; scheduled runs are not counted against it).
const MaxRunning = 3

// Runner runs report executions in the background of the instance that started them and
// records their outcome.
type Runner struct {
	Store *Store
	// Gen builds the reports' figures: the Generator, or Cached over it.
	Gen Builder
	db  *gorm.DB
	// Evidence produces the evidence-bundle format; nil refuses that format.
	Evidence EvidenceFunc
	// Deliver sends a scheduled execution's files; nil records delivery as not configured.
	Deliver Deliverer
	// Link returns the download link of a file, for deliveries that send links.
	Link func(org, exec string, f File) string
	Log  *slog.Logger
	Now  func() time.Time

	base    context.Context
	stop    context.CancelFunc
	running sync.WaitGroup
}

// NewRunner returns a runner over db.
func NewRunner(db *gorm.DB, store *Store, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, stop := context.WithCancel(context.Background())
	return &Runner{Store: store, Gen: NewGenerator(db), db: db, Log: log, Now: time.Now, base: base, stop: stop}
}

// RunRequest is what to run: a template, or an ad-hoc type with its period and filters.
// Formats default to the template's.
type RunRequest struct {
	TemplateID string
	Criteria   Criteria
	Formats    []string
}

// Start validates req, records a running execution of org and runs it in the background.
// It returns a KindInvalid error for bad input, KindNotFound for another organization's
// template, and ErrEvidenceUnavailable when the evidence format is asked for and this
// server has no bundle writer.
func (r *Runner) Start(ctx context.Context, org string, req RunRequest, by models.Actor) (*Execution, error) {
	now := r.Now().UTC()
	c := req.Criteria
	formats := req.Formats
	if req.TemplateID != "" {
		t, err := r.Store.Template(ctx, org, req.TemplateID)
		if err != nil {
			return nil, err
		}
		c = t.Criteria(now)
		if len(formats) == 0 {
			formats = t.Formats
		}
	}
	if err := c.ValidateAt(now); err != nil {
		return nil, err
	}
	if err := ValidFormats("formats", formats); err != nil {
		return nil, err
	}
	if err := r.evidenceAvailable(formats); err != nil {
		return nil, err
	}
	e := &Execution{ID: newID("exe_"), Org: org, TemplateID: req.TemplateID, Type: c.Type, Criteria: c, Formats: formats,
		Status: StatusRunning, ScheduledTime: now, StartedAt: now, RequestedBy: by.Principal()}
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Count, then act, under the organization's lock: parallel requests cannot all pass.
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtext('auditdb report runs'), hashtext(?))`, org).Error; err != nil {
			return fmt.Errorf("reports: lock runs: %w", err)
		}
		var running int64
		if err := tx.Raw(`SELECT count(*) FROM report_executions WHERE organization_id = ? AND status = 'running'`, org).
			Scan(&running).Error; err != nil {
			return fmt.Errorf("reports: count running: %w", err)
		}
		if running >= MaxRunning {
			return &models.Error{Kind: models.KindTooMany, RetryAfter: 30 * time.Second,
				Message: fmt.Sprintf("%d reports are running for this organization; wait for one to finish", running)}
		}
		if err := insertExecution(tx, e, ""); err != nil {
			return err
		}
		return r.Store.trail.RecordTx(ctx, tx, models.AuditEntry{Org: org, Action: ActionRun, Actor: by,
			TargetType: "report_execution", TargetID: e.ID, Outcome: "Report " + c.Type + " started",
			Details: map[string]any{"criteria": c, "formats": formats, "template": req.TemplateID}})
	})
	if err != nil {
		return nil, err
	}
	r.background(e, nil)
	return e, nil
}

func (r *Runner) evidenceAvailable(formats []string) error {
	for _, f := range formats {
		if f == FormatEvidence && r.Evidence == nil {
			return ErrEvidenceUnavailable
		}
	}
	return nil
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// insertExecution records e as running; for a schedule's run it returns false without error
// when that run already exists (another instance took it).
func insertExecution(tx *gorm.DB, e *Execution, scheduleID string) error {
	crit, _ := json.Marshal(e.Criteria)
	formats, _ := json.Marshal(e.Formats)
	res := tx.Exec(`INSERT INTO report_executions (id, report_config_id, organization_id, scheduled_time, execution_time,
		status, template_id, report_type, criteria, formats, requested_by, heartbeat_at, delivery_attempts, created_at)
		VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, '[]', ?) ON CONFLICT DO NOTHING`,
		e.ID, nilIfEmpty(scheduleID), e.Org, e.ScheduledTime, e.StartedAt, nilIfEmpty(e.TemplateID), e.Type, crit, formats,
		e.RequestedBy, e.StartedAt, e.StartedAt)
	if res.Error != nil {
		return fmt.Errorf("reports: record execution: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return errAlreadyRun
	}
	return nil
}

var errAlreadyRun = errors.New("reports: this scheduled run exists already")

// errRunsFull says the organization runs MaxRunning reports already.
var errRunsFull = errors.New("reports: the organization's running reports are at the limit")

// runsFull takes the organization's run lock for the rest of tx and reports whether it
// runs MaxRunning reports already.
func runsFull(tx *gorm.DB, org string) (bool, error) {
	if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtext('auditdb report runs'), hashtext(?))`, org).Error; err != nil {
		return false, fmt.Errorf("reports: lock runs: %w", err)
	}
	var running int64
	if err := tx.Raw(`SELECT count(*) FROM report_executions WHERE organization_id = ? AND status = 'running'`, org).
		Scan(&running).Error; err != nil {
		return false, fmt.Errorf("reports: count running: %w", err)
	}
	return running >= MaxRunning, nil
}

// background runs e on its own goroutine, tracked for Wait.
func (r *Runner) background(e *Execution, after func(*Execution)) {
	r.running.Add(1)
	go func() {
		defer r.running.Done()
		r.execute(r.base, e)
		if after != nil {
			after(e)
		}
	}()
}

// Wait waits for every background execution started so far.
func (r *Runner) Wait() { r.running.Wait() }

// Close cancels the running executions (they are recorded as failed) and waits for them.
func (r *Runner) Close() {
	r.stop()
	r.running.Wait()
}

// execute produces e's files and records the outcome: completed with its files, records
// and integrity summary, or failed with the error.
func (r *Runner) execute(ctx context.Context, e *Execution) {
	start := time.Now()
	files, records, integrity, err := r.produce(ctx, e)
	dur := time.Since(start).Milliseconds()
	status, msg := StatusCompleted, ""
	if err != nil {
		status, msg = StatusFailed, err.Error()
		if me := (*models.Error)(nil); errors.As(err, &me) {
			msg = me.Message
		}
		r.Log.Error("report execution failed", "execution", e.ID, "organization", e.Org, "err", err)
	}
	filesJSON, _ := json.Marshal(files)
	var integ []byte
	if integrity != nil {
		integ, _ = json.Marshal(integrity)
	}
	uerr := r.db.WithContext(context.WithoutCancel(ctx)).Exec(`UPDATE report_executions SET status = ?, duration = ?,
		records_processed = ?, progress = ?, export_result = ?, integrity_report = ?, error = ?, heartbeat_at = ?
		WHERE id = ?`, status, clampInt32(dur), clampInt32(records), records, filesJSON, integ, nilIfEmpty(truncate(msg, 2000)),
		r.Now().UTC(), e.ID).Error
	if uerr != nil {
		r.Log.Error("report execution: record outcome", "execution", e.ID, "err", uerr)
	}
	e.Status, e.Files, e.Error = status, files, msg
	e.DurationMS, e.Records, e.Integrity = &dur, &records, integrity
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// contentTypes and extensions of each format.
var contentTypes = map[string][2]string{
	FormatCSV:      {"text/csv; charset=utf-8", "csv"},
	FormatPDF:      {"application/pdf", "pdf"},
	FormatJSON:     {"application/json", "json"},
	FormatXML:      {"application/xml", "xml"},
	FormatEvidence: {"application/zip", "zip"},
}

// ContentType returns the media type and file extension of format.
func ContentType(format string) (string, string) {
	ct := contentTypes[format]
	return ct[0], ct[1]
}

func (r *Runner) produce(ctx context.Context, e *Execution) ([]File, int64, *IntegritySummary, error) {
	rep, err := r.Gen.Build(ctx, e.Org, e.Criteria, r.Now())
	if err != nil {
		return nil, 0, nil, err
	}
	records := rep.Events
	files := make([]File, 0, len(e.Formats))
	for _, format := range e.Formats {
		ct, ext := ContentType(format)
		name := fmt.Sprintf("%s_%s_%s_%s.%s", e.Org, e.Type, e.Criteria.From.UTC().Format("20060102"),
			e.Criteria.To.UTC().Format("20060102"), ext)
		w, err := createFile(ctx, r.db, e.Org, e.ID, format, truncate(name, 255), ct)
		if err != nil {
			return files, records, &rep.Integrity, err
		}
		switch format {
		case FormatCSV:
			_, err = WriteCSV(ctx, r.db, e.Org, e.Criteria, w, func(n int64) { r.progress(ctx, e.ID, n) })
		case FormatPDF:
			_, err = WritePDF(ctx, r.db, rep, w)
		case FormatJSON:
			err = WriteJSON(rep, w)
		case FormatXML:
			err = WriteXML(rep, w)
		case FormatEvidence:
			if r.Evidence == nil {
				err = ErrEvidenceUnavailable
			} else {
				_, err = r.Evidence(ctx, e.Org, e.Criteria.EventFilter(), w)
			}
		}
		if err != nil {
			return files, records, &rep.Integrity, fmt.Errorf("reports: %s: %w", format, err)
		}
		f, err := w.Close()
		if err != nil {
			return files, records, &rep.Integrity, err
		}
		files = append(files, f)
	}
	return files, records, &rep.Integrity, nil
}

// progress records how many events an execution has written so far, and that it is alive.
func (r *Runner) progress(ctx context.Context, id string, n int64) {
	r.db.WithContext(ctx).Exec(`UPDATE report_executions SET progress = ?, heartbeat_at = ? WHERE id = ?`, n, r.Now().UTC(), id)
}

// StaleAfter is how long a running execution may go without a heartbeat before it is
// recorded as failed (its instance stopped while running it).
const StaleAfter = 10 * time.Minute

// RunDue starts every enabled schedule whose next run has come, once across instances:
// each due schedule is claimed by moving its next run forward only if nobody moved it
// first, and the run's (schedule, scheduled time) is unique. A run missed while every
// instance was down runs once, and the next run is the first one after now. It also fails
// executions left running by a stopped instance. It returns how many runs it started.
func (r *Runner) RunDue(ctx context.Context) (int, error) {
	now := r.Now().UTC()
	if err := r.db.WithContext(ctx).Exec(`UPDATE report_executions SET status = 'failed',
		error = 'the server stopped while the report was running' WHERE status = 'running' AND heartbeat_at < ?`,
		now.Add(-StaleAfter)).Error; err != nil {
		return 0, fmt.Errorf("reports: fail stale executions: %w", err)
	}
	type due struct {
		ID, OrganizationID string
		NextRun            time.Time
	}
	var rows []due
	if err := r.db.WithContext(ctx).Raw(`SELECT id, organization_id, next_run FROM scheduled_reports
		WHERE enabled AND next_run <= ? ORDER BY next_run LIMIT 100`, now).Scan(&rows).Error; err != nil {
		return 0, fmt.Errorf("reports: due schedules: %w", err)
	}
	started := 0
	for _, d := range rows {
		ok, err := r.runScheduled(ctx, d.OrganizationID, d.ID, d.NextRun, now)
		if err != nil {
			r.Log.Error("scheduled report", "schedule", d.ID, "organization", d.OrganizationID, "err", err)
			continue
		}
		if ok {
			started++
		}
	}
	return started, nil
}

func (r *Runner) runScheduled(ctx context.Context, org, id string, scheduled, now time.Time) (bool, error) {
	var e *Execution
	var sc *ScheduledReport
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Scheduled runs count against the organization's running reports like "run now":
		// when it is full, the schedule stays due and starts on a later tick.
		if busy, err := runsFull(tx, org); err != nil || busy {
			if err == nil {
				err = errRunsFull
			}
			return err
		}
		var err error
		if sc, err = scheduleOf(tx, org, id); err != nil {
			return err
		}
		next := sc.Schedule.Next(now)
		res := tx.Exec(`UPDATE scheduled_reports SET next_run = ?, last_run = ? WHERE id = ? AND next_run = ? AND enabled`,
			nullTime(next), now, id, scheduled)
		if res.Error != nil {
			return fmt.Errorf("reports: claim schedule: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return errAlreadyRun // another instance claimed it
		}
		t, err := templateOf(tx, org, sc.TemplateID)
		if err != nil {
			return err
		}
		e = &Execution{ID: newID("exe_"), Org: org, ScheduleID: id, TemplateID: t.ID, Type: t.Type, Criteria: t.Criteria(now),
			Formats: t.Formats, Status: StatusRunning, ScheduledTime: scheduled, StartedAt: now, RequestedBy: "system:scheduler"}
		if err := r.evidenceAvailable(e.Formats); err != nil {
			e.Formats = without(e.Formats, FormatEvidence)
		}
		return insertExecution(tx, e, id)
	})
	if errors.Is(err, errAlreadyRun) || errors.Is(err, errRunsFull) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r.background(e, func(e *Execution) { r.deliver(r.base, sc, e) })
	return true, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func without(list []string, v string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

// MaxDeliveryAttempts is how many times a failed delivery is tried in all (within
// DeliveryWindow of the execution).
const (
	MaxDeliveryAttempts = 3
	DeliveryWindow      = 24 * time.Hour
)

// deliver sends a completed scheduled execution's files to the schedule's target and
// records the attempt; the execution's status does not depend on it.
func (r *Runner) deliver(ctx context.Context, sc *ScheduledReport, e *Execution) {
	if e.Status != StatusCompleted || sc.Delivery.Kind == "" || sc.Delivery.Kind == DeliverDownload {
		return
	}
	r.attempt(ctx, sc.Delivery, e)
}

func (r *Runner) attempt(ctx context.Context, d Delivery, e *Execution) {
	target := d.URL
	if d.Kind == DeliverEmail {
		target = fmt.Sprint(d.Emails)
	}
	a := DeliveryAttempt{At: r.Now().UTC(), Kind: d.Kind, Target: target}
	var err error
	if r.Deliver == nil {
		err = errors.New("delivery is not configured on this server")
	} else {
		err = r.Deliver.Deliver(ctx, e.Org, d, e, func(f File) string {
			if r.Link == nil {
				return ""
			}
			return r.Link(e.Org, e.ID, f)
		})
	}
	a.OK = err == nil
	if err != nil {
		a.Error = truncate(err.Error(), 500)
	}
	blob, _ := json.Marshal([]DeliveryAttempt{a})
	if uerr := r.db.WithContext(ctx).Exec(`UPDATE report_executions SET delivery_attempts = COALESCE(delivery_attempts, '[]'::jsonb) || ?::jsonb
		WHERE id = ?`, string(blob), e.ID).Error; uerr != nil {
		r.Log.Error("report delivery: record attempt", "execution", e.ID, "err", uerr)
	}
	e.Deliveries = append(e.Deliveries, a)
}

// RetryDeliveries tries again the deliveries of completed scheduled executions whose every
// attempt failed, at most MaxDeliveryAttempts in all and within DeliveryWindow of the run,
// waiting longer after each failure (15 minutes, then 2 hours). It returns how many it tried.
func (r *Runner) RetryDeliveries(ctx context.Context) (int, error) {
	now := r.Now().UTC()
	type row struct {
		ID, OrganizationID, ReportConfigID string
	}
	var rows []row
	err := r.db.WithContext(ctx).Raw(`SELECT e.id, e.organization_id, e.report_config_id FROM report_executions e
		WHERE e.status = 'completed' AND e.report_config_id IS NOT NULL AND e.execution_time >= ?
		AND jsonb_array_length(e.delivery_attempts) BETWEEN 1 AND ?
		AND NOT e.delivery_attempts @> '[{"ok": true}]'::jsonb
		AND (e.delivery_attempts->-1->>'at')::timestamptz <= ?::timestamptz - (CASE jsonb_array_length(e.delivery_attempts) WHEN 1 THEN interval '15 minutes' ELSE interval '2 hours' END)
		ORDER BY e.execution_time LIMIT 50`, now.Add(-DeliveryWindow), MaxDeliveryAttempts-1, now).Scan(&rows).Error
	if err != nil {
		return 0, fmt.Errorf("reports: deliveries to retry: %w", err)
	}
	for _, x := range rows {
		sc, err := r.Store.ScheduledReport(ctx, x.OrganizationID, x.ReportConfigID)
		if err != nil {
			continue
		}
		e, err := r.Store.Execution(ctx, x.OrganizationID, x.ID)
		if err != nil {
			continue
		}
		r.attempt(ctx, sc.Delivery, e)
	}
	return len(rows), nil
}

// EvidenceAvailable reports whether this server produces evidence bundles.
func (r *Runner) EvidenceAvailable() bool { return r.Evidence != nil }

// Shutdown waits for the running executions until ctx ends, then cancels the rest (they
// are recorded as failed) and waits for them to stop.
func (r *Runner) Shutdown(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		r.running.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		r.Close()
	}
}
