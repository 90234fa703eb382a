// Package handlers holds the console and API request handlers, one file per area. Each
// handler is thin: parse, validate, authorize, call a store, render or redirect. Stores are
// reached through small interfaces declared here, beside their use.
package handlers

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/models/session"
	"auditdb/views/pages/auth"
)

// Cookie names used by the console.
const (
	SessionCookie    = "auditdb_session"
	LoginCSRFCookie  = "auditdb_login_csrf"
	maxEmailLength   = 320
	maxPasswordBytes = 1024
)

// Authenticator checks credentials and lists the organizations of a user.
type Authenticator interface {
	Authenticate(ctx context.Context, email, password string) (*models.User, error)
	Organizations(ctx context.Context, u *models.User) ([]models.OrgAccess, error)
	AccountLookup
}

// SessionManager starts, switches and ends console sessions.
type SessionManager interface {
	Create(ctx context.Context, userID int64, org, ip, userAgent string) (string, *session.Session, error)
	SetOrg(ctx context.Context, token, org string) error
	Revoke(ctx context.Context, token string) error
}

// AttemptLimiter counts sign-in attempts per key, before the password is checked.
type AttemptLimiter interface {
	// Reserve counts one attempt and reports whether it may be tried.
	Reserve(ctx context.Context, key string) bool
	// Release gives one reservation back.
	Release(ctx context.Context, key string)
}

// LoginLimits are the sign-in limiters: one keyed by account, one by address. Both the
// sign-in form and the password-change form's current-password check count against them.
type LoginLimits struct {
	PerAccount, PerAddress AttemptLimiter
}

// reserve counts one password check of email from the request's address against both
// limits, and reports whether it may go ahead. The count is taken before the check, so
// parallel attempts cannot all slip in under the limit.
func (l LoginLimits) reserve(c *fiber.Ctx, email string) (accountKey, addressKey string, ok bool) {
	ctx := c.UserContext()
	accountKey, addressKey = "acct:"+normalizeEmail(email), "addr:"+c.IP()
	okAccount := l.PerAccount.Reserve(ctx, accountKey)
	okAddress := l.PerAddress.Reserve(ctx, addressKey)
	return accountKey, addressKey, okAccount && okAddress
}

// succeeded gives the account and the address the attempt back: a correct password does
// not count against either. The failures before it still do, until their window ends —
// clearing them on success would let attempts already in flight past the limit.
func (l LoginLimits) succeeded(ctx context.Context, accountKey, addressKey string) {
	l.PerAccount.Release(ctx, accountKey)
	l.PerAddress.Release(ctx, addressKey)
}

// secureRequest reports whether the request reached us over TLS (directly or, when the
// proxy is trusted by Fiber's config, behind one).
func secureRequest(c *fiber.Ctx) bool { return c.Protocol() == "https" }

// LoginPage shows the sign-in form with its pre-session CSRF token: the one in the
// browser's cookie when tokens minted it and it is still valid, else a fresh one.
func LoginPage(tokens *LoginTokens) fiber.Handler {
	return func(c *fiber.Ctx) error {
		return renderLogin(c, tokens, fiber.StatusOK, auth.LoginProps{Next: render.LocalPath(c.Query("next"))})
	}
}

func renderLogin(c *fiber.Ctx, tokens *LoginTokens, status int, p auth.LoginProps) error {
	token := c.Cookies(LoginCSRFCookie)
	if !tokens.Valid(token) {
		token = tokens.Mint()
		setLoginTokenCookie(c, token, time.Time{})
	}
	// The cookie keeps the token as minted; the page carries it masked afresh (BREACH).
	p.CSRF = session.MaskToken([]byte(token))
	return render.HTML(c, status, auth.Login(p))
}

// setLoginTokenCookie sets the sign-in token cookie, or deletes it when expires is set
// (on the same path, or the browser keeps it).
func setLoginTokenCookie(c *fiber.Ctx, token string, expires time.Time) {
	ck := &fiber.Cookie{Name: LoginCSRFCookie, Value: token, Path: "/login", HTTPOnly: true,
		SameSite: fiber.CookieSameSiteStrictMode, Secure: secureRequest(c), Expires: expires}
	if expires.IsZero() {
		ck.MaxAge = int(loginTokenLifetime / time.Second)
	}
	c.Cookie(ck)
}

