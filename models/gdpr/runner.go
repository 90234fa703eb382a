package gdpr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
)

// ErrNoEngine refuses erasure, pseudonymization and lookups on a server built without the
// erasure engine.
var ErrNoEngine = models.Unavailable("the erasure engine is not configured on this server", nil)

// Runner runs a request's operations (export, erasure, pseudonymization) in the background
// of the instance that started them, with their progress on the request.
type Runner struct {
	Store  *Store
	Engine Engine // nil refuses erasure, pseudonymization and lookups
	db     *gorm.DB
	trail  *models.AuditTrail
	Log    *slog.Logger
	Now    func() time.Time

	base    context.Context
	stop    context.CancelFunc
	running sync.WaitGroup
}

// NewRunner returns a runner over db; engine may be nil.
func NewRunner(db *gorm.DB, store *Store, trail *models.AuditTrail, engine Engine, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, stop := context.WithCancel(context.Background())
	return &Runner{Store: store, Engine: engine, db: db, trail: trail, Log: log, Now: time.Now, base: base, stop: stop}
}

func (r *Runner) background(fn func(ctx context.Context)) {
	r.running.Add(1)
	go func() {
		defer r.running.Done()
		fn(r.base)
	}()
}

// Wait waits for every background operation started so far.
func (r *Runner) Wait() { r.running.Wait() }

// Shutdown waits for the running operations until ctx ends, then cancels the rest (they
// are recorded as failed) and waits for them.
func (r *Runner) Shutdown(ctx context.Context) {
	done := make(chan struct{})
	go func() { r.running.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		r.stop()
		r.running.Wait()
	}
}

// StartExport produces the export of org's request id (access, restriction or
// rectification) in format in the background. KindInvalid for a bad format, KindConflict
// when the request is closed or already running something.
func (r *Runner) StartExport(ctx context.Context, org, id, format string, by models.Actor) (*Request, error) {
	if err := ValidFormat(format); err != nil {
		return nil, err
	}
	req, err := r.Store.beginOperation(ctx, org, id, []string{TypeAccess, TypeRestriction, TypeRectification},
		"export started", "export of the subject's events as "+strings.ToUpper(format), by, nil)
	if err != nil {
		return nil, err
	}
	r.background(func(ctx context.Context) { r.export(ctx, req, format, by) })
	return req, nil
}

func (r *Runner) export(ctx context.Context, req *Request, format string, by models.Actor) {
	n, err := func() (int64, error) {
		w, err := createExportFile(ctx, r.db, req, format)
		if err != nil {
			return 0, err
		}
		n, err := WriteExport(ctx, r.db, req, format, w, r.Now(), func(n int64) {
			r.Store.progress(ctx, req.ID, Progress{Done: n, Phase: "export"})
		})
		if err != nil {
			return n, err
		}
		return n, w.close(n)
	}()
	if err != nil {
		r.Log.Error("gdpr export failed", "request", req.ID, "organization", req.Org, "err", err)
		r.Store.fail(ctx, req.Org, req.ID, err, by)
		return
	}
	detail := fmt.Sprintf("export ready: %d events as %s", n, strings.ToUpper(format))
	if n == 0 {
		detail = "export ready: the subject has no events in this organization; the export is empty"
	}
	r.Store.change(context.WithoutCancel(ctx), req.Org, req.ID, by, func(tx *gorm.DB, _ *Request) (string, string, string, error) {
		err := tx.Exec(`UPDATE gdpr_requests SET operation = 'done', progress_done = ?, progress_total = ?, progress_phase = 'done'
			WHERE id = ?`, n, n, req.ID).Error
		return "export ready", detail, "", err
	})
}

// Holds returns the legal holds covering the subject of req.
func (r *Runner) Holds(ctx context.Context, req *Request) ([]Hold, error) {
	if r.Engine == nil {
		return nil, ErrNoEngine
	}
	return r.Engine.Holds(ctx, req.Org, req.Subject)
}

// Count returns how many events the subject of req has (log and archives).
func (r *Runner) Count(ctx context.Context, req *Request) (int64, error) {
	if r.Engine == nil {
		return 0, ErrNoEngine
	}
	return r.Engine.Count(ctx, req.Org, req.Subject)
}

