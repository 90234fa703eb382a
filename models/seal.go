package models

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	gohash "hash"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"auditdb/models/eventjson"
)

// HashAlgorithm names the first event hashing scheme (one subject digest over all personal
// fields). The scheme is stored with every event so it can evolve while old events still
// verify: events sealed before HashAlgorithmV2 keep this name and verify by it forever.
const HashAlgorithm = "sha256-jcs-v1"

// HashAlgorithmV1 is HashAlgorithm, named beside HashAlgorithmV2.
const HashAlgorithmV1 = HashAlgorithm

// TimestampLayout is the canonical text form of an event time inside the hash: RFC 3339,
// UTC, microseconds (PostgreSQL's precision), so a round trip through the database hashes
// the same.
const TimestampLayout = "2006-01-02T15:04:05.000000Z"

// DefaultPersonalKeys are the details keys treated as personal data unless an organization
// says otherwise.
var DefaultPersonalKeys = []string{"ip", "ipAddress", "email", "name", "userAgent"}

// Sealer computes and checks the tamper evidence of events: the subject digest over the
// personal fields, the content hash over everything else, and the HMAC signature.
type Sealer struct {
	key []byte
	// macs holds HMAC-SHA256 states keyed with key, reset between uses: keying one costs
	// two SHA-256 blocks and three allocations, and every event is signed.
	macs sync.Pool
	// personalKeys are the personal details keys in canonical quoted form, as they appear in
	// canonical JSON, computed once: sealing compares against them for every details member.
	personalKeys [][]byte
}

// NewSealer returns a sealer signing with key (at least 32 bytes).
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("models: signing key must be at least 32 bytes, got %d", len(key))
	}
	s := &Sealer{key: append([]byte(nil), key...)}
	for _, k := range DefaultPersonalKeys {
		s.personalKeys = append(s.personalKeys, appendJCSString(nil, k))
	}
	return s, nil
}

// Seal seals ev with the current scheme, HashAlgorithmV3 (see sealPerField): it fills its
// field commitments, hash, hash algorithm and signature, clears its subject salt and digest,
// and truncates its timestamp to the microseconds PostgreSQL stores. It returns a
// KindInvalid error when details is not a JSON object (or holds a duplicate key, a number out
// of range or invalid UTF-8, none of which RFC 8785 can canonicalize).
func (s *Sealer) Seal(ev *Event) error { return s.sealPerField(ev, HashAlgorithmV3) }

// SealV2 seals ev with the second scheme, HashAlgorithmV2, which commits only the personal
// fields one by one. New events are sealed with Seal; this stays for tests and benchmarks
// that need events as that scheme wrote them. Errors as Seal.
func (s *Sealer) SealV2(ev *Event) error { return s.sealPerField(ev, HashAlgorithmV2) }

// SealV1 seals ev with the first scheme, HashAlgorithm (sha256-jcs-v1): it fills its subject
// salt and digest, hash, hash algorithm and signature. New events are sealed with Seal; this
// stays for tests and benchmarks that need events as the first scheme wrote them. Errors as Seal.
func (s *Sealer) SealV1(ev *Event) error {
	rest, personal, err := s.splitDetails(ev.Details)
	if err != nil {
		return err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return fmt.Errorf("models: salt: %w", err)
	}
	ev.Timestamp = ev.Timestamp.Truncate(time.Microsecond)
	ev.SubjectSalt = salt
	ev.FieldCommitments = nil
	ev.HashAlgorithm = HashAlgorithm
	ev.SubjectDigest = subjectDigest(ev, personal)
	ev.Hash = contentHash(ev, rest)
	ev.Signature = s.Sign(ev.Hash)
	return nil
}

// Sign returns the hex HMAC-SHA256 of hash under the server key.
func (s *Sealer) Sign(hash string) string {
	m, ok := s.macs.Get().(gohash.Hash)
	if !ok {
		m = hmac.New(sha256.New, s.key)
	}
	m.Reset()
	io.WriteString(m, hash)
	var sum [sha256.Size]byte
	out := hexString(m.Sum(sum[:0]))
	s.macs.Put(m)
	return out
}

// hexString is hex.EncodeToString of a SHA-256 sum with one allocation instead of two.
func hexString(sum []byte) string {
	var buf [2 * sha256.Size]byte
	return string(buf[:hex.Encode(buf[:], sum)])
}

