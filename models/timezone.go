package models

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // schedules and off-hours detection need IANA zones even where the system has none
)

// zoneAreas are the areas of IANA zone names (Area/Location). Names outside them — the
// files next to the zones in a zoneinfo directory such as posixrules, localtime, Factory,
// posix/… and right/…, and the old aliases such as US/Eastern or EST5EDT — are refused.
var zoneAreas = []string{"Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic",
	"Australia", "Europe", "Indian", "Pacific", "Etc"}

// maxZoneName bounds a zone name (the longest IANA name is 32 characters): the width of the
// columns that keep one (users.time_zone).
const maxZoneName = MaxTimeZoneLength

// ValidTimeZone returns the location of name, or a KindInvalid error (field time_zone)
// unless name is UTC or an IANA zone name of the form Area/Location (Europe/Berlin,
// America/Argentina/Buenos_Aires, Etc/GMT+5) that the zone database knows. It is the one
// check of zone names: organizations' time zones and report schedules use it.
func ValidTimeZone(name string) (*time.Location, error) {
	if name == "UTC" {
		return time.UTC, nil
	}
	if !zoneNameShape(name) {
		return nil, Invalid("time_zone", "must be an IANA time zone such as Europe/Berlin or UTC")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, Invalid("time_zone", fmt.Sprintf("unknown time zone %q; use an IANA name such as Europe/Berlin", name))
	}
	return loc, nil
}

// zoneNameShape reports whether name looks like an IANA Area/Location name: a known area,
// then one or two parts of ASCII letters, '_' and '-' (and, under Etc, digits and '+'),
// each starting with a letter. It keeps paths and the zoneinfo directory's other files
// away from time.LoadLocation.
func zoneNameShape(name string) bool {
	if len(name) > maxZoneName {
		return false
	}
	parts := strings.Split(name, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return false
	}
	known := false
	for _, a := range zoneAreas {
		known = known || parts[0] == a
	}
	if !known {
		return false
	}
	etc := parts[0] == "Etc"
	for _, p := range parts[1:] {
		if p == "" || !isASCIILetter(p[0]) {
			return false
		}
		for i := 0; i < len(p); i++ {
			c := p[i]
			ok := isASCIILetter(c) || c == '_' || c == '-' || (etc && (c == '+' || (c >= '0' && c <= '9')))
			if !ok {
				return false
			}
		}
	}
	return true
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
