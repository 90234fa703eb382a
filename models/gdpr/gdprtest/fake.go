// Package gdprtest holds a fake of the erasure engine for the tests of the GDPR pages and
// API (handlers and browser tests); the engine's own tests run against PostgreSQL.
package gdprtest

import (
	"context"
	"sync"

	"auditdb/models"
	"auditdb/models/gdpr"
)

// Engine is a fake gdpr.Engine: it erases nothing, answers the holds and pseudonyms it is
// given, and records the calls it gets. The zero value is ready; set fields before use.
type Engine struct {
	mu sync.Mutex
	// HoldsOf are the legal holds reported for a principal or resource id.
	HoldsOf map[string][]gdpr.Hold
	// Events is what Count answers and how many events an erasure reports.
	Events int64
	// Pseudonym is the pseudonym Erase and Pseudonymize report ("" for none).
	Pseudonym string
	// Originals maps pseudonyms to what Lookup answers.
	Originals map[string]string
	// Gate, when set, holds Erase and Pseudonymize after their first progress report until
	// it is closed, so a test can see an operation running.
	Gate chan struct{}
	// LeftIDs and LeftWhy are the events an erasure reports still naming the subject in
	// free text, and why.
	LeftIDs []int64
	LeftWhy []string
	// Erased and Lookups record the calls (request ids; reasons).
	Erased, Lookups []string
}

func (e *Engine) holds(s gdpr.Subject) []gdpr.Hold {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []gdpr.Hold
	for _, k := range []string{s.PrincipalID, s.ResourceID} {
		if k != "" {
			out = append(out, e.HoldsOf[k]...)
		}
	}
	return out
}

// Count answers Events.
func (e *Engine) Count(ctx context.Context, org string, s gdpr.Subject) (int64, error) {
	return e.Events, nil
}

// Holds answers HoldsOf for the subject's ids.
func (e *Engine) Holds(ctx context.Context, org string, s gdpr.Subject) ([]gdpr.Hold, error) {
	return e.holds(s), nil
}

func (e *Engine) run(ctx context.Context, id string, progress func(gdpr.Progress)) error {
	progress(gdpr.Progress{Done: 0, Total: e.Events, Phase: "log"})
	if e.Gate != nil {
		select {
		case <-e.Gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	progress(gdpr.Progress{Done: e.Events, Total: e.Events, Phase: "done"})
	e.mu.Lock()
	e.Erased = append(e.Erased, id)
	e.mu.Unlock()
	return nil
}

// Erase refuses a held subject (as the engine does) and otherwise reports Events deleted.
func (e *Engine) Erase(ctx context.Context, org, requestID string, s gdpr.Subject, by models.Actor, progress func(gdpr.Progress)) (gdpr.Result, error) {
	if h := e.holds(s); len(h) > 0 {
		return gdpr.Result{}, models.Conflict("hold", "legal hold "+h[0].Name+" covers events of this subject")
	}
	if err := e.run(ctx, requestID, progress); err != nil {
		return gdpr.Result{}, err
	}
	return gdpr.Result{Matched: e.Events, Deleted: e.Events, Pseudonym: e.Pseudonym,
		MentionsLeft: int64(len(e.LeftIDs)), MentionsLeftIDs: e.LeftIDs, MentionsLeftWhy: e.LeftWhy}, nil
}

// Pseudonymize reports Events pseudonymized under Pseudonym.
func (e *Engine) Pseudonymize(ctx context.Context, org, requestID string, s gdpr.Subject, st gdpr.Strategy, by models.Actor, progress func(gdpr.Progress)) (gdpr.Result, error) {
	if err := e.run(ctx, requestID, progress); err != nil {
		return gdpr.Result{}, err
	}
	return gdpr.Result{Matched: e.Events, Pseudonymized: e.Events, Pseudonym: e.Pseudonym}, nil
}

// Lookup answers Originals, NotFound for anything else; a missing reason is refused as the
// engine refuses it.
func (e *Engine) Lookup(ctx context.Context, org, pseudonym, reason string, by models.Actor) (string, error) {
	if reason == "" {
		return "", models.Invalid("reason", "a reason is required")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Lookups = append(e.Lookups, reason)
	if v, ok := e.Originals[pseudonym]; ok {
		return v, nil
	}
	return "", models.NotFound("pseudonym")
}

var _ gdpr.Engine = (*Engine)(nil)
