package export_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"auditdb/models/export"
)

func TestNeutralize(t *testing.T) {
	cases := map[string]string{
		"=HYPERLINK(\"x\")": "'=HYPERLINK(\"x\")",
		"+1+2":              "'+1+2",
		"-2+3":              "'-2+3",
		"@SUM(A1)":          "'@SUM(A1)",
		"\tcmd":             "'\tcmd",
		"\r=1":              "'\r=1",
		"-12.5":             "-12.5",
		"+7":                "+7",
		"patient.read":      "patient.read",
		"":                  "",
		"a=b":               "a=b",
	}
	for in, want := range cases {
		if got := export.Neutralize(in); got != want {
			t.Errorf("Neutralize(%q) = %q, want %q", in, got, want)
		}
	}
}

// A row with quotes, commas, new lines, right-to-left text, emoji and formula prefixes comes
// back from a standard CSV reader as written, except for the neutralizing apostrophe.
func TestCSVRoundTrips(t *testing.T) {
	rows := [][]string{
		{"action", "principal", "outcome"},
		{"record.read", "dr. \"Smith\", MD", "line one\nline two"},
		{"=cmd|' /C calc'!A0", "مريض", "ok 👍 <b>bold</b>"},
	}
	var out bytes.Buffer
	w := export.NewCSV(&out)
	for i := 0; i < 300; i++ { // more than one flush
		for _, r := range rows {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\r\n") {
		t.Fatal("records must end in CRLF (RFC 4180)")
	}
	got, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 900 || w.Rows() != 900 {
		t.Fatalf("read %d rows, wrote %d; want 900", len(got), w.Rows())
	}
	if got[1][1] != rows[1][1] || got[1][2] != rows[1][2] || got[2][1] != rows[2][1] || got[2][2] != rows[2][2] {
		t.Fatalf("cells changed: %q", got[1:3])
	}
	if got[2][0] != "'"+rows[2][0] {
		t.Fatalf("formula cell not neutralized: %q", got[2][0])
	}
}
