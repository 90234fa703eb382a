package session

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
)

// maxMaskedToken bounds the length of a masked token accepted for unmasking, so a huge
// header or field costs no decoding work.
const maxMaskedToken = 512

// MaskToken returns secret masked for one response: a fresh random pad the length of
// secret, followed by pad XOR secret, base64url without padding. Every call returns a
// different string for the same secret, so a compressed page that also reflects what an
// attacker sent gives away nothing about the secret through its length (BREACH).
func MaskToken(secret []byte) string {
	buf := make([]byte, 2*len(secret))
	pad := buf[:len(secret)]
	if _, err := rand.Read(pad); err != nil {
		panic("session: no randomness for a token mask: " + err.Error())
	}
	subtle.XORBytes(buf[len(secret):], pad, secret)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// UnmaskToken returns the secret of a token MaskToken made; ok is false for anything that
// is not one (empty, too long, not base64url, an odd number of bytes).
func UnmaskToken(tok string) (secret []byte, ok bool) {
	if tok == "" || len(tok) > maxMaskedToken {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) == 0 || len(raw)%2 != 0 {
		return nil, false
	}
	n := len(raw) / 2
	secret = make([]byte, n)
	subtle.XORBytes(secret, raw[:n], raw[n:])
	return secret, true
}

// CSRFToken returns a token forms of this session must carry, masked afresh on every call
// (see MaskToken); any of them is valid for the session.
func (s *Session) CSRFToken() string { return MaskToken(s.CSRFSecret) }

// CSRFValid reports whether tok is a masked CSRF token of this session, comparing the
// secrets in constant time.
func (s *Session) CSRFValid(tok string) bool {
	secret, ok := UnmaskToken(tok)
	return ok && len(s.CSRFSecret) > 0 && subtle.ConstantTimeCompare(secret, s.CSRFSecret) == 1
}
