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
	switch {
	case a.IsLoopback():
		return true
	case !a.IsValid(), a.IsUnspecified(), a.IsPrivate(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(),
		a.IsInterfaceLocalMulticast(), a.IsMulticast(), sharedAddressSpace.Contains(a), !a.IsGlobalUnicast():
		return false
	}
	return true
}

// errForbiddenAddress is the refusal of an address no webhook may reach.
var errForbiddenAddress = errors.New("it points at a private, link-local, multicast or unspecified address")

// resolveChecked returns host's addresses when every one of them may be reached (and, for
// loopbackOnly, is loopback). A literal IP is not looked up.
func resolveChecked(ctx context.Context, r Resolver, host string, loopbackOnly bool) ([]netip.Addr, error) {
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		addrs = []netip.Addr{a}
	} else {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		addrs, err = r.LookupNetIP(lctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("its host %s cannot be resolved: %w", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("its host %s has no address", host)
		}
	}
	for _, a := range addrs {
		if !publicOrLoopback(a) {
			return nil, errForbiddenAddress
		}
		if loopbackOnly && !a.Unmap().IsLoopback() {
			return nil, errors.New("plain http is allowed only to loopback; use https")
		}
	}
	return addrs, nil
}

// CheckWebhookURL returns raw parsed when a webhook may be sent there: an https URL (or
// http to a loopback host) without credentials whose host resolves only to loopback or
// public addresses. It returns a KindInvalid error for the field "url" saying why not.
func CheckWebhookURL(ctx context.Context, r Resolver, raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" {
		return nil, Invalid("url", "must be an https:// URL (or http:// to a loopback address)")
	}
	if u.User != nil {
		return nil, Invalid("url", "must not carry a user name or password")
	}
	if len(raw) > 2048 {
		return nil, Invalid("url", "must be at most 2048 characters")
	}
	if _, err := resolveChecked(ctx, r, u.Hostname(), u.Scheme == "http"); err != nil {
		return nil, Invalid("url", "refused: "+err.Error())
	}
	return u, nil
}

// guardedDialer dials only addresses a webhook may reach: it resolves the host itself,
// checks every address, dials a checked one, and checks again in the socket's Control hook
// (so a DNS answer that changes between check and dial cannot redirect the connection).
type guardedDialer struct {
	resolver Resolver
	timeout  time.Duration
}

type loopbackOnlyKey struct{}

// DialContext is an http.Transport dial function.
func (g guardedDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	loopbackOnly, _ := ctx.Value(loopbackOnlyKey{}).(bool)
	addrs, err := resolveChecked(ctx, g.resolver, host, loopbackOnly)
	if err != nil {
		return nil, fmt.Errorf("models: webhook refused: %w", err)
	}
	d := net.Dialer{Timeout: g.timeout, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !publicOrLoopback(ap.Addr()) || (loopbackOnly && !ap.Addr().Unmap().IsLoopback()) {
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
