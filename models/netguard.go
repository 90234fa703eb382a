package models

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Resolver looks up a host's addresses. *net.Resolver satisfies it; tests pass their own so
// no real DNS is asked.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// sharedAddressSpace is 100.64.0.0/10 (carrier-grade NAT), private in all but name.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// publicOrLoopback reports whether a webhook may be sent to a: loopback, or a global
// unicast address that is not private, link-local, multicast or unspecified.
func publicOrLoopback(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is6() {
		// Addresses that carry an IPv4 address inside (NAT64, 6to4, the old IPv4-compatible
		// form) lead wherever that address does: judge the embedded one.
		if v4, ok := embeddedIPv4(a); ok {
			return !v4.IsLoopback() && publicOrLoopback(v4)
		}
	}
	switch {
	case a.IsLoopback():
		return true
	case !a.IsValid(), a.IsUnspecified(), a.IsPrivate(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(),
		a.IsInterfaceLocalMulticast(), a.IsMulticast(), sharedAddressSpace.Contains(a), !a.IsGlobalUnicast():
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// nonPublic are ranges IsGlobalUnicast lets through that no public service lives in:
// benchmarking, documentation, reserved and "this network" IPv4 ranges, IPv6 site-local
// (deprecated, still routed inside some networks), documentation and discard ranges.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("fec0::/10"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001::/23"), // IETF special-purpose (Teredo and others)
}

// The IPv6 ranges that embed an IPv4 address, and where it sits.
var (
	nat64Prefix      = netip.MustParsePrefix("64:ff9b::/96")
	nat64LocalPrefix = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFourPrefix  = netip.MustParsePrefix("2002::/16")
	v4CompatPrefix   = netip.MustParsePrefix("::/96")
	// v4TranslatedPrefix is SIIT's IPv4-translated form (RFC 2765), ::ffff:0:a.b.c.d (not the
	// IPv4-mapped ::ffff:a.b.c.d, which Unmap handles).
	v4TranslatedPrefix = netip.MustParsePrefix("::ffff:0:0:0/96")
)

// embeddedIPv4 returns the IPv4 address an IPv6 address carries (NAT64 64:ff9b::/96 and
// 64:ff9b:1::/48 in the last 32 bits, 6to4 2002::/16 in bits 16-47, IPv4-compatible ::/96
// and IPv4-translated ::ffff:0:0:0/96 in the last 32 bits), and whether it carries one.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case nat64Prefix.Contains(a), nat64LocalPrefix.Contains(a), v4TranslatedPrefix.Contains(a),
		v4CompatPrefix.Contains(a) && !a.IsUnspecified() && a != netip.IPv6Loopback():
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixToFourPrefix.Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// errForbiddenAddress is the refusal of an address no webhook may reach.
var errForbiddenAddress = errors.New("it points at a private, link-local, multicast or unspecified address")

// addrRule is which addresses a webhook may reach besides public ones.
type addrRule struct {
	// loopback lets loopback addresses through (alert channels, for a receiver on the same
	// host; report webhooks only through their test hook).
	loopback bool
	// loopbackOnly is set for plain http: only loopback may be reached.
	loopbackOnly bool
}

// allows returns why a may not be reached under rule, or nil.
func (rule addrRule) allows(a netip.Addr) error {
	if !publicOrLoopback(a) {
		if rule.loopback {
			return errForbiddenAddress
		}
		return errForbiddenStrict
	}
	isLoop := a.Unmap().IsLoopback()
	if isLoop && !rule.loopback {
		return errForbiddenStrict
	}
	if rule.loopbackOnly && !isLoop {
		return errors.New("plain http is allowed only to loopback; use https")
	}
	return nil
}

// errForbiddenStrict is the refusal of an address a report webhook may not reach.
var errForbiddenStrict = errors.New("it points at a loopback, private, link-local, multicast or unspecified address")

// resolveChecked returns host's addresses when every one of them may be reached under
// rule. A literal IP is not looked up.
func resolveChecked(ctx context.Context, r Resolver, host string, rule addrRule) ([]netip.Addr, error) {
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		addrs = []netip.Addr{a}
	} else {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		addrs, err = r.LookupNetIP(lctx, "ip", host)
		if err != nil {
			// The resolver's own error names the server's DNS resolver: keep it out of
			// what a tenant is shown.
			return nil, fmt.Errorf("its host %s cannot be resolved", host)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("its host %s has no address", host)
		}
	}
	for _, a := range addrs {
		if err := rule.allows(a); err != nil {
			return nil, err
		}
	}
	return addrs, nil
}

// CheckWebhookURL returns raw parsed when a webhook may be sent there: an https URL (or
// http to a loopback host) without credentials whose host resolves only to loopback or
// public addresses. It returns a KindInvalid error for the field "url" saying why not.
func CheckWebhookURL(ctx context.Context, r Resolver, raw string) (*url.URL, error) {
	u, _, err := checkWebhookURL(ctx, r, raw, true)
	return u, err
}

// CheckReportWebhookURL is CheckWebhookURL's stricter rule for report deliveries: https
// only, and the host must resolve only to public addresses (loopback refused too). It
// returns a KindInvalid error for the field "webhook_url" saying why not.
func CheckReportWebhookURL(ctx context.Context, r Resolver, raw string) (*url.URL, error) {
	u, _, err := checkWebhookURL(ctx, r, raw, false)
	if e := (*Error)(nil); errors.As(err, &e) {
		return nil, Invalid("webhook_url", e.Message)
	}
	return u, nil
}

// checkWebhookURL checks raw under the channel rule (loopback allowed) or the strict one,
// and returns the rule its connections must keep to.
func checkWebhookURL(ctx context.Context, r Resolver, raw string, loopback bool) (*url.URL, addrRule, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" {
		if !loopback {
			return nil, addrRule{}, Invalid("url", "must be an https:// URL")
		}
		return nil, addrRule{}, Invalid("url", "must be an https:// URL (or http:// to a loopback address)")
	}
	if u.User != nil {
		return nil, addrRule{}, Invalid("url", "must not carry a user name or password")
	}
	if len(raw) > 2048 {
		return nil, addrRule{}, Invalid("url", "must be at most 2048 characters")
	}
	rule := addrRule{loopback: loopback, loopbackOnly: u.Scheme == "http"}
	if u.Scheme == "http" && !loopback {
		return nil, addrRule{}, Invalid("url", "must be an https:// URL")
	}
	if _, err := resolveChecked(ctx, r, u.Hostname(), rule); err != nil {
		return nil, addrRule{}, Invalid("url", "refused: "+err.Error())
	}
	return u, rule, nil
}

