// Package erasure erases and pseudonymizes a data subject's events (GDPR Art. 17 and the
// pseudonymization of issue 15) while every remaining event still verifies: deleted events
// leave a removed_events record (reason 'gdpr', the request id) that verification accepts,
// and kept events lose only what their scheme lets go without breaking their hash
// (docs/integrity.md): under sha256-jcs-v1 the fields outside the content hash (the
// principal, the personal details keys, the subject salt); under sha256-jcs-v2 and -v3 each
// committed field on its own (its value replaced or removed, its salt dropped, its digest
// kept, the server's redaction MAC added), which under -v3 also reaches free text naming the
// subject in any event of the organization (mentions.go). The Merkle log is never touched.
//
// The work runs in batches, each in its own transaction that declares the purpose 'gdpr'
// (the only way past audit_log's immutability). Every batch selects the subject's events by
// the ORIGINAL identifiers: an event already pseudonymized no longer matches and an event
// already deleted is gone, so a run stopped between batches resumes where it stopped, and
// the running totals, kept in gdpr_erasure_runs in the batch's transaction, count each
// event once.
package erasure

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"auditdb/models"
)

// Self-audit actions (SEED_FACTS "GDPR").
const (
	ActionDelete       = "gdpr.data.delete"
	ActionPseudonymize = "gdpr.data.pseudonymize"
)

// CriticalActions are the compliance-critical actions whose events an erasure keeps,
// pseudonymized, instead of deleting them (SEED_FACTS "GDPR").
var CriticalActions = []string{"auth.login.success", "auth.login.failure", "data.access.unauthorized",
	ActionExport, ActionPseudonymize, ActionDelete}

// ActionExport is the self-audit action of a GDPR export.
const ActionExport = "gdpr.data.export"

func isCritical(action string) bool {
	for _, a := range CriticalActions {
		if a == action {
			return true
		}
	}
	return false
}

// maxIdentifier is the longest identifier audit_log stores (varchar(255)).
const maxIdentifier = 255

// Subject is a data subject: a principal id and/or a target resource (type and id).
type Subject struct{ PrincipalID, ResourceType, ResourceID string }

// Validate returns a KindInvalid error naming "subject" when the subject names nothing,
// names half a resource, or holds an identifier longer than audit_log stores.
func (s Subject) Validate() error {
	p, t, id := strings.TrimSpace(s.PrincipalID), strings.TrimSpace(s.ResourceType), strings.TrimSpace(s.ResourceID)
	switch {
	case p != s.PrincipalID || t != s.ResourceType || id != s.ResourceID:
		return models.Invalid("subject", "identifiers must not start or end with spaces")
	case p == "" && t == "" && id == "":
		return models.Invalid("subject", "give a principal id or a target resource (type and id)")
	case (t == "") != (id == ""):
		return models.Invalid("subject", "a target resource needs both its type and its id")
	case len(p) > maxIdentifier || len(t) > maxIdentifier || len(id) > maxIdentifier:
		return models.Invalid("subject", fmt.Sprintf("identifiers are at most %d bytes", maxIdentifier))
	}
	return nil
}

// String is the subject as Lookup returns it: "principal <id>", "resource <type>/<id>" or
// both, separated by "; ".
func (s Subject) String() string {
	var parts []string
	if s.PrincipalID != "" {
		parts = append(parts, "principal "+s.PrincipalID)
	}
	if s.ResourceID != "" {
		parts = append(parts, "resource "+s.ResourceType+"/"+s.ResourceID)
	}
	return strings.Join(parts, "; ")
}

func (s Subject) hasResource() bool { return s.ResourceID != "" }

// Strategy is how a pseudonym is made.
type Strategy string

// The pseudonymization strategies.
const (
	StrategyHash       Strategy = "hash"       // HMAC-SHA256(key, organization ‖ subject): deterministic
	StrategyToken      Strategy = "token"      // random
	StrategyEncryption Strategy = "encryption" // AES-256-GCM of the subject under the key: reversible
)

// Valid reports whether st is a known strategy.
func (st Strategy) Valid() bool {
	return st == StrategyHash || st == StrategyToken || st == StrategyEncryption
}

// Progress is how far a run is; Phase is "log", "mentions" (free text naming the subject in
// other events), "archives" or "done".
type Progress struct {
	Done, Total int64
	Phase       string
}

// Result is what a request's erasure or pseudonymization did, in total over every run of
// the same request (a resumed run adds only what it did itself).
type Result struct {
	Matched, Deleted, Pseudonymized        int64 // events of the subject found; deleted; kept pseudonymized (critical actions)
	ArchivedDeleted, ArchivedPseudonymized int64
	ArchivesRewritten                      int64
	Pseudonym                              string // the subject's pseudonym used in kept events
	// LeftInClear counts the subject's events whose identifier could not be replaced in
	// place: events sealed with sha256-jcs-v1 whose target resource is the subject (its id
	// is inside their content hash). Pseudonymize leaves them as they are and says so here;
	// Erase deletes them instead, critical or not, so for Erase it is always 0.
	LeftInClear int64
	// AlreadyErasedBy, set when an erasure found none of the subject's events left, names
	// another request that erased (or is erasing) the same subject: duplicate requests
	// complete with 0 matched instead of waiting for events that are gone.
	AlreadyErasedBy string
	// MentionsRedacted counts the events (in audit_log and archives, the subject's kept ones
	// and any other of the organization) whose free text named one of the subject's
	// identifiers and was pseudonymized field by field (sha256-jcs-v3: outcome description,
	// details values), over every run of the request.
	MentionsRedacted int64
	// MentionsLeft counts the events that still name one of the identifiers in free text
	// their scheme hashed in clear (sha256-jcs-v1 and -v2: the outcome description and the
	// non-personal details values), which cannot change without breaking the hash; found
	// by this run's own scan. MentionsLeftIDs names the first of them (at most 20).
	MentionsLeft    int64
	MentionsLeftIDs []int64
	// MentionsLeftWhy says, for each of MentionsLeftIDs, why the event keeps the identifier
	// (WhyOlderScheme, WhyHeld, WhyKeyName, WhyNumber, WhyUncommitted).
	MentionsLeftWhy []string
	// Pending counts the subject's events Erase had to delete but could not yet, because
	// they are still waiting for the Merkle log (a few seconds after ingest); the run
	// returns a KindUnavailable error and a retry finishes them.
	Pending int64
}

