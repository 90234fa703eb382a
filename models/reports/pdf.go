package reports

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-pdf/fpdf"
	"golang.org/x/text/unicode/bidi"
	"gorm.io/gorm"
)

// DejaVu Sans (fonts/LICENSE), embedded so a clean build renders Unicode text: Latin,
// Greek, Cyrillic, Hebrew, Arabic letters and many symbols.
var (
	//go:embed fonts/DejaVuSans.ttf
	fontRegular []byte
	//go:embed fonts/DejaVuSans-Bold.ttf
	fontBold []byte
)

// MaxPDFRows is how many events the PDF's event table lists at most; the CSV lists every
// one, and the PDF says so when it stops short.
const MaxPDFRows = 20000

const fontFamily = "DejaVu"

// pdfText makes s safe for the PDF's font and layout: characters outside the Basic
// Multilingual Plane (most emoji), private-use and control characters become U+FFFD, which
// the font draws as a replacement glyph, invalid UTF-8 is repaired the same way, and text
// with right-to-left letters is put in visual order (the Unicode bidirectional algorithm),
// since the PDF library draws left to right. Arabic letters are first put in their
// contextual presentation forms (shapeArabic), so words are drawn joined.
func pdfText(s string) string {
	return visual(shapeArabic(safeRunes(s)))
}

// visual reorders s for drawing left to right when it holds right-to-left letters.
func visual(s string) string {
	rtl := false
	for _, r := range s {
		if unicode.In(r, unicode.Hebrew, unicode.Arabic, unicode.Syriac, unicode.Thaana, unicode.Nko) {
			rtl = true
			break
		}
	}
	if !rtl {
		return s
	}
	var p bidi.Paragraph
	if _, err := p.SetString(s, bidi.DefaultDirection(bidi.LeftToRight)); err != nil {
		return s
	}
	o, err := p.Order()
	if err != nil {
		return s
	}
	var b strings.Builder
	for i := range o.NumRuns() {
		run := o.Run(i)
		if run.Direction() == bidi.RightToLeft {
			b.WriteString(bidi.ReverseString(run.String()))
		} else {
			b.WriteString(run.String())
		}
	}
	return b.String()
}

