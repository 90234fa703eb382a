package models

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// HashAlgorithmV2 names the second event hashing scheme, which commits to each personal field
// on its own (one salted digest per field, as SD-JWT's disclosures do), so that any one of them
// can be erased or pseudonymized while the event's hash still verifies. Every new event is
// sealed with it; docs/integrity.md specifies it.
const HashAlgorithmV2 = "sha256-jcs-v2"

// HashAlgorithmV3 names the third scheme: sha256-jcs-v2 with the free text committed too.
// Besides the principal and the target resource id it commits the outcome description and
// EVERY top-level details key on its own, so that free text naming a data subject can be
// redacted alone while the event still verifies; its hash document holds neither details
// nor outcomeDescription. Every new event is sealed with it; docs/integrity.md §10
// specifies it.
const HashAlgorithmV3 = "sha256-jcs-v3"

// KnownHashAlgorithm reports whether this version can verify events of scheme alg.
func KnownHashAlgorithm(alg string) bool {
	return alg == HashAlgorithmV1 || alg == HashAlgorithmV2 || alg == HashAlgorithmV3
}

// PerFieldScheme reports whether events of scheme alg commit to fields one by one
// (field_commitments, fieldDigests): sha256-jcs-v2 and sha256-jcs-v3.
func PerFieldScheme(alg string) bool { return alg == HashAlgorithmV2 || alg == HashAlgorithmV3 }

// CommitsFreeText reports whether events of scheme alg commit their outcome description and
// every details key on their own (sha256-jcs-v3), so that free text can be redacted.
func CommitsFreeText(alg string) bool { return alg == HashAlgorithmV3 }

// The names of the fields a per-field event commits to: the principal, the target resource
// id and, for every details key committed, DetailsFieldPrefix + the key (sha256-jcs-v2: the
// personal keys; sha256-jcs-v3: every key), and under sha256-jcs-v3 the outcome description.
const (
	FieldPrincipalID        = "principalId"
	FieldTargetResourceID   = "targetResourceId"
	FieldOutcomeDescription = "outcomeDescription"
	DetailsFieldPrefix      = "details."
)

// The states CheckFieldCommitments reports for a committed field. FieldErased and
// FieldPseudonymized are also the values of a commitment's "state" member.
const (
	FieldDisclosedOK   = "disclosed-ok"  // the value is present and matches its digest
	FieldMismatch      = "mismatch"      // the value (or its absence) contradicts the commitment: tampering
	FieldErased        = "erased"        // value and salt removed by an erasure; the digest stays
	FieldPseudonymized = "pseudonymized" // value replaced by a pseudonym, salt removed; the digest stays
)

// FieldCommitment is one member of an event's field_commitments: the digest of the field's
// original value, and either the salt (the value is disclosed and checkable) or the state the
// field was put in (FieldErased or FieldPseudonymized).
//
// A redacted commitment (with a state) also carries MAC, the server's word that its own
// erasure engine made this redaction: hex(HMAC-SHA256(signing key, JCS([event hash, name,
// state, value]))), value being the field's JSON value after the redaction (the pseudonym) or
// null (erased). Without the key it cannot be checked, only its presence.
type FieldCommitment struct {
	Digest string `json:"digest"`
	Salt   string `json:"salt,omitempty"`
	State  string `json:"state,omitempty"`
	MAC    string `json:"mac,omitempty"`
}

// FieldCheck is the state of one personal field of a sha256-jcs-v2 event.
type FieldCheck struct {
	Name   string `json:"name"`             // FieldPrincipalID, FieldTargetResourceID or "details.<key>"
	State  string `json:"state"`            // FieldDisclosedOK, FieldMismatch, FieldErased or FieldPseudonymized
	Reason string `json:"reason,omitempty"` // why, for FieldMismatch
	// Note qualifies an erased or pseudonymized field checked without the server key
	// (NoteVouched): its redaction MAC is present but could not be checked.
	Note string `json:"note,omitempty"`
}

// NoteVouched is the Note of a redacted field checked offline, without the server key.
const NoteVouched = "redacted, vouched by the server (not checkable offline)"

const (
	eventSaltMember = "salt"                                                  // the one member of a compact sha256-jcs-v3 field_commitments
	saltSize        = 16                                                      // random bytes per field
	saltText        = 22                                                      // their base64url length, unpadded
	maxInlineFields = 8                                                       // principal, target and the default personal keys fit on the stack
	commitmentBytes = len(`"":{"digest":"","salt":""},`) + 64 + saltText + 24 // one member of field_commitments, name up to 24
)

