package ingest

// Internals the external tests (package ingest_test) check directly.

// CopyEventsOn exposes the writer's one-round-trip write of events (ids assigned) and their
// queue rows on conn.
var CopyEventsOn = copyEvents
