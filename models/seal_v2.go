package models

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// HashAlgorithmV2 names the second event hashing scheme, which commits to each personal field
// on its own (one salted digest per field, as SD-JWT's disclosures do), so that any one of them
// can be erased or pseudonymized while the event's hash still verifies. Every new event is
// sealed with it; docs/integrity.md specifies it.
const HashAlgorithmV2 = "sha256-jcs-v2"

// KnownHashAlgorithm reports whether this version can verify events of scheme alg.
func KnownHashAlgorithm(alg string) bool { return alg == HashAlgorithmV1 || alg == HashAlgorithmV2 }

// The names of the personal fields a sha256-jcs-v2 event commits to: the principal, the target
// resource id and, for every personal details key present, DetailsFieldPrefix + the key.
const (
	FieldPrincipalID      = "principalId"
	FieldTargetResourceID = "targetResourceId"
	DetailsFieldPrefix    = "details."
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
type FieldCommitment struct {
	Digest string `json:"digest"`
	Salt   string `json:"salt,omitempty"`
	State  string `json:"state,omitempty"`
}

// FieldCheck is the state of one personal field of a sha256-jcs-v2 event.
type FieldCheck struct {
	Name   string `json:"name"`             // FieldPrincipalID, FieldTargetResourceID or "details.<key>"
	State  string `json:"state"`            // FieldDisclosedOK, FieldMismatch, FieldErased or FieldPseudonymized
	Reason string `json:"reason,omitempty"` // why, for FieldMismatch
}

const (
	saltSize        = 16                                                      // random bytes per field
	saltText        = 22                                                      // their base64url length, unpadded
	maxInlineFields = 8                                                       // principal, target and the default personal keys fit on the stack
	commitmentBytes = len(`"":{"digest":"","salt":""},`) + 64 + saltText + 24 // one member of field_commitments, name up to 24
)

// sealV2 seals ev with HashAlgorithmV2. Per personal field it draws a salt (all of an event's
// salts come from one crypto/rand read), computes the field's digest, and records both in
// field_commitments; the content hash then covers the sorted digests instead of the fields.
func (s *Sealer) sealV2(ev *Event) error {
	rest, personal, err := s.splitDetails(ev.Details)
	if err != nil {
		return err
	}
	n := countMembers(personal)
	if ev.PrincipalID != nil {
		n++
	}
	if ev.TargetResourceID != nil {
		n++
	}
	var saltArr [maxInlineFields * saltSize]byte
	raw := saltArr[:]
	if n > maxInlineFields {
		raw = make([]byte, n*saltSize)
	}
	raw = raw[:n*saltSize]
	if n > 0 {
		if _, err := rand.Read(raw); err != nil {
			return fmt.Errorf("models: salt: %w", err)
		}
	}
	ev.Timestamp = ev.Timestamp.Truncate(time.Microsecond)
	ev.HashAlgorithm = HashAlgorithmV2
	ev.SubjectSalt, ev.SubjectDigest = nil, ""

	c := committer{fc: make([]byte, 0, 2+n*commitmentBytes)}
	c.fc = append(c.fc, '{')
	c.digests = c.digestArr[:0]
	c.scratch = c.scratchArr[:0]
	// Members in byte order of their names (details.*, principalId, targetResourceId): the
	// personal details come out of splitDetails sorted already.
	for i := 1; i < len(personal)-1; {
		end := memberEnd(personal, i)
		m := personal[i:end]
		keyEnd := stringEnd(m, 0)
		name := append(append(c.nameArr[:0], `"`+DetailsFieldPrefix...), m[1:keyEnd]...)
		c.commit(raw[:saltSize], name, m[keyEnd+1:])
		raw = raw[saltSize:]
		i = end + 1
	}
	if ev.PrincipalID != nil {
		c.valueBuf = appendJCSString(c.valueArr[:0], *ev.PrincipalID)
		c.commit(raw[:saltSize], []byte(`"`+FieldPrincipalID+`"`), c.valueBuf)
		raw = raw[saltSize:]
	}
	if ev.TargetResourceID != nil {
		c.valueBuf = appendJCSString(c.valueArr[:0], *ev.TargetResourceID)
		c.commit(raw[:saltSize], []byte(`"`+FieldTargetResourceID+`"`), c.valueBuf)
	}
	ev.FieldCommitments = append(c.fc, '}')
	sortDigests(c.digests)
	ev.Hash = contentHashV2(ev, rest, c.digests)
	ev.Signature = s.Sign(ev.Hash)
	return nil
}

// committer builds one event's field_commitments and digests, with its scratch space inline so
// that sealing an ordinary event allocates only the field_commitments it keeps.
type committer struct {
	fc         []byte
	digests    [][64]byte
	digestArr  [maxInlineFields][64]byte
	scratch    []byte
	scratchArr [256]byte
	nameArr    [48]byte
	valueArr   [256]byte
	valueBuf   []byte
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
	c.digests = append(c.digests, d)
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

// FieldDigest returns the digest a sha256-jcs-v2 commitment holds for the field name with the
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

// sortDigests sorts digests ascending (byte order); there are a handful, so insertion sort.
func sortDigests(d [][64]byte) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && bytes.Compare(d[j][:], d[j-1][:]) < 0; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}

// contentHashV2 is contentHash for HashAlgorithmV2: the same canonical document, written
// directly in JCS member order, without subjectDigest and targetResourceId, and with
// "fieldDigests", the sorted digests of the personal fields (an empty array when there is none).
// rest is the canonical JSON object of the non-personal details, or nil.
func contentHashV2(ev *Event, rest []byte, digests [][64]byte) string {
	var buf [1536]byte
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
	str("action", ev.Action)
	opt("correlationId", ev.CorrelationID)
	str("dataClassification", ev.DataClassification)
	if rest != nil {
		member("details")
		b = append(b, rest...)
	}
	str("eventVersion", ev.EventVersion)
	member("fieldDigests")
	b = append(b, '[')
	for i := range digests {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, digests[i][:]...)
		b = append(b, '"')
	}
	b = append(b, ']')
	str("hashAlgorithm", ev.HashAlgorithm)
	str("organizationId", ev.OrganizationID)
	opt("outcomeDescription", ev.OutcomeDescription)
	str("retentionPolicy", ev.RetentionPolicy)
	str("status", ev.Status)
	opt("targetResourceType", ev.TargetResourceType)
	member("timestamp")
	b = append(b, '"')
	b = ev.Timestamp.UTC().AppendFormat(b, TimestampLayout)
	b = append(b, '"')
	opt("ttl", ev.TTL)
	b = append(b, '}')
	sum := sha256.Sum256(b)
	return hexString(sum[:])
}

