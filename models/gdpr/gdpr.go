// Package gdpr keeps an organization's data-subject requests (access, erasure,
// pseudonymization, restriction, rectification): their workflow and history, the exports
// they produce (stored compressed in PostgreSQL) and the restrictions they place. Erasure
// and pseudonymization run through an Engine (see engine.go).
package gdpr

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"auditdb/models"
)

// Request types.
const (
	TypeAccess           = "access"
	TypeErasure          = "erasure"
	TypePseudonymization = "pseudonymization"
	TypeRestriction      = "restriction"
	TypeRectification    = "rectification"
)

// Types are the request types in the order the form offers them.
var Types = []string{TypeAccess, TypeErasure, TypePseudonymization, TypeRestriction, TypeRectification}

// TypeTitles name each type for people.
var TypeTitles = map[string]string{
	TypeAccess:           "Access / export (Art. 15, 20)",
	TypeErasure:          "Erasure (Art. 17)",
	TypePseudonymization: "Pseudonymization",
	TypeRestriction:      "Restriction (Art. 18)",
	TypeRectification:    "Rectification (Art. 16)",
}

// Statuses of a request: received → in progress → awaiting approval → completed or
// rejected.
const (
	StatusReceived         = "received"
	StatusInProgress       = "in_progress"
	StatusAwaitingApproval = "awaiting_approval"
	StatusCompleted        = "completed"
	StatusRejected         = "rejected"
)

// Operation states of a request's background work (export, erasure, pseudonymization).
const (
	OpNone    = "none"
	OpRunning = "running"
	OpDone    = "done"
	OpFailed  = "failed"
)

// Deadlines: a request is due DueDays after receipt and may be extended once by up to
// MaxExtensionDays.
const (
	DueDays          = 30
	MaxExtensionDays = 60
)

// Self-audit actions of the requests workflow (the operations write gdpr.data.*).
const (
	ActionRequestCreate = "gdpr.request.create"
	ActionRequestUpdate = "gdpr.request.update"
	ActionRequestReject = "gdpr.request.reject"
	ActionRequestDone   = "gdpr.request.complete"
	ActionApprove       = "gdpr.request.approve"
	ActionDataExport    = "gdpr.data.export"
	ActionRectification = "gdpr.data.rectify"
)

// Limits of the text a request holds (the columns' sizes).
const (
	maxID     = 255
	maxShort  = 500
	maxReason = 2000
	maxNotes  = 10000
)

// Request is one data-subject request.
type Request struct {
	ID              string
	Org             string
	Type            string
	Subject         Subject
	IdentityCheck   string
	RequestedBy     string
	ReceivedAt      time.Time
	Status          string
	RejectionReason string
	DueAt           time.Time
	ExtensionDays   int
	ExtensionReason string
	AssigneeID      *int64
	AssigneeName    string
	Notes           string
	FiledBy         string
	SubmittedBy     string
	SubmittedByUser *int64
	ApprovedBy      string
	ApprovedAt      *time.Time
	Strategy        Strategy
	Operation       string
	Progress        Progress
	Result          *Result
	Error           string
	Pseudonym       string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Open reports whether the request is still being worked on.
func (r *Request) Open() bool { return r.Status != StatusCompleted && r.Status != StatusRejected }

// Overdue reports whether an open request is past its due date at now.
func (r *Request) Overdue(now time.Time) bool { return r.Open() && now.After(r.DueAt) }

// DueThisWeek reports whether an open request falls due within seven days of now.
func (r *Request) DueThisWeek(now time.Time) bool {
	return r.Open() && !r.Overdue(now) && r.DueAt.Before(now.Add(7*24*time.Hour))
}

// Step is one entry of a request's history.
type Step struct {
	At     time.Time
	Actor  string
	Step   string
	Detail string
}

// Input is a new request as the form or the API gives it.
type Input struct {
	Type          string
	Subject       Subject
	IdentityCheck string
	RequestedBy   string
	ReceivedAt    time.Time // zero: now
	Notes         string
}

// validText reports whether s is valid UTF-8 without NUL of at most max characters.
func validText(s string, max int) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0) && utf8.RuneCountInString(s) <= max
}

