// Package layout holds the document shells every console page renders in:
// Page (signed-in pages, with navigation and the organization header) and
// Bare (the sign-in page and errors before a session exists).
package layout

import (
	"encoding/json"
	"strings"
)

// OrgOption is one organization the signed-in user may switch to.
type OrgOption struct {
	ID   string
	Name string
}

// Shell is the view model of the signed-in page chrome. Handlers fill it
// once per request; pages pass it to Page unchanged.
type Shell struct {
	Title      string // page title, shown in <title> as "Title · auditdb"
	Active     string // nav key of the current area, see NavItems
	UserEmail  string
	Superadmin bool
	OrgID      string // current organization
	OrgName    string
	Orgs       []OrgOption // switcher is shown when there is more than one
	CSRF       string      // token for forms and htmx requests
	// Nav is the navigation the viewer may follow; nil shows every entry of NavItems.
	Nav []NavItem
}

// navItems returns the entries to show.
func (s Shell) navItems() []NavItem {
	if s.Nav == nil {
		return NavItems
	}
	return s.Nav
}

// NavItem is one entry of the main navigation.
type NavItem struct {
	Key   string // matched against Shell.Active; also the data-testid suffix
	Label string
	Href  string
	// Count, when above zero, is shown beside the label (the active alerts).
	Count int64
}

// NavItems lists every console area in navigation order.
var NavItems = []NavItem{
	{Key: "dashboard", Label: "Dashboard", Href: "/"},
	{Key: "events", Label: "Events", Href: "/events"},
	{Key: "alerts", Label: "Alerts", Href: "/alerts"},
	{Key: "reports", Label: "Reports", Href: "/reports"},
	{Key: "retention", Label: "Retention", Href: "/retention"},
	{Key: "gdpr", Label: "GDPR", Href: "/gdpr"},
	{Key: "roles", Label: "Roles", Href: "/roles"},
	{Key: "members", Label: "Members", Href: "/members"},
	{Key: "orgs", Label: "Organizations", Href: "/orgs"},
	{Key: "settings", Label: "Settings", Href: "/settings"},
	{Key: "errors", Label: "Errors", Href: "/errors"},
	{Key: "performance", Label: "Performance", Href: "/performance"},
}

// AppName is the product name shown in titles and the sidebar.
const AppName = "auditdb"

// documentTitle returns "Title · auditdb", or just the app name when the
// title is blank.
func documentTitle(title string) string {
	if strings.TrimSpace(title) == "" {
		return AppName
	}
	return title + " · " + AppName
}

// description is the page's meta description: what the console is, and the page's title.
func description(title string) string {
	const what = "auditdb, the tamper-evident audit-event database: the administration console"
	if strings.TrimSpace(title) == "" {
		return what + "."
	}
	return title + " — " + what + "."
}

// csrfHeaders returns the JSON for the body's hx-headers attribute so every
// htmx request carries the CSRF token. json.Marshal does the quoting, so a
// token can never break out of the JSON; templ then escapes the attribute.
func csrfHeaders(token string) string {
	b, err := json.Marshal(map[string]string{"X-CSRF-Token": token})
	if err != nil {
		// A map of strings always marshals; keep the page usable regardless.
		return "{}"
	}
	return string(b)
}

// htmxConfig is read by htmx from <meta name="htmx-config">.
//
//   - includeIndicatorStyles=false: htmx would otherwise inject an inline
//     <style>, which a strict Content-Security-Policy blocks; the indicator
//     rules are in app.css instead.
//   - responseHandling: htmx 2 does not swap 4xx/5xx responses by default.
//     Swapping them (still flagged as errors) lets the server answer an htmx
//     request with the errors.Fragment box, retargeted with
//     "HX-Retarget: #flash" and "HX-Reswap: innerHTML".
const htmxConfig = `{"includeIndicatorStyles":false,"responseHandling":[` +
	`{"code":"204","swap":false},` +
	`{"code":"[23]..","swap":true},` +
	`{"code":"[45]..","swap":true,"error":true},` +
	`{"code":"...","swap":false}]}`
