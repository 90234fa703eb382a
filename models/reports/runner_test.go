package reports_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/pgtest"
	"auditdb/models/reports"
)

func newRunner(t *testing.T) (*reports.Runner, *reports.Store) {
	t.Helper()
	db := pgtest.DB(t)
	trail := models.NewAuditTrail(db, pgtest.Sealer(t), models.NewPartitionManager(db))
	store := reports.NewStore(db, trail)
	r := reports.NewRunner(db, store, nil)
	t.Cleanup(r.Close)
	return r, store
}

var alice = models.Actor{UserID: 1, Email: "alice@example.com"}

func TestRunNowProducesStoredFiles(t *testing.T) {
	ctx := context.Background()
	runner, store := newRunner(t)
	org, other := pgtest.NewOrg(t, "a"), pgtest.NewOrg(t, "b")
	now := time.Now().UTC()
	fixture(t, org, now)
	tpl, err := store.SaveTemplate(ctx, org, "", reports.TemplateInput{Name: "Weekly HIPAA", Type: reports.TypeHIPAA,
		PeriodDays: 7, Formats: []string{"csv", "pdf", "json", "xml"}}, alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Start(ctx, other, reports.RunRequest{TemplateID: tpl.ID}, alice); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("another organization's template: %v, want not found", err)
	}
	e, err := runner.Start(ctx, org, reports.RunRequest{TemplateID: tpl.ID}, alice)
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != reports.StatusRunning {
		t.Fatalf("status = %s, want running at first", e.Status)
	}
	runner.Wait()
	got, err := store.Execution(ctx, org, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != reports.StatusCompleted || got.Records == nil || *got.Records != 125 || len(got.Files) != 4 {
		t.Fatalf("execution = %+v", got)
	}
	if got.Integrity == nil || got.DurationMS == nil {
		t.Fatalf("execution lacks integrity or duration: %+v", got)
	}
	if _, err := store.Execution(ctx, other, e.ID); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("another organization reads the execution: %v", err)
	}
	for _, f := range got.Files {
		meta, rc, err := store.OpenFile(ctx, org, e.ID, f.Format)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		if int64(len(body)) != meta.Size || hex.EncodeToString(sum[:]) != meta.SHA256 {
			t.Errorf("%s: %d bytes, sha %x; recorded %d, %s", f.Format, len(body), sum, meta.Size, meta.SHA256)
		}
		if f.Format == "csv" {
			recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
			if err != nil || len(recs) != 126 {
				t.Errorf("stored csv: %d rows, %v", len(recs), err)
			}
		}
		if _, _, err := store.OpenFile(ctx, other, e.ID, f.Format); models.KindOf(err) != models.KindNotFound {
			t.Errorf("another organization opens %s: %v", f.Format, err)
		}
	}
}

