package models

// HoldCoversSQL returns the SQL condition "the legal hold of alias h covers the event of
// alias e" (its scope matches and the event lies within its time range), without checking
// that the hold is active or of the event's organization: the caller adds those. It is the
// condition HeldPredicate uses, for a caller that must name the holds (GDPR erasure).
func HoldCoversSQL(h, e string) string {
	s, _ := holdMatches(h, e)
	return s
}