// RequestErasure asks for the approval of org's erasure request id; a legal hold over the
// subject's events refuses it (KindConflict naming the hold).
func (r *Runner) RequestErasure(ctx context.Context, org, id string, by models.Actor) (*Request, error) {
	req, err := r.Store.Get(ctx, org, id)
	if err != nil {
		return nil, err
	}
	holds, err := r.Holds(ctx, req)
	if err != nil {
		return nil, err
	}
	return r.Store.SubmitForApproval(ctx, org, id, holds, by)
}

// Approve approves org's erasure request id as by (never the person who requested it,
// never twice) and runs the erasure in the background. On completion the subject's stored
// exports are deleted and the subject's identifiers on its requests are replaced by the
// pseudonym.
func (r *Runner) Approve(ctx context.Context, org, id string, by models.Actor) (*Request, error) {
	if r.Engine == nil {
		return nil, ErrNoEngine
	}
	req, err := r.Store.Get(ctx, org, id)
	if err != nil {
		return nil, err
	}
	holds, err := r.Engine.Holds(ctx, org, req.Subject)
	if err != nil {
		return nil, err
	}
	req, err = r.Store.approve(ctx, org, id, holds, by)
	if err != nil {
		return nil, err
	}
	r.background(func(ctx context.Context) {
		res, err := r.Engine.Erase(ctx, org, id, req.Subject, by, func(p Progress) { r.Store.progress(ctx, id, p) })
		r.finish(ctx, req, res, err, by, erasureDetail(res))
	})
	return req, nil
}

// erasureDetail is the completion summary of an erasure.
func erasureDetail(res Result) string {
	if res.AlreadyErasedBy != "" && res.Matched == 0 {
		return "erasure completed: already erased by request " + res.AlreadyErasedBy + "; 0 events matched"
	}
	d := fmt.Sprintf("erasure completed: %d events deleted, %d kept pseudonymized, %d archived events deleted, %d archived kept pseudonymized",
		res.Deleted, res.Pseudonymized, res.ArchivedDeleted, res.ArchivedPseudonymized)
	return d + mentionsDetail(res)
}

// mentionsDetail is what a completion summary says of other events' free text naming the
// subject: how many were pseudonymized, and which still name it and why (an older hashing
// scheme, a legal hold, the identifier as a details key's name or a number).
func mentionsDetail(res Result) string {
	var d string
	if res.MentionsRedacted > 0 {
		d += fmt.Sprintf("; %d events mentioning the subject in free text pseudonymized", res.MentionsRedacted)
	}
	if res.MentionsLeft > 0 {
		d += fmt.Sprintf("; %d events still contain the identifier in free text, left: %s", res.MentionsLeft, MentionsLeftText(res))
	}
	return d
}

// MentionsLeftText names the events res left naming the subject in free text, each with why
// ("event 12 (older hashing scheme sha256-jcs-v1)", "event 40 (under legal hold Litigation)"),
// and how many more there are; "" when none is left.
func MentionsLeftText(res Result) string {
	if res.MentionsLeft == 0 {
		return ""
	}
	parts := make([]string, len(res.MentionsLeftIDs))
	for i, id := range res.MentionsLeftIDs {
		parts[i] = "event " + strconv.FormatInt(id, 10)
		if i < len(res.MentionsLeftWhy) && res.MentionsLeftWhy[i] != "" {
			parts[i] += " (" + res.MentionsLeftWhy[i] + ")"
		}
	}
	named := strings.Join(parts, ", ")
	if more := res.MentionsLeft - int64(len(parts)); more > 0 {
		named += fmt.Sprintf(" and %d more", more)
	}
	return named
}

