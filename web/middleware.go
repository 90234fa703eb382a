package web

import (
	"context"
	"crypto/subtle"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers"
	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/models/session"
	"auditdb/policy"
	"auditdb/views/components"
	"auditdb/views/layout"
)

// contentSecurityPolicy allows only our own scripts and styles: no inline script, no
// third-party origin, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

func securityHeaders(c *fiber.Ctx) error {
	c.Set("Content-Security-Policy", contentSecurityPolicy)
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "same-origin")
	// An administration console is never for search engines (robots.txt says so too).
	c.Set("X-Robots-Tag", "noindex, nofollow")
	if c.Protocol() == "https" {
		c.Set("Strict-Transport-Security", "max-age=31536000")
	}
	return c.Next()
}

type sessionLookup interface {
	Lookup(ctx context.Context, token string) (*session.Session, error)
	SetOrg(ctx context.Context, token, org string) error
}

// passwordPath is where a user with a one-time password is sent until it picks its own.
const passwordPath = "/account/password"

// requireSession admits only requests with a live session, attaching the viewer and the
// principal authorize checks and marking the answer Cache-Control: no-store; others go to the sign-in page (and come back afterwards). A
// session whose organization is no longer accessible falls back to the user's first
// organization. A user still on a one-time password may only change it or sign out.
func requireSession(sessions sessionLookup, authz Authorizer, nav map[string]Need) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx := c.UserContext()
		token := c.Cookies(handlers.SessionCookie)
		sess, err := sessions.Lookup(ctx, token)
		if err == session.ErrNoSession {
			return render.Redirect(c, "/login?next="+url.QueryEscape(string(c.Request().RequestURI())))
		}
		if err != nil {
			return err
		}
		user, orgs := sess.User, sess.Orgs
		v := &render.Viewer{User: user, Session: sess, Token: token, Orgs: orgs}
		for _, o := range orgs {
			if o.ID == sess.Org() {
				v.OrgID, v.OrgName, v.Role = o.ID, o.Name, o.Role
			}
		}
		if v.OrgID == "" && len(orgs) > 0 {
			v.OrgID, v.OrgName, v.Role = orgs[0].ID, orgs[0].Name, orgs[0].Role
			if err := sessions.SetOrg(ctx, token, v.OrgID); err != nil {
				return err
			}
		}
		p := render.Principal{Subject: policy.UserOf(user), Org: v.OrgID}
		v.Can = func(resource, action string) bool {
			ok, err := authz.Allowed(ctx, p.Subject, p.Org, resource, action)
			return err == nil && ok
		}
		v.ShowNav = func(item layout.NavItem) bool {
			ok, err := decide(ctx, authz, p, nav[item.Href])
			return err == nil && ok
		}
		// Signed-in pages show an organization's events and settings: no copy may be kept
		// by the browser's cache or a shared proxy.
		c.Set(fiber.HeaderCacheControl, "no-store")
		render.SetViewer(c, v)
		render.SetPrincipal(c, p)
		// Times on every page show the viewer's zone on hover.
		view := components.ViewOf(c.UserContext())
		view.Location = user.LocationOf()
		c.SetUserContext(components.WithView(c.UserContext(), view))
		if user.MustChangePassword && c.Path() != passwordPath && c.Path() != "/logout" {
			return render.Redirect(c, passwordPath)
		}
		return c.Next()
	}
}

// errCSRF is the answer to a state-changing request without a valid token.
var errCSRF = models.Forbidden("the form's security token is missing or stale; reload the page and try again")

// submittedCSRF returns the request's CSRF token: the X-CSRF-Token header (htmx sends it,
// see the layout's hx-headers) or the _csrf field of the form body. The query string never
// counts: a token there leaks through logs, history and Referer.
func submittedCSRF(c *fiber.Ctx) string {
	if h := c.Get("X-CSRF-Token"); h != "" {
		return h
	}
	if v := c.Request().PostArgs().Peek("_csrf"); len(v) > 0 {
		return string(v)
	}
	if f, err := c.MultipartForm(); err == nil && len(f.Value["_csrf"]) > 0 {
		return f.Value["_csrf"][0]
	}
	return ""
}

func safeMethod(m string) bool {
	return m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions
}

func tokensEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// sessionCSRF checks the session's synchronizer token on every state-changing request.
func sessionCSRF(c *fiber.Ctx) error {
	if safeMethod(c.Method()) {
		return c.Next()
	}
	v := render.ViewerOf(c)
	if v == nil || !v.Session.CSRFValid(submittedCSRF(c)) {
		return errCSRF
	}
	return c.Next()
}

