package reports_test

import (
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/reports"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestScheduleNext(t *testing.T) {
	ny, berlin := "America/New_York", "Europe/Berlin"
	cases := []struct {
		name  string
		s     reports.Schedule
		after string
		want  string
	}{
		{"daily, later the same day", reports.Schedule{Frequency: "daily", Time: "06:00", TimeZone: "UTC"},
			"2026-11-29T05:59:59Z", "2026-11-29T06:00:00Z"},
		{"daily, at the very instant runs next day", reports.Schedule{Frequency: "daily", Time: "06:00", TimeZone: "UTC"},
			"2026-11-29T06:00:00Z", "2026-11-30T06:00:00Z"},
		{"daily 09:00 New York before spring forward (EST)", reports.Schedule{Frequency: "daily", Time: "09:00", TimeZone: ny},
			"2026-03-07T00:00:00Z", "2026-03-07T14:00:00Z"},
		{"daily 09:00 New York after spring forward (EDT)", reports.Schedule{Frequency: "daily", Time: "09:00", TimeZone: ny},
			"2026-03-07T14:00:00Z", "2026-03-08T13:00:00Z"},
		{"daily 02:30 New York on the skipped hour runs at 03:30 EDT", reports.Schedule{Frequency: "daily", Time: "02:30", TimeZone: ny},
			"2026-03-07T08:00:00Z", "2026-03-08T07:30:00Z"},
		{"daily 02:30 Berlin on the skipped hour runs at 03:30 CEST", reports.Schedule{Frequency: "daily", Time: "02:30", TimeZone: berlin},
			"2026-03-28T02:00:00Z", "2026-03-29T01:30:00Z"},
		{"daily 01:30 New York on the repeated hour: first occurrence (EDT)", reports.Schedule{Frequency: "daily", Time: "01:30", TimeZone: ny},
			"2026-11-01T04:00:00Z", "2026-11-01T05:30:00Z"},
		{"daily 01:30 New York: not again at the second occurrence", reports.Schedule{Frequency: "daily", Time: "01:30", TimeZone: ny},
			"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"},
		{"daily 02:30 Berlin on the repeated hour: first occurrence (CEST)", reports.Schedule{Frequency: "daily", Time: "02:30", TimeZone: berlin},
			"2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z"},
		{"weekly defaults to Monday", reports.Schedule{Frequency: "weekly", Time: "07:00", TimeZone: "UTC"},
			"2026-11-29T12:00:00Z", "2026-11-30T07:00:00Z"},
		{"weekly Sunday across fall back", reports.Schedule{Frequency: "weekly", Weekday: "Sunday", Time: "12:00", TimeZone: ny},
			"2026-10-26T00:00:00Z", "2026-11-01T17:00:00Z"},
		{"monthly 31 in February is the 28th", reports.Schedule{Frequency: "monthly", Day: 31, Time: "23:00", TimeZone: "UTC"},
			"2026-02-01T00:00:00Z", "2026-02-28T23:00:00Z"},
		{"monthly 31 after February's run is March 31", reports.Schedule{Frequency: "monthly", Day: 31, Time: "23:00", TimeZone: "UTC"},
			"2026-02-28T23:00:00Z", "2026-03-31T23:00:00Z"},
		{"monthly 31 in a leap February is the 29th", reports.Schedule{Frequency: "monthly", Day: 31, Time: "00:00", TimeZone: "UTC"},
			"2028-02-01T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"monthly 30 in April is the 30th", reports.Schedule{Frequency: "monthly", Day: 30, Time: "08:00", TimeZone: "UTC"},
			"2026-04-01T00:00:00Z", "2026-04-30T08:00:00Z"},
		{"monthly 15 local midnight Berlin is the 14th in UTC", reports.Schedule{Frequency: "monthly", Day: 15, Time: "00:00", TimeZone: berlin},
			"2026-01-01T00:00:00Z", "2026-01-14T23:00:00Z"},
		{"monthly across the year end", reports.Schedule{Frequency: "monthly", Day: 1, Time: "06:00", TimeZone: "UTC"},
			"2026-12-01T06:00:00Z", "2027-01-01T06:00:00Z"},
		{"quarterly 31 after January is April 30", reports.Schedule{Frequency: "quarterly", Day: 31, Time: "06:00", TimeZone: "UTC"},
			"2026-01-31T06:00:00Z", "2026-04-30T06:00:00Z"},
		{"quarterly from November is January", reports.Schedule{Frequency: "quarterly", Day: 1, Time: "06:00", TimeZone: "UTC"},
			"2026-11-29T00:00:00Z", "2027-01-01T06:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.s.Normalize().Validate(); err != nil {
				t.Fatal(err)
			}
			got := tc.s.Next(utc(tc.after))
			if want := utc(tc.want); !got.Equal(want) {
				t.Fatalf("Next(%s) = %s, want %s", tc.after, got.UTC().Format(time.RFC3339), tc.want)
			}
		})
	}
}

// Walking a daily schedule through a whole year runs it exactly once per local day,
// daylight-saving nights included.
func TestScheduleOncePerDay(t *testing.T) {
	for _, clock := range []string{"01:30", "02:30", "12:00"} {
		s := reports.Schedule{Frequency: "daily", Time: clock, TimeZone: "America/New_York"}
		ny, _ := time.LoadLocation("America/New_York")
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, ny)
		days := map[string]int{}
		for {
			at = s.Next(at)
			if at.In(ny).Year() != 2026 {
				break
			}
			days[at.In(ny).Format("2006-01-02")]++
		}
		if len(days) != 365 {
			t.Errorf("%s: runs on %d local days of 2026, want 365", clock, len(days))
		}
		for d, n := range days {
			if n != 1 {
				t.Errorf("%s: %d runs on %s", clock, n, d)
			}
		}
	}
}

func TestScheduleRefusals(t *testing.T) {
	cases := []struct {
		s     reports.Schedule
		field string
	}{
		{reports.Schedule{Frequency: "hourly", Time: "06:00"}, "frequency"},
		{reports.Schedule{Frequency: "weekly", Weekday: "funday", Time: "06:00"}, "weekday"},
		{reports.Schedule{Frequency: "monthly", Day: 0, Time: "06:00"}, "day"},
		{reports.Schedule{Frequency: "monthly", Day: 32, Time: "06:00"}, "day"},
		{reports.Schedule{Frequency: "quarterly", Day: -1, Time: "06:00"}, "day"},
		{reports.Schedule{Frequency: "daily", Time: "24:00"}, "time"},
		{reports.Schedule{Frequency: "daily", Time: "12:60"}, "time"},
		{reports.Schedule{Frequency: "daily", Time: "6:00"}, "time"},
		{reports.Schedule{Frequency: "daily", Time: "+1:00"}, "time"},
		{reports.Schedule{Frequency: "daily", Time: "ab:cd"}, "time"},
		{reports.Schedule{Frequency: "daily", Time: "06:00", TimeZone: "Mars/Olympus_Mons"}, "time_zone"},
		{reports.Schedule{Frequency: "daily", Time: "06:00", TimeZone: "../../etc/passwd"}, "time_zone"},
		{reports.Schedule{Frequency: "daily", Time: "06:00", TimeZone: "Local"}, "time_zone"},
	}
	for _, tc := range cases {
		err := tc.s.Normalize().Validate()
		var me *models.Error
		if !asModelErr(err, &me) || me.Field != tc.field {
			t.Errorf("%+v: %v, want invalid %s", tc.s, err, tc.field)
		}
		if !tc.s.Next(time.Now()).IsZero() {
			t.Errorf("%+v: an invalid schedule has a next run", tc.s)
		}
	}
}