// sealPerField seals ev with alg, HashAlgorithmV2 or HashAlgorithmV3. Per committed field it
// takes a salt and computes the field's digest; the content hash then covers the object of
// the digests by field name instead of the fields. The schemes differ in what is committed
// (splitFor, and the outcome description under v3) and in what is stored:
//   - sha256-jcs-v2 draws a random salt per field (one crypto/rand read for all of them) and
//     records digest and salt of each in field_commitments;
//   - sha256-jcs-v3 draws one random event salt, derives each field's salt from it
//     (saltDeriver) and stores only the event salt, {"salt": "<base64url>"}: the compact form,
//     whose digests are recomputed from the values (docs/integrity.md §10). The erasure
//     engine expands it (ExpandFieldCommitments) before its first redaction.
func (s *Sealer) sealPerField(ev *Event, alg string) error {
	rest, personal, err := s.splitFor(alg, ev.Details)
	if err != nil {
		return err
	}
	outcome := CommitsFreeText(alg) && ev.OutcomeDescription != nil
	n := countMembers(personal)
	if outcome {
		n++
	}
	if ev.PrincipalID != nil {
		n++
	}
	if ev.TargetResourceID != nil {
		n++
	}
	compact := CommitsFreeText(alg)
	var saltArr [maxInlineFields * saltSize]byte
	raw := saltArr[:]
	switch {
	case compact:
		raw = raw[:saltSize] // the event salt
	case n > maxInlineFields:
		raw = make([]byte, n*saltSize)
	default:
		raw = raw[:n*saltSize]
	}
	if len(raw) > 0 {
		if _, err := rand.Read(raw); err != nil {
			return fmt.Errorf("models: salt: %w", err)
		}
	}
	ev.Timestamp = ev.Timestamp.Truncate(time.Microsecond)
	ev.HashAlgorithm = alg
	ev.SubjectSalt, ev.SubjectDigest = nil, ""

	var c committer
	if compact {
		c.derive.init(raw)
		c.compact = true
		c.fc = make([]byte, 0, len(`{"`+eventSaltMember+`":""}`)+saltText)
		c.fc = append(c.fc, `{"`+eventSaltMember+`":"`...)
		c.fc = base64.RawURLEncoding.AppendEncode(c.fc, raw)
		c.fc = append(c.fc, '"')
		raw = raw[:0]
	} else {
		c.fc = make([]byte, 0, 2+n*commitmentBytes)
		c.fc = append(c.fc, '{')
	}
	c.fd = append(c.fdArr[:0], '{')
	c.scratch = c.scratchArr[:0]
	// Members in JCS order of their names (details.*, outcomeDescription, principalId,
	// targetResourceId): the details keys come out of splitFor in JCS order already, and
	// share their prefix.
	for i := 1; i < len(personal)-1; {
		end := memberEnd(personal, i)
		m := personal[i:end]
		keyEnd := stringEnd(m, 0)
		name := append(append(c.nameArr[:0], `"`+DetailsFieldPrefix...), m[1:keyEnd]...)
		salt := c.salt(&raw, name)
		c.commit(salt[:], name, m[keyEnd+1:])
		i = end + 1
	}
	if outcome {
		c.valueBuf = appendJCSString(c.valueArr[:0], *ev.OutcomeDescription)
		salt := c.salt(&raw, []byte(`"`+FieldOutcomeDescription+`"`))
		c.commit(salt[:], []byte(`"`+FieldOutcomeDescription+`"`), c.valueBuf)
	}
	if ev.PrincipalID != nil {
		c.valueBuf = appendJCSString(c.valueArr[:0], *ev.PrincipalID)
		salt := c.salt(&raw, []byte(`"`+FieldPrincipalID+`"`))
		c.commit(salt[:], []byte(`"`+FieldPrincipalID+`"`), c.valueBuf)
	}
	if ev.TargetResourceID != nil {
		c.valueBuf = appendJCSString(c.valueArr[:0], *ev.TargetResourceID)
		salt := c.salt(&raw, []byte(`"`+FieldTargetResourceID+`"`))
		c.commit(salt[:], []byte(`"`+FieldTargetResourceID+`"`), c.valueBuf)
	}
	ev.FieldCommitments = append(c.fc, '}')
	ev.Hash = hashDocument(ev, rest, append(c.fd, '}'))
	ev.Signature = s.Sign(ev.Hash)
	return nil
}

// committer builds one event's field_commitments and digests, with its scratch space inline so
// that sealing an ordinary event allocates only the field_commitments it keeps.
type committer struct {
	fc []byte
	// fd is the fieldDigests object of the content hash, {name: digest}, written in the
	// order the fields are committed: byte order of their names, which is JCS order (every
	// valid name is ASCII).
	fd         []byte
	fdArr      [2 + maxInlineFields*(len(`"details.userAgent":"",`)+64)]byte
	scratch    []byte
	scratchArr [256]byte
	nameArr    [64]byte
	valueArr   [256]byte
	valueBuf   []byte
	// compact (sha256-jcs-v3): each field's salt is derived from the event salt by derive
	// and field_commitments holds only the event salt. Under sha256-jcs-v2 compact is false
	// and the random salts are stored field by field.
	derive  saltDeriver
	compact bool
}

