package models

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// RandomToken returns n random bytes, URL-safe base64 encoded.
func RandomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("models: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Truncate returns s cut to at most n characters, for text stored in a varchar(n) column
// (failure reasons, descriptions, detection's counted actions): PostgreSQL bounds varchar by
// characters, so a value it accepted whole is never cut, and a cut never splits a UTF-8
// sequence.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s // n bytes are at most n characters
	}
	chars := 0
	for i := range s {
		if chars == n {
			return s[:i]
		}
		chars++
	}
	return s
}

// RandomPassword returns n characters drawn uniformly from letters and digits with
// crypto/rand. It fails only when crypto/rand does.
func RandomPassword(n int) (string, error) {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789" // no 0/O, 1/l/I
	const limit = 256 - 256%len(alphabet)                                        // reject above it: no modulo bias
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("models: random password: %w", err)
		}
		for _, c := range buf {
			if int(c) < limit && len(out) < n {
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}
