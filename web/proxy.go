package web

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// ParseTrustedProxies reads a comma-separated list of IP addresses and CIDR ranges
// (10.0.0.0/8,127.0.0.1,::1). It returns an error naming the first entry that is neither.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if p, err := netip.ParsePrefix(entry); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(entry)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("web: %q is neither an IP address nor a CIDR range", entry)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// proxies are the peers whose X-Forwarded-* headers the server believes.
type proxies []netip.Prefix

func (ps proxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// fiberList is ps in the form of fiber.Config.TrustedProxies.
func (ps proxies) fiberList() []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		if p.IsSingleIP() {
			out[i] = p.Addr().String()
		} else {
			out[i] = p.String()
		}
	}
	return out
}

// forwardedHeaders are the request headers a proxy uses to tell who the client was and
// how it connected; Fiber reads the scheme from the last four (Ctx.Protocol).
var forwardedHeaders = []string{fiber.HeaderXForwardedFor, fiber.HeaderXForwardedProto,
	fiber.HeaderXForwardedProtocol, fiber.HeaderXForwardedSsl, fiber.HeaderXUrlScheme}

// forwardedClient settles, before anything reads them, who the client is and whether it
// connected over TLS. From a trusted peer, X-Forwarded-For is reduced to one address: the
// rightmost hop that is not itself a trusted proxy (hops to its left were written by the
// client and prove nothing), so Ctx.IP returns it; Ctx.Protocol then believes the peer's
// X-Forwarded-Proto. From any other peer the forwarding headers are dropped, so nothing
// downstream can be fooled by them.
func forwardedClient(trusted proxies) fiber.Handler {
	return func(c *fiber.Ctx) error {
		h := &c.Request().Header
		peer, ok := netip.AddrFromSlice(c.Context().RemoteIP())
		if !ok || !trusted.trusts(peer) {
			for _, name := range forwardedHeaders {
				if len(h.Peek(name)) > 0 {
					c.Locals(forwardedUntrusted{}, true)
					h.Del(name)
				}
			}
			return c.Next()
		}
		client := peer.Unmap()
		var hops []string
		h.VisitAll(func(k, v []byte) {
			if strings.EqualFold(string(k), fiber.HeaderXForwardedFor) {
				hops = append(hops, strings.Split(string(v), ",")...)
			}
		})
		for i := len(hops) - 1; i >= 0; i-- {
			hop, ok := parseHop(strings.TrimSpace(hops[i]))
			if !ok {
				break // garbage left of a trusted hop: the last trusted hop is the client
			}
			client = hop.Unmap()
			if !trusted.trusts(client) {
				break
			}
		}
		h.Del(fiber.HeaderXForwardedFor)
		h.Set(fiber.HeaderXForwardedFor, client.String())
		return c.Next()
	}
}

// forwardedUntrusted is the Locals key set when a peer that is not a trusted proxy sent
// forwarding headers (they were dropped): something forwarded the request without being
// trusted to say for whom, so the peer's own address says little about the client.
type forwardedUntrusted struct{}

// parseHop reads one X-Forwarded-For entry: an address, or an address and port as some
// proxies write it (203.0.113.5:4711, [2001:db8::1]:4711).
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	return netip.Addr{}, false
}
