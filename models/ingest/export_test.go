package ingest

// Internals the external tests (package ingest_test) check directly.

// CopyEventsOn exposes the writer's one-round-trip write of events (ids assigned) and their
// queue rows on conn.
var CopyEventsOn = copyEvents

// InternalClaim is a claim in the internal scope, as a dead letter's replay makes.
func InternalClaim(key string, hash []byte) *IdempotencyClaim {
	return &IdempotencyClaim{Key: key, RequestHash: hash, internal: true}
}
