package erasure

import "testing"

// TestReplaceAnyMatchesWholeIdentifiers: an identifier is replaced in any case where no letter
// or digit adjoins it, never inside another identifier, and case folding is PostgreSQL's
// lower(), so what the scan in SQL finds and what is replaced here agree.
func TestReplaceAnyMatchesWholeIdentifiers(t *testing.T) {
	ids := []string{"pat-123", "sam.kelly"}
	for in, want := range map[string]string{
		"record of pat-123 released":       "record of P released",
		"record of PAT-123, then Pat-123.": "record of P, then P.",
		"record of pat-1234 released":      "record of pat-1234 released",
		"xpat-123x and pat-123":            "xpat-123x and P",
		"scan-of-pat-123.pdf":              "scan-of-P.pdf",
		"sam.kelly@example.org":            "P@example.org",
		"SAM.KELLY":                        "P",
		"ſam.kelly":                        "ſam.kelly", // U+017F lower-cases to itself, as in PostgreSQL
		"sam.kellyx":                       "sam.kellyx",
		"2pat-123":                         "2pat-123",
		"pat-123é":                         "pat-123é",
		"(pat-123)":                        "(P)",
	} {
		if got := replaceAny(in, ids, "P"); got != want {
			t.Errorf("replaceAny(%q) = %q, want %q", in, got, want)
		}
		if got, wantHit := containsAny(in, ids), want != in; got != wantHit {
			t.Errorf("containsAny(%q) = %v, want %v", in, got, wantHit)
		}
	}
}