func safeRunes(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r > 0xFFFF || unicode.Is(unicode.Co, r) || unicode.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			b.WriteRune(' ')
		case r > 0xFFFF || unicode.Is(unicode.Co, r) || unicode.IsControl(r):
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// pdfDoc is a report's PDF being written: the document and the table whose header repeats
// at the top of every page it runs over.
type pdfDoc struct {
	pdf     *fpdf.Fpdf
	columns []string
	widths  []float64
}

const (
	pageW, margin = 297.0, 12.0 // A4 landscape, millimetres
	rowH          = 5.0
)

func newPDFDoc(r *Report) *pdfDoc {
	d := &pdfDoc{pdf: fpdf.New("L", "mm", "A4", "")}
	p := d.pdf
	p.SetMargins(margin, margin, margin)
	p.SetAutoPageBreak(true, 15)
	p.AddUTF8FontFromBytes(fontFamily, "", fontRegular)
	p.AddUTF8FontFromBytes(fontFamily, "B", fontBold)
	p.AliasNbPages("{nb}")
	p.SetTitle(pdfText(r.Title+" — "+r.Organization), true)
	p.SetCreator("auditdb", true)
	p.SetHeaderFunc(func() {
		if p.PageNo() == 1 {
			return
		}
		p.SetFont(fontFamily, "", 8)
		p.SetTextColor(100, 100, 100)
		p.CellFormat(0, 5, pdfText(fmt.Sprintf("%s · %s · %s to %s", r.Title, r.Organization,
			r.From.Format("2006-01-02"), r.To.Format("2006-01-02"))), "", 1, "L", false, 0, "")
		p.SetTextColor(0, 0, 0)
		if d.columns != nil {
			d.header()
		}
	})
	p.SetFooterFunc(func() {
		p.SetY(-12)
		p.SetFont(fontFamily, "", 8)
		p.CellFormat(0, 5, fmt.Sprintf("Page %d of {nb}", p.PageNo()), "", 0, "C", false, 0, "")
	})
	return d
}

// header draws the current table's column header.
func (d *pdfDoc) header() {
	p := d.pdf
	p.SetFont(fontFamily, "B", 8)
	p.SetFillColor(230, 230, 235)
	for i, c := range d.columns {
		p.CellFormat(d.widths[i], rowH+1, d.fit(c, d.widths[i]), "1", 0, "L", true, 0, "")
	}
	p.Ln(-1)
	p.SetFont(fontFamily, "", 8)
}

// startTable begins a table: its header now and on every page it runs over.
func (d *pdfDoc) startTable(columns []string, widths []float64) {
	if d.pdf.GetY() > 180 {
		d.pdf.AddPage()
	}
	d.columns, d.widths = columns, widths
	d.header()
}

func (d *pdfDoc) endTable() {
	d.columns, d.widths = nil, nil
	d.pdf.Ln(4)
}

// row draws one row of the current table, each cell cut to its column.
func (d *pdfDoc) row(cells []string) {
	for i, w := range d.widths {
		v := ""
		if i < len(cells) {
			v = cells[i]
		}
		d.pdf.CellFormat(w, rowH, d.fit(pdfText(v), w), "1", 0, "L", false, 0, "")
	}
	d.pdf.Ln(-1)
}

// fit cuts s to what fits in width w (with an ellipsis), keeping whole characters.
func (d *pdfDoc) fit(s string, w float64) string {
	w -= 2
	if d.pdf.GetStringWidth(s) <= w {
		return s
	}
	runes := []rune(s)
	lo, hi := 0, len(runes)
	for lo < hi { // the longest prefix that fits with the ellipsis
		mid := (lo + hi + 1) / 2
		if d.pdf.GetStringWidth(string(runes[:mid])+"…") <= w {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return string(runes[:lo]) + "…"
}

func (d *pdfDoc) heading(s string) {
	p := d.pdf
	if p.GetY() > 175 {
		p.AddPage()
	}
	p.SetFont(fontFamily, "B", 12)
	p.CellFormat(0, 8, pdfText(s), "", 1, "L", false, 0, "")
	p.SetFont(fontFamily, "", 9)
}

func (d *pdfDoc) note(s string) {
	d.pdf.SetFont(fontFamily, "", 9)
	d.pdf.MultiCell(0, 5, pdfText(s), "", "L", false)
}

func (d *pdfDoc) pairs(ps []Pair) {
	d.startTable([]string{"", ""}, []float64{70, pageW - 2*margin - 70})
	d.columns = nil // a two-column list needs no repeated header
	for _, p := range ps {
		d.row([]string{p.Name, p.Value})
	}
	d.endTable()
}

// chart draws the events per day as bars, failures in red on top of the day's bar, with
// the axis labelled.
func (d *pdfDoc) chart(days []Day) {
	p := d.pdf
	if len(days) == 0 {
		d.note("Events per day: no events in the period.")
		return
	}
	if p.GetY() > 120 {
		p.AddPage()
	}
	d.heading("Events per day (UTC)")
	x0, y0, w, h := margin+15, p.GetY()+2, pageW-2*margin-20, 55.0
	var peak int64 = 1
	for _, day := range days {
		peak = max(peak, day.Events)
	}
	p.SetDrawColor(120, 120, 120)
	p.Line(x0, y0+h, x0+w, y0+h)
	p.Line(x0, y0, x0, y0+h)
	p.SetFont(fontFamily, "", 7)
	for _, frac := range []float64{0, 0.5, 1} {
		y := y0 + h - frac*h
		p.Text(margin, y+1, strconv.FormatInt(int64(frac*float64(peak)), 10))
	}
	bw := w / float64(len(days))
	for i, day := range days {
		bh := h * float64(day.Events) / float64(peak)
		fh := h * float64(day.Failures) / float64(peak)
		x := x0 + float64(i)*bw
		p.SetFillColor(70, 110, 180)
		p.Rect(x+bw*0.1, y0+h-bh, bw*0.8, bh, "F")
		if fh > 0 {
			p.SetFillColor(200, 40, 40)
			p.Rect(x+bw*0.1, y0+h-fh, bw*0.8, fh, "F")
		}
	}
	step := max(1, len(days)/8)
	for i := 0; i < len(days); i += step {
		p.Text(x0+float64(i)*bw, y0+h+4, days[i].Day)
	}
	p.SetY(y0 + h + 7)
	p.SetFont(fontFamily, "", 8)
	p.SetFillColor(70, 110, 180)
	p.Rect(x0, p.GetY()+1, 3, 3, "F")
	p.Text(x0+4, p.GetY()+3.5, "events")
	p.SetFillColor(200, 40, 40)
	p.Rect(x0+25, p.GetY()+1, 3, 3, "F")
	p.Text(x0+29, p.GetY()+3.5, "failures")
	p.Ln(8)
}

// WritePDF writes the report as a PDF to w: a cover (organization, type, period,
// generation time), the criteria, the summary with the events-per-day chart, the tables,
// the integrity summary with the checkpoint it was checked against, and the events (at
// most MaxPDFRows, streamed from the database). It returns the number of pages.
func WritePDF(ctx context.Context, db *gorm.DB, r *Report, w io.Writer) (int, error) {
	return WritePDFRows(ctx, db, r, w, MaxPDFRows)
}

// WritePDFRows is WritePDF listing at most maxRows events.
func WritePDFRows(ctx context.Context, db *gorm.DB, r *Report, w io.Writer, maxRows int) (int, error) {
	d := newPDFDoc(r)
	p := d.pdf
	p.AddPage()
	p.SetFont(fontFamily, "B", 22)
	p.Ln(30)
	p.CellFormat(0, 12, pdfText(r.Title), "", 1, "C", false, 0, "")
	p.SetFont(fontFamily, "", 13)
	for _, line := range []string{
		"Organization: " + r.Organization,
		"Report type: " + r.Type,
		"Period: " + r.From.Format("2006-01-02 15:04:05 UTC") + " to " + r.To.Format("2006-01-02 15:04:05 UTC"),
		"Generated at: " + r.GeneratedAt.Format("2006-01-02 15:04:05 UTC"),
		fmt.Sprintf("Events: %d", r.Events),
	} {
		p.CellFormat(0, 9, pdfText(line), "", 1, "C", false, 0, "")
	}
	if r.Empty {
		p.Ln(6)
		p.CellFormat(0, 9, "No events matched in this period: the report is complete and empty.", "", 1, "C", false, 0, "")
	}
	p.AddPage()
	d.heading("Criteria")
	d.pairs(r.Criteria)
	d.heading("Summary")
	d.pairs(r.Summary)
	d.chart(r.Days)
	for _, s := range r.Sections {
		d.heading(s.Title)
		if s.Note != "" {
			d.note(s.Note)
		}
		if len(s.Rows) == 0 {
			continue
		}
		d.startTable(s.Columns, spread(len(s.Columns)))
		for _, row := range s.Rows {
			d.row(row.Cells)
		}
		d.endTable()
	}
	d.heading("Integrity summary")
	d.note(r.Integrity.Note)
	d.pairs(integritySection(r.Integrity).pairs())

	d.heading("Events")
	if r.Empty {
		d.note("No events in the period.")
	} else {
		widths := []float64{14, 32, 34, 34, 22, 26, 14, 20, 77}
		d.startTable([]string{"Id", "Time (UTC)", "Principal", "Action", "Resource type", "Resource id", "Status",
			"Classification", "Outcome"}, widths)
		var shown int64
		c := r.criteria
		_, err := StreamEvents(ctx, db, r.Organization, c, func(cells []string) error {
			if shown >= int64(maxRows) {
				return errEnough
			}
			shown++
			d.row([]string{cells[0], strings.Replace(cells[1][:min(19, len(cells[1]))], "T", " ", 1), cells[2], cells[3],
				cells[4], cells[5], cells[6], cells[7], cells[8]})
			return nil
		})
		if err != nil && !errorsIsEnough(err) {
			return 0, err
		}
		d.endTable()
		if r.Events > shown {
			d.note(fmt.Sprintf("The PDF lists the first %d of %d events; the CSV lists every one.", shown, r.Events))
		}
	}
	if err := p.Error(); err != nil {
		return 0, fmt.Errorf("reports: pdf: %w", err)
	}
	pages := p.PageCount()
	if err := p.Output(w); err != nil {
		return 0, fmt.Errorf("reports: pdf: %w", err)
	}
	return pages, nil
}

func (s Section) pairs() []Pair {
	out := make([]Pair, 0, len(s.Rows))
	for _, r := range s.Rows {
		out = append(out, Pair{r.Cells[0], r.Cells[1]})
	}
	return out
}

// spread divides the page's width among n columns, the first one wider.
func spread(n int) []float64 {
	total := pageW - 2*margin
	if n == 1 {
		return []float64{total}
	}
	first := total * 0.3
	out := []float64{first}
	for i := 1; i < n; i++ {
		out = append(out, (total-first)/float64(n-1))
	}
	return out
}

// errEnough stops the PDF's event stream once MaxPDFRows are drawn.
var errEnough = errors.New("reports: enough rows")

func errorsIsEnough(err error) bool { return errors.Is(err, errEnough) }
