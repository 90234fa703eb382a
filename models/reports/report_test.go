package reports_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/pgtest"
	"auditdb/models/reports"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// tricky is event text a report must carry through every format untouched in meaning:
// a spreadsheet formula, HTML, right-to-left scripts and emoji.
const tricky = `=HYPERLINK("x") <b>bold</b> שלום مرحبا 😀👍`

type ev struct {
	at                      time.Time
	principal, action       string
	status, class           string
	resType, resID, outcome string
}

// writeEvents seals and writes evs for org with one COPY.
func writeEvents(t *testing.T, org string, evs []ev) {
	t.Helper()
	db := pgtest.DB(t)
	sealer := pgtest.Sealer(t)
	out := make([]models.Event, len(evs))
	for i, e := range evs {
		p, rt, ri, oc := e.principal, e.resType, e.resID, e.outcome
		out[i] = models.Event{OrganizationID: org, Timestamp: e.at, Action: e.action, Status: e.status,
			DataClassification: e.class, RetentionPolicy: "standard", EventVersion: "1.0", PrincipalID: &p,
			Details: []byte(`{"ip":"10.0.0.1"}`)}
		if rt != "" {
			out[i].TargetResourceType, out[i].TargetResourceID = &rt, &ri
		}
		if oc != "" {
			out[i].OutcomeDescription = &oc
		}
		if err := sealer.Seal(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ingest.CopyEvents(context.Background(), db, models.NewPartitionManager(db), out); err != nil {
		t.Fatal(err)
	}
}

// fixture writes a small, known history: 3 PHI reads by dr-a (one failed), 2 FHIR Patient
// reads by dr-b of patient pat-1, 1 INTERNAL login by admin carrying the tricky text, and
// 120 PHI reads by bulk (a high-volume principal), all in the last week.
func fixture(t *testing.T, org string, now time.Time) {
	day := now.Add(-48 * time.Hour)
	evs := []ev{
		{day, "dr-a", "data.read", "success", "PHI", "Observation", "obs-1", "Viewed results"},
		{day.Add(time.Minute), "dr-a", "data.read", "success", "PHI", "Observation", "obs-2", "Viewed results"},
		{day.Add(2 * time.Minute), "dr-a", "data.read", "failure", "PHI", "Observation", "obs-3", "Access denied to obs-3"},
		{day.Add(3 * time.Minute), "dr-b", "fhir.read", "success", "CONFIDENTIAL", "Patient", "pat-1", "Viewed patient chart"},
		{day.Add(4 * time.Minute), "dr-b", "fhir.read", "success", "CONFIDENTIAL", "Patient", "pat-1", "Viewed patient chart again"},
		{day.Add(5 * time.Minute), "admin", "auth.login.success", "success", "INTERNAL", "", "", tricky},
	}
	for i := range 120 {
		evs = append(evs, ev{now.Add(-24*time.Hour + time.Duration(i)*time.Second), "bulk", "data.export", "success", "PHI",
			"Observation", "obs-bulk", "Bulk export"})
	}
	writeEvents(t, org, evs)
}

func TestCriteriaRefusals(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	from, to := reports.LastDays(now, 0)
	ok := reports.Criteria{Type: reports.TypeGeneral, From: from, To: to}
	if err := ok.Validate(); err != nil {
		t.Fatalf("the default period was refused: %v", err)
	}
	if got := to.Sub(from); got != 30*24*time.Hour {
		t.Fatalf("default period = %v, want 30 days", got)
	}
	cases := []struct {
		name  string
		edit  func(*reports.Criteria)
		field string
	}{
		{"unknown type", func(c *reports.Criteria) { c.Type = "SOX" }, "type"},
		{"end before start", func(c *reports.Criteria) { c.To = c.From.Add(-time.Hour) }, "to"},
		{"empty period", func(c *reports.Criteria) { c.To = c.From }, "to"},
		{"over five years", func(c *reports.Criteria) { c.From = c.To.AddDate(-5, 0, -1) }, "to"},
		{"bad status", func(c *reports.Criteria) { c.Status = "maybe" }, "status"},
		{"patient access without patient", func(c *reports.Criteria) { c.Type = reports.TypePatientAccess }, "patient"},
		{"patient with NUL", func(c *reports.Criteria) { c.Type = reports.TypePatientAccess; c.Patient = "a\x00b" }, "patient"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			var me *models.Error
			if !asModelErr(err, &me) || me.Kind != models.KindInvalid || me.Field != tc.field {
				t.Fatalf("Validate() = %v, want invalid %s", err, tc.field)
			}
		})
	}
	five := ok
	five.From = five.To.AddDate(-5, 0, 0)
	if err := five.Validate(); err != nil {
		t.Fatalf("exactly five years was refused: %v", err)
	}
	for _, bad := range [][]string{nil, {"docx"}, {"csv", "csv"}} {
		if err := reports.ValidFormats("formats", bad); models.KindOf(err) != models.KindInvalid {
			t.Errorf("formats %v: %v, want invalid", bad, err)
		}
	}
}

func asModelErr(err error, me **models.Error) bool {
	e, ok := err.(*models.Error)
	*me = e
	return ok
}

func TestHIPAAReport(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	org, other := pgtest.NewOrg(t, "a"), pgtest.NewOrg(t, "b")
	now := time.Now().UTC()
	fixture(t, org, now)
	fixture(t, other, now) // another organization's identical history must not count
	from, to := reports.LastDays(now.Add(time.Minute), 7)
	r, err := reports.NewGenerator(db).Build(ctx, org, reports.Criteria{Type: reports.TypeHIPAA, From: from, To: to}, now)
	if err != nil {
		t.Fatal(err)
	}
	// PHI: 3 by dr-a, 120 by bulk; FHIR clinical: 2 Patient reads by dr-b. The login is not PHI.
	if r.Events != 125 {
		t.Fatalf("events = %d, want 125", r.Events)
	}
	if got := pair(r.Summary, "Failures"); got != "1" {
		t.Errorf("failures = %s, want 1", got)
	}
	byPrincipal := section(t, r, "Access to PHI by principal")
	if len(byPrincipal.Rows) != 3 {
		t.Fatalf("principals = %v", byPrincipal.Rows)
	}
	top := byPrincipal.Rows[0].Cells
	if top[0] != "bulk" || top[1] != "120" || top[4] != "yes" {
		t.Errorf("top principal row = %v, want bulk 120 flagged high-volume", top)
	}
	if c := byPrincipal.Rows[1].Cells; c[0] != "dr-a" || c[4] != "no" {
		t.Errorf("second principal row = %v, want dr-a not flagged", c)
	}
	failed := section(t, r, "Failed access to PHI")
	if len(failed.Rows) != 1 || failed.Rows[0].Cells[4] != "Access denied to obs-3" {
		t.Errorf("failures table = %v", failed.Rows)
	}
	var total int64
	for _, d := range r.Days {
		total += d.Events
	}
	if total != 125 || len(r.Days) != 2 {
		t.Errorf("days = %v, want 125 events over 2 days", r.Days)
	}
}

func pair(ps []reports.Pair, name string) string {
	for _, p := range ps {
		if p.Name == name {
			return p.Value
		}
	}
	return "<missing " + name + ">"
}

func section(t *testing.T, r *reports.Report, title string) reports.Section {
	t.Helper()
	for _, s := range r.Sections {
		if s.Title == title {
			return s
		}
	}
	t.Fatalf("no section %q", title)
	return reports.Section{}
}

func TestOtherTypes(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	org := pgtest.NewOrg(t, "a")
	now := time.Now().UTC()
	fixture(t, org, now)
	from, to := reports.LastDays(now.Add(time.Minute), 7)
	gen := reports.NewGenerator(db)
	cases := []struct {
		c       reports.Criteria
		events  int64
		section string
		want    string
	}{
		{reports.Criteria{Type: reports.TypeGeneral}, 126, "Top actions", "data.export"},
		{reports.Criteria{Type: reports.TypeGDPR}, 126, "Data-subject requests", "not built yet"},
		{reports.Criteria{Type: reports.TypeIntegrity}, 126, "Integrity summary", "Latest sweep"},
		{reports.Criteria{Type: reports.TypePatientAccess, Filters: reports.Filters{Patient: "pat-1"}}, 2,
			"Every access to the patient's records", "Viewed patient chart again"},
		{reports.Criteria{Type: reports.TypeGeneral, Filters: reports.Filters{Principal: "dr-a", Status: "failure"}}, 1,
			"Top principals", "dr-a"},
	}
	for _, tc := range cases {
		t.Run(tc.c.Type, func(t *testing.T) {
			tc.c.From, tc.c.To = from, to
			r, err := gen.Build(ctx, org, tc.c, now)
			if err != nil {
				t.Fatal(err)
			}
			if r.Events != tc.events {
				t.Fatalf("events = %d, want %d", r.Events, tc.events)
			}
			s := section(t, r, tc.section)
			blob, _ := json.Marshal(s)
			if !strings.Contains(string(blob), tc.want) {
				t.Errorf("section %s = %s, want %q in it", tc.section, blob, tc.want)
			}
		})
	}
}

func TestEmptyPeriodIsAValidReport(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	org := pgtest.NewOrg(t, "a")
	now := time.Now().UTC()
	from, to := reports.LastDays(now, 30)
	r, err := reports.NewGenerator(db).Build(ctx, org, reports.Criteria{Type: reports.TypeHIPAA, From: from, To: to}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Empty || r.Events != 0 || !strings.Contains(pair(r.Summary, "Note"), "empty") {
		t.Fatalf("empty report = %+v", r.Summary)
	}
	var buf bytes.Buffer
	n, err := reports.WriteCSV(ctx, db, org, r.CriteriaUsed(), &buf, nil)
	if err != nil || n != 0 {
		t.Fatalf("csv: %d, %v", n, err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(recs) != 1 {
		t.Fatalf("csv of an empty report = %v, %v; want the header alone", recs, err)
	}
	text := pdfText(t, r)
	if !strings.Contains(text, "complete and empty") {
		t.Errorf("pdf of an empty report lacks its note:\n%s", text)
	}
}

func TestFormats(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	org := pgtest.NewOrg(t, "a")
	now := time.Now().UTC()
	fixture(t, org, now)
	from, to := reports.LastDays(now.Add(time.Minute), 7)
	r, err := reports.NewGenerator(db).Build(ctx, org, reports.Criteria{Type: reports.TypeGeneral, From: from, To: to}, now)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("csv round-trips and neutralizes formulas", func(t *testing.T) {
		var buf bytes.Buffer
		n, err := reports.WriteCSV(ctx, db, org, r.CriteriaUsed(), &buf, nil)
		if err != nil || n != 126 {
			t.Fatalf("WriteCSV = %d, %v", n, err)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 127 || strings.Join(recs[0], ",") != strings.Join(reports.CSVHeader, ",") {
			t.Fatalf("rows = %d, header %v", len(recs), recs[0])
		}
		var found bool
		for _, rec := range recs[1:] {
			if rec[2] == "admin" {
				found = true
				if rec[8] != "'"+tricky {
					t.Errorf("outcome cell = %q, want the neutralized %q", rec[8], "'"+tricky)
				}
			}
			if _, err := time.Parse(time.RFC3339Nano, rec[1]); err != nil {
				t.Errorf("timestamp %q: %v", rec[1], err)
			}
		}
		if !found {
			t.Error("the admin's login is missing from the CSV")
		}
	})

	t.Run("pdf text", func(t *testing.T) {
		raw := pdfText(t, r)
		// Arabic is drawn shaped: its letters are joined presentation forms (meem initial,
		// reh final, hah initial, beh medial, alef final), which read as the plain word
		// after compatibility normalization.
		if !strings.Contains(raw, "\uFEE3\uFEAE\uFEA3\uFE92\uFE8E") {
			t.Errorf("pdf text lacks the joined forms of مرحبا")
		}
		text := norm.NFKC.String(raw)
		for _, want := range []string{"General compliance", org, "Events per day", "Top actions", "data.export",
			"Integrity summary", "Page 1 of", "Viewed patient chart again", "שלום", "مرحبا", "<b>bold</b>"} {
			if !strings.Contains(text, want) {
				t.Errorf("pdf text lacks %q", want)
				if os.Getenv("DUMP") != "" {
					t.Log(text)
				}
			}
		}
		// The summary's total, as its own line of the summary table.
		if !strings.Contains(text, "Events") || !strings.Contains(text, "126") {
			t.Errorf("pdf text lacks the total 126")
		}
	})

	t.Run("json and xml", func(t *testing.T) {
		var j bytes.Buffer
		if err := reports.WriteJSON(r, &j); err != nil {
			t.Fatal(err)
		}
		var back struct {
			Events   int64 `json:"events"`
			Sections []struct {
				Title string `json:"title"`
			} `json:"sections"`
		}
		if err := json.Unmarshal(j.Bytes(), &back); err != nil || back.Events != 126 || len(back.Sections) == 0 {
			t.Fatalf("json = %+v, %v", back, err)
		}
		var x bytes.Buffer
		if err := reports.WriteXML(r, &x); err != nil {
			t.Fatal(err)
		}
		var xb struct {
			Events int64  `xml:"events"`
			Type   string `xml:"type"`
		}
		if err := xml.Unmarshal(x.Bytes(), &xb); err != nil || xb.Events != 126 || xb.Type != reports.TypeGeneral {
			t.Fatalf("xml = %+v, %v", xb, err)
		}
	})
}

// pdfText renders r as a PDF and returns pdftotext's reading of it.
func pdfText(t *testing.T, r *reports.Report) string {
	t.Helper()
	var buf bytes.Buffer
	pages, err := reports.WritePDF(context.Background(), pgtest.DB(t), r, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if pages < 2 {
		t.Errorf("pages = %d, want a cover and more", pages)
	}
	path := filepath.Join(t.TempDir(), "r.pdf")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-layout", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}