// Verification is the outcome of checking one stored event.
type Verification struct {
	ExpectedHash string // the hash stored with the event
	ComputedHash string // the hash recomputed from the stored fields
	// HashOK: the stored fields match the hash. For a sha256-jcs-v2 event that also needs every
	// personal field to agree with its commitment (no FieldMismatch in Fields).
	HashOK      bool
	SignatureOK bool
	// Fields is the state of each committed personal field of a sha256-jcs-v2 event (see
	// CheckFieldCommitments), nil for the first scheme.
	Fields []FieldCheck
}

// Verify recomputes ev's hash and signature from its stored fields (either scheme; the first
// one's path for an unknown hash_algorithm, which then does not match). It returns an error
// only when the stored details, or a v2 event's field commitments, cannot be read at all.
func (s *Sealer) Verify(ev *Event) (Verification, error) {
	var computed string
	var fields []FieldCheck
	var err error
	if PerFieldScheme(ev.HashAlgorithm) {
		computed, fields, err = s.verifyV2(ev)
	} else {
		computed, err = s.ContentHash(ev)
	}
	if err != nil {
		return Verification{}, err
	}
	v := Verification{
		ExpectedHash: ev.Hash,
		ComputedHash: computed,
		HashOK:       hmac.Equal([]byte(computed), []byte(ev.Hash)),
		SignatureOK:  hmac.Equal([]byte(s.Sign(ev.Hash)), []byte(ev.Signature)),
		Fields:       fields,
	}
	if PerFieldScheme(ev.HashAlgorithm) {
		for _, f := range v.Fields {
			if f.State == FieldMismatch {
				v.HashOK = false
			}
		}
	}
	return v, nil
}

// recomputeSubjectDigest recomputes the digest of ev's personal fields under its stored salt.
// Only a test or a GDPR check needs it: the digest is not part of what Verify checks (it is an input
// of the content hash instead), so erasing the salt and personal fields keeps events verifiable.
func (s *Sealer) recomputeSubjectDigest(ev *Event) (string, error) {
	_, personal, err := s.splitDetails(ev.Details)
	if err != nil {
		return "", err
	}
	return subjectDigest(ev, personal), nil
}

// subjectDigest is SHA-256(salt ‖ JCS({"details": personal, "principalId": …})), absent
// members left out. personal is the canonical JSON object of the personal details keys, or nil.
func subjectDigest(ev *Event, personal []byte) string {
	b := make([]byte, 0, 128+len(ev.SubjectSalt)+len(personal))
	b = append(b, ev.SubjectSalt...)
	b = append(b, '{')
	if personal != nil {
		b = append(b, `"details":`...)
		b = append(b, personal...)
	}
	if ev.PrincipalID != nil {
		if personal != nil {
			b = append(b, ',')
		}
		b = append(b, `"principalId":`...)
		b = appendJCSString(b, *ev.PrincipalID)
	}
	b = append(b, '}')
	sum := sha256.Sum256(b)
	return hexString(sum[:])
}

// ContentHash returns the hex SHA-256 of the RFC 8785 canonical JSON of every stored field
// except the personal ones, the id (assigned by the database), processing latency (known
// only after commit) and archived_at, plus the subject digest. It returns a KindInvalid
// error when details cannot be canonicalized.
//
// For a per-field (sha256-jcs-v2 or -v3) event it returns that scheme's hash (see
// hashFromCommitments), which also returns a KindInvalid error naming field_commitments when
// they cannot be read.
func (s *Sealer) ContentHash(ev *Event) (string, error) {
	rest, personal, err := s.splitFor(ev.HashAlgorithm, ev.Details)
	if err != nil {
		return "", err
	}
	if PerFieldScheme(ev.HashAlgorithm) {
		return storedContentHashV2(ev, rest, personal)
	}
	return contentHash(ev, rest), nil
}

// contentHash is the sha256-jcs-v1 content hash: hashDocument without field digests.
func contentHash(ev *Event, rest []byte) string { return hashDocument(ev, rest, nil) }