// Hold is a legal hold covering at least one of the subject's events.
type Hold struct {
	ID           int64
	Name, Reason string
}

// CachePurger drops an organization's cached answers wherever they are kept (the query
// cache's Redis keys); the engine also bumps the organization's cache version itself.
type CachePurger interface {
	DropOrg(ctx context.Context, org string) error
}

// Engine erases and pseudonymizes subjects' events. Its zero value is not usable; see
// NewEngine.
type Engine struct {
	db     *gorm.DB
	trail  *models.AuditTrail
	crypto *crypto
	keyErr error
	// Batch is the most events one transaction changes (1,000 by default).
	Batch int
	// Now is the clock.
	Now func() time.Time
	// AfterBatch, when set, is called after each committed transaction (tests inject a
	// crash here by cancelling the context).
	AfterBatch func()
	// Cache, when set, has the organization's cached answers dropped after a run.
	Cache CachePurger
}

// NewEngine returns the engine; trail writes the self-audit events, key (32 bytes, see
// LoadPseudonymKey) makes and encrypts pseudonyms. A key of another length makes every
// method fail.
func NewEngine(db *gorm.DB, trail *models.AuditTrail, key []byte) *Engine {
	c, err := newCrypto(key)
	return &Engine{db: db, trail: trail, crypto: c, keyErr: err, Batch: 1000, Now: time.Now}
}

// sealer is the trail's sealer, whose key vouches for each redaction of a per-field
// event (nil without a trail).
func (e *Engine) sealer() *models.Sealer {
	if e.trail == nil {
		return nil
	}
	return e.trail.Sealer()
}

func (e *Engine) afterBatch() {
	if e.AfterBatch != nil {
		e.AfterBatch()
	}
}

// subjectArgs are the subject's identifiers as SQL arguments $2, $3, $4 (NULL when absent,
// so the comparison is never true).
func subjectArgs(s Subject) []any {
	return []any{nullable(s.PrincipalID), nullable(s.ResourceType), nullable(s.ResourceID)}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// sql returns "event e is the subject's" over $2 (principal), $3 and $4 (resource), with
// only the branches the subject has, so the principal index serves a principal alone (the
// "IS NULL" of an absent identifier folds away once its value is known).
func (s Subject) sql() string {
	switch {
	case s.PrincipalID != "" && s.hasResource():
		return `(e.principal_id = $2 OR (e.target_resource_type = $3 AND e.target_resource_id = $4))`
	case s.PrincipalID != "":
		return `(e.principal_id = $2 AND $3::text IS NULL AND $4::text IS NULL)`
	}
	return `(e.target_resource_type = $3 AND e.target_resource_id = $4 AND $2::text IS NULL)`
}

// matches reports whether an archived event is the subject's.
func (s Subject) matches(l *models.ArchiveLine) bool {
	return s.byPrincipal(l.PrincipalID) || s.byTarget(l.TargetResourceType, l.TargetResourceID)
}

func (s Subject) byPrincipal(p *string) bool {
	return s.PrincipalID != "" && p != nil && *p == s.PrincipalID
}

func (s Subject) byTarget(t, id *string) bool {
	return s.hasResource() && t != nil && id != nil && *t == s.ResourceType && *id == s.ResourceID
}

func (e *Engine) check(org string, s Subject) error {
	if e.keyErr != nil {
		return e.keyErr
	}
	if org == "" {
		return models.NotFound("organization")
	}
	return s.Validate()
}

// Count returns how many events of org are the subject's, in audit_log and in archives.
func (e *Engine) Count(ctx context.Context, org string, s Subject) (int64, error) {
	if err := e.check(org, s); err != nil {
		return 0, err
	}
	var n int64
	err := models.WithPgx(ctx, e.db, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `SELECT count(*) FROM audit_log e WHERE e.organization_id = $1 AND `+s.sql(),
			append([]any{org}, subjectArgs(s)...)...).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("erasure: count events: %w", err)
	}
	err = e.eachArchive(ctx, org, func(id string, l *models.ArchiveLine) error {
		if s.matches(l) {
			n++
		}
		return nil
	})
	return n, err
}

// activeHolds returns org's unreleased legal holds.
func (e *Engine) activeHolds(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, org string) ([]models.LegalHold, error) {
	rows, _ := q.Query(ctx, `SELECT id, name, reason, scope, principal_id, resource_type, resource_id, correlation_id,
		from_time, to_time FROM legal_holds WHERE organization_id = $1 AND released_at IS NULL ORDER BY id`, org)
	hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (models.LegalHold, error) {
		var h models.LegalHold
		err := r.Scan(&h.ID, &h.Name, &h.Reason, &h.Scope, &h.PrincipalID, &h.ResourceType, &h.ResourceID,
			&h.CorrelationID, &h.FromTime, &h.ToTime)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("erasure: legal holds: %w", err)
	}
	return hs, nil
}