// StartPseudonymization replaces the identifiers of the subject of org's pseudonymization
// request id with one pseudonym made by st, in the background.
func (r *Runner) StartPseudonymization(ctx context.Context, org, id string, st Strategy, by models.Actor) (*Request, error) {
	if st != StrategyHash && st != StrategyToken && st != StrategyEncryption {
		return nil, models.Invalid("strategy", "must be hash, token or encryption")
	}
	if r.Engine == nil {
		return nil, ErrNoEngine
	}
	req, err := r.Store.beginOperation(ctx, org, id, []string{TypePseudonymization}, "pseudonymization started",
		"strategy "+string(st), by, func(tx *gorm.DB) error {
			return tx.Exec(`UPDATE gdpr_requests SET strategy = ? WHERE id = ?`, string(st), id).Error
		})
	if err != nil {
		return nil, err
	}
	r.background(func(ctx context.Context) {
		res, err := r.Engine.Pseudonymize(ctx, org, id, req.Subject, st, by, func(p Progress) { r.Store.progress(ctx, id, p) })
		r.finish(ctx, req, res, err, by, fmt.Sprintf("pseudonymization completed (%s): %d events, %d archived events",
			st, res.Pseudonymized, res.ArchivedPseudonymized)+mentionsDetail(res))
	})
	return req, nil
}

// Erased is what replaces a subject identifier on its requests when an erasure kept no
// event (so made no pseudonym).
const Erased = "[erased]"

// finish records the outcome of an erasure or pseudonymization: on success the stored
// exports of the subject are deleted, and the subject's identifiers on every request and
// restriction of the organization are replaced by the pseudonym; the request completes.
func (r *Runner) finish(ctx context.Context, req *Request, res Result, err error, by models.Actor, detail string) {
	if err != nil {
		if me := (*models.Error)(nil); errors.As(err, &me) && me.Field == "legal_hold" {
			// A hold placed while the erasure ran: what was done stays done; the request says
			// which hold stopped it and how to resume.
			err = models.Conflict("legal_hold", fmt.Sprintf("stopped by a legal hold after %d of the subject's events: %s. "+
				"Once it is released, request and approve the erasure again: it resumes where it stopped", res.Matched, me.Message))
		}
		r.Log.Error("gdpr operation failed", "request", req.ID, "organization", req.Org, "err", err)
		r.Store.fail(ctx, req.Org, req.ID, err, by)
		return
	}
	pseudonym := res.Pseudonym
	if pseudonym == "" {
		pseudonym = Erased
	}
	result, _ := json.Marshal(res)
	s := req.Subject
	_, cerr := r.Store.change(context.WithoutCancel(ctx), req.Org, req.ID, by, func(tx *gorm.DB, _ *Request) (string, string, string, error) {
		match := `organization_id = ? AND (principal_id = ? OR (resource_type = ? AND resource_id = ?))`
		args := []any{req.Org, nullable(s.PrincipalID), nullable(s.ResourceType), nullable(s.ResourceID)}
		if err := tx.Exec(`DELETE FROM gdpr_exports WHERE `+match, args...).Error; err != nil {
			return "", "", "", fmt.Errorf("gdpr: delete the subject's exports: %w", err)
		}
		replace := `SET principal_id = CASE WHEN principal_id = ? THEN ? ELSE principal_id END,
			resource_id = CASE WHEN resource_type = ? AND resource_id = ? THEN ? ELSE resource_id END WHERE ` + match
		rargs := append([]any{nullable(s.PrincipalID), pseudonym, nullable(s.ResourceType), nullable(s.ResourceID), pseudonym}, args...)
		for _, table := range []string{"gdpr_requests", "gdpr_restrictions"} {
			q := `UPDATE ` + table + ` ` + replace
			if table == "gdpr_requests" {
				// Not another request of the subject that is running (a duplicate approved at
				// the same time): it replaces its own identifiers when it finishes, and its row,
				// locked by its own finish, would deadlock with this one.
				q += ` AND (id = ? OR operation <> 'running')`
				if err := tx.Exec(q, append(rargs, req.ID)...).Error; err != nil {
					return "", "", "", fmt.Errorf("gdpr: replace the subject's identifiers: %w", err)
				}
				continue
			}
			if err := tx.Exec(q, rargs...).Error; err != nil {
				return "", "", "", fmt.Errorf("gdpr: replace the subject's identifiers: %w", err)
			}
		}
		err := tx.Exec(`UPDATE gdpr_requests SET status = 'completed', operation = 'done', progress_phase = 'done',
			result = ?, pseudonym = ? WHERE id = ?`, string(result), nullable(res.Pseudonym), req.ID).Error
		return "completed", detail, ActionRequestDone, err
	})
	if cerr != nil {
		// Never left running: the request fails and can be approved again (the engine's
		// run is idempotent).
		r.Log.Error("gdpr operation: record outcome", "request", req.ID, "err", cerr)
		r.Store.fail(ctx, req.Org, req.ID, fmt.Errorf("recording the outcome failed: %w", cerr), by)
	}
}

