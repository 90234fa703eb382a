package handlers

import (
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/views/components"
)

// The one set of functions every console form uses:
//
//   - pathID reads a numeric :id or answers 404;
//   - refusalOf tells a refusal the form shows itself (bad input, a clash, an escalation)
//     from an error for the error handler, and shapes it as a components.FormError;
//   - refuse renders the form again with the status render.StatusOf gives the refusal;
//   - redirectDone and flash are the one confirmation pattern: Post/Redirect/Get to the
//     list with ?done=<what>&name=<name>, whose page shows the message flash builds.
//
// An answer that carries a secret shown once (a new API key, an invitation code, a
// one-time password) is rendered with no-store instead of redirected, so the secret never
// lands in a URL or the history; its confirmation uses the same Flash component.

// pathID reads the :id route parameter. Anything but a positive number is a KindNotFound
// error naming what, as an unknown id is.
func pathID(c *fiber.Ctx, what string) (int64, error) {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, models.NotFound(what)
	}
	return id, nil
}

// refusalOf returns what a form shows for err when err is a refusal the form answers
// itself (KindInvalid, KindConflict or KindForbidden), and nil otherwise: no error, or one
// the error handler answers (not found, unavailable, internal).
func refusalOf(err error) *components.FormError {
	var e *models.Error
	if !errors.As(err, &e) {
		return nil
	}
	switch e.Kind {
	case models.KindInvalid, models.KindConflict, models.KindForbidden:
		return &components.FormError{Field: e.Field, Message: e.Message}
	}
	return nil
}

// refuse answers a refused change with page (the form again, showing why), with the
// status the error vocabulary gives the refusal: 400 invalid, 409 conflict, 403 forbidden.
func refuse(c *fiber.Ctx, refused error, page templ.Component) error {
	return render.HTML(c, render.StatusOf(refused), page)
}

// Confirmations a form redirects with (?done=). A message's %s is the name the redirect
// carries.
const (
	doneRoleCreated         = "role-created"
	doneRoleSaved           = "role-saved"
	doneRoleDeleted         = "role-deleted"
	doneMemberRoleChanged   = "member-role-changed"
	doneMemberRemoved       = "member-removed"
	donePresetSaved         = "preset-saved"
	doneAPIKeyRevoked       = "apikey-revoked"
	doneDeadLetterReplay    = "dead-letter-replayed"
	doneAlertRuleSaved      = "alert-rule-saved"
	doneTimeZoneSaved       = "time-zone-saved"
	doneAlertRetentionSaved = "alert-retention-saved"

	doneRetentionPolicySaved   = "retention-policy-saved"
	doneRetentionPolicyDeleted = "retention-policy-deleted"
	doneRetentionFloorSet      = "retention-floor-set"
	doneLegalHoldPlaced        = "legal-hold-placed"
	doneLegalHoldReleased      = "legal-hold-released"
	donePartitionsEnsured      = "partitions-ensured"
	donePartitionsDropped      = "partitions-dropped"

	doneViewSaved   = "view-saved"
	doneViewUpdated = "view-updated"
	doneViewDeleted = "view-deleted"
)

var doneMessages = map[string]string{
	doneRoleCreated:         "Role %s created.",
	doneRoleSaved:           "Role %s saved.",
	doneRoleDeleted:         "Role %s deleted.",
	doneMemberRoleChanged:   "Role changed.",
	doneMemberRemoved:       "Member removed.",
	donePresetSaved:         "Preset %s saved.",
	doneAPIKeyRevoked:       "API key revoked: it stops working at once.",
	doneDeadLetterReplay:    "Dead letter %s replayed: its events are recorded.",
	doneAlertRuleSaved:      "Alert rule %s saved.",
	doneTimeZoneSaved:       "Time zone saved.",
	doneAlertRetentionSaved: "Resolved alerts are now kept for %s days.",

	doneRetentionPolicySaved:   "Retention policy %s saved; the change is in the audit log (retention.policy).",
	doneRetentionPolicyDeleted: "Retention policy %s deleted; the change is in the audit log (retention.policy.delete).",
	doneRetentionFloorSet:      "Statutory floor of %s set; the change is in the audit log (retention.floor.update).",
	doneLegalHoldPlaced:        "Legal hold %s placed: the events it covers are no longer deleted.",
	doneLegalHoldReleased:      "Legal hold %s released: the next run deletes what is due and no other hold keeps.",
	donePartitionsEnsured:      "%s partitions created; recorded in the audit log (retention.partitions.ensure).",
	donePartitionsDropped:      "%s expired partitions dropped; recorded in the audit log (retention.partitions.drop).",

	doneViewSaved:   "View %s saved.",
	doneViewUpdated: "View %s saved.",
	doneViewDeleted: "View %s deleted.",
}

// doneURL is path with the confirmation of what was done and, when given, the name of
// what it was done to.
func doneURL(path, done, name string) string {
	q := url.Values{"done": {done}}
	if name != "" {
		q.Set("name", name)
	}
	return path + "?" + q.Encode()
}

// redirectDone ends a successful form post: it redirects (303, or HX-Redirect) to path
// with the confirmation done for the page's flash.
func redirectDone(c *fiber.Ctx, path, done, name string) error {
	return render.Redirect(c, doneURL(path, done, name))
}

// flash returns the confirmation message of the request's ?done= and ?name=, or "" when
// there is none, it is unknown, or it needs a name the request lacks.
func flash(c *fiber.Ctx) string {
	msg, ok := doneMessages[c.Query("done")]
	if !ok {
		return ""
	}
	if !strings.Contains(msg, "%s") {
		return msg
	}
	name := c.Query("name")
	if name == "" {
		return ""
	}
	return strings.Replace(msg, "%s", name, 1)
}
