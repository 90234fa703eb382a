package eventjson

import (
	"errors"
	"time"
)

// errTimestamp is ParseTimestamp's answer to anything but an RFC 3339 date and time.
var errTimestamp = errors.New("eventjson: not an RFC 3339 date and time")

// ParseTimestamp reads an RFC 3339 date and time (2026-01-31T13:45:00Z,
// 2026-01-31T13:45:00.123456+02:00). Go's RFC 3339 parser also takes offsets of 24 hours or
// 60 minutes (+24:00, +23:60), which RFC 3339 does not allow (time-numoffset is
// time-hour ":" time-minute, hours 00–23, minutes 00–59); ParseTimestamp refuses them. It
// returns an error for anything else that is not RFC 3339.
func ParseTimestamp(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errTimestamp
	}
	if n := len(s); s[n-1] != 'Z' && s[n-1] != 'z' {
		// time.Parse has checked the shape ±hh:mm of the last six bytes.
		hh := int(s[n-5]-'0')*10 + int(s[n-4]-'0')
		mm := int(s[n-2]-'0')*10 + int(s[n-1]-'0')
		if hh > 23 || mm > 59 {
			return time.Time{}, errTimestamp
		}
	}
	return t, nil
}