// covers reports whether hold h covers the archived event l; it mirrors
// models.HoldCoversSQL.
func covers(h models.LegalHold, l *models.ArchiveLine) bool {
	if h.FromTime != nil && l.Timestamp.Before(*h.FromTime) || h.ToTime != nil && l.Timestamp.After(*h.ToTime) {
		return false
	}
	eq := func(a, b *string) bool { return a != nil && b != nil && *a == *b }
	switch h.Scope {
	case models.HoldScopeOrganization, models.HoldScopeTimeRange:
		return true
	case models.HoldScopePrincipal:
		return eq(l.PrincipalID, h.PrincipalID)
	case models.HoldScopeResource:
		return eq(l.TargetResourceType, h.ResourceType) && eq(l.TargetResourceID, h.ResourceID)
	case models.HoldScopeCorrelation:
		return eq(l.CorrelationID, h.CorrelationID)
	}
	return false
}

// Holds returns org's active legal holds that cover at least one of the subject's events,
// in audit_log or in an archive.
func (e *Engine) Holds(ctx context.Context, org string, s Subject) ([]Hold, error) {
	if err := e.check(org, s); err != nil {
		return nil, err
	}
	var out []Hold
	seen := map[int64]bool{}
	var holds []models.LegalHold
	err := models.WithPgx(ctx, e.db, func(conn *pgx.Conn) error {
		rows, _ := conn.Query(ctx, `SELECT lh.id, lh.name, lh.reason FROM legal_holds lh
			WHERE lh.organization_id = $1 AND lh.released_at IS NULL AND EXISTS (SELECT 1 FROM audit_log e
				WHERE e.organization_id = $1 AND `+s.sql()+` AND `+models.HoldCoversSQL("lh", "e")+`)
			ORDER BY lh.id`, append([]any{org}, subjectArgs(s)...)...)
		var h Hold
		if _, err := pgx.ForEachRow(rows, []any{&h.ID, &h.Name, &h.Reason}, func() error {
			out = append(out, h)
			seen[h.ID] = true
			return nil
		}); err != nil {
			return err
		}
		var err error
		holds, err = e.activeHolds(ctx, conn, org)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("erasure: legal holds of the subject: %w", err)
	}
	if len(holds) == len(seen) {
		return out, nil
	}
	err = e.eachArchive(ctx, org, func(_ string, l *models.ArchiveLine) error {
		if !s.matches(l) {
			return nil
		}
		for _, h := range holds {
			if !seen[h.ID] && covers(h, l) {
				seen[h.ID] = true
				out = append(out, Hold{ID: h.ID, Name: h.Name, Reason: h.Reason})
			}
		}
		return nil
	})
	return out, err
}

// holdConflict is the error of an erasure a legal hold blocks.
func holdConflict(hs []Hold) error {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = fmt.Sprintf("%q (#%d)", h.Name, h.ID)
	}
	return models.Conflict("legal_hold", "the legal hold "+strings.Join(names, ", ")+
		" covers events of this subject; release it before erasing")
}