func TestRunRefusals(t *testing.T) {
	ctx := context.Background()
	runner, _ := newRunner(t)
	org := pgtest.NewOrg(t, "a")
	from, to := reports.LastDays(time.Now(), 30)
	ok := reports.Criteria{Type: reports.TypeGeneral, From: from, To: to}
	if _, err := runner.Start(ctx, org, reports.RunRequest{Criteria: ok, Formats: []string{"evidence"}}, alice); !errors.Is(err, reports.ErrEvidenceUnavailable) {
		t.Errorf("evidence without a bundle writer: %v", err)
	}
	if _, err := runner.Start(ctx, org, reports.RunRequest{Criteria: ok, Formats: []string{"docx"}}, alice); models.KindOf(err) != models.KindInvalid {
		t.Errorf("unknown format: %v", err)
	}
	bad := ok
	bad.Type = "SOX"
	if _, err := runner.Start(ctx, org, reports.RunRequest{Criteria: bad, Formats: []string{"csv"}}, alice); models.KindOf(err) != models.KindInvalid {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := runner.Start(ctx, org, reports.RunRequest{TemplateID: "tpl_nope"}, alice); models.KindOf(err) != models.KindNotFound {
		t.Errorf("unknown template: %v", err)
	}
}

// The evidence format goes through the bundle writer the server is given (a small fake
// here: the bundle itself is built and tested in its own package).
func TestEvidenceFormatUsesTheBundleWriter(t *testing.T) {
	ctx := context.Background()
	runner, store := newRunner(t)
	org := pgtest.NewOrg(t, "a")
	var gotFilter models.EventFilter
	runner.Evidence = func(ctx context.Context, o string, f models.EventFilter, w io.Writer) (int64, error) {
		gotFilter = f
		_, err := io.WriteString(w, "PK-fake-bundle-of-"+o)
		return 0, err
	}
	from, to := reports.LastDays(time.Now(), 30)
	e, err := runner.Start(ctx, org, reports.RunRequest{Criteria: reports.Criteria{Type: reports.TypeGeneral, From: from, To: to,
		Filters: reports.Filters{Action: "x.y"}}, Formats: []string{"evidence"}}, alice)
	if err != nil {
		t.Fatal(err)
	}
	runner.Wait()
	_, rc, err := store.OpenFile(ctx, org, e.ID, "evidence")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rc)
	if string(body) != "PK-fake-bundle-of-"+org || gotFilter.Action != "x.y" || !gotFilter.From.Equal(from) {
		t.Fatalf("bundle = %q, filter %+v", body, gotFilter)
	}
}