// salt returns the salt of the field named quotedName (a JSON string): derived from the
// event salt in the compact form, else the next 16 random bytes of *raw.
func (c *committer) salt(raw *[]byte, quotedName []byte) (s [saltSize]byte) {
	if !c.compact {
		copy(s[:], *raw)
		*raw = (*raw)[saltSize:]
		return s
	}
	name := quotedName[1 : len(quotedName)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		name = []byte(unquote(bytes.Clone(quotedName))) // a clone: quotedName stays on the stack
	}
	return c.derive.salt(name)
}

// saltDeriver derives the field salts of a compact sha256-jcs-v3 event from its event salt:
// salt_f = the first 16 bytes of HMAC-SHA256(key = event salt, msg = UTF-8 of the field name)
// (RFC 2104; the key, 16 bytes, is shorter than SHA-256's block, so it is padded with zeros).
// Written out rather than with crypto/hmac so that sealing allocates nothing per field; the
// tests check it against crypto/hmac.
type saltDeriver struct{ key [saltSize]byte }

// newSaltDeriver returns the deriver of eventSalt (16 bytes).
func newSaltDeriver(eventSalt []byte) *saltDeriver {
	d := &saltDeriver{}
	d.init(eventSalt)
	return d
}

// init keys d with eventSalt (16 bytes).
func (d *saltDeriver) init(eventSalt []byte) { copy(d.key[:], eventSalt) }

// salt returns the salt of the field name (its UTF-8 text, unquoted).
func (d *saltDeriver) salt(name []byte) [saltSize]byte {
	var arr [sha256.BlockSize + 64]byte // room for a field name of up to 64 bytes
	buf := arr[:sha256.BlockSize]
	for i := range buf {
		buf[i] = 0x36 // ipad
		if i < saltSize {
			buf[i] ^= d.key[i]
		}
	}
	inner := sha256.Sum256(append(buf, name...))
	buf = arr[:sha256.BlockSize]
	for i := range buf {
		buf[i] = 0x5c // opad
		if i < saltSize {
			buf[i] ^= d.key[i]
		}
	}
	outer := sha256.Sum256(append(buf, inner[:]...))
	return [saltSize]byte(outer[:saltSize])
}

// commit appends one field's commitment: salt is its 16 random bytes, quotedName its name as a
// JSON string, value its canonical JSON value.
func (c *committer) commit(salt, quotedName, value []byte) {
	var quoted [saltText + 2]byte // the salt's base64url text as a JSON string: no character needs escaping
	quoted[0], quoted[saltText+1] = '"', '"'
	base64.RawURLEncoding.Encode(quoted[1:saltText+1], salt)
	saltB64 := quoted[1 : saltText+1]
	var d [64]byte
	c.scratch = appendDigestInput(c.scratch[:0], quoted[:], quotedName, value)
	sum := sha256.Sum256(c.scratch)
	hex.Encode(d[:], sum[:])
	if len(c.fd) > 1 {
		c.fd = append(c.fd, ',')
	}
	c.fd = append(c.fd, quotedName...)
	c.fd = append(c.fd, ':', '"')
	c.fd = append(c.fd, d[:]...)
	c.fd = append(c.fd, '"')
	if c.compact {
		return // the compact form stores no digest
	}
	if len(c.fc) > 1 {
		c.fc = append(c.fc, ',')
	}
	c.fc = append(c.fc, quotedName...)
	c.fc = append(c.fc, `:{"digest":"`...)
	c.fc = append(c.fc, d[:]...)
	c.fc = append(c.fc, `","salt":"`...)
	c.fc = append(c.fc, saltB64[:]...)
	c.fc = append(c.fc, `"}`...)
}

// appendDigestInput appends JCS([salt, name, value]) given the canonical JSON of each.
func appendDigestInput(b, quotedSalt, quotedName, value []byte) []byte {
	b = append(b, '[')
	b = append(b, quotedSalt...)
	b = append(b, ',')
	b = append(b, quotedName...)
	b = append(b, ',')
	b = append(b, value...)
	return append(b, ']')
}

// FieldDigest returns the digest a per-field (sha256-jcs-v2 or -v3) commitment holds for the field name with the
// JSON value under salt (its base64url text): hex(SHA-256(JCS([salt, name, value]))). It
// returns a KindInvalid error naming value when value is not JSON that RFC 8785 canonicalizes.
func FieldDigest(salt, name string, value json.RawMessage) (string, error) {
	canon := jsontext.Value(bytes.Clone(value))
	if err := canon.Canonicalize(); err != nil || !exactNumbers(value) {
		return "", Invalid("value", "must be JSON that RFC 8785 can canonicalize")
	}
	sum := sha256.Sum256(appendDigestInput(nil, appendJCSString(nil, salt), appendJCSString(nil, name), canon))
	return hexString(sum[:]), nil
}

