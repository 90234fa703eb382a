package handlers

import (
	"context"
	"strings"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
)

// Auditor writes self-audit events to the audit log of the organization each names.
// models.AuditTrail is the real one; its RecordTx joins a store's transaction instead.
type Auditor interface {
	Record(ctx context.Context, entries ...models.AuditEntry) error
}

// AccountLookup finds the account an email belongs to, with its organizations.
type AccountLookup interface {
	AccountByEmail(ctx context.Context, email string) (*models.Account, error)
}

// ActorOf returns who is acting in a console request, for the self-audit trail: the
// signed-in user with the request's address and user agent (copied: Fiber reuses them).
func ActorOf(c *fiber.Ctx) models.Actor {
	a := models.Actor{IP: strings.Clone(c.IP()), UserAgent: strings.Clone(truncateString(c.Get(fiber.HeaderUserAgent), 256))}
	if v := render.ViewerOf(c); v != nil {
		a.UserID, a.Email, a.Superadmin = v.User.ID, v.User.Email, v.User.Superadmin
	}
	return a
}

// accountOrgs returns the organizations a sign-in concerns: the account's memberships, or
// (for a superadmin who belongs to none) the organization the session opens in.
func accountOrgs(acc *models.Account, sessionOrg string) []string {
	if acc != nil && len(acc.Orgs) > 0 {
		return acc.Orgs
	}
	if sessionOrg != "" {
		return []string{sessionOrg}
	}
	return nil
}

// entriesFor repeats entry once per organization.
func entriesFor(orgs []string, entry models.AuditEntry) []models.AuditEntry {
	out := make([]models.AuditEntry, 0, len(orgs))
	for _, org := range orgs {
		e := entry
		e.Org = org
		out = append(out, e)
	}
	return out
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