// eachArchive calls fn with every line of org's live archives, checking their checksums
// on the way (a corrupt archive is an error: the subject's events in it cannot be found).
func (e *Engine) eachArchive(ctx context.Context, org string, fn func(archiveID string, l *models.ArchiveLine) error) error {
	var ids []string
	if err := e.db.WithContext(ctx).Raw(`SELECT id FROM archive_storage WHERE organization_id = ? AND deleted_at IS NULL
		AND content IS NOT NULL ORDER BY month, part`, org).Scan(&ids).Error; err != nil {
		return fmt.Errorf("erasure: archives: %w", err)
	}
	for _, id := range ids {
		r, err := models.OpenArchive(ctx, e.db, org, id)
		if models.KindOf(err) == models.KindNotFound {
			continue // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("erasure: %w", err)
		}
		err = readAll(r, func(l *models.ArchiveLine) error { return fn(id, l) })
		r.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func readAll(r *models.ArchiveReader, fn func(*models.ArchiveLine) error) error {
	for {
		l, err := r.Next()
		if err != nil {
			if errors.Is(err, errEOF) {
				return nil
			}
			return err
		}
		if err := fn(l); err != nil {
			return err
		}
	}
}

// operation is what a run does to the subject's events.
type operation string

const (
	opErase        operation = "erase"
	opPseudonymize operation = "pseudonymize"
)

// run is one call of Erase or Pseudonymize.
type run struct {
	e         *Engine
	op        operation
	org       string
	requestID string
	s         Subject
	st        Strategy
	by        models.Actor
	pseudonym string
	progress  func(Progress)
	done      int64
	total     int64
	res       Result
	// wasCompleted says the request's run had completed before this call, and startMatched
	// what it had done: a call that finds nothing more to do writes no second self-audit.
	wasCompleted bool
	startMatched int64
	// aliases are the subject's pseudonyms from earlier pseudonymizations (Erase only).
	aliases []alias
	// mentionArchives: this pass over the archives redacts (and counts) the lines whose
	// free text mentions the subject (Erase and Pseudonymize, first subject only).
	mentionArchives bool
	// mentionIDList are the identifiers mentionArchives searches for (mentionIDs).
	mentionIDList []string
}

func (r *run) report(phase string) {
	if r.progress != nil {
		r.progress(Progress{Done: r.done, Total: r.total, Phase: phase})
	}
}

// Erase deletes the subject's events except those of compliance-critical actions
// (CriticalActions), which it keeps pseudonymized with a random pseudonym that nothing maps
// back (an erasure is not reversible); it destroys the personal details and subject salts
// of the kept events, records each removal in removed_events (reason 'gdpr', requestID),
// rewrites the archives holding the subject's events, scrubs the identifiers from alerts,
// detection state and the error log, retires the organization's cached answers and writes
// one gdpr.data.delete self-audit event naming no identifier. Events sealed with
// sha256-jcs-v1 whose target resource is the subject are deleted even when critical (their
// target id is inside their hash).
//
// It returns a KindConflict error naming the hold when a legal hold covers any of the
// subject's events (nothing is changed), a KindInvalid error for a bad subject or request
// id, and a KindUnavailable error when some events still wait for the Merkle log (call it
// again). It is resumable and idempotent: called again for the same request after a crash,
// it finishes the work and its Result counts every event once.
func (e *Engine) Erase(ctx context.Context, org, requestID string, s Subject, by models.Actor, progress func(Progress)) (Result, error) {
	return e.start(ctx, opErase, org, requestID, s, StrategyToken, by, progress)
}

// Pseudonymize replaces the subject's identifiers in all its events (audit_log and
// archives) with one pseudonym made by strategy st, destroying the subject salts and
// personal details that could link them back, and keeps the original, encrypted under the
// key, in pseudonym_mapping so Lookup can return it. Events sealed with sha256-jcs-v1
// whose target resource is the subject keep that id (see Result.LeftInClear). Errors are
// Erase's, plus KindInvalid naming "strategy".
func (e *Engine) Pseudonymize(ctx context.Context, org, requestID string, s Subject, st Strategy, by models.Actor,
	progress func(Progress)) (Result, error) {
	if !st.Valid() {
		return Result{}, models.Invalid("strategy", "must be hash, token or encryption")
	}
	return e.start(ctx, opPseudonymize, org, requestID, s, st, by, progress)
}

func (e *Engine) start(ctx context.Context, op operation, org, requestID string, s Subject, st Strategy, by models.Actor,
	progress func(Progress)) (Result, error) {
	if err := e.check(org, s); err != nil {
		return Result{}, err
	}
	requestID = strings.TrimSpace(requestID)
	if requestID == "" || len(requestID) > maxIdentifier {
		return Result{}, models.Invalid("request", fmt.Sprintf("a request id of 1 to %d bytes is required", maxIdentifier))
	}
	if op == opErase {
		holds, err := e.Holds(ctx, org, s)
		if err != nil {
			return Result{}, err
		}
		if len(holds) > 0 {
			return Result{}, holdConflict(holds)
		}
	}
	total, err := e.Count(ctx, org, s)
	if err != nil {
		return Result{}, err
	}
	r := &run{e: e, op: op, org: org, requestID: requestID, s: s, st: st, by: by, progress: progress, total: total}
	if op == opErase {
		// A subject pseudonymized earlier has events under its pseudonyms: they are erased
		// the same way, and their mappings deleted (see forgetAliases).
		if r.aliases, err = e.aliases(ctx, org, s); err != nil {
			return Result{}, err
		}
		for _, a := range r.aliases {
			n, err := e.Count(ctx, org, a.subject)
			if err != nil {
				return Result{}, err
			}
			r.total += n
		}
	}
	if err := r.begin(ctx); err != nil {
		return Result{}, err
	}
	subjects := []Subject{s}
	for _, a := range r.aliases {
		subjects = append(subjects, a.subject)
	}
	for _, sub := range subjects {
		r.s = sub
		r.report("log")
		if err := r.eraseLog(ctx); err != nil {
			return r.res, err
		}
	}
	r.s = s
	if err := r.eraseMentions(ctx); err != nil {
		return r.res, err
	}
	for i, sub := range subjects {
		r.s = sub
		// The first pass over the archives also redacts every line mentioning any of the
		// identifiers (mentions.go); the aliases' passes find none left.
		r.mentionArchives = i == 0
		r.report("archives")
		if err := r.eraseArchives(ctx); err != nil {
			return r.res, err
		}
	}
	r.mentionArchives = false
	r.s = s
	if err := r.finish(ctx); err != nil {
		return r.res, err
	}
	if op == opErase && r.res.Matched == 0 {
		if err := r.erasedBy(ctx); err != nil {
			return r.res, err
		}
	}
	r.report("done")
	if r.res.Pending > 0 {
		return r.res, models.Unavailable(fmt.Sprintf("%d events of the subject are still waiting for the Merkle log; "+
			"run the erasure again in a minute to finish it", r.res.Pending), nil)
	}
	return r.res, nil
}

// begin records the run (or finds the stopped run of the same request) and settles the
// pseudonym; for Pseudonymize it stores the encrypted original in pseudonym_mapping.
func (r *run) begin(ctx context.Context) error {
	e := r.e
	mac := hex.EncodeToString(e.crypto.mac("subject", r.org, r.s.String()))
	pseudonym := prefixErased + randomToken()
	if r.op == opPseudonymize {
		pseudonym = e.crypto.pseudonym(r.st, r.org, r.s.String())
		if len(pseudonym) > maxIdentifier {
			return models.Invalid("strategy", "the subject's identifiers are too long for an encrypted pseudonym; use hash or token")
		}
	}
	var gotStrategy, gotMAC string
	err := e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var status []string
		if err := tx.Raw(`SELECT status FROM gdpr_erasure_runs WHERE organization_id = ? AND request_id = ? AND operation = ?
			FOR UPDATE`, r.org, r.requestID, string(r.op)).Scan(&status).Error; err != nil {
			return err
		}
		r.wasCompleted = len(status) == 1 && status[0] == "completed"
		row := tx.Raw(`INSERT INTO gdpr_erasure_runs AS r (organization_id, request_id, operation, strategy, subject_mac, pseudonym,
				started_by, started_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (organization_id, request_id, operation) DO UPDATE SET status = 'running', finished_at = NULL
				WHERE r.subject_mac = excluded.subject_mac AND r.strategy = excluded.strategy
			RETURNING strategy, subject_mac, pseudonym, deleted, pseudonymized, archived_deleted, archived_pseudonymized,
				archives_rewritten, mentions_redacted`, r.org, r.requestID, string(r.op), string(r.st), mac, pseudonym, r.by.Principal(), e.Now().UTC()).Row()
		err := row.Scan(&gotStrategy, &gotMAC, &r.pseudonym, &r.res.Deleted, &r.res.Pseudonymized, &r.res.ArchivedDeleted,
			&r.res.ArchivedPseudonymized, &r.res.ArchivesRewritten, &r.res.MentionsRedacted)
		if errors.Is(err, errNoRows) {
			return models.Conflict("request", "request "+r.requestID+" was started for another subject or strategy")
		}
		if err != nil {
			return err
		}
		if r.op != opPseudonymize {
			return nil
		}
		return tx.Exec(`INSERT INTO pseudonym_mapping (organization_id, "timestamp", pseudonym_id, original_ciphertext, strategy, request_id)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (organization_id, pseudonym_id) DO NOTHING`,
			r.org, e.Now().UTC(), r.pseudonym, e.crypto.seal(r.org, r.s.String()), string(r.st), r.requestID).Error
	})
	if err != nil {
		if models.KindOf(err) != models.KindInternal {
			return err
		}
		return fmt.Errorf("erasure: record the run: %w", err)
	}
	r.res.Pseudonym = r.pseudonym
	r.res.Matched = r.res.Deleted + r.res.Pseudonymized + r.res.ArchivedDeleted + r.res.ArchivedPseudonymized
	r.done = r.res.Matched
	r.startMatched = r.res.Matched
	r.total += r.done
	return nil
}

