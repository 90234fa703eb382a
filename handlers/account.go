package handlers

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/models/session"
	"auditdb/views/components"
	"auditdb/views/pages/account"
)

// PasswordChanger replaces a user's password and audits the change in the same transaction.
type PasswordChanger interface {
	ChangePasswordBy(ctx context.Context, id int64, current, next string, keepSession []byte, sessionOrg string, by models.Actor) error
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
// account, all in one change. Then the changing session is replaced too: a fresh session
// (and cookie) starts and the old token ends, so a token copied before the change dies with
// the old password. The current-password check counts against the sign-in limits, so a stolen
// session cannot guess the password faster than the sign-in form allows.
func ChangePassword(users PasswordChanger, sessions SessionManager, limits LoginLimits) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		ctx := c.UserContext()
		props := account.PasswordProps{Required: v.User.MustChangePassword, CSRF: v.Session.CSRFToken()}
		next := c.FormValue("password")
		var err error
		if next != c.FormValue("confirm") {
			err = models.Invalid("confirm", "the two new passwords differ")
		} else if accountKey, addressKey, ok := limits.reserve(c, v.User.Email); !ok {
			props.Error = &components.FormError{Message: "Too many wrong passwords. Wait 15 minutes and try again."}
			return render.HTML(c, fiber.StatusTooManyRequests, account.Password(v.Shell("Choose a password", ""), props))
		} else {
			err = users.ChangePasswordBy(ctx, v.User.ID, c.FormValue("current"), next, v.Session.TokenHash, v.OrgID, ActorOf(c))
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
			props.Error = refusalOf(err)
			return refuse(c, err, account.Password(v.Shell("Choose a password", ""), props))
		}
		token, _, err := sessions.Create(ctx, v.User.ID, v.OrgID, c.IP(), c.Get(fiber.HeaderUserAgent))
		if err != nil {
			return err
		}
		if err := sessions.Revoke(ctx, v.Token); err != nil {
			return err
		}
		setSessionCookie(c, token, time.Now().Add(session.AbsoluteTimeout))
		return render.Redirect(c, "/")
	}
}

// TimeZoneSetter saves a user's time-zone preference.
type TimeZoneSetter interface {
	SetTimeZone(ctx context.Context, id int64, name, sessionOrg string, by models.Actor) error
}

// commonZones are the suggestions of the time-zone field; any IANA name is accepted.
var commonZones = []string{
	"UTC", "Europe/London", "Europe/Dublin", "Europe/Lisbon", "Europe/Berlin", "Europe/Paris", "Europe/Madrid",
	"Europe/Rome", "Europe/Amsterdam", "Europe/Zurich", "Europe/Vienna", "Europe/Warsaw", "Europe/Stockholm",
	"Europe/Helsinki", "Europe/Athens", "Europe/Istanbul", "Europe/Kyiv", "Europe/Moscow", "Africa/Cairo",
	"Africa/Johannesburg", "Africa/Lagos", "Africa/Nairobi", "Asia/Dubai", "Asia/Karachi", "Asia/Kolkata",
	"Asia/Dhaka", "Asia/Bangkok", "Asia/Jakarta", "Asia/Singapore", "Asia/Shanghai", "Asia/Hong_Kong",
	"Asia/Tokyo", "Asia/Seoul", "Australia/Perth", "Australia/Adelaide", "Australia/Sydney", "Pacific/Auckland",
	"America/St_Johns", "America/Halifax", "America/Sao_Paulo", "America/Argentina/Buenos_Aires",
	"America/New_York", "America/Toronto", "America/Chicago", "America/Mexico_City", "America/Denver",
	"America/Phoenix", "America/Los_Angeles", "America/Anchorage", "Pacific/Honolulu",
}

// accountProps is the account page's view model for the viewer of c.
func accountProps(c *fiber.Ctx) account.AccountProps {
	v := render.ViewerOf(c)
	zone := ""
	if v.User.TimeZone != nil {
		zone = *v.User.TimeZone
	}
	return account.AccountProps{Email: v.User.Email, TimeZone: zone, Zones: commonZones, Flash: flash(c),
		Example: components.InViewerZone(c.UserContext(), time.Now()) + " (" + components.LocationOf(c.UserContext()).String() + ")",
		CSRF:    v.Session.CSRFToken()}
}

// AccountPage shows the viewer's own settings: the time-zone preference and the way to the
// password form.
func AccountPage() fiber.Handler {
	return func(c *fiber.Ctx) error {
		return render.HTML(c, fiber.StatusOK, account.Account(render.ViewerOf(c).Shell("Your account", ""), accountProps(c)))
	}
}

// SetTimeZone saves the viewer's time-zone preference (an IANA name; empty or UTC clears
// it), audited as user.time_zone.change. A name that is not a zone is refused next to its
// field with nothing saved.
func SetTimeZone(users TimeZoneSetter) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		name := strings.TrimSpace(c.FormValue("time_zone"))
		err := users.SetTimeZone(c.UserContext(), v.User.ID, name, v.OrgID, ActorOf(c))
		if err != nil {
			if models.KindOf(err) != models.KindInvalid {
				return err
			}
			props := accountProps(c)
			props.Flash = ""
			props.TimeZone = name
			props.Error = refusalOf(err)
			return refuse(c, err, account.Account(v.Shell("Your account", ""), props))
		}
		return redirectDone(c, "/account", doneTimeZoneSaved, "")
	}
}
