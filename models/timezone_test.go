package models_test

import (
	"errors"
	"testing"

	"auditdb/models"
)

func TestValidTimeZone(t *testing.T) {
	for _, name := range []string{"UTC", "Europe/Berlin", "America/New_York", "America/Argentina/Buenos_Aires",
		"America/Port-au-Prince", "Asia/Tokyo", "Etc/GMT+5", "Etc/UTC"} {
		loc, err := models.ValidTimeZone(name)
		if err != nil || loc == nil || loc.String() != name {
			t.Errorf("ValidTimeZone(%q) = %v, %v; want its location", name, loc, err)
		}
	}
	// Files of a zoneinfo directory that are not zones, old aliases, paths, and near misses.
	for _, name := range []string{"", "posixrules", "Factory", "localtime", "Local", "local", "utc", " UTC", "UTC ",
		"posix/Europe/Berlin", "right/Europe/Berlin", "Europe/../UTC", "../../etc/passwd", "/usr/share/zoneinfo/UTC",
		"Europe/Berlin/", "Europe//Berlin", "Europe/Berlin\x00", "US/Eastern", "EST5EDT", "GMT", "Mars/Olympus_Mons",
		"Europe/Nowhere", "Europe/Berl1n", "Europe/+Berlin", "America/Argentina/Buenos_Aires/Extra"} {
		_, err := models.ValidTimeZone(name)
		var e *models.Error
		if !errors.As(err, &e) || e.Kind != models.KindInvalid || e.Field != "time_zone" {
			t.Errorf("ValidTimeZone(%q) = %v; want invalid time_zone", name, err)
		}
	}
}
