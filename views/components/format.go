package components

import "time"

// The console shows every time in UTC, in one of three precisions.
const (
	dateLayout      = "2006-01-02"
	dateTimeLayout  = "2006-01-02 15:04 UTC"
	timestampLayout = "2006-01-02 15:04:05 UTC"
)

// Date formats t as its UTC day, e.g. 2026-11-29.
func Date(t time.Time) string { return t.UTC().Format(dateLayout) }

// DateTime formats t in UTC to the minute, e.g. 2026-11-29 14:05 UTC.
func DateTime(t time.Time) string { return t.UTC().Format(dateTimeLayout) }

// Timestamp formats t in UTC to the second, e.g. 2026-11-29 14:05:09 UTC.
func Timestamp(t time.Time) string { return t.UTC().Format(timestampLayout) }
