// Package eventjson decodes the audit events services post to the ingest API, strictly:
// valid UTF-8, no duplicate or unknown members (each refused by name), camelCase names,
// every member a string except details, which must be a JSON object, and no NUL character
// anywhere (PostgreSQL text and jsonb cannot hold one). It knows nothing of organizations,
// presets or the database; models applies those rules to what it returns.
//
// The decoder is github.com/go-json-experiment/json/jsontext, the prototype of Go's
// encoding/json/v2: it rejects duplicate names and invalid UTF-8 by itself.
package eventjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Event is an event in the ingest API's JSON form, the fields the decoders read (less preset and
// organizationId, which the server resolves), times in RFC 3339 with microseconds. Dead
// letters keep refused events in this form, so a replay goes through the same decoder.
type Event struct {
	Timestamp          string          `json:"timestamp"`
	Action             string          `json:"action"`
	Status             string          `json:"status"`
	PrincipalID        *string         `json:"principalId,omitempty"`
	TargetResourceType *string         `json:"targetResourceType,omitempty"`
	TargetResourceID   *string         `json:"targetResourceId,omitempty"`
	OutcomeDescription *string         `json:"outcomeDescription,omitempty"`
	CorrelationID      *string         `json:"correlationId,omitempty"`
	DataClassification string          `json:"dataClassification"`
	RetentionPolicy    string          `json:"retentionPolicy"`
	EventVersion       string          `json:"eventVersion"`
	TTL                *string         `json:"ttl,omitempty"`
	Details            json.RawMessage `json:"details,omitempty"`
}

// Input is one event as sent. A nil pointer means the member was absent or null.
type Input struct {
	Timestamp          *string
	Action             *string
	Status             *string
	PrincipalID        *string
	TargetResourceType *string
	TargetResourceID   *string
	OutcomeDescription *string
	CorrelationID      *string
	DataClassification *string
	RetentionPolicy    *string
	EventVersion       *string
	TTL                *string
	Preset             *string
	OrganizationID     *string

	// Details is the details object exactly as sent, or nil when absent or null.
	Details []byte
	// DetailsDepth is how deeply details nests: 1 for a flat object, 2 when a member holds
	// an object or array, and so on.
	DetailsDepth int
	// DetailsLongestString is the length in characters of the longest string inside
	// details, member names included.
	DetailsLongestString int
}

// Fields lists the members an event may carry, in the order the API documents them.
var Fields = []string{"timestamp", "action", "status", "principalId", "targetResourceType", "targetResourceId",
	"outcomeDescription", "correlationId", "dataClassification", "retentionPolicy", "eventVersion", "ttl",
	"details", "preset", "organizationId"}

// stringMembers is how many members of an event are strings: all of Fields but details.
const stringMembers = 14

// serverFields are event attributes the server computes; a client may not send them.
var serverFields = map[string]bool{
	"id": true, "hash": true, "hashAlgorithm": true, "signature": true, "subjectDigest": true,
	"subjectSalt": true, "processingLatency": true, "archivedAt": true,
}

// MaxDepth bounds the nesting of details whatever a preset allows, so a hostile body cannot
// make later stages recurse deeply.
const MaxDepth = 32

