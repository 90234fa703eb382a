package gdpr

import (
	"context"

	"auditdb/models"
)

// The erasure engine's types, as this package sees them. They mirror package
// auditdb/models/erasure field for field, so the adapter that wires the real engine (see
// Engine) is a plain conversion.

// Subject is whom a request is about: a principal id and/or a target resource (type and id).
type Subject struct{ PrincipalID, ResourceType, ResourceID string }

// Strategy is how a subject's identifiers are replaced: "hash", "token" or "encryption".
type Strategy string

// Pseudonymization strategies.
const (
	StrategyHash       Strategy = "hash"
	StrategyToken      Strategy = "token"
	StrategyEncryption Strategy = "encryption"
)

// Strategies are the strategies in the order the form offers them.
var Strategies = []Strategy{StrategyHash, StrategyToken, StrategyEncryption}

// Progress is how far an erasure or pseudonymization has got; Phase is "log", "mentions", "archives"
// or "done".
type Progress struct {
	Done, Total int64
	Phase       string
}

// Result is what an erasure or pseudonymization did.
type Result struct {
	Matched               int64  `json:"matched"`
	Deleted               int64  `json:"deleted"`
	Pseudonymized         int64  `json:"pseudonymized"`
	ArchivedDeleted       int64  `json:"archived_deleted"`
	ArchivedPseudonymized int64  `json:"archived_pseudonymized"`
	ArchivesRewritten     int64  `json:"archives_rewritten"`
	Pseudonym             string `json:"-"` // kept on the request itself, not in its result
	// AlreadyErasedBy names another request that had erased the subject when this one
	// found nothing left to erase.
	AlreadyErasedBy string `json:"already_erased_by,omitempty"`
	// MentionsRedacted counts events whose free text named the subject and was pseudonymized
	// field by field (scheme sha256-jcs-v3).
	MentionsRedacted int64 `json:"mentions_redacted,omitempty"`
	// MentionsLeft counts events still naming the subject in free text: their older scheme
	// hashed it in clear, a legal hold covers them, or the identifier is a details key's
	// name or a number. MentionsLeftIDs names the first of them, MentionsLeftWhy says why
	// for each ("older hashing scheme sha256-jcs-v2", "under legal hold <name>", "the field
	// name itself names the subject: details.<key>", "the identifier is a number, not text:
	// details.<key>").
	MentionsLeft    int64    `json:"mentions_left,omitempty"`
	MentionsLeftIDs []int64  `json:"mentions_left_ids,omitempty"`
	MentionsLeftWhy []string `json:"mentions_left_why,omitempty"`
}

// Hold is a legal hold covering at least one of a subject's events.
type Hold struct {
	ID           int64
	Name, Reason string
}

// Engine erases and pseudonymizes a subject's events and looks pseudonyms up. The real
// one is package auditdb/models/erasure's *Engine behind a small adapter converting
// Subject, Strategy, Progress, Result and Hold (wire: cli/serve.go and web.ServicesConfig).
type Engine interface {
	// Count returns how many events (log and archives) the subject has in org.
	Count(ctx context.Context, org string, s Subject) (int64, error)
	// Holds returns the legal holds covering any of the subject's events.
	Holds(ctx context.Context, org string, s Subject) ([]Hold, error)
	// Erase deletes the subject's events (pseudonymizing the compliance-critical ones); it
	// is idempotent and resumable, and returns a conflict naming a hold that blocks it.
	Erase(ctx context.Context, org, requestID string, s Subject, by models.Actor, progress func(Progress)) (Result, error)
	// Pseudonymize replaces the subject's identifiers in all its events with one pseudonym.
	Pseudonymize(ctx context.Context, org, requestID string, s Subject, st Strategy, by models.Actor, progress func(Progress)) (Result, error)
	// Lookup returns the original identifier of a pseudonym (reason required; self-audited);
	// NotFound for an unknown pseudonym or another organization's.
	Lookup(ctx context.Context, org, pseudonym, reason string, by models.Actor) (string, error)
}
