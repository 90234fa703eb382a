package demo

import (
	"time"

	"auditdb/models"
)

// Internals the external tests (package demo_test) check directly.

// Batch exposes the demo generator: batch k of size events for seed and now, unsealed.
func Batch(now time.Time, seed int64, k, size int) []models.Event {
	return newDemoGenerator(now).batch(seed, k, size)
}
