package erasure

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"auditdb/models"
)

// KeyEnv is the environment variable that holds the pseudonym key.
const KeyEnv = "AUDITDB_PSEUDONYM_KEY"

// keyFile is the key's file in the data directory when KeyEnv is unset.
const keyFile = "pseudonym.key"

// ParsePseudonymKey decodes a key given as hex or standard/URL-safe base64 (padded or
// not) of exactly 32 bytes. The error names KeyEnv and never repeats the value.
func ParsePseudonymKey(v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	if b, err := hex.DecodeString(v); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, models.Invalid(KeyEnv, "must be exactly 32 bytes, hex (64 characters) or base64 encoded")
}

// LoadPseudonymKey reads AUDITDB_PSEUDONYM_KEY (base64 or hex of exactly 32 bytes) or, when
// it is unset, reads <dataDir>/pseudonym.key, creating it (mode 0600, 32 random bytes in hex)
// on first use. A malformed variable is a KindInvalid error naming AUDITDB_PSEUDONYM_KEY; a
// malformed file an error naming the file. The key is never written to the database.
func LoadPseudonymKey(getenv func(string) string, dataDir string) ([]byte, error) {
	if v := getenv(KeyEnv); v != "" {
		return ParsePseudonymKey(v)
	}
	if dataDir == "" {
		return nil, models.Invalid(KeyEnv, "is unset and there is no data directory to keep a generated key in")
	}
	path := filepath.Join(dataDir, keyFile)
	raw, err := os.ReadFile(path)
	if err == nil {
		b, derr := hex.DecodeString(strings.TrimSpace(string(raw)))
		if derr != nil || len(b) != 32 {
			return nil, fmt.Errorf("erasure: %s is not a 32-byte hex key (set %s or restore the file)", path, KeyEnv)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("erasure: read %s: %w", path, err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("erasure: create data dir: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("erasure: generate key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process made it first: use theirs
		return LoadPseudonymKey(getenv, dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("erasure: create %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		return nil, fmt.Errorf("erasure: write %s: %w", path, err)
	}
	return key, nil
}

// Pseudonym prefixes say which strategy made a pseudonym (and, for erasure, that none can
// be looked up).
const (
	prefixHash       = "psh_"
	prefixToken      = "pst_"
	prefixEncryption = "pse_"
	prefixErased     = "ers_"
)

// crypto holds the key's derived uses: one key for HMACs, AES-256-GCM for encryption.
type crypto struct {
	key  []byte
	aead cipher.AEAD
}

func newCrypto(key []byte) (*crypto, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("erasure: the pseudonym key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("erasure: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("erasure: %w", err)
	}
	return &crypto{key: append([]byte(nil), key...), aead: aead}, nil
}

// mac is HMAC-SHA256(key, org ‖ 0 ‖ purpose ‖ 0 ‖ v); the separators keep any two inputs apart.
func (c *crypto) mac(purpose, org, v string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(org))
	m.Write([]byte{0})
	m.Write([]byte(v))
	return m.Sum(nil)
}

// seal encrypts plain for org (the organization is the additional data: another
// organization's ciphertext does not open).
func (c *crypto) seal(org, plain string) []byte {
	nonce := make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return c.aead.Seal(nonce, nonce, []byte(plain), []byte("auditdb-pseudonym\x00"+org))
}

// open decrypts what seal made for org.
func (c *crypto) open(org string, ct []byte) (string, error) {
	n := c.aead.NonceSize()
	if len(ct) < n+c.aead.Overhead() {
		return "", errors.New("erasure: ciphertext too short")
	}
	plain, err := c.aead.Open(nil, ct[:n], ct[n:], []byte("auditdb-pseudonym\x00"+org))
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// pseudonym makes org's pseudonym of identity by strategy st.
func (c *crypto) pseudonym(st Strategy, org, identity string) string {
	switch st {
	case StrategyHash:
		return prefixHash + hex.EncodeToString(c.mac("pseudonym", org, identity)[:16])
	case StrategyEncryption:
		return prefixEncryption + base64.RawURLEncoding.EncodeToString(c.seal(org, identity))
	}
	return prefixToken + randomToken()
}

func randomToken() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