// storedContentHashV2 recomputes a stored v2 event's content hash from its field commitments'
// digests. It returns a KindInvalid error naming field_commitments when they cannot be read.
func storedContentHashV2(ev *Event, rest []byte) (string, error) {
	fc, err := ParseFieldCommitments(ev.FieldCommitments)
	if err != nil {
		return "", err
	}
	digests := make([][64]byte, 0, len(fc))
	for _, c := range fc {
		var d [64]byte
		copy(d[:], c.Digest)
		digests = append(digests, d)
	}
	sortDigests(digests)
	return contentHashV2(ev, rest, digests), nil
}

// ParseFieldCommitments reads a v2 event's field_commitments. It returns a KindInvalid error
// naming field_commitments when they are absent, not an object of commitments (with unknown
// members or duplicate names), name a field that is not personal, or hold a digest that is not
// 64 lower-case hex digits.
func ParseFieldCommitments(raw json.RawMessage) (map[string]FieldCommitment, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, Invalid("field_commitments", "missing: a "+HashAlgorithmV2+" event commits to its personal fields there")
	}
	var fc map[string]FieldCommitment
	if err := jsonv2.Unmarshal(raw, &fc, jsonv2.RejectUnknownMembers(true)); err != nil || fc == nil {
		return nil, Invalid("field_commitments", "must be a JSON object of {digest, salt | state} objects")
	}
	for name, c := range fc {
		if !validFieldName(name) {
			return nil, Invalid("field_commitments", fmt.Sprintf("%q is not a personal field", name))
		}
		if !lowerHex64(c.Digest) {
			return nil, Invalid("field_commitments", fmt.Sprintf("the digest of %s is not 64 lower-case hex digits", name))
		}
	}
	return fc, nil
}