// countMembers returns the number of members of a canonical JSON object (0 for nil).
func countMembers(obj []byte) int {
	n := 0
	for i := 1; i < len(obj)-1; i = memberEnd(obj, i) + 1 {
		n++
	}
	return n
}

// storedContentHashV2 recomputes a stored per-field event's content hash from its field
// commitments' digests. It returns a KindInvalid error naming field_commitments when they
// cannot be read.
func storedContentHashV2(ev *Event, rest, personal []byte) (string, error) {
	fc, _, err := commitmentsOf(ev, personal)
	if err != nil {
		return "", err
	}
	return hashFromCommitments(ev, rest, fc), nil
}

// hashFromCommitments is the per-field content hash of ev over the digests of fc, by name,
// the names in JCS order (jcsLess: a sha256-jcs-v3 details key may be any string).
func hashFromCommitments(ev *Event, rest []byte, fc map[string]FieldCommitment) string {
	names := make([]string, 0, len(fc))
	for name := range fc {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return jcsLess(names[i], names[j]) })
	fd := make([]byte, 0, 2+len(fc)*(len(`"details.userAgent":"",`)+64))
	fd = append(fd, '{')
	for i, name := range names {
		if i > 0 {
			fd = append(fd, ',')
		}
		fd = appendJCSString(fd, name)
		fd = append(fd, ':')
		fd = appendJCSString(fd, fc[name].Digest)
	}
	return hashDocument(ev, rest, append(fd, '}'))
}

// jcsLess orders member names as RFC 8785 does: by their UTF-16 code units. That is byte
// order except where a character beyond U+FFFF (a surrogate pair, 0xD800…) meets one from
// U+E000 to U+FFFF.
func jcsLess(a, b string) bool {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ka, kb := utf16Lead(ra), utf16Lead(rb)
			if ka != kb {
				return ka < kb
			}
			return ra < rb
		}
		a, b = a[na:], b[nb:]
	}
	return a == "" && b != ""
}

// utf16Lead is the first UTF-16 code unit of r.
func utf16Lead(r rune) rune {
	if r < 0x10000 {
		return r
	}
	return 0xD800 + (r-0x10000)>>10
}

// splitFor splits details as scheme alg commits them: rest is hashed in clear, committed
// holds the keys committed one by one (sha256-jcs-v2: the personal keys, see splitDetails;
// sha256-jcs-v3: every key, rest nil). Errors as splitDetails.
func (s *Sealer) splitFor(alg string, details json.RawMessage) (rest, committed []byte, err error) {
	if !CommitsFreeText(alg) {
		return s.splitDetails(details)
	}
	canon, err := canonicalDetails(details)
	return nil, canon, err
}

// verifyV2 recomputes a per-field event's content hash and checks its fields, reading
// details and field commitments once; s checks the redaction MACs. Errors as
// CheckFieldCommitments.
func (s *Sealer) verifyV2(ev *Event) (string, []FieldCheck, error) {
	rest, personal, err := keyless.splitFor(ev.HashAlgorithm, ev.Details)
	if err != nil {
		return "", nil, err
	}
	fc, empty, err := commitmentsOf(ev, personal)
	if err != nil {
		return "", nil, err
	}
	return hashFromCommitments(ev, rest, fc), s.checkFields(ev, personal, fc, empty), nil
}

// rawCommitment is one commitment as stored, with its optional members told apart from
// empty ones.
type rawCommitment struct {
	Digest string  `json:"digest"`
	Salt   *string `json:"salt"`
	State  *string `json:"state"`
	MAC    *string `json:"mac"`
}

// ParseFieldCommitments reads the explicit field_commitments of an event of per-field scheme
// alg (one member per committed field). It returns a KindInvalid error naming
// field_commitments when they are absent, in the compact form of a never-redacted
// sha256-jcs-v3 event (whose digests only the event's values give: see
// EventFieldCommitments), not an object of commitments (with unknown members or duplicate
// names), name a field the scheme does not commit (sha256-jcs-v2: principalId,
// targetResourceId or details.<one of DefaultPersonalKeys>; sha256-jcs-v3: also
// outcomeDescription and details.<any key>), or hold a digest that is not 64 lower-case hex
// digits.
func ParseFieldCommitments(raw json.RawMessage, alg string) (map[string]FieldCommitment, error) {
	fc, _, eventSalt, err := parseCommitments(raw, alg)
	if err == nil && eventSalt != nil {
		return nil, Invalid("field_commitments", "compact form (an event salt): its digests are derived from the event's values")
	}
	return fc, err
}