// erasedBy names, in r.res.AlreadyErasedBy, another request that erased the same subject
// (completed first, else still running).
func (r *run) erasedBy(ctx context.Context) error {
	mac := hex.EncodeToString(r.e.crypto.mac("subject", r.org, r.s.String()))
	var ids []string
	err := r.e.db.WithContext(ctx).Raw(`SELECT request_id FROM gdpr_erasure_runs WHERE organization_id = ? AND operation = 'erase'
		AND subject_mac = ? AND request_id <> ? AND (deleted + pseudonymized + archived_deleted + archived_pseudonymized) > 0
		ORDER BY status = 'completed' DESC, started_at LIMIT 1`, r.org, mac, r.requestID).Scan(&ids).Error
	if err != nil {
		return fmt.Errorf("erasure: earlier erasures of the subject: %w", err)
	}
	if len(ids) == 1 {
		r.res.AlreadyErasedBy = ids[0]
	}
	return nil
}

// withPurpose runs fn in one transaction that declared the purpose 'gdpr'. (Its changes of
// audit_log also clear detection's feed: a trigger, migration 0058.)
func (e *Engine) withPurpose(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return models.WithPgx(ctx, e.db, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL auditdb.purpose = 'gdpr'`); err != nil {
				return err
			}
			return fn(tx)
		})
	})
}

// counts are one batch's changes, added to the run's totals in the batch's transaction.
// mentions counts events whose free text naming the subject was redacted (mentions.go).
type counts struct {
	deleted, pseudonymized, archivedDeleted, archivedPseudonymized, archivesRewritten, mentions int64
}

func (r *run) addCounts(ctx context.Context, tx pgx.Tx, c counts) error {
	_, err := tx.Exec(ctx, `UPDATE gdpr_erasure_runs SET deleted = deleted + $4, pseudonymized = pseudonymized + $5,
		archived_deleted = archived_deleted + $6, archived_pseudonymized = archived_pseudonymized + $7,
		archives_rewritten = archives_rewritten + $8, mentions_redacted = mentions_redacted + $9
		WHERE organization_id = $1 AND request_id = $2 AND operation = $3`,
		r.org, r.requestID, string(r.op), c.deleted, c.pseudonymized, c.archivedDeleted, c.archivedPseudonymized,
		c.archivesRewritten, c.mentions)
	return err
}

func (r *run) applied(c counts) {
	r.res.MentionsRedacted += c.mentions
	r.res.Deleted += c.deleted
	r.res.Pseudonymized += c.pseudonymized
	r.res.ArchivedDeleted += c.archivedDeleted
	r.res.ArchivedPseudonymized += c.archivedPseudonymized
	r.res.ArchivesRewritten += c.archivesRewritten
	n := c.deleted + c.pseudonymized + c.archivedDeleted + c.archivedPseudonymized
	r.res.Matched += n
	r.done += n
}

// lockHolds serializes the batch with the placement of legal holds of the organization
// (models.LockHoldsSQL): taken before the batch reads the holds, held until it commits.
func (r *run) lockHolds(ctx context.Context, tx pgx.Tx) error {
	if r.op != opErase {
		return nil
	}
	_, err := tx.Exec(ctx, models.LockHoldsSQL, r.org)
	return err
}

// heldSQL is models.HeldPredicate over $1 (the organization).
func heldSQL() string {
	cond, _ := models.HeldPredicate("e", "")
	return strings.Replace(cond, "?", "$1", 1)
}

// eraseLog changes the subject's events in audit_log, one batch per transaction, walking
// them by id so that the events a batch must leave (waiting for the log, or left in clear)
// are passed over.
func (r *run) eraseLog(ctx context.Context) error {
	e := r.e
	// The batch is chosen and locked first; its log entries and holds are looked up for it
	// alone, not for every remaining event of the subject.
	query := `WITH e AS (SELECT e.id, e."timestamp", e.action, e.hash_algorithm, e.principal_id, e.target_resource_type,
				e.target_resource_id, e.details, ` + commitmentsColumn + ` AS commitments, e.hash, e.organization_id,
				e.correlation_id, e.tableoid, e.ctid, e.status, e.outcome_description
			FROM audit_log e WHERE e.organization_id = $1 AND ` + r.s.sql() + ` AND e.id > $5
			ORDER BY e.id LIMIT $6 FOR UPDATE OF e)
		SELECT e.id, e."timestamp", e.action, e.hash_algorithm, e.principal_id, e.target_resource_type, e.target_resource_id,
			e.details, e.commitments, l.leaf_index, coalesce(e.hash, ''), e.tableoid::oid, e.ctid::text, ` + heldSQL() + `,
			e.status, e.outcome_description
		FROM e LEFT JOIN audit_leaf l ON l.organization_id = e.organization_id AND l.audit_log_id = e.id
		ORDER BY e.id`
	var after int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var c counts
		var seen int
		var last int64
		var pending, inClear int64
		err := e.withPurpose(ctx, func(tx pgx.Tx) error {
			if err := r.lockHolds(ctx, tx); err != nil {
				return err
			}
			rows, _ := tx.Query(ctx, query, append(append([]any{r.org}, subjectArgs(r.s)...), after, e.Batch)...)
			var batch []*eventRow
			var held bool
			for rows.Next() {
				ev := &eventRow{}
				if err := rows.Scan(&ev.ID, &ev.Timestamp, &ev.Action, &ev.HashAlgorithm, &ev.PrincipalID, &ev.TargetResourceType,
					&ev.TargetResourceID, &ev.Details, &ev.Commitments, &ev.Leaf, &ev.Hash, &ev.partition, &ev.ctid, &ev.Held, &ev.Status,
					&ev.OutcomeDescription); err != nil {
					rows.Close()
					return err
				}
				held = held || ev.Held
				batch = append(batch, ev)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			seen = len(batch)
			if seen == 0 {
				return nil
			}
			last = batch[len(batch)-1].ID
			if held && r.op == opErase {
				// A hold placed since the run started: stop, changing nothing more.
				hs, err := r.e.Holds(ctx, r.org, r.s)
				if err != nil {
					return err
				}
				return holdConflict(hs)
			}
			var del, upd []*eventRow
			var sp span
			for _, ev := range batch {
				ch := &rollupChange{ts: ev.Timestamp, action: ev.Action, principal: ev.PrincipalID, failed: ev.Status == "failure"}
				switch r.decide(ev.HashAlgorithm, ev.Action, ev.TargetResourceType, ev.TargetResourceID) {
				case actDelete:
					if ev.Leaf == nil {
						pending++
						continue
					}
					ch.deleted = true
					ev.rollup = ch
					sp.add(ev.Timestamp)
					del = append(del, ev)
				case actPseudonymize:
					byPrincipal := r.s.byPrincipal(ev.PrincipalID)
					if err := r.transform(&ev.fields, ev.Hash); err != nil {
						return err
					}
					if ev.leftInClear {
						inClear++
					}
					if ev.changed {
						if byPrincipal {
							ev.rollup = ch
						}
						sp.add(ev.Timestamp)
						upd = append(upd, ev)
					}
				}
			}
			if err := r.adjustRollups(ctx, tx, batch); err != nil {
				return err
			}
			if err := r.withdrawReports(ctx, tx, sp); err != nil {
				return err
			}
			if err := r.deleteEvents(ctx, tx, del); err != nil {
				return err
			}
			if err := updateEvents(ctx, tx, r.org, upd); err != nil {
				return err
			}
			c.deleted, c.pseudonymized = int64(len(del)), int64(len(upd))
			if err := models.BumpCacheVersion(ctx, tx, r.org); err != nil {
				return err
			}
			return r.addCounts(ctx, tx, c)
		})
		if err != nil {
			if models.KindOf(err) != models.KindInternal {
				return err
			}
			return fmt.Errorf("erasure: events of request %s: %w", r.requestID, err)
		}
		if seen == 0 {
			return nil
		}
		r.applied(c)
		r.res.Pending += pending
		r.res.LeftInClear += inClear
		after = last
		e.afterBatch()
		r.report("log")
	}
}

// action is what happens to one event of the subject.
type action int

const (
	actDelete action = iota
	actPseudonymize
)

// decide says what the run does to an event of the subject: Pseudonymize changes every
// event; Erase keeps critical events (pseudonymized) unless the subject is the target of a
// v1 event, whose target id cannot be removed without breaking its hash.
func (r *run) decide(alg, act string, targetType, targetID *string) action {
	if r.op == opPseudonymize {
		return actPseudonymize
	}
	if !isCritical(act) {
		return actDelete
	}
	if r.s.byTarget(targetType, targetID) && !perFieldScheme(alg) {
		return actDelete
	}
	return actPseudonymize
}

// eventRow is one event of the subject as a batch reads it.
type eventRow struct {
	ID        int64
	Timestamp time.Time
	Action    string
	Leaf      *int64
	Hash      string
	Held      bool
	Status    string
	// rollup is what the event takes out of the rollups (nil: nothing).
	rollup *rollupChange
	// partition (its table's oid) and ctid locate the locked row: changes address it by
	// them, which needs no plan over the whole organization (whose statistics may be stale).
	partition uint32
	ctid      string
	fields
}

// byPartition groups evs by their partition.
func byPartition(evs []*eventRow) map[uint32][]*eventRow {
	out := map[uint32][]*eventRow{}
	for _, ev := range evs {
		out[ev.partition] = append(out[ev.partition], ev)
	}
	return out
}

// fields are the parts of an event a pseudonymization changes.
type fields struct {
	HashAlgorithm      string
	PrincipalID        *string
	TargetResourceType *string
	TargetResourceID   *string
	OutcomeDescription *string // read only: a compact sha256-jcs-v3 event's commitments are expanded from it
	Details            []byte
	Commitments        []byte
	clearSalt          bool
	leftInClear        bool // the subject's target id stays (v1)
	changed            bool // an identifier was replaced
}

// transform replaces the subject's identifiers in f by the run's pseudonym. Where the
// subject is the principal, the personal details keys (the principal's address, agent,
// email, name) are removed and the subject salt destroyed: under sha256-jcs-v1 these lie
// outside the content hash (the subject digest stays and still verifies the hash). Where the
// subject is the target of a v1 event, the id stays (leftInClear). hash is the event's hash,
// which a v2 event's redaction MACs cover.
func (r *run) transform(f *fields, hash string) error {
	byPrincipal := r.s.byPrincipal(f.PrincipalID)
	byTarget := r.s.byTarget(f.TargetResourceType, f.TargetResourceID)
	if perFieldScheme(f.HashAlgorithm) {
		return r.transformV2(f, hash, byPrincipal, byTarget)
	}
	if byPrincipal {
		p := r.pseudonym
		f.PrincipalID = &p
		f.clearSalt = true
		f.changed = true
		d, err := withoutPersonalKeys(f.Details)
		if err != nil {
			return err
		}
		f.Details = d
	}
	if byTarget {
		f.leftInClear = true
	}
	return nil
}

// withoutPersonalKeys returns the details object without models.DefaultPersonalKeys.
func withoutPersonalKeys(details []byte) ([]byte, error) {
	if len(details) == 0 || string(details) == "null" {
		return details, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(details, &m); err != nil {
		return nil, fmt.Errorf("erasure: details are not a JSON object: %w", err)
	}
	changed := false
	for _, k := range models.DefaultPersonalKeys {
		if _, ok := m[k]; ok {
			delete(m, k)
			changed = true
		}
	}
	if !changed {
		return details, nil
	}
	return json.Marshal(m)
}

// deleteEvents deletes evs from audit_log and records each in removed_events.
func (r *run) deleteEvents(ctx context.Context, tx pgx.Tx, evs []*eventRow) error {
	if len(evs) == 0 {
		return nil
	}
	ids, times, leaves, hashes := make([]int64, len(evs)), make([]time.Time, len(evs)), make([]int64, len(evs)), make([]string, len(evs))
	for i, ev := range evs {
		ids[i], times[i], leaves[i], hashes[i] = ev.ID, ev.Timestamp, *ev.Leaf, ev.Hash
	}
	var n int64
	for part, group := range byPartition(evs) {
		tids := make([]string, len(group))
		gids := make([]int64, len(group))
		for i, ev := range group {
			tids[i], gids[i] = ev.ctid, ev.ID
		}
		// By location alone: an organization or id condition beside it can make the planner
		// scan the organization's rows. The rows were locked by the batch's select; what is
		// returned is checked against it.
		rows, _ := tx.Query(ctx, `DELETE FROM audit_log e WHERE e.tableoid = $1 AND e.ctid = ANY($2::tid[])
			RETURNING e.id, e.organization_id`, part, tids)
		if err := checkReturned(rows, r.org, gids, &n); err != nil {
			return err
		}
	}
	if n != int64(len(ids)) {
		return fmt.Errorf("deleted %d rows for %d events", n, len(ids))
	}
	return r.recordRemoved(ctx, tx, ids, times, leaves, hashes)
}

func (r *run) recordRemoved(ctx context.Context, tx pgx.Tx, ids []int64, times []time.Time, leaves []int64, hashes []string) error {
	_, err := tx.Exec(ctx, `INSERT INTO removed_events (organization_id, audit_log_id, event_timestamp, leaf_index, event_hash,
			reason, request_id, removed_at)
		SELECT $1, u.id, u.ts, u.leaf, u.hash, 'gdpr', $2, $3
		FROM unnest($4::bigint[], $5::timestamptz[], $6::bigint[], $7::text[]) AS u(id, ts, leaf, hash)`,
		r.org, r.requestID, r.e.Now().UTC(), ids, times, leaves, hashes)
	return err
}

// updateEvents writes the changed fields of evs.
func updateEvents(ctx context.Context, tx pgx.Tx, org string, evs []*eventRow) error {
	for part, group := range byPartition(evs) {
		n := len(group)
		ids, tids := make([]int64, n), make([]string, n)
		principals, targets, details, commitments := make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		clear := make([]bool, n)
		for i, ev := range group {
			ids[i], tids[i] = ev.ID, ev.ctid
			principals[i], targets[i], clear[i] = ev.PrincipalID, ev.TargetResourceID, ev.clearSalt
			if ev.Details != nil {
				s := string(ev.Details)
				details[i] = &s
			}
			if ev.Commitments != nil {
				s := string(ev.Commitments)
				commitments[i] = &s
			}
		}
		rows, _ := tx.Query(ctx, `UPDATE audit_log e SET principal_id = u.p, target_resource_id = u.t, details = u.d::jsonb,
				`+commitmentsSet+`subject_salt = CASE WHEN u.clear THEN NULL ELSE e.subject_salt END
			FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bool[]) AS u(id, p, t, d, c, clear)
			WHERE e.tableoid = $1 AND e.ctid = ANY($8::tid[]) AND e.id = u.id
			RETURNING e.id, e.organization_id`,
			part, ids, principals, targets, details, commitments, clear, tids)
		var got int64
		if err := checkReturned(rows, org, ids, &got); err != nil {
			return err
		}
	}
	return nil
}

// checkReturned reads the (id, organization) rows a change returned and fails unless they
// are exactly ids, all of org; it adds their number to n.
func checkReturned(rows pgx.Rows, org string, ids []int64, n *int64) error {
	want := make(map[int64]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	var id int64
	var o string
	var got int64
	_, err := pgx.ForEachRow(rows, []any{&id, &o}, func() error {
		if !want[id] || o != org {
			return fmt.Errorf("changed event %d of %s, which the batch did not lock", id, o)
		}
		got++
		return nil
	})
	if err != nil {
		return err
	}
	if got != int64(len(ids)) {
		return fmt.Errorf("changed %d rows for %d events", got, len(ids))
	}
	*n += got
	return nil
}

// finish scrubs the identifiers from the organization's other tables, marks the run
// completed and, when this call completed it, writes the self-audit event.
func (r *run) finish(ctx context.Context) error {
	e := r.e
	if err := r.scrub(ctx); err != nil {
		return err
	}
	if r.res.Pending > 0 {
		return nil // not completed: a retry finishes the run
	}
	var completed bool
	err := e.db.WithContext(ctx).Raw(`UPDATE gdpr_erasure_runs SET status = 'completed', finished_at = ?
		WHERE organization_id = ? AND request_id = ? AND operation = ? AND status = 'running' RETURNING true`,
		e.Now().UTC(), r.org, r.requestID, string(r.op)).Scan(&completed).Error
	if err != nil {
		return fmt.Errorf("erasure: complete the run: %w", err)
	}
	if e.Cache != nil {
		// Redis down: the version bump above already retires every cached answer; the old
		// keys expire with their TTL.
		_ = e.Cache.DropOrg(context.WithoutCancel(ctx), r.org)
	}
	if !completed || r.wasCompleted && r.res.Matched == r.startMatched {
		return nil
	}
	return e.audit(context.WithoutCancel(ctx), r)
}

// audit writes the run's self-audit event: counts, the pseudonym and the SHA-256 of the
// removed event ids, never the subject's identifiers.
func (e *Engine) audit(ctx context.Context, r *run) error {
	h := sha256.New()
	var n int64
	err := models.WithPgx(ctx, e.db, func(conn *pgx.Conn) error {
		rows, _ := conn.Query(ctx, `SELECT audit_log_id FROM removed_events WHERE organization_id = $1 AND reason = 'gdpr'
			AND request_id = $2 ORDER BY audit_log_id`, r.org, r.requestID)
		var id int64
		_, err := pgx.ForEachRow(rows, []any{&id}, func() error {
			h.Write(strconv.AppendInt(nil, id, 10))
			h.Write([]byte{'\n'})
			n++
			return nil
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("erasure: removed events of request %s: %w", r.requestID, err)
	}
	act, verb := ActionDelete, "erased"
	if r.op == opPseudonymize {
		act, verb = ActionPseudonymize, "pseudonymized"
	}
	res := r.res
	return e.trail.Record(ctx, models.AuditEntry{Org: r.org, Action: act, Actor: r.by, TargetType: "gdpr_request",
		TargetID: r.requestID,
		Outcome: fmt.Sprintf("request %s %s a subject: %d events deleted, %d kept pseudonymized, %d archives rewritten",
			r.requestID, verb, res.Deleted+res.ArchivedDeleted, res.Pseudonymized+res.ArchivedPseudonymized, res.ArchivesRewritten),
		Details: map[string]any{"requestId": r.requestID, "operation": string(r.op), "strategy": string(r.st),
			"deleted": res.Deleted, "pseudonymized": res.Pseudonymized, "archivedDeleted": res.ArchivedDeleted,
			"archivedPseudonymized": res.ArchivedPseudonymized, "archivesRewritten": res.ArchivesRewritten,
			"leftInClear": res.LeftInClear, "pseudonym": res.Pseudonym, "removed": n,
			"earlierPseudonyms": len(r.aliases), "mentionsRedacted": res.MentionsRedacted, "mentionsLeft": res.MentionsLeft,
			"removedIdsSha256": hex.EncodeToString(h.Sum(nil))}})
}