// hashDocument writes an event's canonical document directly instead of marshalling a map
// and running it through a JCS transform: every member but details and fieldDigests is a
// string, and the member names are ASCII, so JCS order is plain byte order. The list below
// is kept in that order (tests compare the result with the generic encoding/json + JCS path
// for every combination of optional fields, under both schemes). rest is the canonical JSON
// object of the non-personal details, or nil. fieldDigests nil writes sha256-jcs-v1's
// document (subjectDigest and targetResourceId in it); otherwise it is the canonical
// fieldDigests object of sha256-jcs-v2 or -v3, which takes their place (and, under v3, the
// outcome description's: rest is then nil, every details key being committed too).
func hashDocument(ev *Event, rest, fieldDigests []byte) string {
	var buf [1536]byte // most documents fit; a larger one grows onto the heap
	b := buf[:0]
	b = append(b, '{')
	member := func(name string) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	str := func(name, v string) {
		member(name)
		b = appendJCSString(b, v)
	}
	opt := func(name string, v *string) {
		if v != nil {
			str(name, *v)
		}
	}
	v2 := fieldDigests != nil
	str("action", ev.Action)
	opt("correlationId", ev.CorrelationID)
	str("dataClassification", ev.DataClassification)
	if rest != nil {
		member("details")
		b = append(b, rest...)
	}
	str("eventVersion", ev.EventVersion)
	if v2 {
		member("fieldDigests")
		b = append(b, fieldDigests...)
	}
	str("hashAlgorithm", ev.HashAlgorithm)
	str("organizationId", ev.OrganizationID)
	if !CommitsFreeText(ev.HashAlgorithm) {
		opt("outcomeDescription", ev.OutcomeDescription)
	}
	str("retentionPolicy", ev.RetentionPolicy)
	str("status", ev.Status)
	if !v2 {
		str("subjectDigest", ev.SubjectDigest)
		opt("targetResourceId", ev.TargetResourceID)
	}
	opt("targetResourceType", ev.TargetResourceType)
	member("timestamp") // the layout's characters need no escaping
	b = append(b, '"')
	b = ev.Timestamp.UTC().AppendFormat(b, TimestampLayout)
	b = append(b, '"')
	opt("ttl", ev.TTL)
	b = append(b, '}')
	sum := sha256.Sum256(b)
	return hexString(sum[:])
}

// splitDetails canonicalizes a details object (RFC 8785) and splits its members into the
// personal ones and the rest, each again a canonical JSON object (members stay sorted), or
// nil when there is none. A nil or JSON-null details gives (nil, nil). It returns a
// KindInvalid error for anything but a JSON object JCS accepts.
func (s *Sealer) splitDetails(details json.RawMessage) (rest, personal []byte, err error) {
	canon, err := canonicalDetails(details)
	if canon == nil || err != nil {
		return nil, nil, err
	}
	rest = make([]byte, 0, len(canon))
	rest = append(rest, '{')
	for i := 1; i < len(canon)-1; {
		end := memberEnd(canon, i)
		m := canon[i:end]
		key := m[:stringEnd(m, 0)] // the canonical key, quotes included
		if s.isPersonal(key) {
			if personal == nil {
				personal = make([]byte, 0, 128)
				personal = append(personal, '{')
			} else {
				personal = append(personal, ',')
			}
			personal = append(personal, m...)
		} else {
			if len(rest) > 1 {
				rest = append(rest, ',')
			}
			rest = append(rest, m...)
		}
		i = end + 1 // skip the comma (or step onto the closing brace)
	}
	rest = append(rest, '}')
	if personal != nil {
		personal = append(personal, '}')
	}
	return rest, personal, nil
}

// canonicalDetails returns a details object in RFC 8785 canonical form, or nil for a nil or
// JSON-null details. It returns a KindInvalid error for anything but a JSON object JCS
// accepts.
func canonicalDetails(details json.RawMessage) ([]byte, error) {
	if len(details) == 0 || string(details) == "null" {
		return nil, nil
	}
	trimmed := bytes.TrimSpace(details)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, Invalid("details", "must be a JSON object")
	}
	// jsontext (the prototype of encoding/json/v2) implements RFC 8785 several times faster
	// than a generic parse and re-encode; it also refuses duplicate names and invalid UTF-8.
	canon := jsontext.Value(bytes.Clone(trimmed))
	if err := canon.Canonicalize(); err != nil || len(canon) < 2 || canon[0] != '{' || !exactNumbers(trimmed) {
		return nil, Invalid("details", "must be a well-formed JSON object with unique keys")
	}
	return canon, nil
}