// Error is bad input: which event (Index, -1 outside a batch), which member (Field, "" when
// the JSON itself is broken) and why.
type Error struct {
	Index   int
	Field   string
	Message string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("eventjson: ")
	if e.Index >= 0 {
		fmt.Fprintf(&b, "event %d: ", e.Index)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// TooManyError reports a batch with more events than allowed.
type TooManyError struct{ Max int }

func (e *TooManyError) Error() string {
	return fmt.Sprintf("eventjson: a batch holds at most %d events", e.Max)
}

// DecodeOne decodes a body holding exactly one event object. It returns an *Error for
// anything else.
func DecodeOne(data []byte) (Input, error) {
	if !utf8.Valid(data) {
		return Input{}, &Error{Index: -1, Message: "the body is not valid UTF-8"}
	}
	dec := getDecoder(data)
	defer putDecoder(dec)
	in, err := decodeEvent(dec, data, -1)
	if err != nil {
		return Input{}, err
	}
	if err := expectEOF(dec, -1); err != nil {
		return Input{}, err
	}
	return in, nil
}

// DecodeArray decodes a body holding a JSON array of at most max event objects. It returns
// a *TooManyError past max and an *Error naming the event's index for bad input.
func DecodeArray(data []byte, max int) ([]Input, error) {
	if !utf8.Valid(data) {
		return nil, &Error{Index: -1, Message: "the body is not valid UTF-8"}
	}
	dec := getDecoder(data)
	defer putDecoder(dec)
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, syntaxError(err, -1)
	}
	if tok.Kind() != '[' {
		return nil, &Error{Index: -1, Message: "a batch must be a JSON array of event objects"}
	}
	var out []Input
	for dec.PeekKind() != ']' {
		if len(out) == max {
			return nil, &TooManyError{Max: max}
		}
		in, err := decodeEvent(dec, data, len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, syntaxError(err, len(out))
	}
	if err := expectEOF(dec, -1); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, &Error{Index: -1, Message: "the batch is empty"}
	}
	return out, nil
}

// DecodeNDJSON decodes newline-delimited JSON: one event object per line, at most max
// lines with an event (blank lines are skipped). Index in an *Error counts events, and the
// message names the line.
func DecodeNDJSON(data []byte, max int) ([]Input, error) {
	if !utf8.Valid(data) {
		return nil, &Error{Index: -1, Message: "the body is not valid UTF-8"}
	}
	var out []Input
	var r bytes.Reader
	dec := jsontext.NewDecoder(&r)
	for lineNo := 1; len(data) > 0; lineNo++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if len(out) == max {
			return nil, &TooManyError{Max: max}
		}
		r.Reset(line)
		dec.Reset(&r)
		in, err := decodeEvent(dec, line, len(out))
		if err == nil {
			err = expectEOF(dec, len(out))
		}
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				e.Message = fmt.Sprintf("line %d: %s", lineNo, e.Message)
			}
			return nil, err
		}
		out = append(out, in)
	}
	if len(out) == 0 {
		return nil, &Error{Index: -1, Message: "the batch is empty"}
	}
	return out, nil
}

// MeasureDetails checks that raw is a details object as an event could carry it and returns
// its depth and longest string (see Input). It returns an *Error otherwise.
func MeasureDetails(raw []byte) (depth, longest int, err error) {
	if !utf8.Valid(raw) {
		return 0, 0, &Error{Index: -1, Field: "details", Message: "is not valid UTF-8"}
	}
	dec := getDecoder(raw)
	defer putDecoder(dec)
	var in Input
	if err := decodeDetails(dec, raw, &in, -1); err != nil {
		return 0, 0, err
	}
	if in.Details == nil {
		return 0, 0, &Error{Index: -1, Field: "details", Message: "must be a JSON object"}
	}
	if err := expectEOF(dec, -1); err != nil {
		return 0, 0, err
	}
	return in.DetailsDepth, in.DetailsLongestString, nil
}

// decoders keeps jsontext decoders between requests: a decoder's state (the stack of
// names seen per object, for refusing duplicates) is allocated as it grows, and a reset
// decoder keeps it.
var decoders = sync.Pool{New: func() any { return jsontext.NewDecoder(bytes.NewBuffer(nil)) }}

// getDecoder returns a decoder over data. From a bytes.Buffer it parses in place instead of
// copying the body.
func getDecoder(data []byte) *jsontext.Decoder {
	dec := decoders.Get().(*jsontext.Decoder)
	dec.Reset(bytes.NewBuffer(data))
	return dec
}