// EventFieldCommitments returns the commitments of every committed field of ev, a per-field
// event, in either stored form: the explicit one as stored; the compact one (a never-redacted
// sha256-jcs-v3 event) with each present field's salt derived from the event salt and its
// digest computed from its value. It returns nil for an event of another scheme, and
// KindInvalid errors naming details or field_commitments when they cannot be read.
func EventFieldCommitments(ev *Event) (map[string]FieldCommitment, error) {
	if !PerFieldScheme(ev.HashAlgorithm) {
		return nil, nil
	}
	_, fc, _, err := eventCommitments(ev)
	return fc, err
}

// ExpandFieldCommitments returns ev's field_commitments in the explicit form (digest and salt
// of every field), which a redaction needs: the compact form of a never-redacted
// sha256-jcs-v3 event is expanded from the event's current values, so call it before
// changing any of them; the explicit form is returned as stored. The result holds no event
// salt: a redacted field's salt must not stay derivable. Errors as EventFieldCommitments.
func ExpandFieldCommitments(ev *Event) (json.RawMessage, error) {
	if !CompactFieldCommitments(ev.FieldCommitments) {
		return ev.FieldCommitments, nil
	}
	fc, err := EventFieldCommitments(ev)
	if err != nil {
		return nil, err
	}
	out, err := jsonv2.Marshal(fc, jsonv2.Deterministic(true))
	if err != nil {
		return nil, fmt.Errorf("models: field commitments: %w", err)
	}
	return out, nil
}

// CompactFieldCommitments reports whether raw is field_commitments in the compact form of a
// never-redacted sha256-jcs-v3 event: exactly {"salt": "<base64url of 16 bytes>"}.
func CompactFieldCommitments(raw json.RawMessage) bool {
	_, _, eventSalt, err := parseCommitments(raw, HashAlgorithmV3)
	return err == nil && eventSalt != nil
}

// FieldSalt returns the salt (base64url text) of field name in a compact sha256-jcs-v3 event
// whose event salt is eventSalt (base64url text): the first 16 bytes of
// HMAC-SHA256(event salt, UTF-8 of name). It returns a KindInvalid error naming salt when
// eventSalt is not the base64url text of 16 bytes.
func FieldSalt(eventSalt, name string) (string, error) {
	key, err := base64.RawURLEncoding.DecodeString(eventSalt)
	if err != nil || len(key) != saltSize || len(eventSalt) != saltText {
		return "", Invalid("salt", "must be the base64url text of 16 bytes")
	}
	salt := newSaltDeriver(key).salt([]byte(name))
	return base64.RawURLEncoding.EncodeToString(salt[:]), nil
}

// eventCommitments reads ev's committed details (personal) and field commitments
// (commitmentsOf) from the event alone.
func eventCommitments(ev *Event) ([]byte, map[string]FieldCommitment, map[string]string, error) {
	_, personal, err := keyless.splitFor(ev.HashAlgorithm, ev.Details)
	if err != nil {
		return nil, nil, nil, err
	}
	fc, empty, err := commitmentsOf(ev, personal)
	return personal, fc, empty, err
}

// commitmentsOf reads ev's field commitments in either form (personal: its canonical
// committed details object): the explicit form as parseCommitments does; the compact form
// derived from the event salt and the values present (deriveCommitments).
func commitmentsOf(ev *Event, personal []byte) (map[string]FieldCommitment, map[string]string, error) {
	fc, empty, eventSalt, err := parseCommitments(ev.FieldCommitments, ev.HashAlgorithm)
	if err != nil || eventSalt == nil {
		return fc, empty, err
	}
	return deriveCommitments(ev, personal, eventSalt), nil, nil
}

// deriveCommitments returns the commitments of a compact sha256-jcs-v3 event: one per field
// present (every details key, the outcome description, the principal, the target id), its
// salt derived from eventSalt (16 bytes) and its digest computed from the value. A value
// added or removed since sealing changes the set, and so the content hash.
func deriveCommitments(ev *Event, personal, eventSalt []byte) map[string]FieldCommitment {
	d := newSaltDeriver(eventSalt)
	fc := map[string]FieldCommitment{}
	var buf []byte
	add := func(name string, value []byte) {
		raw := d.salt([]byte(name))
		salt := base64.RawURLEncoding.EncodeToString(raw[:])
		buf = appendDigestInput(buf[:0], appendJCSString(nil, salt), appendJCSString(nil, name), value)
		sum := sha256.Sum256(buf)
		fc[name] = FieldCommitment{Digest: hexString(sum[:]), Salt: salt}
	}
	for i := 1; i < len(personal)-1; {
		end := memberEnd(personal, i)
		m := personal[i:end]
		keyEnd := stringEnd(m, 0)
		add(DetailsFieldPrefix+unquote(m[:keyEnd]), m[keyEnd+1:])
		i = end + 1
	}
	if ev.OutcomeDescription != nil {
		add(FieldOutcomeDescription, appendJCSString(nil, *ev.OutcomeDescription))
	}
	if ev.PrincipalID != nil {
		add(FieldPrincipalID, appendJCSString(nil, *ev.PrincipalID))
	}
	if ev.TargetResourceID != nil {
		add(FieldTargetResourceID, appendJCSString(nil, *ev.TargetResourceID))
	}
	return fc
}

