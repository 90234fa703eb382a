package models

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The events search box speaks a small query language, as audit-log consoles do:
//
//	action:patient.record.*  actor:dr.smith  resource:Patient/pat-1  status:failure
//	class:PHI  correlation:abc  created:>2026-01-01  created:2026-01-01..2026-02-01
//	-action:auth.*  "quoted free text"  chart
//
// A qualifier's value may end in * (a prefix) and be quoted ("Dr Smith"; inside quotes \"
// is a quote and \\ a backslash, as in actor:"a \"b\""); a leading - negates a term;
// words without a qualifier are free text, matched case-insensitively anywhere in the
// action, principal, resource and outcome. Terms are ANDed.

// Query qualifiers, in the order the error message suggests them.
const (
	QualAction      = "action"
	QualActor       = "actor"
	QualResource    = "resource"
	QualStatus      = "status"
	QualClass       = "class"
	QualCorrelation = "correlation"
	QualCreated     = "created"
)

// QueryQualifiers are the qualifiers the search box knows.
var QueryQualifiers = []string{QualAction, QualActor, QualResource, QualStatus, QualClass, QualCorrelation, QualCreated}

// MaxQueryTerms is the most terms one query may hold.
const MaxQueryTerms = 20

// QueryTerm is one term of an events query. Field is a qualifier, or "" for free text.
type QueryTerm struct {
	Field  string
	Value  string // unquoted, without the trailing * of a prefix; for resource, Type/ID as typed
	Prefix bool   // the value ended in *
	Negate bool
	// From and To bound created: terms (either may be zero: open-ended).
	From, To time.Time
	// Resolved says Values holds every exact value of the organization's events in the
	// filter's range that the term matches (see EventStore.ResolveFilter): the term is
	// then searched as column = ANY(Values), which an index serves under row-level
	// security, and an empty Values matches nothing.
	Resolved bool
	Values   []string
}

// EventQuery is a parsed events query.
type EventQuery struct {
	Terms []QueryTerm
}

// IsZero reports whether the query holds no term.
func (q EventQuery) IsZero() bool { return len(q.Terms) == 0 }

// Range returns the narrowest range the query's created: terms allow, with zero values
// for open ends.
func (q EventQuery) Range() (from, to time.Time) {
	for _, t := range q.Terms {
		if t.Field != QualCreated {
			continue
		}
		if !t.From.IsZero() && (from.IsZero() || t.From.After(from)) {
			from = t.From
		}
		if !t.To.IsZero() && (to.IsZero() || t.To.Before(to)) {
			to = t.To
		}
	}
	return from, to
}

// Has reports whether the query holds a (not negated) term for field.
func (q EventQuery) Has(field string) bool {
	for _, t := range q.Terms {
		if t.Field == field && !t.Negate {
			return true
		}
	}
	return false
}

// queryError is the error of a query that does not parse: always about the q field.
func queryError(format string, args ...any) error {
	return Invalid("q", fmt.Sprintf(format, args...))
}

// ParseEventQuery parses the search box. It returns a KindInvalid error naming "q" that
// says what is wrong and how to write it instead.
func ParseEventQuery(s string) (EventQuery, error) {
	var q EventQuery
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return q, queryError("must be valid text")
	}
	if n := utf8.RuneCountInString(s); n > MaxTextFilter {
		return q, queryError("must be at most %d characters", MaxTextFilter)
	}
	tokens, err := tokenize(s)
	if err != nil {
		return q, err
	}
	if len(tokens) > MaxQueryTerms {
		return q, queryError("holds %d terms; at most %d are allowed", len(tokens), MaxQueryTerms)
	}
	for _, tok := range tokens {
		t, err := parseTerm(tok)
		if err != nil {
			return EventQuery{}, err
		}
		q.Terms = append(q.Terms, t)
	}
	return q, nil
}

// token is one whitespace-separated piece of the query, quotes resolved.
type token struct {
	negate    bool
	qualifier string // "" for free text
	hasQual   bool
	value     string
	quoted    bool
}

