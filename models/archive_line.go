package models

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendArchiveLine appends l to dst as the JSON object encoding/json's Marshal writes for
// it, byte for byte (same field order, omitempty rules, HTML-safe string escaping, compact
// details), without reflection and without allocating per line: the archiver writes
// millions of lines and reflection-based encoding was most of its CPU. scratch is a reused
// buffer for compacting details. A test holds it to json.Marshal.
//
// With jsonb set, l's details and field commitments were read from jsonb columns, valid JSON
// by construction: they are compacted without being validated again (json.Compact's
// validation was a fifth of archival's CPU). Otherwise they are checked.
func appendArchiveLine(dst []byte, scratch *bytes.Buffer, l *ArchiveLine, jsonb bool) ([]byte, error) {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, l.ID, 10)
	dst = append(dst, `,"timestamp":`...)
	var err error
	if dst, err = appendJSONTime(dst, l.Timestamp); err != nil {
		return dst, err
	}
	dst = appendOptString(dst, `,"ttl":`, l.TTL)
	dst = appendOptString(dst, `,"principalId":`, l.PrincipalID)
	dst = append(dst, `,"organizationId":`...)
	dst = appendJSONString(dst, l.OrganizationID)
	dst = append(dst, `,"action":`...)
	dst = appendJSONString(dst, l.Action)
	dst = appendOptString(dst, `,"targetResourceType":`, l.TargetResourceType)
	dst = appendOptString(dst, `,"targetResourceId":`, l.TargetResourceID)
	dst = append(dst, `,"status":`...)
	dst = appendJSONString(dst, l.Status)
	dst = appendOptString(dst, `,"outcomeDescription":`, l.OutcomeDescription)
	dst = append(dst, `,"hash":`...)
	dst = appendJSONString(dst, l.Hash)
	dst = append(dst, `,"hashAlgorithm":`...)
	dst = appendJSONString(dst, l.HashAlgorithm)
	dst = append(dst, `,"eventVersion":`...)
	dst = appendJSONString(dst, l.EventVersion)
	dst = appendOptString(dst, `,"correlationId":`, l.CorrelationID)
	dst = append(dst, `,"dataClassification":`...)
	dst = appendJSONString(dst, l.DataClassification)
	dst = append(dst, `,"retentionPolicy":`...)
	dst = appendJSONString(dst, l.RetentionPolicy)
	if l.ProcessingLatency != nil {
		dst = append(dst, `,"processingLatency":`...)
		dst = strconv.AppendInt(dst, int64(*l.ProcessingLatency), 10)
	}
	if l.ArchivedAt != nil {
		dst = append(dst, `,"archivedAt":`...)
		if dst, err = appendJSONTime(dst, *l.ArchivedAt); err != nil {
			return dst, err
		}
	}
	if len(l.Details) > 0 {
		if dst, err = appendRawJSON(dst, `,"details":`, scratch, l.Details, jsonb); err != nil {
			return dst, fmt.Errorf("models: details of event %d: %w", l.ID, err)
		}
	}
	if len(l.SubjectSalt) > 0 {
		dst = append(dst, `,"subjectSalt":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, l.SubjectSalt)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"subjectDigest":`...)
	dst = appendJSONString(dst, l.SubjectDigest)
	dst = append(dst, `,"signature":`...)
	dst = appendJSONString(dst, l.Signature)
	if len(l.FieldCommitments) > 0 {
		if dst, err = appendRawJSON(dst, `,"fieldCommitments":`, scratch, l.FieldCommitments, jsonb); err != nil {
			return dst, fmt.Errorf("models: field commitments of event %d: %w", l.ID, err)
		}
	}
	dst = append(dst, `,"leafIndex":`...)
	dst = strconv.AppendInt(dst, l.LeafIndex, 10)
	return append(dst, '}'), nil
}

// appendRawJSON appends key and raw as Marshal writes a json.RawMessage: checked (unless
// valid says raw is known valid), compacted (into scratch) and HTML-escaped.
func appendRawJSON(dst []byte, key string, scratch *bytes.Buffer, raw json.RawMessage, valid bool) ([]byte, error) {
	scratch.Reset()
	if valid {
		compactValidJSON(scratch, raw)
	} else if err := json.Compact(scratch, raw); err != nil {
		return dst, err
	}
	dst = append(dst, key...)
	if needsHTMLEscape(scratch.Bytes()) {
		var esc bytes.Buffer
		json.HTMLEscape(&esc, scratch.Bytes())
		return append(dst, esc.Bytes()...), nil
	}
	return append(dst, scratch.Bytes()...), nil
}

func appendOptString(dst []byte, key string, s *string) []byte {
	if s == nil {
		return dst
	}
	return appendJSONString(append(dst, key...), *s)
}

// appendJSONTime writes t as time.Time's MarshalJSON does (RFC 3339 with nanoseconds).
func appendJSONTime(dst []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return dst, fmt.Errorf("models: archive line: year %d outside [0,9999]", y)
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), nil
}

// compactValidJSON writes valid JSON raw to dst without the whitespace between its tokens,
// as json.Compact does for valid input, without checking it.
func compactValidJSON(dst *bytes.Buffer, raw []byte) {
	dst.Grow(len(raw))
	inString := false
	start := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inString && c == '\\':
			i++ // the escaped byte, whatever it is
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			dst.Write(raw[start:i])
			start = i + 1
		}
	}
	dst.Write(raw[start:])
}

// needsHTMLEscape reports whether b holds <, >, & or U+2028/U+2029 (whose UTF-8 starts with
// 0xE2). One IndexByte per byte sought: bytes.ContainsAny with multi-byte runes in its set
// decodes b rune by rune, which was a fifth of archival's CPU.
func needsHTMLEscape(b []byte) bool {
	if bytes.IndexByte(b, '<') >= 0 || bytes.IndexByte(b, '>') >= 0 || bytes.IndexByte(b, '&') >= 0 {
		return true
	}
	return bytes.IndexByte(b, 0xE2) >= 0 && (bytes.Contains(b, []byte("\u2028")) || bytes.Contains(b, []byte("\u2029")))
}

const lowerHex = "0123456789abcdef"

// appendJSONString writes s as a JSON string the way encoding/json does with HTML escaping
// on: <, > and & as \u003c, \u003e, \u0026; control characters as \b, \f, \n, \r, \t or
// \u00XX; invalid UTF-8 as \ufffd; U+2028 and U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', lowerHex[b>>4], lowerHex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', lowerHex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