// parseCommitments reads field_commitments strictly. The compact form (sha256-jcs-v3 only)
// is an object whose one member is "salt", a base64url string of 16 bytes: its event salt is
// returned and fc is nil. Any other object is the explicit form, returned as
// ParseFieldCommitments describes, with the fields whose commitment holds an empty salt,
// state or mac (which the result cannot tell from an absent one) named in empty: the reason
// each is a mismatch. An event salt beside any other member (a compact form carrying a
// digest, an expanded one keeping its event salt) is refused as malformed.
func parseCommitments(raw json.RawMessage, alg string) (fc map[string]FieldCommitment, empty map[string]string, eventSalt []byte, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, nil, Invalid("field_commitments", "missing: a "+alg+" event commits to its fields there")
	}
	var members map[string]jsontext.Value
	if err := jsonv2.Unmarshal(raw, &members); err != nil || members == nil {
		return nil, nil, nil, Invalid("field_commitments", "must be a JSON object of {digest, salt | state and mac} objects")
	}
	if v, ok := members[eventSaltMember]; ok {
		var text string
		switch {
		case !CommitsFreeText(alg):
			return nil, nil, nil, Invalid("field_commitments", "an event salt (the compact form) is "+HashAlgorithmV3+"'s only, not "+alg+"'s")
		case len(members) != 1:
			return nil, nil, nil, Invalid("field_commitments", `malformed: the compact form holds the event salt alone, the explicit form no event salt`)
		case jsonv2.Unmarshal(v, &text) != nil || !saltOK(text):
			return nil, nil, nil, Invalid("field_commitments", "the event salt is not the base64url text of 16 bytes")
		}
		eventSalt, _ = base64.RawURLEncoding.DecodeString(text)
		return nil, nil, eventSalt, nil
	}
	fc = make(map[string]FieldCommitment, len(members))
	for name, v := range members {
		var c rawCommitment
		if err := jsonv2.Unmarshal(v, &c, jsonv2.RejectUnknownMembers(true)); err != nil {
			return nil, nil, nil, Invalid("field_commitments", "must be a JSON object of {digest, salt | state and mac} objects")
		}
		if !validFieldName(alg, name) {
			return nil, nil, nil, Invalid("field_commitments", fmt.Sprintf("%q is not a field %s commits", name, alg))
		}
		if !lowerHex64(c.Digest) {
			return nil, nil, nil, Invalid("field_commitments", fmt.Sprintf("the digest of %s is not 64 lower-case hex digits", name))
		}
		out := FieldCommitment{Digest: c.Digest}
		for _, m := range []struct {
			member string
			v      *string
			to     *string
		}{{"salt", c.Salt, &out.Salt}, {"state", c.State, &out.State}, {"mac", c.MAC, &out.MAC}} {
			if m.v == nil {
				continue
			}
			if *m.v == "" {
				if empty == nil {
					empty = map[string]string{}
				}
				if m.member == "state" {
					empty[name] = `unknown state ""`
				} else if empty[name] == "" {
					empty[name] = "its commitment has an empty " + m.member
				}
			}
			*m.to = *m.v
		}
		fc[name] = out
	}
	return fc, empty, nil, nil
}

// validFieldName reports whether name can be committed in an event of scheme alg: the
// principal, the target resource id, a personal details key, and under sha256-jcs-v3 the
// outcome description and any details key.
func validFieldName(alg, name string) bool {
	switch name {
	case FieldPrincipalID, FieldTargetResourceID:
		return true
	case FieldOutcomeDescription:
		return CommitsFreeText(alg)
	}
	key, ok := strings.CutPrefix(name, DetailsFieldPrefix)
	return ok && (slices.Contains(DefaultPersonalKeys, key) || CommitsFreeText(alg) && key != "")
}

// redactionState returns the one state the erasure engine puts field name in: a personal
// details key is erased (removed); the principal, the target resource id and free text (the
// outcome description, another details key) are pseudonymized (the identifier replaced).
func redactionState(name string) string {
	if key, ok := strings.CutPrefix(name, DetailsFieldPrefix); ok && slices.Contains(DefaultPersonalKeys, key) {
		return FieldErased
	}
	return FieldPseudonymized
}

func lowerHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// CheckFieldCommitments reports the state of every committed field of a per-field event,
// sorted by name, without the server key: each commitment, and each personal value present
// that no commitment covers (FieldMismatch: a value added after sealing). A redacted field
// (erased or pseudonymized) is reported with Note NoteVouched: its redaction MAC is there
// but only the server can check it (Sealer.CheckFieldCommitments does). It does not check
// the content hash (Verify and RecomputeEvent do). It returns nil for an event of another
// scheme, and a KindInvalid error naming details or field_commitments when they cannot be
// read.
func CheckFieldCommitments(ev *Event) ([]FieldCheck, error) {
	return (*Sealer)(nil).CheckFieldCommitments(ev)
}

// CheckFieldCommitments is the package's CheckFieldCommitments with the server key: a
// redacted field's MAC is checked, and one that does not verify is a FieldMismatch.
func (s *Sealer) CheckFieldCommitments(ev *Event) ([]FieldCheck, error) {
	if !PerFieldScheme(ev.HashAlgorithm) {
		return nil, nil
	}
	personal, fc, empty, err := eventCommitments(ev)
	if err != nil {
		return nil, err
	}
	return s.checkFields(ev, personal, fc, empty), nil
}

// CheckRedactions returns a KindConflict error naming the first redacted field of ev (a
// sha256-jcs-v2 event) whose redaction the server key does not vouch for: a database writer
// marked it erased or pseudonymized, or changed its value since. It returns nil for an event
// without redacted fields or of another scheme, and the errors of CheckFieldCommitments.
func (s *Sealer) CheckRedactions(ev *Event) error {
	if !PerFieldScheme(ev.HashAlgorithm) || !bytes.Contains(ev.FieldCommitments, []byte(`"state"`)) &&
		!bytes.Contains(ev.FieldCommitments, []byte(`"mac"`)) {
		return nil
	}
	personal, fc, empty, err := eventCommitments(ev)
	if err != nil {
		return err
	}
	for _, f := range s.checkFields(ev, personal, fc, empty) {
		if c := fc[f.Name]; f.State == FieldMismatch && (c.State != "" || c.MAC != "" || empty[f.Name] != "") {
			return Conflict("field_commitments", fmt.Sprintf("event %d: the redaction of %s is not the server's: %s", ev.ID, f.Name, f.Reason))
		}
	}
	return nil
}

// checkFields is CheckFieldCommitments given the canonical personal details object and the
// parsed commitments; s (nil offline) checks the redaction MACs.
func (s *Sealer) checkFields(ev *Event, personal []byte, fc map[string]FieldCommitment, empty map[string]string) []FieldCheck {
	disclosed := map[string][]byte{} // field name → canonical JSON value
	for i := 1; i < len(personal)-1; {
		end := memberEnd(personal, i)
		m := personal[i:end]
		keyEnd := stringEnd(m, 0)
		disclosed[DetailsFieldPrefix+unquote(m[:keyEnd])] = m[keyEnd+1:]
		i = end + 1
	}
	if CommitsFreeText(ev.HashAlgorithm) && ev.OutcomeDescription != nil {
		disclosed[FieldOutcomeDescription] = appendJCSString(nil, *ev.OutcomeDescription)
	}
	if ev.PrincipalID != nil {
		disclosed[FieldPrincipalID] = appendJCSString(nil, *ev.PrincipalID)
	}
	if ev.TargetResourceID != nil {
		disclosed[FieldTargetResourceID] = appendJCSString(nil, *ev.TargetResourceID)
	}
	names := make([]string, 0, len(fc)+len(disclosed))
	for name := range fc {
		names = append(names, name)
	}
	for name := range disclosed {
		if _, ok := fc[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Slice(names, func(i, j int) bool { return jcsLess(names[i], names[j]) })
	out := make([]FieldCheck, 0, len(names))
	for _, name := range names {
		c, committed := fc[name]
		value, present := disclosed[name]
		check := FieldCheck{Name: name, State: FieldMismatch}
		switch {
		case !committed:
			check.Reason = "it holds a value no commitment covers"
		case empty[name] != "":
			check.Reason = empty[name]
		case c.State == "" && c.Salt == "":
			check.Reason = "its commitment has neither a salt nor a state"
		case c.State == "" && c.MAC != "":
			check.Reason = "it is disclosed but its commitment carries a redaction mac"
		case c.State == "" && !present:
			check.Reason = "its value was removed, but it is not marked erased"
		case c.State == "":
			sum := sha256.Sum256(appendDigestInput(nil, appendJCSString(nil, c.Salt), appendJCSString(nil, name), value))
			switch {
			case !saltOK(c.Salt):
				check.Reason = "its salt is not the base64url text of 16 bytes"
			case hexString(sum[:]) != c.Digest:
				check.Reason = "its value does not match its digest"
			default:
				check.State = FieldDisclosedOK
			}
		case c.State != FieldErased && c.State != FieldPseudonymized:
			check.Reason = fmt.Sprintf("unknown state %q", c.State)
		case c.Salt != "":
			check.Reason = fmt.Sprintf("it is marked %s but keeps its salt", c.State)
		case c.State != redactionState(name):
			check.Reason = fmt.Sprintf("it is marked %s, which the erasure never does to %s", c.State, name)
		case c.State == FieldErased && present:
			check.Reason = "it is marked erased but holds a value"
		case c.State == FieldPseudonymized && !present:
			check.Reason = "it is marked pseudonymized but holds no value"
		case !lowerHex64(c.MAC):
			check.Reason = "it is marked " + c.State + " without the server's redaction mac"
		case s == nil:
			check.State, check.Note = c.State, NoteVouched
		case !hmac.Equal([]byte(s.redactionMAC(ev.Hash, name, c.State, value)), []byte(c.MAC)):
			check.Reason = "its redaction mac does not verify: the server did not make this " + c.State + " value"
		default:
			check.State = c.State
		}
		out = append(out, check)
	}
	return out
}

// redactionMAC is hex(HMAC-SHA256(key, JCS([eventHash, name, state, value]))), value the
// canonical JSON of the field's value after the redaction, nil (null) when it was removed.
func (s *Sealer) redactionMAC(eventHash, name, state string, value []byte) string {
	b := make([]byte, 0, 128+len(eventHash)+len(value))
	b = append(b, '[')
	b = appendJCSString(b, eventHash)
	b = append(b, ',')
	b = appendJCSString(b, name)
	b = append(b, ',')
	b = appendJCSString(b, state)
	b = append(b, ',')
	if value == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, value...)
	}
	b = append(b, ']')
	m := hmac.New(sha256.New, s.key)
	m.Write(b)
	return hexString(m.Sum(nil))
}