func tokenize(s string) ([]token, error) {
	var out []token
	rs := []rune(s)
	i := 0
	for i < len(rs) {
		for i < len(rs) && unicode.IsSpace(rs[i]) {
			i++
		}
		if i >= len(rs) {
			break
		}
		var t token
		if rs[i] == '-' && i+1 < len(rs) && !unicode.IsSpace(rs[i+1]) {
			t.negate = true
			i++
		}
		// A qualifier is letters followed by a colon.
		j := i
		for j < len(rs) && (unicode.IsLetter(rs[j]) || rs[j] == '_') {
			j++
		}
		if j > i && j < len(rs) && rs[j] == ':' {
			t.hasQual, t.qualifier = true, strings.ToLower(string(rs[i:j]))
			i = j + 1
		}
		if i < len(rs) && rs[i] == '"' {
			// Inside quotes, \" is a quote and \\ a backslash; any other backslash is itself.
			var v strings.Builder
			end := i + 1
			for ; end < len(rs) && rs[end] != '"'; end++ {
				if rs[end] == '\\' && end+1 < len(rs) && (rs[end+1] == '"' || rs[end+1] == '\\') {
					end++
				}
				v.WriteRune(rs[end])
			}
			if end >= len(rs) {
				return nil, queryError("has an unclosed quote; end the quoted value with \" (write \\\" for a quote inside it)")
			}
			t.value, t.quoted = v.String(), true
			i = end + 1
			if i < len(rs) && !unicode.IsSpace(rs[i]) {
				return nil, queryError("needs a space after the quoted value %q", t.value)
			}
		} else {
			end := i
			for end < len(rs) && !unicode.IsSpace(rs[end]) {
				end++
			}
			t.value = string(rs[i:end])
			i = end
		}
		out = append(out, t)
	}
	return out, nil
}

func parseTerm(tok token) (QueryTerm, error) {
	t := QueryTerm{Field: tok.qualifier, Negate: tok.negate, Value: tok.value}
	if tok.hasQual && !isQualifier(tok.qualifier) {
		return t, queryError("unknown qualifier '%s:' — try action:, actor:, resource:, status:, class:, correlation: or created:", tok.qualifier)
	}
	if t.Value == "" {
		if tok.hasQual {
			return t, queryError("%s: needs a value, e.g. %s", tok.qualifier, example(tok.qualifier))
		}
		return t, queryError("has an empty quoted value")
	}
	if t.Field != QualCreated && t.Field != "" && strings.HasSuffix(t.Value, "*") {
		t.Prefix, t.Value = true, strings.TrimSuffix(t.Value, "*")
		if t.Value == "" {
			return t, queryError("%s:* matches everything; give the start of a value, e.g. %s", t.Field, example(t.Field))
		}
	}
	if t.Field != "" && strings.Contains(t.Value, "*") {
		return t, queryError("%s: allows * only at the end of a value (a prefix), e.g. %s", t.Field, example(t.Field))
	}
	if utf8.RuneCountInString(t.Value) > 255 {
		return t, queryError("%s value must be at most 255 characters", orText(t.Field))
	}
	switch t.Field {
	case QualStatus:
		v := strings.ToLower(t.Value)
		if t.Prefix || !contains(EventStatuses, v) {
			return t, queryError("status: must be attempt, success or failure")
		}
		t.Value = v
	case QualClass:
		v := strings.ToUpper(t.Value)
		if t.Prefix || !contains(DataClassifications, v) {
			return t, queryError("class: must be PUBLIC, INTERNAL, CONFIDENTIAL or PHI")
		}
		t.Value = v
	case QualCreated:
		if t.Negate {
			return t, queryError("created: cannot be negated; use created:<DATE or created:>DATE")
		}
		from, to, err := parseCreated(t.Value)
		if err != nil {
			return t, err
		}
		t.From, t.To = from, to
	case QualResource:
		typ, id, hasID := strings.Cut(t.Value, "/")
		if typ == "" || (hasID && id == "" && !t.Prefix) {
			return t, queryError("resource: is Type or Type/ID, e.g. resource:Patient/pat-1")
		}
	}
	return t, nil
}

// ResourceParts splits a resource: term into its type and, when given, its id.
func (t QueryTerm) ResourceParts() (typ, id string, hasID bool) {
	return strings.Cut(t.Value, "/")
}

func isQualifier(s string) bool { return contains(QueryQualifiers, s) }

