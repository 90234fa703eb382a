package handlers

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"auditdb/models"
)

// checkStrictJSON checks that body is exactly one JSON value in valid UTF-8 in which no
// object gives a member name twice and no string holds a lone UTF-16 surrogate escape
// (such as "\ud800", which a lenient decoder turns into U+FFFD). The API decoders call it
// before they decode, so what they decode is what the client sent. It returns a
// KindInvalid error naming the top-level member at fault, or "body".
func checkStrictJSON(body []byte) error {
	if !utf8.Valid(body) {
		return models.Invalid("body", "must be valid UTF-8")
	}
	// jsontext refuses duplicate names and invalid surrogate escapes by default.
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	if _, err := dec.ReadValue(); err != nil {
		var se *jsontext.SyntacticError
		if errors.As(err, &se) {
			member := topMember(se.JSONPointer)
			switch {
			case errors.Is(err, jsontext.ErrDuplicateName) && member != "":
				return models.Invalid(member, "is given more than once")
			case member != "" && inString(se.Err):
				return models.Invalid(member, "must be valid text")
			}
		}
		return models.Invalid("body", "must be one JSON object")
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return models.Invalid("body", "must hold one JSON object and nothing after it")
	}
	return nil
}

// topMember is the first reference token of p (the top-level member an error lies in), or
// "" when the error lies in the top-level value itself or in a member name.
func topMember(p jsontext.Pointer) string {
	for tok := range p.Tokens() {
		return tok
	}
	return ""
}

// inString reports whether a syntactic error is about the text of a string: an invalid
// escape (a lone surrogate among them) or invalid UTF-8. jsontext exports no sentinel for
// these, so its messages are matched.
func inString(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.HasSuffix(msg, "in string") || strings.Contains(msg, "UTF-8")
}
