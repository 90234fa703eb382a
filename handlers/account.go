package handlers

import (
	"context"
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/views/pages/account"
)

// PasswordChanger replaces a user's password.
type PasswordChanger interface {
	ChangePassword(ctx context.Context, id int64, current, next string, keepSession []byte) error
	AccountLookup
}

// PasswordPage shows the form that replaces the viewer's password (the only page a user
// with a one-time password may use).
func PasswordPage() fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		return render.HTML(c, fiber.StatusOK, account.Password(v.Shell("Choose a password", ""),
			account.PasswordProps{Required: v.User.MustChangePassword, CSRF: v.Session.CSRFToken()}))
	}
}

// ChangePassword replaces the viewer's password after checking the current one, ends every
// other session of the viewer, and audits auth.password.change in the organizations of the
// account. The current-password check counts against the sign-in limits, so a stolen
// session cannot guess the password faster than the sign-in form allows.
func ChangePassword(users PasswordChanger, limits LoginLimits, audit Auditor) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		ctx := c.UserContext()
		props := account.PasswordProps{Required: v.User.MustChangePassword, CSRF: v.Session.CSRFToken()}
		next := c.FormValue("password")
		var err error
		if next != c.FormValue("confirm") {
			err = models.Invalid("confirm", "the two new passwords differ")
		} else if accountKey, addressKey, ok := limits.reserve(c, v.User.Email); !ok {
			props.Error = "Too many wrong passwords. Wait 15 minutes and try again."
			return render.HTML(c, fiber.StatusTooManyRequests, account.Password(v.Shell("Choose a password", ""), props))
		} else {
			err = users.ChangePassword(ctx, v.User.ID, c.FormValue("current"), next, v.Session.TokenHash)
			if err == nil {
				limits.succeeded(ctx, accountKey, addressKey)
			}
		}
		if errors.Is(err, models.ErrBadCredentials) {
			err = models.Invalid("current", "the current password is wrong")
		}
		if err != nil {
			if models.KindOf(err) != models.KindInvalid {
				return err
			}
			props.Error = models.MessageOf(err)
			return render.HTML(c, fiber.StatusBadRequest, account.Password(v.Shell("Choose a password", ""), props))
		}
		acc, err := users.AccountByEmail(ctx, v.User.Email)
		if err != nil {
			return err
		}
		entry := models.AuditEntry{Action: models.ActionPasswordChange, Actor: ActorOf(c), TargetType: "user",
			TargetID: strconv.FormatInt(v.User.ID, 10), Outcome: "password changed"}
		if err := audit.Record(ctx, entriesFor(accountOrgs(acc, v.OrgID), entry)...); err != nil {
			return err
		}
		return render.Redirect(c, "/")
	}
}
