package models

import "time"

// Internals the external tests (package models_test, which needs pgtest and so cannot live
// inside package models) check directly.

// RecomputeSubjectDigest exposes the subject digest recomputation to tests.
func (s *Sealer) RecomputeSubjectDigest(ev *Event) (string, error) {
	return s.recomputeSubjectDigest(ev)
}

// NormalizeErrorRecord is ErrorRecord.normalize at the current time.
func NormalizeErrorRecord(r ErrorRecord) ErrorRecord { return r.normalize(time.Now()) }
