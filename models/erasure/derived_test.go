package erasure_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"auditdb/models"
	"auditdb/models/erasure"
	"auditdb/models/reports"
)

// detect runs the detection pass until it has counted every sequenced event.
func (f *fixture) detect() {
	f.t.Helper()
	d := models.NewDetector(f.db, time.Now)
	for range 100 {
		res, err := d.Pass(context.Background())
		if err != nil {
			f.t.Fatal(err)
		}
		if res.Events == 0 {
			return
		}
	}
	f.t.Fatal("detection does not finish")
}

// checkRollups fails unless org's rollups count exactly the events in audit_log: per hour,
// per action and per principal.
func (f *fixture) checkRollups(when string) {
	f.t.Helper()
	for _, c := range []struct{ name, rollup, log string }{
		{"hourly", `SELECT coalesce(sum(events), 0) FROM event_counts_hourly WHERE organization_id = ?`,
			`SELECT count(*) FROM audit_log WHERE organization_id = ?`},
		{"actions", `SELECT coalesce(sum(events), 0) FROM event_counts_daily WHERE organization_id = ? AND kind = 'action'`,
			`SELECT count(*) FROM audit_log WHERE organization_id = ?`},
		{"principals", `SELECT coalesce(sum(events), 0) FROM event_counts_daily WHERE organization_id = ? AND kind = 'principal'`,
			`SELECT count(*) FROM audit_log WHERE organization_id = ? AND principal_id <> ''`},
	} {
		if got, want := f.count(c.rollup, f.org), f.count(c.log, f.org); got != want {
			f.t.Errorf("%s: %s rollups count %d events, audit_log holds %d", when, c.name, got, want)
		}
	}
}

// storeReport stores a completed execution of org over [from, to) with one CSV file holding
// content, as the report runner does (zstd chunks).
func (f *fixture) storeReport(id string, from, to time.Time, content string) {
	f.t.Helper()
	enc, _ := zstd.NewWriter(nil)
	data := enc.EncodeAll([]byte(content), nil)
	crit := `{"type":"GENERAL_COMPLIANCE","from":"` + from.Format(time.RFC3339) + `","to":"` + to.Format(time.RFC3339) + `"}`
	files := `[{"format":"csv","name":"` + id + `.csv","content_type":"text/csv","size":` + strconv.Itoa(len(content)) + `,"sha256":"abc"}]`
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO report_executions (id, organization_id, scheduled_time, status, criteria, formats, export_result)
			VALUES (?, ?, now(), 'completed', ?::jsonb, '["csv"]', ?::jsonb)`, []any{id, f.org, crit, files}},
		{`INSERT INTO report_files (execution_id, format, organization_id, name, content_type, size, stored_size, sha256, complete)
			VALUES (?, 'csv', ?, ?, 'text/csv', ?, ?, 'abc', true)`, []any{id, f.org, id + ".csv", len(content), len(data)}},
		{`INSERT INTO report_file_chunks (execution_id, format, seq, data) VALUES (?, 'csv', 0, ?)`, []any{id, data}},
	} {
		if err := f.db.Exec(q.sql, q.args...).Error; err != nil {
			f.t.Fatal(err)
		}
	}
}

// Erasure takes the subject's events out of the dashboard's rollups in its own
// transactions (deleted events leave every count, kept ones move to the pseudonym) and
// withdraws the stored report files whose period holds any of them.
func TestEraseReachesRollupsAndStoredReports(t *testing.T) {
	f := newFixture(t, 2000, 300)
	ctx := context.Background()
	f.detect()
	if f.count(`SELECT count(*) FROM event_counts_daily WHERE organization_id = ? AND value = 'user-3'`, f.org) == 0 {
		t.Fatal("the fixture's rollups do not count the subject")
	}
	f.checkRollups("before")
	now := time.Now().UTC()
	f.storeReport("rex-live", now.Add(-24*time.Hour), now.Add(time.Hour), "principal\nuser-3\nuser-4\n")
	f.storeReport("rex-archived", time.Date(2022, time.March, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2022, time.April, 1, 0, 0, 0, 0, time.UTC), "principal\nuser-3\n")
	f.storeReport("rex-before", time.Date(2019, time.January, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2019, time.February, 1, 0, 0, 0, 0, time.UTC), "principal\nuser-4\n")

	s := erasure.Subject{PrincipalID: "user-3"}
	res, err := f.engine.Erase(ctx, f.org, "req-r", s, dpo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pseudonymized == 0 || res.Deleted == 0 || res.ArchivedDeleted == 0 {
		t.Fatalf("the fixture should delete, archive-delete and keep: %+v", res)
	}
	if n := f.count(`SELECT count(*) FROM event_counts_daily WHERE organization_id = ? AND value = 'user-3'`, f.org); n != 0 {
		t.Errorf("%d rollup rows still keyed by the erased principal", n)
	}
	if got := f.count(`SELECT coalesce(sum(events), 0) FROM event_counts_daily WHERE organization_id = ? AND kind = 'principal'
		AND value = ?`, f.org, res.Pseudonym); got != res.Pseudonymized {
		t.Errorf("the pseudonym counts %d events, %d were kept", got, res.Pseudonymized)
	}
	f.sequence() // the run's own self-audit event
	f.detect()
	f.checkRollups("after")
	f.detect() // counts nothing twice
	f.checkRollups("after another detection pass")

	store := reports.NewStore(f.db, nil)
	for _, id := range []string{"rex-live", "rex-archived"} {
		file, rc, err := store.OpenFile(ctx, f.org, id, "csv")
		var we *reports.WithdrawnError
		if !errors.As(err, &we) || we.Note != "withdrawn after GDPR erasure req-r" {
			if rc != nil {
				rc.Close()
			}
			t.Fatalf("%s: open a file made before the erasure: %v", id, err)
		}
		if file == nil || file.SHA256 != "abc" || file.Size == 0 {
			t.Errorf("%s: the withdrawn file's metadata is lost: %+v", id, file)
		}
		if n := f.count(`SELECT count(*) FROM report_file_chunks WHERE execution_id = ?`, id); n != 0 {
			t.Errorf("%s: %d chunks of content left", id, n)
		}
		e, err := store.Execution(ctx, f.org, id)
		if err != nil || len(e.Files) != 1 || e.Files[0].Withdrawn == "" || e.Files[0].SHA256 != "abc" {
			t.Errorf("%s: execution after withdrawal: %+v %v", id, e, err)
		}
	}
	_, rc, err := store.OpenFile(ctx, f.org, "rex-before", "csv")
	if err != nil {
		t.Fatalf("a report of a period without the subject's events is withdrawn: %v", err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "principal\nuser-4\n" {
		t.Errorf("the untouched report reads %q", b)
	}
}
