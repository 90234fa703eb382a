package handlers_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

// archivedOrg writes n events of one month fourteen months ago, puts them in the Merkle log
// and runs retention so that they move to one archive; it returns the archive.
func archivedOrg(t *testing.T, env *webtest.Env, org string, n int) (models.Archive, []models.Event) {
	t.Helper()
	month := models.MonthStart(time.Now().UTC().AddDate(0, -14, 0))
	evs := make([]models.Event, n)
	for i := range evs {
		status, principal := "success", "alice"
		if i%3 == 0 {
			status, principal = "failure", "bob"
		}
		outcome := fmt.Sprintf("Outcome number %d", i)
		evs[i] = models.Event{OrganizationID: org, Timestamp: month.Add(24*time.Hour + time.Duration(i)*time.Minute),
			Action: fmt.Sprintf("record.op%d", i%2), Status: status, PrincipalID: &principal, OutcomeDescription: &outcome}
	}
	evs = env.Events(evs...)
	env.Sequence()
	engine := models.NewRetentionEngine(env.DB, models.NewAuditTrail(env.DB, env.Sealer, env.Parts), env.Parts)
	res, err := engine.Run(context.Background(), models.RetentionOptions{Org: org})
	if err != nil || res.Archived != int64(n) || res.Archives != 1 {
		t.Fatalf("retention run: %+v %v", res, err)
	}
	list, err := env.Services.Archives.List(context.Background(), org)
	if err != nil || len(list) != 1 {
		t.Fatalf("archives of %s: %v %v", org, list, err)
	}
	return list[0], evs
}

func archiveURL(a models.Archive) string {
	return fmt.Sprintf("/retention/archives/%s/%s/%d", a.Policy, a.Month.Format("2006-01"), a.Part)
}