// loginCSRF checks the sign-in form's token: once unmasked (the form carries it masked, see
// session.MaskToken), one the server minted (tokens), equal to the token cookie set with
// the form.
func loginCSRF(tokens *handlers.LoginTokens) fiber.Handler {
	return func(c *fiber.Ctx) error {
		raw, ok := session.UnmaskToken(submittedCSRF(c))
		sent := string(raw)
		if !ok || !tokens.Valid(sent) || !tokensEqual(sent, c.Cookies(handlers.LoginCSRFCookie)) {
			return errCSRF
		}
		return c.Next()
	}
}

// loginTokenKey derives the sign-in token key from the server's signing key, so every
// instance agrees on it. The derivation input is not a hex event hash, so the key is no
// event's signature.
func loginTokenKey(s *models.Sealer) []byte {
	return []byte(s.Sign("auditdb sign-in form token key v1"))
}

// queryBudget limits the database work of a console or API request to budget (see
// models.WithStatementTimeout), so one slow search cannot keep PostgreSQL busy or the
// request hanging: it ends with the error handler's plain answer instead. Ingest has its
// own budget (the writer's) and does not pass here. A budget of 0 turns it off.
func queryBudget(budget time.Duration) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if budget <= 0 {
			return c.Next()
		}
		parent := c.UserContext()
		ctx, cancel := models.WithStatementTimeout(parent, budget)
		defer cancel()
		c.SetUserContext(ctx)
		err := c.Next()
		// The error handler renders its answer after this returns, when the budget's
		// context is over: it gets the request's own.
		c.SetUserContext(parent)
		return err
	}
}

// errForeignOrigin is the answer to a state-changing request a browser sent from another
// site's page.
var errForeignOrigin = models.Forbidden("this form was sent from another site; open the console and submit it there")

// sameOrigin refuses (403) a state-changing request whose Origin (or, without one, whose
// Referer) names another origin than the server's own: defence in depth beside the CSRF
// token. Behind a trusted proxy the server's origin is the configured public URL's only
// (the Host the proxy sends is its own business); a request straight from a client may
// also come from the request's own origin (its scheme and Host), so that a server reached
// under another name than the public URL's (localhost, say) still works. A request with
// neither header (not a browser, or one that strips them) is left to the token.
func sameOrigin(publicURL string, trusted proxies) fiber.Handler {
	public := ""
	if u, err := url.Parse(publicURL); err == nil && u.Host != "" {
		public = originOf(u.Scheme, u.Host)
	}
	return func(c *fiber.Ctx) error {
		if safeMethod(c.Method()) {
			return c.Next()
		}
		origins := c.Request().Header.PeekAll(fiber.HeaderOrigin)
		if len(origins) > 1 {
			return errForeignOrigin // a browser sends one; which of several would count is anyone's guess
		}
		sent := c.Get(fiber.HeaderOrigin)
		if len(origins) == 1 && sent == "" { // an empty Origin names no origin
			return errForeignOrigin
		}
		if sent == "" {
			ref := c.Get(fiber.HeaderReferer)
			if ref == "" {
				return c.Next()
			}
			u, err := url.Parse(ref)
			if err != nil || u.Host == "" {
				return errForeignOrigin
			}
			sent = u.Scheme + "://" + u.Host
		}
		m := originSyntax.FindStringSubmatch(sent)
		if m == nil {
			return errForeignOrigin // "null" (a sandboxed or privacy-sensitive context) and anything malformed
		}
		got := originOf(m[1], m[2])
		if public != "" && got == public {
			return c.Next()
		}
		peer, ok := netip.AddrFromSlice(c.Context().RemoteIP())
		if ok && trusted.trusts(peer.Unmap()) {
			return errForeignOrigin
		}
		if got == originOf(c.Protocol(), string(c.Request().Host())) {
			return c.Next()
		}
		return errForeignOrigin
	}
}

// originSyntax is an origin as browsers serialize it (RFC 6454): scheme://host or
// scheme://host:port, the host a name or a bracketed IPv6 address, and nothing else (no
// path, query, fragment, user or whitespace). Its groups are the scheme and host[:port].
var originSyntax = regexp.MustCompile(`^(https?)://((?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?)$`)

// originOf is scheme://host in lower case without the scheme's default port.
func originOf(scheme, host string) string {
	scheme, host = strings.ToLower(scheme), strings.ToLower(host)
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		host = strings.TrimSuffix(host, ":80")
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		host = strings.TrimSuffix(host, ":443")
	}
	return scheme + "://" + host
}
