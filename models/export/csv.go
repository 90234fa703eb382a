// Package export holds the streaming writers behind every download of events: reports, the
// events explorer's "export this view" and GDPR exports all write through it, so a cell is
// neutralized the same way everywhere. It imports nothing of ours.
package export

import (
	"bufio"
	"encoding/csv"
	"io"
	"strconv"
	"strings"
)

// CSV writes RFC 4180 records (CRLF line ends, quotes where needed) in UTF-8, one row at a
// time, so memory stays flat whatever the number of rows. Every cell a spreadsheet would read
// as a formula is neutralized first (see Neutralize).
type CSV struct {
	buf  *bufio.Writer
	w    *csv.Writer
	cell []string
	rows int
}

// flushEvery is how many rows go out before the writer pushes its buffer to the reader, so a
// streamed download makes progress instead of arriving in one piece at the end.
const flushEvery = 256

// NewCSV returns a writer to w. Call Flush when done.
func NewCSV(w io.Writer) *CSV {
	buf := bufio.NewWriterSize(w, 64<<10)
	cw := csv.NewWriter(buf)
	cw.UseCRLF = true
	return &CSV{buf: buf, w: cw}
}

// Write writes one row, neutralizing each cell.
func (c *CSV) Write(row []string) error {
	if cap(c.cell) < len(row) {
		c.cell = make([]string, len(row))
	}
	cells := c.cell[:len(row)]
	for i, v := range row {
		cells[i] = Neutralize(v)
	}
	if err := c.w.Write(cells); err != nil {
		return err
	}
	c.rows++
	if c.rows%flushEvery == 0 {
		return c.Flush()
	}
	return nil
}

// Rows is how many rows were written, header included.
func (c *CSV) Rows() int { return c.rows }

// Flush pushes everything written so far to the underlying writer.
func (c *CSV) Flush() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.buf.Flush()
}

// Neutralize makes a cell safe to open in a spreadsheet: a value starting with = + - @, a tab
// or a carriage return would be read as a formula (CSV injection), so it gets a leading
// apostrophe, which spreadsheets show as text and do not evaluate. Plain numbers such as
// "-12.5" are left as they are; they are not formulas.
func Neutralize(v string) string {
	if v == "" {
		return v
	}
	switch v[0] {
	case '=', '+', '-', '@', '\t', '\r':
		if _, err := strconv.ParseFloat(v, 64); err == nil && !strings.ContainsAny(v, "\t\r") {
			return v
		}
		return "'" + v
	}
	return v
}