func TestArchiveBrowser(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("arch")
	other := env.Org("arch-other")
	owner := env.Login(env.User(org, models.OwnerRole))
	member := env.Login(env.User(org, "org:member"))
	otherOwner := env.Login(env.User(other, models.OwnerRole))
	a, evs := archivedOrg(t, env, org, 60)
	page := archiveURL(a)

	t.Run("list shows the metadata", func(t *testing.T) {
		r := owner.Get("/retention/archives")
		if r.StatusCode != 200 {
			t.Fatalf("status %d", r.StatusCode)
		}
		for _, want := range []string{`data-testid="archive-row"`, `href="` + page + `"`, a.SHA256Original, a.SHA256Compressed,
			fmt.Sprintf("ids %d–%d", a.MinEventID, a.MaxEventID), fmt.Sprintf("leaves %d–%d", a.MinLeafIndex, a.MaxLeafIndex),
			`data-testid="archive-count">60<`, fmt.Sprintf("%.1f×", a.Ratio()), "0 times", `data-testid="archives-link"`} {
			if !strings.Contains(r.Body, want) {
				t.Errorf("list lacks %q", want)
			}
		}
		if r := otherOwner.Get("/retention/archives"); !strings.Contains(r.Body, `data-testid="archives-empty"`) || strings.Contains(r.Body, a.ID) {
			t.Errorf("another organization sees the archive")
		}
		if r := member.Get("/retention/archives"); r.StatusCode != 403 {
			t.Errorf("a member without audit.retention read: %d", r.StatusCode)
		}
	})

	t.Run("page, filters and paging", func(t *testing.T) {
		r := owner.Get(page)
		if r.StatusCode != 200 {
			t.Fatalf("status %d %s", r.StatusCode, r.Body)
		}
		if got := strings.Count(r.Body, `data-testid="archive-event"`); got != 50 {
			t.Fatalf("first page has %d events, want 50", got)
		}
		if !strings.Contains(r.Body, fmt.Sprintf("#%d<", evs[0].ID)) || strings.Contains(r.Body, fmt.Sprintf("#%d<", evs[50].ID)) {
			t.Fatalf("first page is not the first 50 events in archive order")
		}
		next := page + fmt.Sprintf("?after=%d", evs[49].ID)
		if !strings.Contains(r.Body, next) {
			t.Fatalf("no link to the next page %s", next)
		}
		r = owner.GetHTMX(next)
		if got := strings.Count(r.Body, `data-testid="archive-event"`); got != 10 || strings.Contains(r.Body, "<html") {
			t.Fatalf("htmx second page: %d events, fragment %v", got, !strings.Contains(r.Body, "<html"))
		}
		// 20 failures by bob; of them, record.op0 are the even indexes: i%6 == 0.
		r = owner.Get(page + "?status=failure&action=record.op0&principal=bob")
		if got := strings.Count(r.Body, `data-testid="archive-event"`); got != 10 {
			t.Fatalf("filtered page has %d events, want 10", got)
		}
		r = owner.Get(page + "?q=%22OUTCOME+NUMBER+59%22")
		if got := strings.Count(r.Body, `data-testid="archive-event"`); got != 1 || !strings.Contains(r.Body, fmt.Sprintf("#%d<", evs[59].ID)) {
			t.Fatalf("text search found %d events", got)
		}
		from := evs[10].Timestamp.Format("2006-01-02T15:04")
		to := evs[20].Timestamp.Format("2006-01-02T15:04")
		r = owner.Get(page + "?from=" + from + "&to=" + to)
		if got := strings.Count(r.Body, `data-testid="archive-event"`); got != 10 {
			t.Fatalf("time range [10, 20) has %d events", got)
		}
		for _, bad := range []string{"?status=nope", "?from=yesterday", "?after=x", "?classification=SECRET"} {
			if r := owner.Get(page + bad); r.StatusCode != 400 {
				t.Errorf("%s: status %d, want 400", bad, r.StatusCode)
			}
		}
	})

	t.Run("retrievals are counted and self-audited", func(t *testing.T) {
		got, err := env.Services.Archives.Get(context.Background(), org, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.RetrievedCount != 5 || got.LastRetrievedAt == nil { // the 5 successful reads above
			t.Fatalf("retrieved_count %d, last %v", got.RetrievedCount, got.LastRetrievedAt)
		}
		var audited int64
		env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = ? AND target_resource_id = ?`,
			org, models.ActionArchiveRetrieve, a.ID).Scan(&audited)
		if audited != 5 {
			t.Fatalf("%d retrievals self-audited, want 5", audited)
		}
	})

	t.Run("downloads", func(t *testing.T) {
		r := owner.Get(page + "/download.jsonl.zst")
		sum := sha256.Sum256([]byte(r.Body))
		if r.StatusCode != 200 || hex.EncodeToString(sum[:]) != a.SHA256Compressed ||
			!strings.Contains(r.Header.Get("Content-Disposition"), ".jsonl.zst") {
			t.Fatalf("zst download: %d, sha %x", r.StatusCode, sum)
		}
		r = owner.Get(page + "/download.json")
		var lines []models.ArchiveLine
		if err := json.Unmarshal([]byte(r.Body), &lines); err != nil || r.StatusCode != 200 {
			t.Fatalf("json download: %d %v", r.StatusCode, err)
		}
		if len(lines) != 60 || lines[0].ID != evs[0].ID || lines[59].Hash != evs[59].Hash || lines[7].LeafIndex < a.MinLeafIndex {
			t.Fatalf("json download has %d lines", len(lines))
		}
	})

	t.Run("another organization's archive is a 404", func(t *testing.T) {
		for _, p := range []string{page, page + "/download.json", page + "/download.jsonl.zst"} {
			if r := otherOwner.Get(p); r.StatusCode != 404 {
				t.Errorf("%s: %d", p, r.StatusCode)
			}
		}
		for _, p := range []string{"/retention/archives/standard/2020-01/1", "/retention/archives/standard/garbage/1",
			"/retention/archives/standard/2020-01/0"} {
			if r := owner.Get(p); r.StatusCode != 404 {
				t.Errorf("%s: %d", p, r.StatusCode)
			}
		}
	})
}

// A corrupt archive is shown as such, never as events or a download, and raises one CRITICAL
// alert however often it is read, in parallel too.
func TestArchiveBrowserCorruption(t *testing.T) {
	for _, tc := range []struct {
		name, tamper string
	}{
		{"stored bytes", `UPDATE archive_storage SET content = set_byte(content, 40, get_byte(content, 40) # 1) WHERE id = ?`},
		{"recorded original checksum", `UPDATE archive_storage SET sha256_original = repeat('0', 64) WHERE id = ?`},
		{"recorded count", `UPDATE archive_storage SET event_count = event_count + 1 WHERE id = ?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := webtest.New(t)
			org := env.Org("arch-bad")
			owner := env.Login(env.User(org, models.OwnerRole))
			a, _ := archivedOrg(t, env, org, 5)
			if err := env.DB.Exec(tc.tamper, a.ID).Error; err != nil {
				t.Fatal(err)
			}
			page := archiveURL(a)
			var wg sync.WaitGroup
			for _, p := range []string{page, page, page + "/download.json", page + "/download.jsonl.zst", page, page} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := owner.Get(p)
					if r.StatusCode != 500 || !strings.Contains(r.Body, `data-testid="archive-corrupt"`) ||
						strings.Contains(r.Body, `data-testid="archive-event"`) || strings.Contains(r.Body, `data-testid="archive-download-zst"`) {
						t.Errorf("%s: status %d, corrupt shown %v", p, r.StatusCode, strings.Contains(r.Body, `data-testid="archive-corrupt"`))
					}
				}()
			}
			wg.Wait()
			var alerts []struct {
				Severity string
				Title    string
			}
			env.DB.Raw(`SELECT severity, title FROM alerts WHERE organization_id = ? AND source = ? AND correlation_id = ?`,
				org, models.ArchiveAlertSource, a.ID).Scan(&alerts)
			if len(alerts) != 1 || alerts[0].Severity != models.SeverityCritical || !strings.Contains(alerts[0].Title, a.ID) {
				t.Fatalf("alerts raised: %+v", alerts)
			}
			got, _ := env.Services.Archives.Get(context.Background(), org, a.ID)
			if got.RetrievedCount != 0 {
				t.Fatalf("a refused read counted as a retrieval: %d", got.RetrievedCount)
			}
			// Once the alert is resolved, the next read of a still-corrupt archive raises a new one.
			env.DB.Exec(`UPDATE alerts SET resolved = true WHERE organization_id = ? AND source = ?`, org, models.ArchiveAlertSource)
			owner.Get(page)
			var n int64
			env.DB.Raw(`SELECT count(*) FROM alerts WHERE organization_id = ? AND source = ? AND NOT resolved`, org, models.ArchiveAlertSource).Scan(&n)
			if n != 1 {
				t.Fatalf("%d unresolved alerts after a read past the resolved one", n)
			}
		})
	}
}
