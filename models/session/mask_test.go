package session

import (
	"bytes"
	"testing"
)

func TestMaskTokenRoundTrip(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	a, b := MaskToken(secret), MaskToken(secret)
	if a == b {
		t.Fatalf("two masks of one secret are equal: %q", a)
	}
	for _, tok := range []string{a, b} {
		got, ok := UnmaskToken(tok)
		if !ok || !bytes.Equal(got, secret) {
			t.Fatalf("UnmaskToken(%q) = %q, %v; want the secret", tok, got, ok)
		}
	}
	s := &Session{CSRFSecret: secret}
	if !s.CSRFValid(a) || s.CSRFValid(MaskToken([]byte("another secret of 32 bytes......"))) {
		t.Fatal("CSRFValid accepts another secret or refuses its own")
	}
	if (&Session{}).CSRFValid(MaskToken(nil)) {
		t.Fatal("a session without a secret accepts a token")
	}
	// Not a masked token at all: empty, not base64url, an odd number of bytes, too long.
	for _, bad := range []string{"", "a", "!!!!", a[:len(a)-1], a + "=", string(make([]byte, 600))} {
		if _, ok := UnmaskToken(bad); ok {
			t.Fatalf("UnmaskToken(%q) accepted", bad)
		}
	}
	// Well formed but not this secret: shorter, longer, changed.
	for _, bad := range []string{"abc", a[:len(a)-2], a + b, b[:10] + a[10:]} {
		if s.CSRFValid(bad) {
			t.Fatalf("CSRFValid(%q) accepted", bad)
		}
	}
}
