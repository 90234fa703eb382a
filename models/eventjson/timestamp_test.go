package eventjson_test

import (
	"testing"
	"time"

	"auditdb/models/eventjson"
)

func TestParseTimestamp(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Time // zero: refused
	}{
		{"2026-01-31T13:45:00Z", time.Date(2026, 1, 31, 13, 45, 0, 0, time.UTC)},
		{"2026-01-31T13:45:00.123456Z", time.Date(2026, 1, 31, 13, 45, 0, 123456000, time.UTC)},
		{"2026-01-31T13:45:00+23:59", time.Date(2026, 1, 30, 13, 46, 0, 0, time.UTC)},
		{"2026-01-31T13:45:00-05:30", time.Date(2026, 1, 31, 19, 15, 0, 0, time.UTC)},
		{"2026-01-31T13:45:00+24:00", time.Time{}},
		{"2026-01-31T13:45:00-24:00", time.Time{}},
		{"2026-01-31T13:45:00+23:60", time.Time{}},
		{"2026-01-31T13:45:00+99:00", time.Time{}},
		{"2026-01-31T13:45:00", time.Time{}},
		{"2026-01-31 13:45:00Z", time.Time{}},
		{"2026-01-31T24:00:00Z", time.Time{}},
	} {
		got, err := eventjson.ParseTimestamp(c.in)
		switch {
		case c.want.IsZero() && err == nil:
			t.Errorf("%q: accepted as %v, want refused", c.in, got)
		case !c.want.IsZero() && (err != nil || !got.Equal(c.want)):
			t.Errorf("%q: %v %v, want %v", c.in, got, err, c.want)
		}
	}
}
