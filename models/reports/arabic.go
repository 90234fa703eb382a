package reports

import "unicode"

// Arabic contextual shaping for the PDF. The PDF library draws one glyph per character and
// does no shaping, so each Arabic letter is replaced by its presentation form (Unicode's
// Arabic Presentation Forms-B, which the embedded DejaVu Sans draws): isolated, final,
// initial or medial by whether its neighbours join it, and lam followed by an alef becomes
// the lam-alef ligature. No maintained Go library maps letters to these forms (shaping
// engines return glyph ids, which the PDF library cannot take), hence this table.

// joining is how a letter joins: 'R' joins the letter before it only (two forms), 'D'
// both sides (four forms), 'U' neither (one form), 'C' joins both sides without forms of
// its own (tatweel).
type arabicLetter struct {
	join     byte
	isolated rune // first of its forms: isolated, final, initial, medial
}

// arabicLetters covers U+0621–U+064A, the letters with presentation forms in FE80–FEF4.
var arabicLetters = func() map[rune]arabicLetter {
	// The join type of each of U+0621…U+063A, then U+0641…U+064A, in code point order;
	// their forms follow one another from U+FE80 in the same order.
	const first = "URRRRDRDRDDDDDRRRRDDDDDDDD"
	const second = "DDDDDDDRRD"
	m := map[rune]arabicLetter{0x0640: {join: 'C'}}
	next := rune(0xFE80)
	add := func(r rune, j byte) {
		m[r] = arabicLetter{join: j, isolated: next}
		switch j {
		case 'U':
			next++
		case 'R':
			next += 2
		case 'D':
			next += 4
		}
	}
	for i := range len(first) {
		add(0x0621+rune(i), first[i])
	}
	for i := range len(second) {
		add(0x0641+rune(i), second[i])
	}
	return m
}()

// lamAlef are the ligatures of lam (U+0644) with each alef: isolated form, final form.
var lamAlef = map[rune]rune{0x0622: 0xFEF5, 0x0623: 0xFEF7, 0x0625: 0xFEF9, 0x0627: 0xFEFB}

// transparent reports whether r is a mark that joining looks through (harakat and the
// like).
func transparent(r rune) bool { return unicode.Is(unicode.Mn, r) }

// joinsAfter reports whether r connects to the letter that follows it.
func joinsAfter(r rune) bool {
	l, ok := arabicLetters[r]
	return ok && (l.join == 'D' || l.join == 'C')
}

// joinsBefore reports whether r connects to the letter before it.
func joinsBefore(r rune) bool {
	l, ok := arabicLetters[r]
	return ok && l.join != 'U'
}

// shapeArabic returns s (in logical order) with its Arabic letters in their contextual
// presentation forms; text without Arabic letters is returned as it is.
func shapeArabic(s string) string {
	rs := []rune(s)
	has := false
	for _, r := range rs {
		if _, ok := arabicLetters[r]; ok {
			has = true
			break
		}
	}
	if !has {
		return s
	}
	// prev and next skip transparent marks.
	prev := func(i int) rune {
		for i--; i >= 0; i-- {
			if !transparent(rs[i]) {
				return rs[i]
			}
		}
		return 0
	}
	next := func(i int) (rune, int) {
		for i++; i < len(rs); i++ {
			if !transparent(rs[i]) {
				return rs[i], i
			}
		}
		return 0, -1
	}
	out := make([]rune, 0, len(rs))
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		l, ok := arabicLetters[r]
		if !ok || l.join == 'C' {
			out = append(out, r)
			continue
		}
		before := joinsAfter(prev(i)) && joinsBefore(r)
		n, ni := next(i)
		if r == 0x0644 {
			if lig, ok := lamAlef[n]; ok && ni == i+1 {
				if before {
					lig++ // final form
				}
				out = append(out, lig)
				i = ni
				continue
			}
		}
		after := joinsAfter(r) && joinsBefore(n)
		form := l.isolated
		switch {
		case before && after:
			form += 3
		case after:
			form += 2
		case before:
			form++
		}
		out = append(out, form)
	}
	return string(out)
}
