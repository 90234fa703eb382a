package models_test

import (
	"strings"
	"testing"
	"time"

	"auditdb/models"
)

func TestParseEventQuery(t *testing.T) {
	day := func(s string) time.Time { t, _ := time.Parse("2006-01-02", s); return t }
	cases := []struct {
		in    string
		want  []models.QueryTerm
		canon string // String() of the result; "" means in
	}{
		{"", nil, ""},
		{"   ", nil, ""},
		{"chart", []models.QueryTerm{{Value: "chart"}}, ""},
		{"action:patient.record.*", []models.QueryTerm{{Field: "action", Value: "patient.record.", Prefix: true}}, ""},
		{"ACTION:auth.login", []models.QueryTerm{{Field: "action", Value: "auth.login"}}, "action:auth.login"},
		{"-action:auth.*", []models.QueryTerm{{Field: "action", Value: "auth.", Prefix: true, Negate: true}}, ""},
		{"actor:dr.smith status:FAILURE class:phi", []models.QueryTerm{
			{Field: "actor", Value: "dr.smith"}, {Field: "status", Value: "failure"}, {Field: "class", Value: "PHI"}},
			"actor:dr.smith status:failure class:PHI"},
		{"resource:Patient/pat-1", []models.QueryTerm{{Field: "resource", Value: "Patient/pat-1"}}, ""},
		{`actor:"Dr Smith" "two words"`, []models.QueryTerm{{Field: "actor", Value: "Dr Smith"}, {Value: "two words"}}, ""},
		{"correlation:req-42*", []models.QueryTerm{{Field: "correlation", Value: "req-42", Prefix: true}}, ""},
		{"created:>2026-01-01", []models.QueryTerm{{Field: "created", Value: ">2026-01-01", From: day("2026-01-02")}}, ""},
		{"created:>=2026-01-01", []models.QueryTerm{{Field: "created", Value: ">=2026-01-01", From: day("2026-01-01")}}, ""},
		{"created:<2026-01-01", []models.QueryTerm{{Field: "created", Value: "<2026-01-01", To: day("2026-01-01")}}, ""},
		{"created:<=2026-01-01", []models.QueryTerm{{Field: "created", Value: "<=2026-01-01", To: day("2026-01-02")}}, ""},
		{"created:2026-01-05", []models.QueryTerm{{Field: "created", Value: "2026-01-05", From: day("2026-01-05"), To: day("2026-01-06")}}, ""},
		{"created:2026-01-01..2026-01-31", []models.QueryTerm{{Field: "created", Value: "2026-01-01..2026-01-31", From: day("2026-01-01"), To: day("2026-02-01")}}, ""},
		{"-failed", []models.QueryTerm{{Value: "failed", Negate: true}}, ""},
		{"a-b", []models.QueryTerm{{Value: "a-b"}}, ""},
		{`"http://x"`, []models.QueryTerm{{Value: "http://x"}}, ""},
		// Inside quotes, \" is a quote and \\ a backslash; other backslashes are kept.
		{`actor:"a \"b\""`, []models.QueryTerm{{Field: "actor", Value: `a "b"`}}, ""},
		{`"say \"hi\" now"`, []models.QueryTerm{{Value: `say "hi" now`}}, ""},
		{`-actor:"o\"neil*"`, []models.QueryTerm{{Field: "actor", Value: `o"neil`, Prefix: true, Negate: true}}, ""},
		{`"back\\slash"`, []models.QueryTerm{{Value: `back\slash`}}, `back\slash`},
		{`"C:\temp"`, []models.QueryTerm{{Value: `C:\temp`}}, `"C:\\temp"`},
		{`"two \\ \""`, []models.QueryTerm{{Value: `two \ "`}}, ""},
		{`"\""`, []models.QueryTerm{{Value: `"`}}, ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			q, err := models.ParseEventQuery(c.in)
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if len(q.Terms) != len(c.want) {
				t.Fatalf("terms = %+v, want %+v", q.Terms, c.want)
			}
			for i := range c.want {
				g, w := q.Terms[i], c.want[i]
				if g.Field != w.Field || g.Value != w.Value || g.Prefix != w.Prefix || g.Negate != w.Negate ||
					!g.From.Equal(w.From) || !g.To.Equal(w.To) {
					t.Errorf("term %d = %+v, want %+v", i, g, w)
				}
			}
			canon := c.canon
			if canon == "" {
				canon = strings.Join(strings.Fields(c.in), " ")
			}
			if q.String() != canon {
				t.Errorf("String() = %q, want %q", q.String(), canon)
			}
			again, err := models.ParseEventQuery(q.String())
			if err != nil || again.String() != q.String() {
				t.Errorf("canonical form does not parse to itself: %q → %v %q", q.String(), err, again.String())
			}
		})
	}
}

func TestParseEventQueryErrors(t *testing.T) {
	cases := []struct{ in, says string }{
		{"foo:bar", "unknown qualifier 'foo:' — try action:, actor:"},
		{"action:", "action: needs a value"},
		{"status:maybe", "status: must be attempt, success or failure"},
		{"status:succ*", "status: must be attempt, success or failure"},
		{"class:SECRET", "class: must be PUBLIC, INTERNAL, CONFIDENTIAL or PHI"},
		{"action:*", "matches everything"},
		{"action:a*b", "* only at the end"},
		{`actor:"open`, "unclosed quote"},
		{`actor:"open\"`, `write \" for a quote inside it`},
		{`"a"b`, "space after the quoted value"},
		{`""`, "empty quoted value"},
		{"created:yesterday", "created: takes a date"},
		{"created:2026-02-01..2026-01-01", "ends before it starts"},
		{"created:..", "created: takes a date"},
		{"-created:>2026-01-01", "cannot be negated"},
		{"resource:/x", "resource: is Type or Type/ID"},
		{"resource:Patient/", "resource: is Type or Type/ID"},
		{strings.Repeat("x ", 21), "at most 20 are allowed"},
		{strings.Repeat("x", 201), "at most 200 characters"},
		{"a\x00b", "valid text"},
		{"\xff", "valid text"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			_, err := models.ParseEventQuery(c.in)
			if models.KindOf(err) != models.KindInvalid || models.FieldOf(err) != "q" {
				t.Fatalf("error = %v, want KindInvalid on q", err)
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error %q does not say %q", err, c.says)
			}
		})
	}
}