func TestTwoInstancesRunASchedulOnce(t *testing.T) {
	ctx := context.Background()
	a, store := newRunner(t)
	b, _ := newRunner(t)
	org := pgtest.NewOrg(t, "a")
	tpl, err := store.SaveTemplate(ctx, org, "", reports.TemplateInput{Name: "Daily", Type: reports.TypeGeneral,
		PeriodDays: 1, Formats: []string{"json"}}, alice)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := store.SaveSchedule(ctx, org, "", reports.ScheduleInput{Name: "every day", TemplateID: tpl.ID, Enabled: true,
		Schedule: reports.Schedule{Frequency: "daily", Time: "06:00", TimeZone: "Europe/Berlin"}}, alice)
	if err != nil {
		t.Fatal(err)
	}
	// Both instances wake up three days after the run was due (they were down): the missed
	// run happens once, and the next one is the first after now.
	later := sc.NextRun.Add(72*time.Hour + time.Minute)
	a.Now = func() time.Time { return later }
	b.Now = a.Now
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 4 {
		for _, r := range []*reports.Runner{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := r.RunDue(ctx)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	a.Wait()
	b.Wait()
	if total != 1 {
		t.Fatalf("the due schedule ran %d times, want once", total)
	}
	execs, err := store.Executions(ctx, org, 10)
	if err != nil || len(execs) != 1 || execs[0].ScheduleID != sc.ID || !execs[0].ScheduledTime.Equal(*sc.NextRun) {
		t.Fatalf("executions = %+v, %v", execs, err)
	}
	again, _ := store.ScheduledReport(ctx, org, sc.ID)
	if want := sc.Schedule.Next(later); !again.NextRun.Equal(want) || !again.NextRun.After(later) {
		t.Fatalf("next run = %v, want %v", again.NextRun, want)
	}
}

func TestScheduleRefusalsAndTenancy(t *testing.T) {
	ctx := context.Background()
	_, store := newRunner(t)
	org, other := pgtest.NewOrg(t, "a"), pgtest.NewOrg(t, "b")
	tpl, err := store.SaveTemplate(ctx, org, "", reports.TemplateInput{Name: "T", Type: reports.TypeGeneral, PeriodDays: 30,
		Formats: []string{"csv"}}, alice)
	if err != nil {
		t.Fatal(err)
	}
	daily := reports.Schedule{Frequency: "daily", Time: "06:00", TimeZone: "UTC"}
	cases := []struct {
		name string
		org  string
		in   reports.ScheduleInput
		kind models.Kind
	}{
		{"another organization's template", other, reports.ScheduleInput{Name: "x", TemplateID: tpl.ID, Schedule: daily}, models.KindNotFound},
		{"bad time zone", org, reports.ScheduleInput{Name: "x", TemplateID: tpl.ID,
			Schedule: reports.Schedule{Frequency: "daily", Time: "06:00", TimeZone: "Nowhere/City"}}, models.KindInvalid},
		{"zoneinfo file that is no zone", org, reports.ScheduleInput{Name: "x", TemplateID: tpl.ID,
			Schedule: reports.Schedule{Frequency: "daily", Time: "06:00", TimeZone: "posixrules"}}, models.KindInvalid},
		{"day out of range", org, reports.ScheduleInput{Name: "x", TemplateID: tpl.ID,
			Schedule: reports.Schedule{Frequency: "monthly", Day: 32, Time: "06:00"}}, models.KindInvalid},
		{"bad email", org, reports.ScheduleInput{Name: "x", TemplateID: tpl.ID, Schedule: daily,
			Delivery: reports.Delivery{Kind: "email", Emails: []string{"not-an-address"}}}, models.KindInvalid},
		{"no name", org, reports.ScheduleInput{TemplateID: tpl.ID, Schedule: daily}, models.KindInvalid},
		{"a name of a byte order mark", org, reports.ScheduleInput{Name: "\ufeff", TemplateID: tpl.ID, Schedule: daily}, models.KindInvalid},
		{"a name starting with U+202E", org, reports.ScheduleInput{Name: "\u202eylkeew", TemplateID: tpl.ID, Schedule: daily}, models.KindInvalid},
	}
	for _, tc := range cases {
		if _, err := store.SaveSchedule(ctx, tc.org, "", tc.in, alice); models.KindOf(err) != tc.kind {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if _, err := store.SaveTemplate(ctx, other, tpl.ID, reports.TemplateInput{Name: "stolen", Type: reports.TypeGeneral,
		PeriodDays: 1, Formats: []string{"csv"}}, alice); models.KindOf(err) != models.KindNotFound {
		t.Errorf("another organization changes the template: %v", err)
	}
	if err := store.DeleteTemplate(ctx, other, tpl.ID, alice); models.KindOf(err) != models.KindNotFound {
		t.Errorf("another organization deletes the template: %v", err)
	}
	for _, bad := range []reports.TemplateInput{
		{Name: "x", Type: "NOPE", PeriodDays: 1, Formats: []string{"csv"}},
		{Name: "x", Type: reports.TypeGeneral, PeriodDays: 0, Formats: []string{"csv"}},
		{Name: "x", Type: reports.TypeGeneral, PeriodDays: 5*366 + 1, Formats: []string{"csv"}},
		{Name: "x", Type: reports.TypeGeneral, PeriodDays: 1, Formats: []string{"rtf"}},
		{Name: strings.Repeat("n", 256), Type: reports.TypeGeneral, PeriodDays: 1, Formats: []string{"csv"}},
		{Name: "\u200b", Type: reports.TypeGeneral, PeriodDays: 1, Formats: []string{"csv"}},
		{Name: "\u202eAAPIH", Type: reports.TypeGeneral, PeriodDays: 1, Formats: []string{"csv"}},
	} {
		if _, err := store.SaveTemplate(ctx, org, "", bad, alice); models.KindOf(err) != models.KindInvalid {
			t.Errorf("template %+v: %v, want invalid", bad, err)
		}
	}
}

func TestLinks(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	l := reports.NewLinks([]byte("k"))
	l.Now = func() time.Time { return now }
	q := l.Query("org-a", "exe_1", "csv", time.Hour)
	vals := parseQuery(t, q)
	if err := l.Check("org-a", "exe_1", "csv", vals["exp"], vals["sig"]); err != nil {
		t.Fatalf("a fresh link: %v", err)
	}
	if err := l.Check("org-b", "exe_1", "csv", vals["exp"], vals["sig"]); models.KindOf(err) != models.KindNotFound {
		t.Errorf("another organization: %v", err)
	}
	if err := l.Check("org-a", "exe_1", "pdf", vals["exp"], vals["sig"]); models.KindOf(err) != models.KindNotFound {
		t.Errorf("another format: %v", err)
	}
	if err := l.Check("org-a", "exe_1", "csv", "99999999999", vals["sig"]); models.KindOf(err) != models.KindNotFound {
		t.Errorf("a moved expiry: %v", err)
	}
	for _, exp := range []string{"0" + vals["exp"], "+" + vals["exp"], vals["exp"] + " "} {
		if err := l.Check("org-a", "exe_1", "csv", exp, vals["sig"]); models.KindOf(err) != models.KindNotFound {
			t.Errorf("expiry spelled %q: %v", exp, err)
		}
	}
	l.Now = func() time.Time { return now.Add(2 * time.Hour) }
	if err := l.Check("org-a", "exe_1", "csv", vals["exp"], vals["sig"]); !errors.Is(err, reports.ErrLinkExpired) {
		t.Errorf("an expired link: %v", err)
	}
}

func parseQuery(t *testing.T, q string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(q, "&") {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

// Parallel "run now" requests cannot start more than MaxRunning reports of one organization.
func TestRunningReportsAreLimited(t *testing.T) {
	ctx := context.Background()
	runner, store := newRunner(t)
	org := pgtest.NewOrg(t, "a")
	release := make(chan struct{})
	runner.Evidence = func(ctx context.Context, o string, f models.EventFilter, w io.Writer) (int64, error) {
		<-release // hold every run open until all requests are in
		return 0, nil
	}
	from, to := reports.LastDays(time.Now(), 1)
	req := reports.RunRequest{Criteria: reports.Criteria{Type: reports.TypeGeneral, From: from, To: to}, Formats: []string{"evidence"}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	started, refused := 0, 0
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := runner.Start(ctx, org, req, alice)
			mu.Lock()
			defer mu.Unlock()
			switch models.KindOf(err) {
			case models.KindTooMany:
				refused++
			default:
				if err != nil {
					t.Error(err)
				}
				started++
			}
		}()
	}
	wg.Wait()
	close(release)
	runner.Wait()
	if started != reports.MaxRunning || refused != 10-reports.MaxRunning {
		t.Fatalf("started %d, refused %d; want %d started", started, refused, reports.MaxRunning)
	}
	execs, _ := store.Executions(ctx, pgtest.NewOrg(t, "none"), 1)
	if len(execs) != 0 {
		t.Fatal("an unrelated organization sees executions")
	}
}

// failingTarget refuses every delivery, counting the tries of its organization's (other
// tests of this binary leave failed deliveries of their own).
type failingTarget struct {
	mu    sync.Mutex
	org   string
	tries int
}

func (f *failingTarget) Deliver(_ context.Context, org string, _ reports.Delivery, _ *reports.Execution, _ func(reports.File) string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if org == f.org {
		f.tries++
	}
	return errors.New("receiver answered 500")
}

// A failed delivery is tried again after 15 minutes, then after 2 hours, three times in
// all, each attempt recorded; the execution stays completed.
func TestFailedDeliveriesAreRetriedThreeTimes(t *testing.T) {
	ctx := context.Background()
	r, store := newRunner(t)
	org := pgtest.NewOrg(t, "retry")
	target := &failingTarget{org: org}
	r.Deliver = target
	tpl, err := store.SaveTemplate(ctx, org, "", reports.TemplateInput{Name: "Daily", Type: reports.TypeGeneral,
		PeriodDays: 1, Formats: []string{"json"}}, alice)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := store.SaveSchedule(ctx, org, "", reports.ScheduleInput{Name: "to the SIEM", TemplateID: tpl.ID, Enabled: true,
		Schedule: reports.Schedule{Frequency: "daily", Time: "06:00", TimeZone: "UTC"},
		Delivery: reports.Delivery{Kind: reports.DeliverWebhook, URL: "https://siem.example.com/hook"}}, alice)
	if err != nil {
		t.Fatal(err)
	}
	start := sc.NextRun.Add(time.Minute)
	at := func(d time.Duration) { r.Now = func() time.Time { return start.Add(d) } }
	at(0)
	if n, err := r.RunDue(ctx); err != nil || n != 1 {
		t.Fatalf("RunDue = %d, %v", n, err)
	}
	r.Wait()
	for _, step := range []struct {
		after time.Duration
		tries int // tries so far
	}{
		{time.Minute, 1},                  // too early for the second try
		{16 * time.Minute, 2},             // second try
		{17 * time.Minute, 2},             // waits 2 hours now
		{2*time.Hour + 20*time.Minute, 3}, // third try
		{6 * time.Hour, 3},                // three tries in all
		{30 * time.Hour, 3},               // and never after the day
	} {
		at(step.after)
		if _, err := r.RetryDeliveries(ctx); err != nil {
			t.Fatal(err)
		}
		target.mu.Lock()
		tries := target.tries
		target.mu.Unlock()
		if tries != step.tries {
			t.Fatalf("after %v: %d tries, want %d", step.after, tries, step.tries)
		}
	}
	if target.tries != 3 {
		t.Fatalf("delivery tried %d times, want 3", target.tries)
	}
	execs, err := store.Executions(ctx, org, 10)
	if err != nil || len(execs) != 1 {
		t.Fatalf("executions = %+v, %v", execs, err)
	}
	e, err := store.Execution(ctx, org, execs[0].ID)
	if err != nil || e.Status != reports.StatusCompleted || len(e.Deliveries) != 3 || e.Deliveries[2].OK ||
		!strings.Contains(e.Deliveries[2].Error, "500") {
		t.Fatalf("execution = %+v, %v", e, err)
	}
}

// Scheduled runs count against the organization's running reports: with MaxRunning
// running, a due schedule waits (stays due) instead of starting a fourth.
func TestScheduledRunsRespectTheRunningLimit(t *testing.T) {
	ctx := context.Background()
	r, store := newRunner(t)
	org := pgtest.NewOrg(t, "busy")
	tpl, err := store.SaveTemplate(ctx, org, "", reports.TemplateInput{Name: "Daily", Type: reports.TypeGeneral,
		PeriodDays: 1, Formats: []string{"json"}}, alice)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := store.SaveSchedule(ctx, org, "", reports.ScheduleInput{Name: "daily", TemplateID: tpl.ID, Enabled: true,
		Schedule: reports.Schedule{Frequency: "daily", Time: "06:00", TimeZone: "UTC"}}, alice)
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.DB(t)
	for i := range reports.MaxRunning {
		if err := db.Exec(`INSERT INTO report_executions (id, organization_id, report_type, status, execution_time, scheduled_time, heartbeat_at)
			VALUES (?, ?, 'GENERAL_COMPLIANCE', 'running', now(), now(), ?)`, fmt.Sprintf("exe_busy%d", i), org, *sc.NextRun).Error; err != nil {
			t.Fatal(err)
		}
	}
	r.Now = func() time.Time { return sc.NextRun.Add(time.Minute) }
	if n, err := r.RunDue(ctx); err != nil || n != 0 {
		t.Fatalf("RunDue with the organization full = %d, %v; want 0", n, err)
	}
	still, _ := store.ScheduledReport(ctx, org, sc.ID)
	if !still.NextRun.Equal(*sc.NextRun) {
		t.Fatalf("the schedule moved on to %v without running", still.NextRun)
	}
	if err := db.Exec(`UPDATE report_executions SET status = 'completed' WHERE id = 'exe_busy0'`).Error; err != nil {
		t.Fatal(err)
	}
	if n, err := r.RunDue(ctx); err != nil || n != 1 {
		t.Fatalf("RunDue after one finished = %d, %v; want 1", n, err)
	}
	r.Wait()
}
