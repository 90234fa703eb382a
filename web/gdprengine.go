package web

import (
	"context"

	"auditdb/models"
	"auditdb/models/erasure"
	"auditdb/models/gdpr"
)

// erasureEngine lets the GDPR request workflow (package gdpr, which declares the methods it
// calls) drive the erasure engine; the two packages' types have the same fields.
type erasureEngine struct{ e *erasure.Engine }

func (a *erasureEngine) Count(ctx context.Context, org string, s gdpr.Subject) (int64, error) {
	return a.e.Count(ctx, org, erasure.Subject(s))
}

func (a *erasureEngine) Holds(ctx context.Context, org string, s gdpr.Subject) ([]gdpr.Hold, error) {
	hs, err := a.e.Holds(ctx, org, erasure.Subject(s))
	out := make([]gdpr.Hold, len(hs))
	for i, h := range hs {
		out[i] = gdpr.Hold(h)
	}
	return out, err
}

func (a *erasureEngine) Erase(ctx context.Context, org, requestID string, s gdpr.Subject, by models.Actor,
	progress func(gdpr.Progress)) (gdpr.Result, error) {
	r, err := a.e.Erase(ctx, org, requestID, erasure.Subject(s), by, progressOf(progress))
	return resultOf(r), err
}

func (a *erasureEngine) Pseudonymize(ctx context.Context, org, requestID string, s gdpr.Subject, st gdpr.Strategy,
	by models.Actor, progress func(gdpr.Progress)) (gdpr.Result, error) {
	r, err := a.e.Pseudonymize(ctx, org, requestID, erasure.Subject(s), erasure.Strategy(st), by, progressOf(progress))
	return resultOf(r), err
}

func (a *erasureEngine) Lookup(ctx context.Context, org, pseudonym, reason string, by models.Actor) (string, error) {
	return a.e.Lookup(ctx, org, pseudonym, reason, by)
}

func progressOf(f func(gdpr.Progress)) func(erasure.Progress) {
	if f == nil {
		return nil
	}
	return func(p erasure.Progress) { f(gdpr.Progress(p)) }
}

func resultOf(r erasure.Result) gdpr.Result {
	return gdpr.Result{Matched: r.Matched, Deleted: r.Deleted, Pseudonymized: r.Pseudonymized,
		ArchivedDeleted: r.ArchivedDeleted, ArchivedPseudonymized: r.ArchivedPseudonymized,
		ArchivesRewritten: r.ArchivesRewritten, Pseudonym: r.Pseudonym, AlreadyErasedBy: r.AlreadyErasedBy,
		MentionsRedacted: r.MentionsRedacted, MentionsLeft: r.MentionsLeft, MentionsLeftIDs: r.MentionsLeftIDs,
		MentionsLeftWhy: r.MentionsLeftWhy}
}