// Lookup returns the original identifier of a pseudonym of org; the engine asks for the
// reason (KindInvalid without) and records the lookup.
func (r *Runner) Lookup(ctx context.Context, org, pseudonym, reason string, by models.Actor) (string, error) {
	pseudonym, reason = strings.TrimSpace(pseudonym), strings.TrimSpace(reason)
	if pseudonym == "" || !validText(pseudonym, maxID) {
		return "", models.Invalid("pseudonym", "give the pseudonym to look up (at most 255 characters)")
	}
	if reason == "" || !validText(reason, maxReason) {
		return "", models.Invalid("reason", "say why the original identifier is needed (at most 2000 characters)")
	}
	if r.Engine == nil {
		return "", ErrNoEngine
	}
	return r.Engine.Lookup(ctx, org, pseudonym, reason, by)
}

// Rectify completes org's rectification request id: an immutable log is not rectified in
// place, which the request records; when eventID is set, a correcting event is appended
// through the sealed self-audit path, its details linking the original
// (details.correctsEventId). KindNotFound for an event of another organization.
func (r *Runner) Rectify(ctx context.Context, org, id string, eventID int64, correction string, by models.Actor) (*Request, error) {
	req, err := r.Store.Get(ctx, org, id)
	if err != nil {
		return nil, err
	}
	if req.Type != TypeRectification {
		return nil, models.Conflict("type", "only a rectification appends a correcting event")
	}
	detail := "not applicable to an immutable log: events are not changed in place"
	if eventID != 0 {
		correction = strings.TrimSpace(correction)
		if correction == "" || !validText(correction, maxReason) {
			return nil, models.Invalid("correction", "say what the correct value is (at most 2000 characters)")
		}
		if _, err := models.NewEventStore(r.db).Get(ctx, org, eventID); err != nil {
			if models.KindOf(err) == models.KindNotFound {
				return nil, models.Invalid("event_id", "no event "+strconv.FormatInt(eventID, 10)+" in this organization")
			}
			return nil, err
		}
		if !req.Open() {
			return nil, statusConflict(req, "open")
		}
		err := r.trail.Record(ctx, models.AuditEntry{Org: org, Action: ActionRectification, Actor: by, TargetType: "audit_event",
			TargetID: strconv.FormatInt(eventID, 10), Outcome: "Correction of event " + strconv.FormatInt(eventID, 10),
			Details: map[string]any{"correctsEventId": eventID, "correction": correction, "request": id}})
		if err != nil {
			return nil, err
		}
		detail += "; correcting event appended for event " + strconv.FormatInt(eventID, 10)
	}
	return r.Store.Complete(ctx, org, id, detail, by)
}

// StaleAfter is how long an operation may go without a heartbeat before it counts as
// stopped with its instance.
const StaleAfter = 10 * time.Minute

// FailStale records the operations left running by a stopped instance as failed (an
// erasure is resumable: approving it again finishes the work) and returns how many.
func (r *Runner) FailStale(ctx context.Context) (int64, error) {
	res := r.db.WithContext(ctx).Exec(`UPDATE gdpr_requests SET operation = 'failed', approved_by = NULL, approved_by_user = NULL,
		approved_at = NULL, status = CASE WHEN type = 'erasure' THEN 'in_progress' ELSE status END,
		error = 'the server stopped while this ran; start it again (an erasure resumes where it stopped)'
		WHERE operation = 'running' AND heartbeat_at < ?`, r.Now().UTC().Add(-StaleAfter))
	if res.Error != nil {
		return 0, fmt.Errorf("gdpr: fail stale operations: %w", res.Error)
	}
	return res.RowsAffected, nil
}