// unquote returns the text of the canonical JSON string quoted (quotes included).
func unquote(quoted []byte) string {
	if !bytes.ContainsRune(quoted, '\\') {
		return string(quoted[1 : len(quoted)-1])
	}
	var out string
	if err := jsonv2.Unmarshal(quoted, &out); err != nil {
		return string(quoted[1 : len(quoted)-1])
	}
	return out
}

// saltOK reports whether salt is the base64url text (no padding) of 16 bytes, the only salts
// sealing writes.
func saltOK(salt string) bool {
	if len(salt) != saltText {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(salt)
	return err == nil
}

// MarkField returns commitments (of an event of per-field scheme alg, whose hash is
// eventHash) with field name put in state: its salt removed, its digest kept, and the
// server's redaction MAC over the event hash, name, state and value added, the other fields
// unchanged. A personal details key can only be FieldErased (value nil: the caller removes
// it); the principal, the target resource id and free text (the outcome description, the
// other details keys of a sha256-jcs-v3 event) only FieldPseudonymized (value: the JSON value
// the caller writes, the pseudonym or the text with the identifier replaced by it). It
// returns a KindInvalid error when commitments cannot be read, the state is another, the
// value does not fit the state or is not JSON that RFC 8785 canonicalizes, or name is not
// committed.
func (s *Sealer) MarkField(commitments json.RawMessage, alg, eventHash, name, state string, value json.RawMessage) (json.RawMessage, error) {
	if state != FieldErased && state != FieldPseudonymized {
		return nil, Invalid("state", fmt.Sprintf("must be %s or %s", FieldErased, FieldPseudonymized))
	}
	if state != redactionState(name) {
		return nil, Invalid("state", fmt.Sprintf("%s can only be %s", name, redactionState(name)))
	}
	if (state == FieldErased) != (value == nil) {
		return nil, Invalid("value", "an erased field has no value; a pseudonymized one has its new value")
	}
	fc, err := ParseFieldCommitments(commitments, alg)
	if err != nil {
		return nil, err
	}
	c, ok := fc[name]
	if !ok {
		return nil, Invalid("field", fmt.Sprintf("%s is not committed in this event", name))
	}
	var v []byte
	if value != nil {
		canon := jsontext.Value(bytes.Clone(value))
		if err := canon.Canonicalize(); err != nil || !exactNumbers(value) {
			return nil, Invalid("value", "must be JSON that RFC 8785 can canonicalize")
		}
		v = canon
	}
	fc[name] = FieldCommitment{Digest: c.Digest, State: state, MAC: s.redactionMAC(eventHash, name, state, v)}
	out, err := jsonv2.Marshal(fc, jsonv2.Deterministic(true))
	if err != nil {
		return nil, fmt.Errorf("models: field commitments: %w", err)
	}
	return out, nil
}

// JSONString returns s as a canonical JSON string, the value MarkField takes for a pseudonym.
func JSONString(s string) json.RawMessage { return appendJCSString(nil, s) }
