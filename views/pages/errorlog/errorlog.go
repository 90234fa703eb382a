// Package errorlog renders the error log: the server's own errors grouped by fingerprint,
// each with a 7-day trend, and a page per fingerprint with its samples and occurrences.
package errorlog

import (
	"strconv"
	"strings"
	"time"
)

// Row is one fingerprint in the list.
type Row struct {
	Href      string
	Kind      string
	Component string
	Operation string
	Title     string // the normalized message
	Sample    string // the newest message as it was
	Org       string // shown to superadmins only
	Count     int
	LastSeen  time.Time
	FirstSeen time.Time
	Trend     Trend
}

// Trend is the occurrences per day over the last seven days, oldest first.
type Trend struct {
	Days []Day
}

// Day is one bar of a trend.
type Day struct {
	Label string // "2026-11-29"
	Count int
}

// ListProps is the view model of /errors.
type ListProps struct {
	// AllOrgs is true for a superadmin: every organization's errors and the server's own.
	AllOrgs bool
	Rows    []Row
}

// Occurrence is one recorded error of a fingerprint.
type Occurrence struct {
	When      time.Time
	Org       string
	Code      string
	Message   string
	RequestID string
	UserID    string
}

// DetailProps is the view model of /errors/{key}.
type DetailProps struct {
	AllOrgs     bool
	Row         Row
	Samples     []string
	Occurrences []Occurrence
}

// total is the sum of the trend's days.
func (t Trend) total() int {
	n := 0
	for _, d := range t.Days {
		n += d.Count
	}
	return n
}

func (t Trend) max() int {
	m := 0
	for _, d := range t.Days {
		m = max(m, d.Count)
	}
	return m
}

// summary is the trend as a sentence, for screen readers and the SVG's title.
func (t Trend) summary() string {
	parts := make([]string, len(t.Days))
	for i, d := range t.Days {
		parts[i] = d.Label + ": " + strconv.Itoa(d.Count)
	}
	return strconv.Itoa(t.total()) + " in the last 7 days (" + strings.Join(parts, ", ") + ")"
}

// bar is one rectangle of a bar chart.
type bar struct {
	X, Y, W, H string
	Title      string
}

// bars lays the trend out as bars in a width × height box, the tallest day full height;
// a day with errors is at least 2 units tall so it never disappears.
func (t Trend) bars(width, height float64) []bar {
	n := len(t.Days)
	if n == 0 {
		return nil
	}
	slot := width / float64(n)
	m := t.max()
	out := make([]bar, n)
	for i, d := range t.Days {
		h := 0.0
		if m > 0 && d.Count > 0 {
			h = max(2, height*float64(d.Count)/float64(m))
		}
		out[i] = bar{X: num(float64(i)*slot + slot*0.15), Y: num(height - h), W: num(slot * 0.7), H: num(h),
			Title: d.Label + ": " + strconv.Itoa(d.Count)}
	}
	return out
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// KindLabel is how a kind of error reads.
func KindLabel(kind string) string {
	switch kind {
	case "http":
		return "5xx answer"
	case "panic":
		return "panic"
	case "job":
		return "failed job"
	case "dead_letter":
		return "dead letter"
	case "delivery":
		return "failed delivery"
	}
	return kind
}