// validFieldName reports whether name can be committed in a v2 event.
func validFieldName(name string) bool {
	switch name {
	case FieldPrincipalID, FieldTargetResourceID:
		return true
	}
	return strings.HasPrefix(name, DetailsFieldPrefix) && len(name) > len(DetailsFieldPrefix)
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

// CheckFieldCommitments reports the state of every personal field of a sha256-jcs-v2 event,
// sorted by name: each commitment, and each personal value present that no commitment covers
// (FieldMismatch: a value added after sealing). It does not check the content hash (Verify
// and RecomputeEvent do). It returns nil for an event of another scheme, and a KindInvalid
// error naming details or field_commitments when they cannot be read.
func CheckFieldCommitments(ev *Event) ([]FieldCheck, error) {
	if ev.HashAlgorithm != HashAlgorithmV2 {
		return nil, nil
	}
	_, personal, err := keyless.splitDetails(ev.Details)
	if err != nil {
		return nil, err
	}
	fc, err := ParseFieldCommitments(ev.FieldCommitments)
	if err != nil {
		return nil, err
	}
	disclosed := map[string][]byte{} // field name → canonical JSON value
	for i := 1; i < len(personal)-1; {
		end := memberEnd(personal, i)
		m := personal[i:end]
		keyEnd := stringEnd(m, 0)
		disclosed[DetailsFieldPrefix+string(m[1:keyEnd-1])] = m[keyEnd+1:]
		i = end + 1
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
	sort.Strings(names)
	out := make([]FieldCheck, 0, len(names))
	for _, name := range names {
		c, committed := fc[name]
		value, present := disclosed[name]
		check := FieldCheck{Name: name, State: FieldMismatch}
		switch {
		case !committed:
			check.Reason = "it holds a value no commitment covers"
		case c.State == "" && c.Salt == "":
			check.Reason = "its commitment has neither a salt nor a state"
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
		case c.State == FieldErased && present:
			check.Reason = "it is marked erased but holds a value"
		case c.State == FieldErased:
			check.State = FieldErased
		case c.State == FieldPseudonymized && !present:
			check.Reason = "it is marked pseudonymized but holds no value"
		case c.State == FieldPseudonymized:
			check.State = FieldPseudonymized
		default:
			check.Reason = fmt.Sprintf("unknown state %q", c.State)
		}
		out = append(out, check)
	}
	return out, nil
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

// MarkField returns commitments with field name put in state (FieldErased or
// FieldPseudonymized): its salt removed, its digest kept, the other fields unchanged. The
// caller removes (erased) or replaces (pseudonymized) the value itself. It returns a
// KindInvalid error when commitments cannot be read, the state is another, or name is not
// committed.
func MarkField(commitments json.RawMessage, name, state string) (json.RawMessage, error) {
	if state != FieldErased && state != FieldPseudonymized {
		return nil, Invalid("state", fmt.Sprintf("must be %s or %s", FieldErased, FieldPseudonymized))
	}
	fc, err := ParseFieldCommitments(commitments)
	if err != nil {
		return nil, err
	}
	c, ok := fc[name]
	if !ok {
		return nil, Invalid("field", fmt.Sprintf("%s is not committed in this event", name))
	}
	fc[name] = FieldCommitment{Digest: c.Digest, State: state}
	out, err := jsonv2.Marshal(fc, jsonv2.Deterministic(true))
	if err != nil {
		return nil, fmt.Errorf("models: field commitments: %w", err)
	}
	return out, nil
}
