package reports

import "testing"

func TestShapeArabic(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"seen-lam-alef-meem: initial, lam-alef final ligature, isolated", "سلام", "\uFEB3\uFEFC\uFEE1"},
		{"beh-teh-beh: initial, medial, final", "ببب", "\uFE91\uFE92\uFE90"},
		{"a lone letter is isolated", "ب", "\uFE8F"},
		{"alef does not join what follows", "اب", "\uFE8D\uFE8F"},
		{"lam-alef alone", "لا", "\uFEFB"},
		{"hamza joins nothing", "بءب", "\uFE8F\uFE80\uFE8F"},
		{"marks are looked through", "بَب", "\uFE91\u064E\uFE90"},
		{"tatweel joins both sides", "بـب", "\uFE91\u0640\uFE90"},
		{"words are shaped apart", "بب بب", "\uFE91\uFE90 \uFE91\uFE90"},
		{"yeh at the end is final", "بي", "\uFE91\uFEF2"},
		{"text without Arabic is unchanged", "שלום abc", "שלום abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shapeArabic(tc.in); got != tc.want {
				t.Fatalf("shapeArabic(%q) = %+q, want %+q", tc.in, got, tc.want)
			}
		})
	}
	// Every letter's forms land on the code points Unicode gives them.
	for r, want := range map[rune]rune{0x0621: 0xFE80, 0x0627: 0xFE8D, 0x0628: 0xFE8F, 0x063A: 0xFECD, 0x0641: 0xFED1,
		0x0644: 0xFEDD, 0x0648: 0xFEED, 0x0649: 0xFEEF, 0x064A: 0xFEF1} {
		if got := arabicLetters[r].isolated; got != want {
			t.Errorf("U+%04X isolated = U+%04X, want U+%04X", r, got, want)
		}
	}
}