func orText(field string) string {
	if field == "" {
		return "a free-text"
	}
	return field + ":"
}

func example(field string) string {
	switch field {
	case QualAction:
		return "action:patient.record.* or action:auth.login.failure"
	case QualActor:
		return "actor:dr.smith"
	case QualResource:
		return "resource:Patient/pat-1"
	case QualStatus:
		return "status:failure"
	case QualClass:
		return "class:PHI"
	case QualCorrelation:
		return "correlation:req-42"
	case QualCreated:
		return "created:>2026-01-01 or created:2026-01-01..2026-01-31"
	}
	return field + ":value"
}

// parseCreated reads a created: value: DATE (that day), >DATE, >=DATE, <DATE, <=DATE or
// DATE..DATE (both days included). A DATE is 2026-01-31, 2026-01-31T13:45 or RFC 3339, UTC
// unless it names a zone.
func parseCreated(v string) (from, to time.Time, err error) {
	bad := queryError("created: takes a date such as created:>2026-01-01, created:2026-01-31 or created:2026-01-01..2026-01-31")
	day := func(s string) (time.Time, bool, error) { // the time, and whether it was a bare date
		t, err := ParseQueryTime(s)
		if err != nil {
			return t, false, bad
		}
		return t, len(s) == len("2006-01-02"), nil
	}
	end := func(s string) (time.Time, error) { // the exclusive end of s
		t, bare, err := day(s)
		if bare {
			t = t.AddDate(0, 0, 1)
		}
		return t, err
	}
	switch {
	case strings.Contains(v, ".."):
		a, b, _ := strings.Cut(v, "..")
		if a != "" {
			if from, _, err = day(a); err != nil {
				return
			}
		}
		if b != "" {
			if to, err = end(b); err != nil {
				return
			}
		}
		if a == "" && b == "" {
			return from, to, bad
		}
		if !from.IsZero() && !to.IsZero() && !from.Before(to) {
			return from, to, queryError("created: range ends before it starts")
		}
	case strings.HasPrefix(v, ">="):
		from, _, err = day(v[2:])
	case strings.HasPrefix(v, ">"):
		var bare bool
		if from, bare, err = day(v[1:]); bare {
			from = from.AddDate(0, 0, 1)
		}
	case strings.HasPrefix(v, "<="):
		to, err = end(v[2:])
	case strings.HasPrefix(v, "<"):
		to, _, err = day(v[1:])
	default:
		if from, _, err = day(v); err == nil {
			to, err = end(v)
		}
	}
	return from, to, err
}

// ParseQueryTime reads a time as the console writes one: 2026-01-31, 2026-01-31T13:45,
// 2026-01-31T13:45:09 (all UTC) or RFC 3339. Years outside 1970–9999 are refused.
func ParseQueryTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02", "2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339Nano} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			if t.Year() < 1970 || t.Year() > 9999 {
				break
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, Invalid("time", "unreadable")
}

// String writes the query back in canonical form: one space between terms, values quoted
// when they hold spaces or quotes.
func (q EventQuery) String() string {
	parts := make([]string, 0, len(q.Terms))
	for _, t := range q.Terms {
		parts = append(parts, t.String())
	}
	return strings.Join(parts, " ")
}

// String writes one term as the search box reads it.
func (t QueryTerm) String() string {
	var b strings.Builder
	if t.Negate {
		b.WriteByte('-')
	}
	if t.Field != "" {
		b.WriteString(t.Field + ":")
	}
	if t.Field == QualCreated {
		b.WriteString(t.Value) // as typed: a bare end date is inclusive, so no round trip through From/To
		return b.String()
	}
	v := t.Value
	if t.Prefix {
		v += "*"
	}
	b.WriteString(QuoteQueryValue(v))
	return b.String()
}

// QuoteQueryValue quotes v when the search box would otherwise split or misread it; inside
// the quotes, a quote is written \" and a backslash \\.
func QuoteQueryValue(v string) string {
	if v == "" || strings.ContainsFunc(v, unicode.IsSpace) || strings.ContainsAny(v, `":`) || strings.HasPrefix(v, "-") {
		return `"` + quoteEscaper.Replace(v) + `"`
	}
	return v
}

var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)
