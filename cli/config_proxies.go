package cli

import "net/netip"

// deprecatedTrustProxy is what AUDITDB_TRUST_PROXY=true trusts when AUDITDB_TRUSTED_PROXIES
// is not set: loopback and private addresses, where a deployment's own proxy usually is.
var deprecatedTrustProxy = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("fc00::/7"),
}