// Validate returns a KindInvalid error naming the first bad field of s: a subject needs a
// principal id or a target resource's type and id, each at most 255 characters.
func (s Subject) Validate() error {
	if s.PrincipalID == "" && s.ResourceType == "" && s.ResourceID == "" {
		return models.Invalid("subject", "give the subject's principal id, or a target resource's type and id")
	}
	for _, f := range []struct{ name, v string }{{"principal_id", s.PrincipalID}, {"resource_type", s.ResourceType},
		{"resource_id", s.ResourceID}} {
		if !validText(f.v, maxID) || strings.TrimSpace(f.v) != f.v {
			return models.Invalid(f.name, "must be text of at most 255 characters without surrounding spaces")
		}
	}
	if (s.ResourceType == "") != (s.ResourceID == "") {
		if s.ResourceType == "" {
			return models.Invalid("resource_type", "a target resource needs its type as well as its id")
		}
		return models.Invalid("resource_id", "a target resource needs its id as well as its type")
	}
	return nil
}

// Describe is the subject as the pages show it.
func (s Subject) Describe() string {
	var parts []string
	if s.PrincipalID != "" {
		parts = append(parts, "principal "+s.PrincipalID)
	}
	if s.ResourceType != "" {
		parts = append(parts, "resource "+s.ResourceType+"/"+s.ResourceID)
	}
	return strings.Join(parts, " and ")
}

