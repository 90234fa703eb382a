package dashboard

import (
	"strconv"

	"auditdb/views/components"
)

// Colours shared by every chart: the same meaning has the same colour across the console.
const (
	ColourEvents   = "#2563eb" // blue-600: events that did not fail
	ColourFailures = "#dc2626" // red-600: failures
)

// SeverityColour is the console's colour of an alert severity (CRITICAL red, HIGH orange,
// MEDIUM amber, LOW slate).
func SeverityColour(severity string) string {
	switch severity {
	case "CRITICAL":
		return "#dc2626"
	case "HIGH":
		return "#ea580c"
	case "MEDIUM":
		return "#d97706"
	default:
		return "#64748b"
	}
}

// Point is one bar of a chart: its full label (the tooltip and the table), the short label
// under the axis ("" for none) and its counts.
type Point struct {
	Label, Short     string
	Events, Failures int64
}

// Bar is one bar drawn: the part without failures on top of the failures, in SVG units.
type Bar struct {
	X, W           string
	OkY, OkH       string // events without failure
	FailY, FailH   string // failures, at the bottom
	Title          string // "2026-11-29 14:00 UTC: 120 events, 3 failures"
	Label          string // short axis label, "" for none
	LabelX, LabelY string
}

// Tick is one labelled value on the y axis.
type Tick struct {
	Y, LabelY string
	Label     string
}

// Row is one row of a chart's table fallback, formatted.
type Row struct {
	Label, Events, Failures string
}

// Chart is a server-drawn bar chart of events with failures, with its accessible title,
// description and table fallback.
type Chart struct {
	ID          string // prefix of element ids and data-testid
	Title       string
	Description string // the totals in words, for screen readers
	Width       int
	Height      int
	PlotLeft    string // x of the y axis
	PlotRight   string
	Baseline    string // y of the x axis
	Bars        []Bar
	Ticks       []Tick
	Rows        []Row
}

// ViewBox is the SVG viewBox attribute.
func (c Chart) ViewBox() string {
	return "0 0 " + strconv.Itoa(c.Width) + " " + strconv.Itoa(c.Height)
}

// Chart geometry, in SVG units.
const (
	chartWidth  = 480
	chartHeight = 200
	marginLeft  = 44
	marginRight = 20
	marginTop   = 10
	marginBot   = 24
)

// NewChart lays out points as a bar chart; description says what it shows in words.
func NewChart(id, title, description string, points []Point) Chart {
	c := Chart{ID: id, Title: title, Description: description, Width: chartWidth, Height: chartHeight,
		PlotLeft: f(marginLeft), PlotRight: f(chartWidth - marginRight), Baseline: f(chartHeight - marginBot)}
	var peak int64
	for _, p := range points {
		peak = max(peak, p.Events)
	}
	top := niceCeil(peak)
	plotH := float64(chartHeight - marginTop - marginBot)
	base := float64(chartHeight - marginBot)
	scale := func(n int64) float64 { return float64(n) / float64(top) * plotH }
	for _, v := range []int64{0, top / 2, top} {
		if v == top/2 && top%2 != 0 {
			continue
		}
		y := base - scale(v)
		c.Ticks = append(c.Ticks, Tick{Y: f(y), LabelY: f(y + 4), Label: Compact(v)})
	}
	if len(points) == 0 {
		return c
	}
	slot := float64(chartWidth-marginLeft-marginRight) / float64(len(points))
	w := slot * 0.72
	for i, p := range points {
		x := float64(marginLeft) + float64(i)*slot + (slot-w)/2
		failH := scale(p.Failures)
		okH := scale(p.Events - p.Failures)
		c.Bars = append(c.Bars, Bar{
			X: f(x), W: f(w),
			FailY: f(base - failH), FailH: f(failH),
			OkY: f(base - failH - okH), OkH: f(okH),
			Title: p.Label + ": " + Plural(p.Events, "event") + ", " + Plural(p.Failures, "failure"),
			Label: p.Short, LabelX: f(x + w/2), LabelY: f(base + 17),
		})
		c.Rows = append(c.Rows, Row{Label: p.Label, Events: Thousands(p.Events), Failures: Thousands(p.Failures)})
	}
	return c
}

// niceCeil, f, Thousands, Compact and Plural are the console's shared chart functions
// (views/components), under the names this package's charts use.
func niceCeil(n int64) int64 { return components.NiceCeil(n) }

func f(v float64) string { return components.SVGNum(v) }

// Thousands formats n with separators: 1,234,567.
func Thousands(n int64) string { return components.Thousands(n) }

// Compact formats n for an axis: 950, 1.2k, 3M.
func Compact(n int64) string { return components.Compact(n) }

// Plural is "1 event" or "3 events", with separators.
func Plural(n int64, noun string) string { return components.Plural(n, noun) }
