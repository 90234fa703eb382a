package reports

import (
	"fmt"
	"strings"
	"time"

	"auditdb/models"
)

// Frequencies a schedule runs at.
const (
	Daily     = "daily"
	Weekly    = "weekly"
	Monthly   = "monthly"
	Quarterly = "quarterly"
)

// Frequencies in the order the console offers them.
var Frequencies = []string{Daily, Weekly, Monthly, Quarterly}

// LastDay is the day of month meaning "the month's last day" (any day the month lacks
// also runs on its last day).
const LastDay = 31

// Schedule is when a scheduled report runs: every day, every week on Weekday (Monday when
// empty), every month or every quarter (January, April, July, October) on Day (31: the
// month's last day), at Time (HH:MM) in the IANA time zone TimeZone.
type Schedule struct {
	Frequency string `json:"frequency"`
	Weekday   string `json:"weekday,omitempty"`
	Day       int    `json:"day,omitempty"`
	Time      string `json:"time"`
	TimeZone  string `json:"time_zone"`
}

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// Normalize fills the defaults: Monday for a weekly schedule, UTC for no time zone, the
// weekday in lower case.
func (s Schedule) Normalize() Schedule {
	s.Weekday = strings.ToLower(strings.TrimSpace(s.Weekday))
	if s.Frequency == Weekly && s.Weekday == "" {
		s.Weekday = "monday"
	}
	if s.Frequency != Weekly {
		s.Weekday = ""
	}
	if s.Frequency != Monthly && s.Frequency != Quarterly {
		s.Day = 0
	}
	if strings.TrimSpace(s.TimeZone) == "" {
		s.TimeZone = "UTC"
	}
	return s
}

// Validate returns a KindInvalid error naming the first bad field: an unknown frequency,
// weekday or time zone, a day of month outside 1–31, a time that is not HH:MM in 00:00–23:59.
func (s Schedule) Validate() error {
	switch s.Frequency {
	case Daily, Weekly, Monthly, Quarterly:
	default:
		return models.Invalid("frequency", "must be one of daily, weekly, monthly, quarterly")
	}
	if s.Frequency == Weekly {
		if _, ok := weekdays[strings.ToLower(s.Weekday)]; !ok {
			return models.Invalid("weekday", "must be a day of the week, Monday to Sunday")
		}
	}
	if (s.Frequency == Monthly || s.Frequency == Quarterly) && (s.Day < 1 || s.Day > LastDay) {
		return models.Invalid("day", "must be a day of the month from 1 to 31 (31: the month's last day)")
	}
	if _, _, err := s.clock(); err != nil {
		return err
	}
	if _, err := s.location(); err != nil {
		return err
	}
	return nil
}

func (s Schedule) clock() (hour, minute int, err error) {
	bad := models.Invalid("time", "must be HH:MM from 00:00 to 23:59")
	if len(s.Time) != 5 || s.Time[2] != ':' {
		return 0, 0, bad
	}
	if _, err := fmt.Sscanf(s.Time, "%02d:%02d", &hour, &minute); err != nil {
		return 0, 0, bad
	}
	for _, c := range s.Time[:2] + s.Time[3:] {
		if c < '0' || c > '9' {
			return 0, 0, bad
		}
	}
	if hour > 23 || minute > 59 {
		return 0, 0, bad
	}
	return hour, minute, nil
}

func (s Schedule) location() (*time.Location, error) {
	name := s.TimeZone
	if name == "" {
		name = "UTC"
	}
	return models.ValidTimeZone(name)
}

// Next returns the first instant strictly after after at which s runs. The schedule's
// wall-clock time is read in its time zone: a time that a daylight-saving change skips
// runs as many minutes after the change as it lies after the skipped hour's start (02:30
// on a spring-forward night runs at 03:30), and a time that occurs twice runs once, at the
// first occurrence. s must be valid; an invalid schedule returns the zero time.
func (s Schedule) Next(after time.Time) time.Time {
	s = s.Normalize()
	if s.Validate() != nil {
		return time.Time{}
	}
	hour, minute, _ := s.clock()
	loc, _ := s.location()
	local := after.In(loc)
	day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, time.UTC)
	// Days are walked on a zone-free calendar; a quarter is at most 92 days and a daylight-saving
	// change moves an instant by hours, so two quarters of days always hold the answer.
	for i := 0; i < 200; i++ {
		d := day.AddDate(0, 0, i)
		if !s.runsOn(d) {
			continue
		}
		at := wallClock(d.Year(), d.Month(), d.Day(), hour, minute, loc)
		if at.After(after) {
			return at
		}
	}
	return time.Time{}
}

// runsOn reports whether s runs on the calendar day d (a UTC date standing for the local one).
func (s Schedule) runsOn(d time.Time) bool {
	switch s.Frequency {
	case Daily:
		return true
	case Weekly:
		return d.Weekday() == weekdays[s.Weekday]
	case Quarterly:
		if (d.Month()-1)%3 != 0 {
			return false
		}
		fallthrough
	case Monthly:
		last := time.Date(d.Year(), d.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
		return d.Day() == min(s.Day, last)
	}
	return false
}

// wallClock is the instant the clocks of loc show y-m-d hh:mm, the first one when they
// show it twice, and the same distance past the change when they skip it.
func wallClock(y int, m time.Month, d, hh, mm int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, hh, mm, 0, 0, loc)
	if l := t.In(loc); l.Hour() != hh || l.Minute() != mm {
		// Skipped by a change: read the clock with the offset in force before it.
		_, before := time.Date(y, m, d-1, 12, 0, 0, 0, loc).Zone()
		return time.Date(y, m, d, hh, mm, 0, 0, time.FixedZone("", before))
	}
	// Go may pick the later of two occurrences; an earlier one is at most a few hours before.
	for _, back := range []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour} {
		e := t.Add(-back)
		if l := e.In(loc); l.Hour() == hh && l.Minute() == mm && l.Day() == d {
			return e
		}
	}
	return t
}

// Describe says when s runs, for people: "weekly on Monday at 06:00 Europe/Berlin".
func (s Schedule) Describe() string {
	s = s.Normalize()
	switch s.Frequency {
	case Weekly:
		return fmt.Sprintf("weekly on %s at %s %s", strings.ToUpper(s.Weekday[:1])+s.Weekday[1:], s.Time, s.TimeZone)
	case Monthly, Quarterly:
		day := fmt.Sprintf("day %d", s.Day)
		if s.Day == LastDay {
			day = "the last day"
		}
		return fmt.Sprintf("%s on %s at %s %s", s.Frequency, day, s.Time, s.TimeZone)
	}
	return fmt.Sprintf("%s at %s %s", s.Frequency, s.Time, s.TimeZone)
}
