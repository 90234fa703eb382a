package components

import (
	"context"
	"time"
)

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

// localLayout is a time in the viewer's zone, named by its abbreviation.
const localLayout = "2006-01-02 15:04:05 MST"

// ISO formats t in ISO 8601 (RFC 3339) in UTC, e.g. 2026-11-29T14:05:09Z.
func ISO(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// LocationOf returns the zone the viewer of ctx reads times in (UTC when none is set).
func LocationOf(ctx context.Context) *time.Location {
	if loc := ViewOf(ctx).Location; loc != nil {
		return loc
	}
	return time.UTC
}

// InViewerZone formats t to the second in the viewer's zone, named by its abbreviation,
// e.g. 2026-11-29 15:05:09 CET; in UTC it is Timestamp(t).
func InViewerZone(ctx context.Context, t time.Time) string {
	loc := LocationOf(ctx)
	if loc == time.UTC || loc.String() == "UTC" {
		return Timestamp(t)
	}
	return t.In(loc).Format(localLayout)
}

// hasViewerZone reports whether the viewer of ctx chose a zone other than UTC.
func hasViewerZone(ctx context.Context) bool {
	loc := LocationOf(ctx)
	return loc != time.UTC && loc.String() != "UTC"
}