// exactNumbers reports whether every number in the (valid) JSON raw is exactly the value
// RFC 8785 writes for it (see eventjson.ExactNumber). Ingest refuses the others, so one in
// stored details means the row was rewritten with digits the hash does not commit to (or
// was sealed before that rule) and cannot be vouched for.
func exactNumbers(raw []byte) bool {
	if !mayBeInexact(raw) {
		return true
	}
	dec := jsontext.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return err == io.EOF
		}
		if tok.Kind() == '0' && !eventjson.ExactNumber(tok.String()) {
			return false
		}
	}
}

// mayBeInexact reports whether a number in the JSON raw could be one a float64 does not hold
// exactly: only one with a fraction, an exponent or more than 15 digits can be. Most details
// have none, and skip the decoder.
func mayBeInexact(raw []byte) bool {
	inString, digits := false, 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
			continue
		case c == '"':
			inString = true
		case (c == 'e' || c == 'E' || c == '.') && digits > 0:
			return true
		}
		if c >= '0' && c <= '9' {
			if digits++; digits > 15 {
				return true
			}
		} else {
			digits = 0
		}
	}
	return false
}

// isPersonal reports whether the canonical, quoted key names a personal field.
func (s *Sealer) isPersonal(quotedKey []byte) bool {
	for _, k := range s.personalKeys {
		if bytes.Equal(k, quotedKey) {
			return true
		}
	}
	return false
}

// memberEnd returns the index just past the object member starting at i in canonical
// (compact, valid) JSON: the next ',' or '}' at nesting depth 0 outside a string.
func memberEnd(canon []byte, i int) int {
	depth, inString := 0, false
	for ; i < len(canon); i++ {
		c := canon[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return i
			}
			depth--
		case c == ',' && depth == 0:
			return i
		}
	}
	return i
}

// stringEnd returns the index just past the JSON string starting with the quote at i.
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// appendJCSString appends v as an RFC 8785 string: the same bytes encoding/json followed by a
// JCS transform produce (invalid UTF-8 becomes U+FFFD; only the quote, the backslash and
// control characters are escaped, the latter with lower-case hex).
func appendJCSString(b []byte, v string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	plain := 0 // the leading run of printable ASCII other than '"' and '\\', copied as is
	for plain < len(v) && v[plain] >= 0x20 && v[plain] < utf8.RuneSelf && v[plain] != '"' && v[plain] != '\\' {
		plain++
	}
	b = append(b, v[:plain]...)
	for i := plain; i < len(v); {
		c := v[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(v[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\uFFFD"...)
			} else {
				b = append(b, v[i:i+size]...)
			}
			i += size
			continue
		}
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			} else {
				b = append(b, c)
			}
		}
		i++
	}
	return append(b, '"')
}

// keyless splits details like every Sealer does; it holds no key and signs nothing.
var keyless = func() *Sealer {
	s := &Sealer{}
	for _, k := range DefaultPersonalKeys {
		s.personalKeys = append(s.personalKeys, appendJCSString(nil, k))
	}
	return s
}()

// RecomputeEvent recomputes from ev's fields alone, with no key, what anyone can check: the
// content hash, and for a sha256-jcs-v1 event the subject digest when the subject salt is kept
// ("" when it is not, and always for sha256-jcs-v2, whose fields CheckFieldCommitments checks).
// It returns a KindInvalid error naming hash_algorithm for a scheme this version does not
// know, one naming details when they cannot be canonicalized, and one naming
// field_commitments when a v2 event's commitments cannot be read.
func RecomputeEvent(ev *Event) (hash, digest string, err error) {
	if !KnownHashAlgorithm(ev.HashAlgorithm) {
		return "", "", Invalid("hash_algorithm", fmt.Sprintf("unknown scheme %q (this version knows %s, %s and %s)",
			ev.HashAlgorithm, HashAlgorithm, HashAlgorithmV2, HashAlgorithmV3))
	}
	rest, personal, err := keyless.splitFor(ev.HashAlgorithm, ev.Details)
	if err != nil {
		return "", "", err
	}
	if PerFieldScheme(ev.HashAlgorithm) {
		hash, err = storedContentHashV2(ev, rest, personal)
		return hash, "", err
	}
	if ev.SubjectSalt != nil {
		digest = subjectDigest(ev, personal)
	}
	return contentHash(ev, rest), digest, nil
}