// Validate returns a KindInvalid error naming the first bad field.
func (in Input) Validate(now time.Time) error {
	if !contains(Types, in.Type) {
		return models.Invalid("type", "must be one of access, erasure, pseudonymization, restriction, rectification")
	}
	if err := in.Subject.Validate(); err != nil {
		return err
	}
	if strings.TrimSpace(in.IdentityCheck) == "" || !validText(in.IdentityCheck, maxShort) {
		return models.Invalid("identity_check", "say how the requester's identity was checked (at most 500 characters)")
	}
	if strings.TrimSpace(in.RequestedBy) == "" || !validText(in.RequestedBy, maxID) {
		return models.Invalid("requested_by", "say who asked (at most 255 characters)")
	}
	if !in.ReceivedAt.IsZero() && (in.ReceivedAt.After(now.Add(time.Minute)) || in.ReceivedAt.Before(now.AddDate(-1, 0, 0))) {
		return models.Invalid("received_at", "must be within the last year and not in the future")
	}
	if !validText(in.Notes, maxNotes) {
		return models.Invalid("notes", "must be valid text of at most 10000 characters")
	}
	return nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Store keeps the organizations' requests; every method takes the organization and every
// query filters by it (another organization's request is KindNotFound).
type Store struct {
	db    *gorm.DB
	trail *models.AuditTrail
	Now   func() time.Time
}

// NewStore returns a store over db writing self-audit events to trail.
func NewStore(db *gorm.DB, trail *models.AuditTrail) *Store {
	return &Store{db: db, trail: trail, Now: time.Now}
}

func newID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "gdpr_" + hex.EncodeToString(b)
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Create records a new request of org, received (now when in.ReceivedAt is zero) and due
// DueDays later. It returns a KindInvalid error naming the first bad field.
func (s *Store) Create(ctx context.Context, org string, in Input, by models.Actor) (*Request, error) {
	now := s.Now().UTC()
	if err := in.Validate(now); err != nil {
		return nil, err
	}
	received := in.ReceivedAt.UTC()
	if received.IsZero() {
		received = now
	}
	id := newID()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Exec(`INSERT INTO gdpr_requests (id, organization_id, type, principal_id, resource_type, resource_id,
			identity_check, requested_by, received_at, due_at, notes, filed_by, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, org, in.Type, nullable(in.Subject.PrincipalID), nullable(in.Subject.ResourceType), nullable(in.Subject.ResourceID),
			strings.TrimSpace(in.IdentityCheck), strings.TrimSpace(in.RequestedBy), received, received.AddDate(0, 0, DueDays),
			in.Notes, by.Principal(), now, now).Error
		if err != nil {
			if strings.Contains(err.Error(), "gdpr_requests_organization_id_fkey") {
				return models.NotFound("organization")
			}
			return fmt.Errorf("gdpr: create request: %w", err)
		}
		return s.step(ctx, tx, org, id, by, "received", TypeTitles[in.Type]+" received from "+strings.TrimSpace(in.RequestedBy),
			ActionRequestCreate)
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, org, id)
}

// step records a step in the request's history and, when action is set, a self-audit event
// (which names the request, never the subject's identifiers).
func (s *Store) step(ctx context.Context, tx *gorm.DB, org, id string, by models.Actor, step, detail, action string) error {
	detail = truncate(detail, maxReason)
	if err := tx.Exec(`INSERT INTO gdpr_request_history (request_id, organization_id, at, actor, step, detail)
		VALUES (?, ?, ?, ?, ?, ?)`, id, org, s.Now().UTC(), by.Principal(), step, detail).Error; err != nil {
		return fmt.Errorf("gdpr: record step: %w", err)
	}
	if action == "" || s.trail == nil {
		return nil
	}
	return s.trail.RecordTx(ctx, tx, models.AuditEntry{Org: org, Action: action, Actor: by, TargetType: "gdpr_request",
		TargetID: id, Outcome: "GDPR request " + step, Details: map[string]any{"step": step}})
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// requestRow is a row of gdpr_requests with the assignee's name.
type requestRow struct {
	ID              string
	OrganizationID  string
	Type            string
	PrincipalID     *string
	ResourceType    *string
	ResourceID      *string
	IdentityCheck   string
	RequestedBy     string
	ReceivedAt      time.Time
	Status          string
	RejectionReason *string
	DueAt           time.Time
	ExtensionDays   *int
	ExtensionReason *string
	AssigneeID      *int64
	AssigneeName    *string
	Notes           string
	FiledBy         string
	SubmittedBy     *string
	SubmittedByUser *int64
	ApprovedBy      *string
	ApprovedAt      *time.Time
	Strategy        *string
	Operation       string
	ProgressDone    int64
	ProgressTotal   int64
	ProgressPhase   string
	Result          []byte
	Error           *string
	Pseudonym       *string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

const selectRequest = `SELECT r.*, COALESCE(NULLIF(u.name, ''), u.email) AS assignee_name
	FROM gdpr_requests r LEFT JOIN users u ON u.id = r.assignee_id`

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (row *requestRow) request() *Request {
	r := &Request{ID: row.ID, Org: row.OrganizationID, Type: row.Type,
		Subject:       Subject{PrincipalID: str(row.PrincipalID), ResourceType: str(row.ResourceType), ResourceID: str(row.ResourceID)},
		IdentityCheck: row.IdentityCheck, RequestedBy: row.RequestedBy, ReceivedAt: row.ReceivedAt.UTC(), Status: row.Status,
		RejectionReason: str(row.RejectionReason), DueAt: row.DueAt.UTC(), ExtensionReason: str(row.ExtensionReason),
		AssigneeID: row.AssigneeID, AssigneeName: str(row.AssigneeName), Notes: row.Notes, FiledBy: row.FiledBy,
		SubmittedBy: str(row.SubmittedBy), SubmittedByUser: row.SubmittedByUser, ApprovedBy: str(row.ApprovedBy),
		ApprovedAt: row.ApprovedAt, Strategy: Strategy(str(row.Strategy)), Operation: row.Operation,
		Progress: Progress{Done: row.ProgressDone, Total: row.ProgressTotal, Phase: row.ProgressPhase},
		Error:    str(row.Error), Pseudonym: str(row.Pseudonym), CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt}
	if row.ExtensionDays != nil {
		r.ExtensionDays = *row.ExtensionDays
	}
	if len(row.Result) > 0 {
		var res Result
		if json.Unmarshal(row.Result, &res) == nil {
			r.Result = &res
		}
	}
	return r
}

// Get returns org's request id, or a KindNotFound error (another organization's included).
func (s *Store) Get(ctx context.Context, org, id string) (*Request, error) {
	return getRequest(s.db.WithContext(ctx), org, id, false)
}

func getRequest(tx *gorm.DB, org, id string, lock bool) (*Request, error) {
	q := selectRequest + ` WHERE r.organization_id = ? AND r.id = ?`
	if lock {
		q += ` FOR UPDATE OF r`
	}
	var rows []requestRow
	if err := tx.Raw(q, org, id).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("gdpr: get request: %w", err)
	}
	if len(rows) == 0 {
		return nil, models.NotFound("GDPR request")
	}
	return rows[0].request(), nil
}

// MaxList is how many requests List returns.
const MaxList = 500

// List returns org's requests: open ones first by due date, then closed ones newest first.
func (s *Store) List(ctx context.Context, org string) ([]Request, error) {
	var rows []requestRow
	err := s.db.WithContext(ctx).Raw(selectRequest+` WHERE r.organization_id = ?
		ORDER BY (r.status IN ('completed', 'rejected')), CASE WHEN r.status IN ('completed', 'rejected') THEN NULL ELSE r.due_at END,
		r.updated_at DESC LIMIT ?`, org, MaxList).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("gdpr: list requests: %w", err)
	}
	out := make([]Request, len(rows))
	for i := range rows {
		out[i] = *rows[i].request()
	}
	return out, nil
}

// History returns the steps of org's request id, oldest first.
func (s *Store) History(ctx context.Context, org, id string) ([]Step, error) {
	var out []Step
	err := s.db.WithContext(ctx).Raw(`SELECT at, actor, step, detail FROM gdpr_request_history
		WHERE organization_id = ? AND request_id = ? ORDER BY id`, org, id).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("gdpr: history: %w", err)
	}
	return out, nil
}

// change runs fn on org's request id locked for update, in one transaction with its
// history step. fn returns the step's name and detail and the self-audit action ("" for
// none), or an error that rolls everything back.
func (s *Store) change(ctx context.Context, org, id string, by models.Actor,
	fn func(tx *gorm.DB, r *Request) (step, detail, action string, err error)) (*Request, error) {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r, err := getRequest(tx, org, id, true)
		if err != nil {
			return err
		}
		step, detail, action, err := fn(tx, r)
		if err != nil {
			return err
		}
		if err := tx.Exec(`UPDATE gdpr_requests SET updated_at = ? WHERE id = ?`, s.Now().UTC(), id).Error; err != nil {
			return fmt.Errorf("gdpr: touch request: %w", err)
		}
		return s.step(ctx, tx, org, id, by, step, detail, action)
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, org, id)
}

func statusConflict(r *Request, want string) error {
	return models.Conflict("status", fmt.Sprintf("the request is %s; this step needs it %s", strings.ReplaceAll(r.Status, "_", " "), want))
}

// Start moves a received request of org into progress.
func (s *Store) Start(ctx context.Context, org, id string, by models.Actor) (*Request, error) {
	return s.change(ctx, org, id, by, func(tx *gorm.DB, r *Request) (string, string, string, error) {
		if r.Status != StatusReceived {
			return "", "", "", statusConflict(r, "received")
		}
		if err := tx.Exec(`UPDATE gdpr_requests SET status = 'in_progress' WHERE id = ?`, id).Error; err != nil {
			return "", "", "", fmt.Errorf("gdpr: start: %w", err)
		}
		return "in progress", "work started", ActionRequestUpdate, nil
	})
}

// Assign sets the assignee of org's request (nil: nobody). The caller checks that the user
// holds audit.gdpr in org; name is how the history names them.
func (s *Store) Assign(ctx context.Context, org, id string, user *int64, name string, by models.Actor) (*Request, error) {
	return s.change(ctx, org, id, by, func(tx *gorm.DB, r *Request) (string, string, string, error) {
		if !r.Open() {
			return "", "", "", statusConflict(r, "open")
		}
		if err := tx.Exec(`UPDATE gdpr_requests SET assignee_id = ? WHERE id = ?`, user, id).Error; err != nil {
			return "", "", "", fmt.Errorf("gdpr: assign: %w", err)
		}
		if user == nil {
			return "assigned", "unassigned", "", nil
		}
		return "assigned", "assigned to " + name, "", nil
	})
}

// SetNotes replaces the request's notes.
func (s *Store) SetNotes(ctx context.Context, org, id, notes string, by models.Actor) (*Request, error) {
	if !validText(notes, maxNotes) {
		return nil, models.Invalid("notes", "must be valid text of at most 10000 characters")
	}
	return s.change(ctx, org, id, by, func(tx *gorm.DB, r *Request) (string, string, string, error) {
		if err := tx.Exec(`UPDATE gdpr_requests SET notes = ? WHERE id = ?`, notes, id).Error; err != nil {
			return "", "", "", fmt.Errorf("gdpr: notes: %w", err)
		}
		return "notes", "notes changed", "", nil
	})
}

// Extend moves an open request's due date once, by 1 to MaxExtensionDays days, for reason.
func (s *Store) Extend(ctx context.Context, org, id string, days int, reason string, by models.Actor) (*Request, error) {
	if days < 1 || days > MaxExtensionDays {
		return nil, models.Invalid("days", fmt.Sprintf("an extension is 1 to %d days", MaxExtensionDays))
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || !validText(reason, maxReason) {
		return nil, models.Invalid("reason", "say why the request needs longer (at most 2000 characters)")
	}
	return s.change(ctx, org, id, by, func(tx *gorm.DB, r *Request) (string, string, string, error) {
		if !r.Open() {
			return "", "", "", statusConflict(r, "open")
		}
		if r.ExtensionDays > 0 {
			return "", "", "", models.Conflict("days", "the due date was extended once already")
		}
		err := tx.Exec(`UPDATE gdpr_requests SET extension_days = ?, extension_reason = ?, due_at = received_at + make_interval(days => ?)
			WHERE id = ?`, days, reason, DueDays+days, id).Error
		if err != nil {
			return "", "", "", fmt.Errorf("gdpr: extend: %w", err)
		}
		return "extended", fmt.Sprintf("due date extended by %d days: %s", days, reason), ActionRequestUpdate, nil
	})
}

// Reject closes an open request with a reason.
func (s *Store) Reject(ctx context.Context, org, id, reason string, by models.Actor) (*Request, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || !validText(reason, maxReason) {
		return nil, models.Invalid("reason", "say why the request is rejected (at most 2000 characters)")
	}
	return s.change(ctx, org, id, by, func(tx *gorm.DB, r *Request) (string, string, string, error) {
		if !r.Open() || r.Operation == OpRunning {
			return "", "", "", statusConflict(r, "open with nothing running")
		}
		if err := tx.Exec(`UPDATE gdpr_requests SET status = 'rejected', rejection_reason = ? WHERE id = ?`, reason, id).Error; err != nil {
			return "", "", "", fmt.Errorf("gdpr: reject: %w", err)
		}
		return "rejected", reason, ActionRequestReject, nil
	})
}

// SubmitForApproval asks for a second person's approval of an erasure in progress. holds
// are the legal holds covering the subject's events: any of them refuses (KindConflict
// naming the first).
func (s *Store) SubmitForApproval(ctx context.Context, org, id string, holds []Hold, by models.Actor) (*Request, error) {
	return s.change(ctx, org, id, by, func(tx *gorm.DB, r *Request) (string, string, string, error) {
		if r.Type != TypeErasure {
			return "", "", "", models.Conflict("type", "only an erasure needs approval")
		}
		if r.Status != StatusInProgress || r.Operation == OpRunning {
			return "", "", "", statusConflict(r, "in progress")
		}
		if err := holdConflict(holds); err != nil {
			return "", "", "", err
		}
		err := tx.Exec(`UPDATE gdpr_requests SET status = 'awaiting_approval', submitted_by = ?, submitted_by_user = ?,
			error = NULL WHERE id = ?`, by.Principal(), userOf(by), id).Error
		if err != nil {
			return "", "", "", fmt.Errorf("gdpr: submit: %w", err)
		}
		return "awaiting approval", "erasure requested; another holder of audit.gdpr must approve it", ActionRequestUpdate, nil
	})
}

func userOf(by models.Actor) *int64 {
	if by.UserID == 0 {
		return nil
	}
	id := by.UserID
	return &id
}

// holdConflict is the refusal of an erasure blocked by legal holds (nil when there are none):
// a KindConflict naming each hold.
func holdConflict(holds []Hold) error {
	if len(holds) == 0 {
		return nil
	}
	names := make([]string, len(holds))
	for i, h := range holds {
		names[i] = fmt.Sprintf("%q (#%d)", h.Name, h.ID)
	}
	return models.Conflict("hold", "a legal hold covers events of this subject: "+strings.Join(names, ", ")+
		"; release it on the retention page before erasing")
}

// ErrOwnApproval refuses an approval by the person who requested the erasure.
var ErrOwnApproval = models.Forbidden("you requested this erasure: another holder of audit.gdpr must approve it")

// approve records by's approval of an erasure awaiting it, under four eyes: the person who
// requested it (or filed the request) may not approve, and an approved erasure cannot be
// approved again. It marks the operation running; the caller runs it.
func (s *Store) approve(ctx context.Context, org, id string, holds []Hold, by models.Actor) (*Request, error) {
	return s.change(ctx, org, id, by, func(tx *gorm.DB, r *Request) (string, string, string, error) {
		if r.ApprovedBy != "" {
			return "", "", "", models.Conflict("status", "this erasure was approved already by "+r.ApprovedBy)
		}
		if r.Status != StatusAwaitingApproval {
			return "", "", "", statusConflict(r, "awaiting approval")
		}
		// Four eyes: neither the person who requested the erasure nor the one who filed it.
		if (r.SubmittedByUser != nil && by.UserID != 0 && *r.SubmittedByUser == by.UserID) ||
			r.SubmittedBy == by.Principal() || (r.FiledBy == by.Principal() && by.System == "") {
			return "", "", "", ErrOwnApproval
		}
		if err := holdConflict(holds); err != nil {
			return "", "", "", err
		}
		now := s.Now().UTC()
		err := tx.Exec(`UPDATE gdpr_requests SET status = 'in_progress', approved_by = ?, approved_by_user = ?, approved_at = ?,
			operation = 'running', progress_done = 0, progress_total = 0, progress_phase = '', heartbeat_at = ?, error = NULL
			WHERE id = ?`, by.Principal(), userOf(by), now, now, id).Error
		if err != nil {
			return "", "", "", fmt.Errorf("gdpr: approve: %w", err)
		}
		return "approved", "erasure approved; running", ActionApprove, nil
	})
}

// beginOperation marks an operation (export, pseudonymization) of an open request
// running, moving a received request into progress; a running one is KindConflict.
func (s *Store) beginOperation(ctx context.Context, org, id string, allowed []string, step, detail string, by models.Actor,
	set func(tx *gorm.DB) error) (*Request, error) {
	return s.change(ctx, org, id, by, func(tx *gorm.DB, r *Request) (string, string, string, error) {
		if !contains(allowed, r.Type) {
			return "", "", "", models.Conflict("type", "a "+r.Type+" request does not do this")
		}
		if r.Status != StatusReceived && r.Status != StatusInProgress {
			return "", "", "", statusConflict(r, "received or in progress")
		}
		if r.Operation == OpRunning {
			return "", "", "", models.Conflict("status", "an operation of this request is running; wait for it to finish")
		}
		now := s.Now().UTC()
		err := tx.Exec(`UPDATE gdpr_requests SET status = 'in_progress', operation = 'running', progress_done = 0,
			progress_total = 0, progress_phase = '', heartbeat_at = ?, error = NULL WHERE id = ?`, now, id).Error
		if err != nil {
			return "", "", "", fmt.Errorf("gdpr: begin: %w", err)
		}
		if set != nil {
			if err := set(tx); err != nil {
				return "", "", "", err
			}
		}
		return step, detail, ActionRequestUpdate, nil
	})
}

// progress records how far the request's operation has got, and that it is alive.
func (s *Store) progress(ctx context.Context, id string, p Progress) {
	s.db.WithContext(ctx).Exec(`UPDATE gdpr_requests SET progress_done = ?, progress_total = ?, progress_phase = ?,
		heartbeat_at = ? WHERE id = ? AND operation = 'running'`, p.Done, p.Total, truncate(p.Phase, 20), s.Now().UTC(), id)
}

// fail records that the request's operation failed with err; the request stays in
// progress so it can be retried.
func (s *Store) fail(ctx context.Context, org, id string, err error, by models.Actor) {
	msg := err.Error()
	if me := (*models.Error)(nil); errors.As(err, &me) {
		msg = me.Message
	}
	s.change(context.WithoutCancel(ctx), org, id, by, func(tx *gorm.DB, r *Request) (string, string, string, error) {
		// An erasure that failed goes back to be requested (and approved) again.
		e := tx.Exec(`UPDATE gdpr_requests SET operation = 'failed', error = ?, approved_by = NULL, approved_by_user = NULL,
			approved_at = NULL WHERE id = ?`, truncate(msg, maxReason), id).Error
		return "failed", msg, "", e
	})
}

// Complete closes an open request with nothing running: an access request once its export
// exists, a restriction (which then applies: see Restrict), a rectification recorded as not
// applicable to an immutable log.
func (s *Store) Complete(ctx context.Context, org, id, detail string, by models.Actor) (*Request, error) {
	return s.change(ctx, org, id, by, func(tx *gorm.DB, r *Request) (string, string, string, error) {
		if !r.Open() || r.Status == StatusAwaitingApproval || r.Operation == OpRunning {
			return "", "", "", statusConflict(r, "received or in progress with nothing running")
		}
		if r.Type == TypeErasure || r.Type == TypePseudonymization {
			return "", "", "", models.Conflict("type", "an "+r.Type+" completes when its operation has run")
		}
		if r.Type == TypeRestriction {
			err := tx.Exec(`INSERT INTO gdpr_restrictions (organization_id, request_id, principal_id, resource_type, resource_id)
				VALUES (?, ?, ?, ?, ?)`, org, id, nullable(r.Subject.PrincipalID), nullable(r.Subject.ResourceType),
				nullable(r.Subject.ResourceID)).Error
			if err != nil {
				return "", "", "", fmt.Errorf("gdpr: restrict: %w", err)
			}
			detail = "restriction applied: exports and reports leave this subject's events out until it is lifted"
		}
		if err := tx.Exec(`UPDATE gdpr_requests SET status = 'completed' WHERE id = ?`, id).Error; err != nil {
			return "", "", "", fmt.Errorf("gdpr: complete: %w", err)
		}
		return "completed", detail, ActionRequestDone, nil
	})
}

// Restricted reports whether org's restriction request id has a restriction in force.
func (s *Store) Restricted(ctx context.Context, org, id string) (bool, error) {
	var n int64
	err := s.db.WithContext(ctx).Raw(`SELECT count(*) FROM gdpr_restrictions WHERE organization_id = ? AND request_id = ?
		AND lifted_at IS NULL`, org, id).Scan(&n).Error
	if err != nil {
		return false, fmt.Errorf("gdpr: restriction: %w", err)
	}
	return n > 0, nil
}

// Lift ends the restriction placed by org's request id; KindConflict when none is in force.
func (s *Store) Lift(ctx context.Context, org, id string, by models.Actor) (*Request, error) {
	return s.change(ctx, org, id, by, func(tx *gorm.DB, r *Request) (string, string, string, error) {
		res := tx.Exec(`UPDATE gdpr_restrictions SET lifted_at = ?, lifted_by = ? WHERE organization_id = ? AND request_id = ?
			AND lifted_at IS NULL`, s.Now().UTC(), by.Principal(), org, id)
		if res.Error != nil {
			return "", "", "", fmt.Errorf("gdpr: lift: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return "", "", "", models.Conflict("status", "no restriction of this request is in force")
		}
		return "lifted", "restriction lifted: the subject's events are in exports and reports again", ActionRequestUpdate, nil
	})
}
