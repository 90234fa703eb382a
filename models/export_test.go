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

// SessionReads returns how many sessions s has read from the database.
func (s *SessionStore) SessionReads() int64 { return s.reads.Load() }

// SessionFlushes returns how many times s's session cache was emptied.
func (s *SessionStore) SessionFlushes() uint64 { return s.gen.Load() }

// SetSessionAfterRead makes f run in Lookup between the database read and its caching.
func (s *SessionStore) SetSessionAfterRead(f func()) { s.afterRead = f }

// SetListenIdle sets how long Listen waits for a notification before pinging.
func (s *SessionStore) SetListenIdle(d time.Duration) { s.listenIdle = d }

// CopyEventsOn exposes the writer's one-round-trip write of events (ids assigned) and their
// queue rows on conn.
var CopyEventsOn = copyEvents