// guardedDialer dials only addresses a webhook may reach: it resolves the host itself,
// checks every address, dials a checked one, and checks again in the socket's Control hook
// (so a DNS answer that changes between check and dial cannot redirect the connection).
type guardedDialer struct {
	resolver Resolver
	timeout  time.Duration
}

// addrRuleKey carries a request's addrRule to the dialer; without one the strictest rule
// applies.
type addrRuleKey struct{}

// DialContext is an http.Transport dial function.
func (g guardedDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	rule, _ := ctx.Value(addrRuleKey{}).(addrRule)
	addrs, err := resolveChecked(ctx, g.resolver, host, rule)
	if err != nil {
		return nil, fmt.Errorf("models: webhook refused: %w", err)
	}
	d := net.Dialer{Timeout: g.timeout, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || rule.allows(ap.Addr()) != nil {
			return fmt.Errorf("models: webhook refused: %s is not an address a webhook may reach", address)
		}
		return nil
	}}
	var last error
	for _, a := range addrs {
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		last = err
	}
	return nil, last
}

// ValidEmail reports whether s is a plain email address (local@domain, no display name,
// no angle brackets, no comments).
func ValidEmail(s string) bool {
	if s == "" || len(s) > 254 || strings.ContainsAny(s, " <>()\",;:\\[]\r\n\t") {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") &&
		!strings.HasSuffix(domain, ".") && !strings.Contains(domain, "..")
}

// SMTPConfig is where email notifications are sent from (AUDITDB_SMTP_URL and
// AUDITDB_SMTP_FROM).
type SMTPConfig struct {
	Host     string
	Port     string
	Username string
	Password string
	From     string
	// ImplicitTLS is set for smtps:// (TLS from the first byte); smtp:// upgrades with
	// STARTTLS when the server offers it.
	ImplicitTLS bool
}

// ParseSMTPURL reads smtp://[user:pass@]host[:port] (port 587 by default) or
// smtps://…(465) and the sender address. It returns a KindInvalid error naming the
// variable at fault.
func ParseSMTPURL(raw, from string) (*SMTPConfig, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return nil, Invalid("AUDITDB_SMTP_URL", "must be smtp://user:pass@host:587 or smtps://user:pass@host:465")
	}
	c := &SMTPConfig{Host: u.Hostname(), Port: u.Port(), From: from, ImplicitTLS: u.Scheme == "smtps"}
	if c.Port == "" {
		c.Port = map[bool]string{false: "587", true: "465"}[c.ImplicitTLS]
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	if !ValidEmail(from) {
		return nil, Invalid("AUDITDB_SMTP_FROM", "must be a plain email address such as alerts@example.com")
	}
	return c, nil
}
