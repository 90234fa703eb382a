package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"
)

// loginTokenLifetime is how long a sign-in form's token stays valid (its cookie's age).
const loginTokenLifetime = time.Hour

// LoginTokens mints and checks the sign-in form's CSRF tokens. A token is a random nonce
// and its issue time, signed with HMAC-SHA256 under a server key, so every instance behind
// a load balancer accepts the tokens of the others and nobody without the key can make one:
// a token cookie planted by someone else (from a sibling domain, say) is refused.
type LoginTokens struct {
	key []byte
	now func() time.Time
}

// NewLoginTokens returns tokens signed with key; now is the clock (time.Now when nil).
func NewLoginTokens(key []byte, now func() time.Time) *LoginTokens {
	if now == nil {
		now = time.Now
	}
	return &LoginTokens{key: append([]byte(nil), key...), now: now}
}

// Mint returns a new token.
func (t *LoginTokens) Mint() string {
	var payload [24]byte
	if _, err := rand.Read(payload[:16]); err != nil {
		panic("handlers: no randomness for a sign-in token: " + err.Error())
	}
	binary.BigEndian.PutUint64(payload[16:], uint64(t.now().Unix()))
	p := base64.RawURLEncoding.EncodeToString(payload[:])
	return p + "." + t.mac(p)
}

// Valid reports whether tok was minted with this key less than loginTokenLifetime ago.
func (t *LoginTokens) Valid(tok string) bool {
	p, mac, ok := strings.Cut(tok, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(t.mac(p))) {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil || len(raw) != 24 {
		return false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(raw[16:])), 0)
	age := t.now().Sub(issued)
	return age > -time.Minute && age < loginTokenLifetime
}

func (t *LoginTokens) mac(payload string) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte("auditdb sign-in form token\x00"))
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