// putDecoder returns dec to the pool, without the body it was reading.
func putDecoder(dec *jsontext.Decoder) {
	dec.Reset(bytes.NewBuffer(nil))
	decoders.Put(dec)
}

// decodeEvent reads one event object from dec; data is dec's whole input, from which the
// details object is sliced as sent.
func decodeEvent(dec *jsontext.Decoder, data []byte, index int) (Input, error) {
	var in Input
	tok, err := dec.ReadToken()
	if err != nil {
		return in, syntaxError(err, index)
	}
	if tok.Kind() != '{' {
		return in, &Error{Index: index, Message: "an event must be a JSON object"}
	}
	var store *[stringMembers]string // the string members' values
	held := 0
	for dec.PeekKind() != '}' {
		rawName, err := dec.ReadValue()
		if err != nil {
			return in, syntaxError(err, index)
		}
		name := memberName(rawName)
		if name == "details" {
			if err := decodeDetails(dec, data, &in, index); err != nil {
				return in, err
			}
			continue
		}
		target := in.Field(name)
		if target == nil {
			msg := "is not an event field"
			if serverFields[name] {
				msg = "is set by the server and may not be sent"
			}
			return in, &Error{Index: index, Field: fieldName(name), Message: msg}
		}
		val, err := dec.ReadToken()
		if err != nil {
			return in, syntaxError(err, index)
		}
		switch val.Kind() {
		case 'n':
			continue
		case '"':
			s := val.String()
			if strings.IndexByte(s, 0) >= 0 {
				return in, &Error{Index: index, Field: name, Message: "must not contain NUL characters"}
			}
			if store == nil || held == len(store) { // one allocation holds the members' strings
				store, held = new([stringMembers]string), 0
			}
			store[held] = s
			*target = &store[held]
			held++
		case '{', '[':
			return in, &Error{Index: index, Field: name, Message: "must be a string"}
		default:
			return in, &Error{Index: index, Field: name, Message: "must be a string"}
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return in, syntaxError(err, index)
	}
	return in, nil
}

// decodeDetails reads the details value, which must be an object or null, recording its
// depth and longest string and checking each string for NUL characters.
func decodeDetails(dec *jsontext.Decoder, data []byte, in *Input, index int) error {
	start := dec.InputOffset()
	switch dec.PeekKind() {
	case 'n':
		_, err := dec.ReadToken()
		if err != nil {
			return syntaxError(err, index)
		}
		in.Details, in.DetailsDepth, in.DetailsLongestString = nil, 0, 0
		return nil
	case '{':
	default:
		if _, err := dec.ReadValue(); err != nil {
			return syntaxError(err, index)
		}
		return &Error{Index: index, Field: "details", Message: "must be a JSON object"}
	}
	base := dec.StackDepth()
	depth, longest := 0, 0
	var unquoted []byte // scratch for strings written with escapes
	for {
		if dec.PeekKind() == '"' { // a name or a string: measured from its raw form
			raw, err := dec.ReadValue()
			if err != nil {
				return syntaxError(err, index)
			}
			str := raw[1 : len(raw)-1]
			if bytes.IndexByte(str, '\\') >= 0 {
				// Only an escape can put a NUL in a JSON string.
				if unquoted, err = jsontext.AppendUnquote(unquoted[:0], raw); err != nil {
					return syntaxError(err, index)
				}
				if bytes.IndexByte(unquoted, 0) >= 0 {
					// Named by its member path, as numbers are (a name with a NUL names itself,
					// escaped).
					return &Error{Index: index, Field: detailsPath(dec, base), Message: "must not contain NUL characters"}
				}
				str = unquoted
			}
			longest = max(longest, utf8.RuneCount(str))
			continue
		}
		tok, err := dec.ReadToken()
		if err != nil {
			return syntaxError(err, index)
		}
		switch tok.Kind() {
		case '0':
			if !ExactNumber(tok.String()) {
				return &Error{Index: index, Field: detailsPath(dec, base),
					Message: "is not exactly a 64-bit floating-point number (RFC 7493 I-JSON); send it as a string to keep every digit"}
			}
		case '{', '[':
			d := dec.StackDepth() - base
			if d > MaxDepth {
				return &Error{Index: index, Field: "details", Message: fmt.Sprintf("nests deeper than %d levels", MaxDepth)}
			}
			depth = max(depth, d)
		}
		if dec.StackDepth() == base {
			break
		}
	}
	raw := bytes.TrimLeft(data[start:dec.InputOffset()], " \t\r\n:")
	in.Details = append([]byte(nil), raw...)
	in.DetailsDepth, in.DetailsLongestString = depth, longest
	return nil
}

// ExactNumber reports whether the JSON number text has exactly the value of the shortest
// decimal that round-trips through a float64: the one value RFC 8785 canonicalization
// writes for it. Any other number would be stored (as PostgreSQL numeric) with digits the
// event hash does not commit to — 123456789012345678901234567890 and …891 hash alike, 1e-400
// hashes as 0 — or not be storable at all (1e200000 is beyond numeric's range). So ingest
// refuses them, as RFC 7493 (I-JSON) asks; 12.5, 0.1 and 1e300 are fine.
func ExactNumber(text string) bool {
	if len(text) <= 15 && strings.IndexAny(text, ".eE") < 0 {
		return true // an integer of at most 15 digits: every float64 holds it
	}
	if !modestNotation(text) {
		return false
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil { // beyond the float64 range
		return false
	}
	var buf [32]byte
	return sameDecimal(text, string(strconv.AppendFloat(buf[:0], f, 'e', -1, 64)))
}

// maxNotation bounds how a number may be written: at most this many digits after the
// point, and an exponent within ±maxNotation. PostgreSQL's numeric refuses a written
// exponent beyond ±1000 and more than 16383 digits after the point even for a zero (0e2000,
// 0.000…), and no float64 needs more.
const maxNotation = 1000

// modestNotation reports whether text keeps within maxNotation.
func modestNotation(text string) bool {
	mant := text
	if i := strings.IndexAny(text, "eE"); i >= 0 {
		mant = text[:i]
		n, err := strconv.Atoi(strings.TrimPrefix(text[i+1:], "+"))
		if err != nil || n > maxNotation || n < -maxNotation {
			return false
		}
	}
	if i := strings.IndexByte(mant, '.'); i >= 0 && len(mant)-i-1 > maxNotation {
		return false
	}
	return true
}

// sameDecimal reports whether two well-formed JSON numbers have the same decimal value (a
// zero's sign aside).
func sameDecimal(a, b string) bool {
	an, ad, ae := decimalParts(a)
	bn, bd, be := decimalParts(b)
	if ad == "" || bd == "" {
		return ad == bd
	}
	return an == bn && ad == bd && ae == be
}

// decimalParts splits a JSON number into its sign, its significant digits without leading
// or trailing zeros, and the decimal exponent of the first of them (value = 0.digits ×
// 10^exp). Zero has no digits.
func decimalParts(s string) (neg bool, digits string, exp int) {
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	mant, e := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e, _ = strconv.Atoi(strings.TrimPrefix(s[i+1:], "+")) // within ±maxNotation, or a float64's
	}
	intPart, frac := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		intPart, frac = mant[:i], mant[i+1:]
	}
	all := intPart + frac
	lead := len(all) - len(strings.TrimLeft(all, "0"))
	all = strings.TrimRight(all[lead:], "0")
	if all == "" {
		return false, "", 0
	}
	return neg, all, e + len(intPart) - lead
}

