package components

import (
	"math"
	"strconv"
	"strings"
)

// Chart functions shared by every server-drawn SVG chart of the console (the dashboard's bar
// charts, the performance page's line charts): scales, number formats and the line chart.

// NiceCeil is the smallest 1, 2 or 5 × 10^k at or above n (at least 1).
func NiceCeil(n int64) int64 {
	if n <= 1 {
		return 1
	}
	mag := int64(math.Pow(10, math.Floor(math.Log10(float64(n)))))
	for _, m := range []int64{1, 2, 5, 10} {
		if m*mag >= n {
			return m * mag
		}
	}
	return 10 * mag
}

// NiceCeilFloat is NiceCeil for fractional values: the smallest 1, 2 or 5 × 10^k at or
// above v (k may be negative); 1 for v ≤ 0.
func NiceCeilFloat(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= v*(1-1e-12) {
			return m * mag
		}
	}
	return 10 * mag
}

// SVGNum formats an SVG coordinate with one decimal.
func SVGNum(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// Thousands formats n with separators: 1,234,567.
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := ""
	if n < 0 {
		neg, s = "-", s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return neg + s
}

// Compact formats n for an axis: 950, 1.2k, 3M.
func Compact(n int64) string {
	switch {
	case n >= 1_000_000:
		return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64) + "M"
	case n >= 1_000:
		return strconv.FormatFloat(float64(n)/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatInt(n, 10)
}

// CompactFloat formats v for an axis: 0.05, 2.5, 950, 1.2k.
func CompactFloat(v float64) string {
	if v >= 1000 || v == math.Trunc(v) {
		return Compact(int64(math.Round(v)))
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// Plural is "1 event" or "3 events", with separators.
func Plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return Thousands(n) + " " + noun + "s"
}

// LineSeries is one line of a line chart: its name (the legend), colour and one value per
// label (NaN where there is none).
type LineSeries struct {
	Name, Colour string
	Values       []float64
}

// LineChart is a server-drawn line chart with its accessible title, description, legend
// and table fallback.
type LineChart struct {
	ID, Title, Description string
	Width, Height          int
	PlotLeft, PlotRight    string
	Baseline               string
	Ticks                  []ChartTick
	Lines                  []ChartLine
	XLabels                []ChartLabel
	Header                 []string // the table's column names after the label
	Rows                   []ChartRow
	Empty                  bool // no value at all
}

// ChartTick is one labelled value on the y axis.
type ChartTick struct{ Y, LabelY, Label string }

// ChartLine is one drawn series: the polyline's points.
type ChartLine struct{ Name, Colour, Points string }

// ChartLabel is one label under the x axis.
type ChartLabel struct{ X, Y, Label string }

// ChartRow is one row of the table fallback.
type ChartRow struct {
	Label  string
	Values []string
}

// ViewBox is the SVG viewBox attribute.
func (c LineChart) ViewBox() string {
	return "0 0 " + strconv.Itoa(c.Width) + " " + strconv.Itoa(c.Height)
}

// NewLineChart lays out series over labels (one per point, oldest first; short labels
// are drawn under the axis where non-empty). unit follows each value in the table.
func NewLineChart(id, title, unit string, labels, short []string, series []LineSeries) LineChart {
	const width, height, left, right, top, bottom = 480, 200, 52, 16, 10, 24
	c := LineChart{ID: id, Title: title, Width: width, Height: height, PlotLeft: SVGNum(left),
		PlotRight: SVGNum(width - right), Baseline: SVGNum(height - bottom)}
	peak := 0.0
	seen := false
	for _, s := range series {
		c.Header = append(c.Header, s.Name)
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				peak, seen = max(peak, v), true
			}
		}
	}
	c.Empty = !seen
	topV := NiceCeilFloat(peak)
	plotH := float64(height - top - bottom)
	base := float64(height - bottom)
	y := func(v float64) float64 { return base - v/topV*plotH }
	for _, v := range []float64{0, topV / 2, topV} {
		c.Ticks = append(c.Ticks, ChartTick{Y: SVGNum(y(v)), LabelY: SVGNum(y(v) + 4), Label: CompactFloat(v)})
	}
	n := len(labels)
	x := func(i int) float64 {
		if n <= 1 {
			return float64(left)
		}
		return float64(left) + float64(i)*float64(width-left-right)/float64(n-1)
	}
	for i, l := range short {
		if i < n && l != "" {
			c.XLabels = append(c.XLabels, ChartLabel{X: SVGNum(x(i)), Y: SVGNum(base + 17), Label: l})
		}
	}
	var desc []string
	for _, s := range series {
		var pts []string
		last := math.NaN()
		for i, v := range s.Values {
			if i >= n || math.IsNaN(v) {
				continue
			}
			pts = append(pts, SVGNum(x(i))+","+SVGNum(y(v)))
			last = v
		}
		c.Lines = append(c.Lines, ChartLine{Name: s.Name, Colour: s.Colour, Points: strings.Join(pts, " ")})
		if !math.IsNaN(last) {
			desc = append(desc, s.Name+" latest "+CompactFloat(last)+unit)
		}
	}
	for i, l := range labels {
		r := ChartRow{Label: l}
		for _, s := range series {
			v := "—"
			if i < len(s.Values) && !math.IsNaN(s.Values[i]) {
				v = strconv.FormatFloat(s.Values[i], 'f', -1, 64) + unit
			}
			r.Values = append(r.Values, v)
		}
		c.Rows = append(c.Rows, r)
	}
	c.Description = title + ": " + strconv.Itoa(n) + " reports"
	if len(desc) > 0 {
		c.Description += "; " + strings.Join(desc, ", ")
	}
	return c
}
