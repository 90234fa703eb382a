package erasure

import (
	"testing"

	"auditdb/models/pgtest"
)

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
		"scan-of-pat-123.pdf":              "scan-of-pat-123.pdf", // part of a longer identifier
		"pat-123-2 and pat-123_b":          "pat-123-2 and pat-123_b",
		"sam.kelly.jr, not sam.kelly.":     "sam.kelly.jr, not P.",
		"pat-123- ward":                    "P- ward",
		"pat-123Ⅻ":                         "pat-123Ⅻ", // a number adjoins (category Nl)
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
	for in, want := range map[string]bool{"scan-of-pat-123.pdf": true, "pat-123-2": true, "sam.kelly.jr": true,
		"x.pat-123": true, "pat-1234": false, "pat-123.": false, "pat-123": false} {
		if got := containsEmbedded(in, ids); got != want {
			t.Errorf("containsEmbedded(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestMentionRegexAgreesWithTheMatch: the regular expression the scrub outside events runs in
// PostgreSQL finds the identifier exactly where the match in Go does, in the cases where
// PostgreSQL's own case-insensitive matching would not (İ, the Kelvin sign).
func TestMentionRegexAgreesWithTheMatch(t *testing.T) {
	db := pgtest.DB(t)
	ids := []string{"josé.ince", "kim-7"}
	named := map[string]bool{"seen JOSÉ.İNCE at desk|josé.ince": true, "by \u212aIM-7.|kim-7": true,
		"kim-7_|kim-7": true, "kim-7@example.org|kim-7": true}
	for _, text := range []string{"seen JOSÉ.İNCE at desk", "seen josé.ince.jr", "by \u212aIM-7.", "kim-7-2", "KIM-70",
		"(Josè.ince)", "x_kim-7", "kim-7_", "kim-7@example.org"} {
		for _, id := range ids {
			var pg bool
			if err := db.Raw(`SELECT ? ~ ?`, text, mentionRegex(id)).Scan(&pg).Error; err != nil {
				t.Fatal(err)
			}
			if goes := containsAny(text, []string{id}); pg != goes {
				t.Errorf("%q names %q: PostgreSQL says %v, Go %v", text, id, pg, goes)
			}
			if want := named[text+"|"+id]; pg != want {
				t.Errorf("%q names %q: %v, want %v", text, id, pg, want)
			}
		}
	}
}

// TestJSONNamesReadsDecodedStrings: in JSON text an escape before the identifier (the n of
// \n, the hex digits of \u001f) reads as a letter adjoining it, and an escaped backslash
// before a letter as an escape; the strings are judged decoded, keys included, in Go and by
// the scrub's jsonb function in PostgreSQL alike.
func TestJSONNamesReadsDecodedStrings(t *testing.T) {
	ids := []string{"pat-777", "josé.ince"}
	db := pgtest.DB(t)
	for raw, want := range map[string][2]bool{
		`{"note":"Referred patient:\npat-777 to cardiology"}`: {true, false},
		`{"note":"ids\tpat-777\tjosé.ince"}`:                  {true, false},
		`{"note":"Caller:\r\nJOSÉ.İNCE"}`:                     {true, false},
		`{"note":"x\u001fpat-777"}`:                           {true, false},
		`{"a":{"pat-777":1}}`:                                 {true, false},
		`{"note":"pat-777-2 and xpat-777"}`:                   {false, true},
		`{"n":7,"note":"nothing"}`:                            {false, false},
		`{"note":"Patients:\n-pat-777\n.josé.ince"}`:          {true, false},
		`{"note":"C:\\npat-777 and \\u0041pat-777"}`:          {false, false},
	} {
		whole, embedded := jsonNames([]byte(raw), ids)
		if whole != want[0] || embedded != want[1] {
			t.Errorf("jsonNames(%s) = %v, %v; want %v, %v", raw, whole, embedded, want[0], want[1])
		}
		var pg bool
		if err := db.Raw(`SELECT auditdb_jsonb_regexp_replace(?::jsonb, ?, '') IS DISTINCT FROM ?::jsonb
			OR auditdb_jsonb_regexp_replace(?::jsonb, ?, '') IS DISTINCT FROM ?::jsonb`,
			raw, mentionRegex(ids[0]), raw, raw, mentionRegex(ids[1]), raw).Scan(&pg).Error; err != nil {
			t.Fatal(err)
		}
		if pg != want[0] {
			t.Errorf("the jsonb regular expression over %s: %v, want %v", raw, pg, want[0])
		}
	}
}