// detailsPath names the value dec read last by its place inside details, as
// "details.amount" or "details.items[2].price"; base is the stack depth of the event object.
func detailsPath(dec *jsontext.Decoder, base int) string {
	var toks []string
	for t := range dec.StackPointer().Tokens() {
		toks = append(toks, t)
	}
	var b strings.Builder
	b.WriteString("details")
	for level := base + 1; level <= dec.StackDepth() && level-1 < len(toks); level++ {
		if kind, _ := dec.StackIndex(level); kind == '[' {
			b.WriteString("[" + toks[level-1] + "]")
		} else {
			b.WriteString("." + fieldName(toks[level-1]))
		}
	}
	return b.String()
}

// memberName returns an object member's name from its raw JSON string. The known names
// come back as constants without allocating; any other name, or one written with escapes,
// is unquoted.
func memberName(raw jsontext.Value) string {
	if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 {
		if name, ok := knownNames[string(raw[1:len(raw)-1])]; ok {
			return name
		}
	}
	name, err := jsontext.AppendUnquote(nil, raw)
	if err != nil { // the decoder has checked the string already
		return string(raw)
	}
	return string(name)
}

// knownNames maps each event member's name to itself, so that memberName can return it
// without allocating.
var knownNames = func() map[string]string {
	m := make(map[string]string, len(Fields))
	for _, f := range Fields {
		m[f] = f
	}
	return m
}()

