package cli

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestTrustedProxiesConfig(t *testing.T) {
	cfg, err := loadConfig(env(map[string]string{"AUDITDB_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1,::1,192.168.1.7/16"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("192.168.0.0/16")}
	if !slices.Equal(cfg.TrustedProxies, want) {
		t.Fatalf("trusted proxies %v, want %v", cfg.TrustedProxies, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.internal", "10.0.0.1,nope"} {
		_, err := loadConfig(env(map[string]string{"AUDITDB_TRUSTED_PROXIES": bad}))
		if err == nil || !strings.Contains(err.Error(), "AUDITDB_TRUSTED_PROXIES") {
			t.Errorf("%q: error %v, want one naming AUDITDB_TRUSTED_PROXIES", bad, err)
		}
	}
	cfg, err = loadConfig(env(map[string]string{"AUDITDB_TRUST_PROXY": "true"}))
	if err != nil || !slices.Contains(cfg.TrustedProxies, netip.MustParsePrefix("127.0.0.0/8")) {
		t.Fatalf("deprecated AUDITDB_TRUST_PROXY=true: %v %v, want loopback trusted", cfg.TrustedProxies, err)
	}
}
