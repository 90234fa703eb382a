package models

import "time"

// Internals the external tests (package models_test, which needs pgtest and so cannot live
// inside package models) check directly.

// RecomputeSubjectDigest exposes the subject digest recomputation to tests.
func (s *Sealer) RecomputeSubjectDigest(ev *Event) (string, error) {
	return s.recomputeSubjectDigest(ev)
}

// DemoBatch exposes the demo generator: batch k of size events for seed and now, unsealed.
func DemoBatch(now time.Time, seed int64, k, size int) []Event {
	return newDemoGenerator(now).batch(seed, k, size)
}

// QueryInTenant exposes the pipelined tenant read the event store uses.
var QueryInTenant = queryInTenant

// CopyEventsOn exposes the writer's one-round-trip write of events (ids assigned) and their
// queue rows on conn.
var CopyEventsOn = copyEvents