// Field returns the string member named name (camelCase), or nil for details and for a
// name that is not an event member.
func (in *Input) Field(name string) **string {
	switch name {
	case "timestamp":
		return &in.Timestamp
	case "action":
		return &in.Action
	case "status":
		return &in.Status
	case "principalId":
		return &in.PrincipalID
	case "targetResourceType":
		return &in.TargetResourceType
	case "targetResourceId":
		return &in.TargetResourceID
	case "outcomeDescription":
		return &in.OutcomeDescription
	case "correlationId":
		return &in.CorrelationID
	case "dataClassification":
		return &in.DataClassification
	case "retentionPolicy":
		return &in.RetentionPolicy
	case "eventVersion":
		return &in.EventVersion
	case "ttl":
		return &in.TTL
	case "preset":
		return &in.Preset
	case "organizationId":
		return &in.OrganizationID
	}
	return nil
}

// fieldName keeps an unknown member's name readable in a message: at most 64 characters,
// control characters escaped.
func fieldName(name string) string {
	if utf8.RuneCountInString(name) > 64 {
		name = string([]rune(name)[:64]) + "…"
	}
	q := fmt.Sprintf("%q", name)
	return q[1 : len(q)-1]
}

// duplicateField names the member a duplicate-name error concerns: the event member itself,
// or "details" for a duplicate anywhere inside details. A leading array index (a batch) is
// skipped; an event member whose name is digits is refused as unknown before it can repeat.
func duplicateField(p jsontext.Pointer) string {
	var toks []string
	for t := range p.Tokens() {
		toks = append(toks, t)
	}
	if len(toks) > 0 && strings.Trim(toks[0], "0123456789") == "" {
		toks = toks[1:]
	}
	if len(toks) == 0 {
		return ""
	}
	return fieldName(toks[0])
}

func expectEOF(dec *jsontext.Decoder, index int) error {
	_, err := dec.ReadToken()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return syntaxError(err, index)
	}
	return &Error{Index: index, Message: "unexpected data after the JSON value"}
}

// syntaxError turns a decoder error into an *Error: duplicate members are named, the rest
// is reported as invalid JSON with the byte offset.
func syntaxError(err error, index int) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return &Error{Index: index, Message: "invalid JSON: unexpected end of input"}
	}
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		if errors.Is(se.Err, jsontext.ErrDuplicateName) {
			return &Error{Index: index, Field: duplicateField(se.JSONPointer), Message: "appears more than once"}
		}
		return &Error{Index: index, Message: fmt.Sprintf("invalid JSON at byte %d: %v", se.ByteOffset, se.Err)}
	}
	return &Error{Index: index, Message: "invalid JSON: " + err.Error()}
}