// Login checks the credentials, enforces the failed sign-in limits and starts a session in
// the user's first organization. A wrong password and an unknown user get the same answer.
// Every attempt on an existing account is audited (auth.login.success or
// auth.login.failure) in the organizations of that account; a success is refused when its
// audit event cannot be written.
func Login(users Authenticator, sessions SessionManager, limits LoginLimits, tokens *LoginTokens, audit Auditor, log *slog.Logger) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx := c.UserContext()
		email, password := c.FormValue("email"), c.FormValue("password")
		next := render.LocalPath(c.FormValue("next"))
		props := auth.LoginProps{Email: email, Next: next}
		if len(email) > maxEmailLength || len(password) > maxPasswordBytes || email == "" || password == "" {
			props.Error = "Enter your email and password."
			return renderLogin(c, tokens, fiber.StatusBadRequest, props)
		}
		acc, err := users.AccountByEmail(ctx, email)
		if err != nil {
			return err
		}
		failed := func(outcome string) {
			if acc == nil {
				return // no organization is concerned by an unknown email
			}
			entry := models.AuditEntry{Action: models.ActionLoginFailure, Status: "failure", Actor: ActorOf(c),
				TargetType: "user", TargetID: strconv.FormatInt(acc.UserID, 10), Outcome: outcome}
			entry.Actor.UserID, entry.Actor.Email = acc.UserID, acc.Email
			if err := audit.Record(ctx, entriesFor(acc.Orgs, entry)...); err != nil {
				log.Error("audit a failed sign-in", "err", err)
			}
		}
		accountKey, addressKey, ok := limits.reserve(c, email)
		if !ok {
			failed("refused: too many failed sign-ins")
			props.Error = "Too many failed sign-ins. Wait 15 minutes and try again."
			return renderLogin(c, tokens, fiber.StatusTooManyRequests, props)
		}
		user, err := users.Authenticate(ctx, email, password)
		if errors.Is(err, models.ErrBadCredentials) {
			log.Info("sign-in failed", "ip", c.IP())
			failed("email or password incorrect")
			props.Error = "Email or password is incorrect."
			return renderLogin(c, tokens, fiber.StatusUnauthorized, props)
		}
		if err != nil {
			return err
		}
		limits.succeeded(ctx, accountKey, addressKey)
		orgs, err := users.Organizations(ctx, user)
		if err != nil {
			return err
		}
		org := ""
		if len(orgs) > 0 {
			org = orgs[0].ID
		}
		actor := ActorOf(c)
		actor.UserID, actor.Email, actor.Superadmin = user.ID, user.Email, user.Superadmin
		entry := models.AuditEntry{Action: models.ActionLoginSuccess, Actor: actor, TargetType: "user",
			TargetID: strconv.FormatInt(user.ID, 10), Outcome: "signed in"}
		if err := audit.Record(ctx, entriesFor(accountOrgs(acc, org), entry)...); err != nil {
			return err
		}
		token, _, err := sessions.Create(ctx, user.ID, org, c.IP(), c.Get(fiber.HeaderUserAgent))
		if err != nil {
			return err
		}
		// A session this browser held before ends now: signing in again never leaves two
		// sessions behind one cookie jar.
		if previous := c.Cookies(SessionCookie); previous != "" {
			if err := sessions.Revoke(ctx, previous); err != nil {
				log.Warn("end the previous session of a browser", "err", err)
			}
		}
		setSessionCookie(c, token, time.Now().Add(session.AbsoluteTimeout))
		setLoginTokenCookie(c, "", time.Unix(1, 0))
		return render.Redirect(c, next)
	}
}

func setSessionCookie(c *fiber.Ctx, token string, expires time.Time) {
	c.Cookie(&fiber.Cookie{Name: SessionCookie, Value: token, Path: "/", HTTPOnly: true,
		SameSite: fiber.CookieSameSiteLaxMode, Secure: secureRequest(c), Expires: expires})
}

// Logout revokes the session, audits auth.logout in the organizations of the account and
// returns to the sign-in page.
func Logout(sessions SessionManager, accounts AccountLookup, audit Auditor, log *slog.Logger) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if v := render.ViewerOf(c); v != nil {
			ctx := c.UserContext()
			if err := sessions.Revoke(ctx, v.Token); err != nil {
				return err
			}
			// The session is gone already: a failure to audit it is logged, not shown.
			acc, err := accounts.AccountByEmail(ctx, v.User.Email)
			if err == nil {
				entry := models.AuditEntry{Action: models.ActionLogout, Actor: ActorOf(c), TargetType: "user",
					TargetID: strconv.FormatInt(v.User.ID, 10), Outcome: "signed out"}
				err = audit.Record(ctx, entriesFor(accountOrgs(acc, v.OrgID), entry)...)
			}
			if err != nil {
				log.Error("audit a sign-out", "err", err)
			}
		}
		c.Cookie(&fiber.Cookie{Name: SessionCookie, Value: "", Path: "/", HTTPOnly: true,
			SameSite: fiber.CookieSameSiteLaxMode, Secure: secureRequest(c), Expires: time.Unix(1, 0)})
		return render.Redirect(c, "/login")
	}
}

// SwitchOrg makes another of the viewer's organizations the current one and goes to the
// form's next path (the dashboard by default).
func SwitchOrg(sessions SessionManager) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		org := c.FormValue("org")
		for _, o := range v.Orgs {
			if o.ID == org {
				if err := sessions.SetOrg(c.UserContext(), v.Token, org); err != nil {
					return err
				}
				return render.Redirect(c, render.LocalPath(c.FormValue("next")))
			}
		}
		return models.NotFound("organization")
	}
}

func normalizeEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }
