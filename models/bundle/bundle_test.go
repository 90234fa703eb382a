package bundle_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/bundle"
	"auditdb/models/ingest"
	"auditdb/models/merkle"
	"auditdb/models/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// fixture is an organization with a policy "short" (archive after 10 days, delete after
// 30) whose events are in all three places: deleted by retention, archived, and live, plus
// events not yet in a checkpoint, and another organization's events in the same range.
type fixture struct {
	db                      *gorm.DB
	org, other              string
	log                     *merkle.Log
	now                     time.Time
	removed, archived, live []models.Event
	pending                 []models.Event
}

func str(s string) *string { return &s }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db := pgtest.DB(t)
	f := &fixture{db: db, org: pgtest.NewOrg(t, ""), other: pgtest.NewOrg(t, "other"), now: time.Now().UTC()}
	if err := db.Exec(`INSERT INTO audit_retention_policy (organization_id, policy_name, retention_days, archive_after_days,
		data_classification, description) VALUES (?, 'short', 30, 10, 'INTERNAL', 'test')`, f.org).Error; err != nil {
		t.Fatal(err)
	}
	key, err := merkle.NewCheckpointKey([]byte("checkpoint-test-seed-0123456789!"))
	if err != nil {
		t.Fatal(err)
	}
	f.log = merkle.NewLog(db, key)
	f.log.CheckpointEvery = 0
	f.removed = f.write(t, f.org, f.now.Add(-45*24*time.Hour), 3, "short")
	f.archived = f.write(t, f.org, f.now.Add(-15*24*time.Hour), 5, "short")
	f.live = f.write(t, f.org, f.now.Add(-2*time.Hour), 7, "standard")
	f.write(t, f.other, f.now.Add(-2*time.Hour), 4, "standard")
	f.sequence(t)
	parts := models.NewPartitionManager(db)
	engine := models.NewRetentionEngine(db, models.NewAuditTrail(db, pgtest.Sealer(t), parts), parts)
	engine.Now = func() time.Time { return f.now }
	if _, err := engine.Run(ctx, models.RetentionOptions{Org: f.org}); err != nil {
		t.Fatal(err)
	}
	f.sequence(t) // the run's own gdpr.retention.apply event
	f.pending = f.write(t, f.org, f.now.Add(-time.Hour), 2, "standard")
	var n [3]int64
	db.Raw(`SELECT count(*) FROM removed_events WHERE organization_id = ?`, f.org).Scan(&n[0])
	db.Raw(`SELECT count(*) FROM archived_events WHERE organization_id = ?`, f.org).Scan(&n[1])
	if n[0] != 3 || n[1] != 5 {
		t.Fatalf("retention removed %d and archived %d events; the fixture wants 3 and 5", n[0], n[1])
	}
	return f
}

// write seals n events of org at ts (a second apart), with awkward contents, and writes
// them without sequencing. Odd ones are sealed with the first scheme, as events written
// before the second one was: a bundle mixes both.
func (f *fixture) write(t *testing.T, org string, ts time.Time, n int, policy string) []models.Event {
	t.Helper()
	sealer := pgtest.Sealer(t)
	evs := make([]models.Event, n)
	for i := range evs {
		evs[i] = models.Event{OrganizationID: org, Timestamp: ts.Add(time.Duration(i) * time.Second), Action: "test.bundle",
			Status: models.EventStatuses[i%3], DataClassification: "INTERNAL", RetentionPolicy: policy, EventVersion: "1.0",
			PrincipalID: str(fmt.Sprintf("user-%d", i)), TargetResourceType: str("Patient"), TargetResourceID: str(strconv.Itoa(i)),
			OutcomeDescription: str(`=cmd|' /C calc'!A0 <b>bold</b> שלום 🧾`), CorrelationID: str("c-1"), TTL: str("30d"),
			Details: []byte(fmt.Sprintf(`{"ip":"10.0.0.%d","email":"a@b.c","n":%d,"f":1.5,"nested":{"name":"x","list":[1,"y",null,true]},"text":"line\nbreak \u2028 é"}`, i, i))}
		if i == 0 {
			evs[i].Details, evs[i].PrincipalID, evs[i].TTL = nil, nil, nil
		}
		seal := sealer.Seal
		if i%2 == 1 {
			seal = sealer.SealV1
		}
		if err := seal(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ingest.CopyEvents(context.Background(), f.db, models.NewPartitionManager(f.db), evs); err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		if err := f.db.Raw(`SELECT id FROM audit_log WHERE organization_id = ? AND hash = ?`, org, evs[i].Hash).Scan(&evs[i].ID).Error; err != nil {
			t.Fatal(err)
		}
	}
	return evs
}

func (f *fixture) sequence(t *testing.T) {
	t.Helper()
	if _, err := f.log.Sequence(context.Background(), 100_000); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) filter() models.EventFilter {
	return models.EventFilter{From: f.now.Add(-60 * 24 * time.Hour), To: f.now.Add(time.Minute)}
}

func (f *fixture) bundle(t *testing.T, flt models.EventFilter) ([]byte, bundle.Summary) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := bundle.Write(context.Background(), f.db, f.log, pgtest.Sealer(t), f.org, flt, &buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), sum
}

func verify(t *testing.T, b []byte, keys ...string) *bundle.Report {
	t.Helper()
	rep, err := bundle.Verify(bytes.NewReader(b), int64(len(b)), keys)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// entries reads a zip into its files, in order.
func entries(t *testing.T, b []byte) ([]string, map[string][]byte) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
		names = append(names, f.Name)
	}
	return names, files
}

// rezip writes the files back, in order, after change edits them.
func rezip(t *testing.T, b []byte, change func(files map[string][]byte)) []byte {
	t.Helper()
	names, files := entries(t, b)
	if change != nil {
		change(files)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, n := range names {
		if _, kept := files[n]; !kept {
			continue
		}
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(files[n])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// editLine rewrites the line of file holding `"id":<id>,` with edit.
func editLine(t *testing.T, files map[string][]byte, file string, id int64, edit func(line string) string) {
	t.Helper()
	lines := strings.SplitAfter(string(files[file]), "\n")
	found := false
	for i, l := range lines {
		if strings.HasPrefix(l, fmt.Sprintf(`{"id":%d,`, id)) {
			lines[i], found = edit(l), true
		}
	}
	if !found {
		t.Fatalf("no line of event %d in %s", id, file)
	}
	files[file] = []byte(strings.Join(lines, ""))
}

// flipAfter changes the hex digit that follows the first prefix in l.
func flipAfter(l, prefix string) string {
	i := strings.Index(l, prefix) + len(prefix)
	c := "0"
	if l[i] == '0' {
		c = "1"
	}
	return l[:i] + c + l[i+1:]
}

func TestBundleOfAFreshDatabaseVerifies(t *testing.T) {
	f := newFixture(t)
	b, sum := f.bundle(t, f.filter())
	// Live: the 7 events and the retention run's own event; archived: 5; removed: 3;
	// the 2 written after the last checkpoint are left out.
	if sum.Events != 7+1+5 || sum.Archived != 5 || sum.Removed != 3 || sum.NotSequenced != 2 {
		t.Fatalf("summary %+v; want 13 events, 5 archived, 3 removed, 2 not sequenced", sum)
	}
	cp, err := f.log.Latest(context.Background(), f.org)
	if err != nil {
		t.Fatal(err)
	}
	if sum.CheckpointSize != cp.TreeSize || sum.CheckpointNumber != cp.Number {
		t.Fatalf("summary checkpoint %d/%d; the newest is %d/%d", sum.CheckpointNumber, sum.CheckpointSize, cp.Number, cp.TreeSize)
	}
	rep := verify(t, b, f.log.Key().VerifierKey())
	if !rep.OK() {
		t.Fatalf("a fresh bundle has problems:\n%s", strings.Join(rep.Problems, "\n"))
	}
	if rep.Events != 13 || rep.Archived != 5 || rep.Removed != 3 || rep.Proofs != 16 || rep.TreeSize != uint64(cp.TreeSize) ||
		rep.TrustedKey == "" || rep.StatementKey == "" || rep.Origin != merkle.Origin(f.org) {
		t.Fatalf("report %+v", rep)
	}

	names, files := entries(t, b)
	want := []string{bundle.FileReadme, bundle.FileCheckpoint, bundle.FileKey, bundle.FileEvents, bundle.FileManifest,
		bundle.FileProofs, bundle.FileInfo, bundle.FileStatement}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("files %v; want %v", names, want)
	}
	if string(files[bundle.FileCheckpoint]) != cp.Note {
		t.Fatal("checkpoint.note is not the stored note byte for byte")
	}
	// Only the organization's events, the personal fields and salt included so the digest
	// checks, and no raw line separator inside a line.
	events := string(files[bundle.FileEvents])
	for _, ev := range f.live[1:] {
		if !strings.Contains(events, `"principalId":"`+*ev.PrincipalID+`"`) || !strings.Contains(events, `\u003cb\u003ebold\u003c/b\u003e שלום 🧾`) ||
			strings.Contains(events, "\u2028") {
			t.Fatalf("events.jsonl lacks event %d's principal or its text as sent", ev.ID)
		}
	}
	if strings.Contains(events, `"organizationId":"`+f.other+`"`) {
		t.Fatal("the bundle holds another organization's events")
	}
	for _, ev := range f.removed {
		if strings.Contains(events, fmt.Sprintf(`{"id":%d,`, ev.ID)) || !strings.Contains(string(files[bundle.FileManifest]),
			fmt.Sprintf(`{"id":%d,`, ev.ID)) {
			t.Fatalf("removed event %d: it must be in the manifest and have no line", ev.ID)
		}
	}
	for _, ev := range f.pending {
		if strings.Contains(string(files[bundle.FileManifest]), fmt.Sprintf(`{"id":%d,`, ev.ID)) {
			t.Fatalf("event %d, not yet in a checkpoint, is in the manifest", ev.ID)
		}
	}
	var info bundle.Info
	if err := json.Unmarshal(files[bundle.FileInfo], &info); err != nil || info.OrganizationID != f.org ||
		fmt.Sprint(info.HashAlgorithms) != fmt.Sprint([]string{models.HashAlgorithmV1, models.HashAlgorithmV3}) || len(info.Files) != 6 {
		t.Fatalf("bundle.json %+v (%v)", info, err)
	}

	t.Run("a filter narrows live and archived events alike", func(t *testing.T) {
		flt := f.filter()
		flt.Status = "failure"
		b, sum := f.bundle(t, flt)
		// Status cycles attempt, success, failure: 2 of the 7 live, 1 of the 5 archived;
		// removed events are listed whatever the filter (their fields are gone).
		if sum.Events != 3 || sum.Archived != 1 || sum.Removed != 3 {
			t.Fatalf("summary %+v; want 3 events, 1 archived, 3 removed", sum)
		}
		if rep := verify(t, b, f.log.Key().VerifierKey()); !rep.OK() {
			t.Fatalf("problems:\n%s", strings.Join(rep.Problems, "\n"))
		}
	})
	t.Run("an empty period is a valid bundle", func(t *testing.T) {
		b, sum := f.bundle(t, models.EventFilter{From: f.now.Add(-400 * 24 * time.Hour), To: f.now.Add(-300 * 24 * time.Hour)})
		if sum.Events != 0 || sum.Removed != 0 {
			t.Fatalf("summary %+v", sum)
		}
		if rep := verify(t, b, f.log.Key().VerifierKey()); !rep.OK() || rep.Events != 0 {
			t.Fatalf("report %+v", rep)
		}
	})
}

func TestVerifyNamesEachKindOfTampering(t *testing.T) {
	f := newFixture(t)
	b, _ := f.bundle(t, f.filter())
	key := f.log.Key().VerifierKey()
	live, archived, removed := f.live[3].ID, f.archived[2].ID, f.removed[1].ID
	other, err := merkle.NewCheckpointKey([]byte("another-checkpoint-seed-01234567"))
	if err != nil {
		t.Fatal(err)
	}
	resign := func(files map[string][]byte, signer note.Signer) {
		n, err := note.Open(files[bundle.FileCheckpoint], note.VerifierList(f.log.Key().Verifier()))
		if err != nil {
			t.Fatal(err)
		}
		signed, err := note.Sign(&note.Note{Text: n.Text}, signer)
		if err != nil {
			t.Fatal(err)
		}
		files[bundle.FileCheckpoint] = signed
	}

	for _, tc := range []struct {
		name   string
		change func(files map[string][]byte)
		keys   []string
		want   []string
	}{
		{"a changed field of a live event", func(files map[string][]byte) {
			editLine(t, files, bundle.FileEvents, live, func(l string) string { return strings.Replace(l, `"status":"`, `"status":"x`, 1) })
		}, nil, []string{fmt.Sprintf("event %d: changed", live)}},
		{"a changed personal field of an archived event of the first scheme", func(files map[string][]byte) {
			editLine(t, files, bundle.FileEvents, f.archived[1].ID, func(l string) string { return strings.Replace(l, `"principalId":"user-`, `"principalId":"mallory-`, 1) })
		}, nil, []string{fmt.Sprintf("event %d: changed: its personal fields", f.archived[1].ID)}},
		{"a changed personal field of an archived event", func(files map[string][]byte) {
			editLine(t, files, bundle.FileEvents, archived, func(l string) string { return strings.Replace(l, `"principalId":"user-`, `"principalId":"mallory-`, 1) })
		}, nil, []string{fmt.Sprintf("event %d: changed: its fields hash to", archived)}}, // a compact v3 line: the derived digest changes the hash
		{"a removed line", func(files map[string][]byte) {
			editLine(t, files, bundle.FileEvents, live, func(string) string { return "" })
		}, nil, []string{fmt.Sprintf("event %d: in the manifest (log entry", live), "a removed line"}},
		{"an added line", func(files map[string][]byte) {
			var line string
			editLine(t, files, bundle.FileEvents, live, func(l string) string { line = l; return l })
			files[bundle.FileEvents] = append(files[bundle.FileEvents], strings.Replace(line, fmt.Sprintf(`{"id":%d,`, live), `{"id":999999999,`, 1)...)
		}, nil, []string{"events.jsonl: larger than the", "bundle.json records; not read further (line 14)"}},
		{"a wrong proof hash", func(files map[string][]byte) {
			editLine(t, files, bundle.FileProofs, archived, func(l string) string { return flipAfter(l, `"hashes":["`) })
		}, nil, []string{fmt.Sprintf("event %d: wrong proof", archived)}},
		{"a proof of a removed event's entry changed", func(files map[string][]byte) {
			editLine(t, files, bundle.FileProofs, removed, func(l string) string { return flipAfter(l, `"hashes":["`) })
		}, nil, []string{fmt.Sprintf("event %d: wrong proof", removed)}},
		{"an altered checkpoint", func(files map[string][]byte) {
			lines := strings.SplitN(string(files[bundle.FileCheckpoint]), "\n", 3)
			n, _ := strconv.Atoi(lines[1])
			lines[1] = strconv.Itoa(n + 1)
			files[bundle.FileCheckpoint] = []byte(strings.Join(lines, "\n"))
		}, []string{key}, []string{"checkpoint: its signature does not verify with the bundle's own key", "checkpoint: not signed by any trusted key"}},
		{"a bad signature", func(files map[string][]byte) {
			s := string(files[bundle.FileCheckpoint])
			i := strings.LastIndex(s, " ") + 10
			c := byte('A')
			if s[i] == 'A' {
				c = 'B'
			}
			files[bundle.FileCheckpoint] = []byte(s[:i] + string(c) + s[i+1:])
		}, []string{key}, []string{"checkpoint: its signature does not verify with the bundle's own key", "checkpoint: not signed by any trusted key"}},
		{"signed by another key, the bundle's key swapped", func(files map[string][]byte) {
			resign(files, other)
			files[bundle.FileKey] = []byte(other.VerifierKey() + "\n")
		}, []string{key}, []string{"checkpoint: not signed by any trusted key (" + strings.Join(strings.SplitN(key, "+", 3)[:2], "+") + ")"}},
		{"a manifest hash edited", func(files map[string][]byte) {
			editLine(t, files, bundle.FileManifest, live, func(l string) string { return flipAfter(l, `"hash":"`) })
		}, nil, []string{fmt.Sprintf("event %d: the manifest's hash", live), "manifest edited"}},
		{"a manifest entry dropped with its line", func(files map[string][]byte) {
			editLine(t, files, bundle.FileManifest, live, func(string) string { return "" })
			editLine(t, files, bundle.FileEvents, live, func(string) string { return "" })
		}, nil, []string{fmt.Sprintf("event %d (proofs.jsonl line", live), "bundle.json: counts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := verify(t, rezip(t, b, tc.change), tc.keys...)
			if rep.OK() {
				t.Fatal("the tampered bundle passed")
			}
			all := strings.Join(rep.Problems, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Fatalf("problems do not say %q:\n%s", w, all)
				}
			}
		})
	}

	t.Run("without a trusted key it says so, and another key does not pass", func(t *testing.T) {
		rep := verify(t, b)
		if !rep.OK() || rep.TrustedKey != "" || rep.BundleKey == "" {
			t.Fatalf("report %+v", rep)
		}
		if rep := verify(t, b, other.VerifierKey()); rep.OK() {
			t.Fatal("a bundle passed against a trusted key that did not sign it")
		}
	})
}

func TestBundleRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	write := func(org string, flt models.EventFilter) (int, error) {
		var buf bytes.Buffer
		_, err := bundle.Write(ctx, f.db, f.log, pgtest.Sealer(t), org, flt, &buf)
		return buf.Len(), err
	}
	long := models.EventFilter{From: f.now.Add(-367 * 24 * time.Hour), To: f.now}
	if n, err := write(f.org, long); models.KindOf(err) != models.KindInvalid || n != 0 || !strings.Contains(err.Error(), "one year") {
		t.Fatalf("a range over a year: %v (%d bytes written)", err, n)
	}
	if err := bundle.Check(ctx, f.db, f.org, long); models.KindOf(err) != models.KindInvalid {
		t.Fatalf("Check of a range over a year: %v", err)
	}
	bad := f.filter()
	bad.Status = "nope"
	if _, err := write(f.org, bad); models.KindOf(err) != models.KindInvalid {
		t.Fatalf("a bad status: %v", err)
	}
	restore := bundle.SetMaxEvents(10)
	if n, err := write(f.org, f.filter()); models.KindOf(err) != models.KindTooLarge || n != 0 {
		t.Fatalf("over the events limit: %v (%d bytes written)", err, n)
	}
	if err := bundle.Check(ctx, f.db, f.org, f.filter()); models.KindOf(err) != models.KindTooLarge {
		t.Fatalf("Check over the events limit: %v", err)
	}
	restore()
	fresh := pgtest.NewOrg(t, "fresh")
	if n, err := write(fresh, f.filter()); models.KindOf(err) != models.KindConflict || n != 0 {
		t.Fatalf("an organization without a checkpoint: %v (%d bytes)", err, n)
	}
	if _, err := bundle.Verify(bytes.NewReader([]byte("not a zip")), 9, nil); err == nil {
		t.Fatal("a non-zip verified")
	}
}

// reseal recomputes bundle.json after change: its counts by delta and every file's size
// and SHA-256, as someone editing a bundle would, leaving bundle.sig as it was.
func reseal(t *testing.T, files map[string][]byte, events, removed int64) {
	t.Helper()
	var info bundle.Info
	if err := json.Unmarshal(files[bundle.FileInfo], &info); err != nil {
		t.Fatal(err)
	}
	info.Events += events
	info.Removed += removed
	for i, f := range info.Files {
		sum := sha256.Sum256(files[f.Name])
		info.Files[i].Size, info.Files[i].SHA256 = int64(len(files[f.Name])), hex.EncodeToString(sum[:])
	}
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	files[bundle.FileInfo] = append(b, '\n')
}

func TestVerifyRefusesAnUnsignedStatement(t *testing.T) {
	f := newFixture(t)
	b, _ := f.bundle(t, f.filter())
	key := f.log.Key().VerifierKey()
	live := f.live[3].ID
	other, err := merkle.NewCheckpointKey([]byte("another-checkpoint-seed-01234567"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(files map[string][]byte)
		want   string
	}{
		{"a live event turned into removed", func(files map[string][]byte) {
			editLine(t, files, bundle.FileEvents, live, func(string) string { return "" })
			editLine(t, files, bundle.FileManifest, live, func(l string) string {
				return strings.Replace(l, `"state":"live"`, `"state":"removed","reason":"retention"`, 1)
			})
			reseal(t, files, -1, +1)
		}, "bundle.json is not the statement the server signed"},
		{"an event dropped from all three files", func(files map[string][]byte) {
			for _, name := range []string{bundle.FileEvents, bundle.FileManifest, bundle.FileProofs} {
				editLine(t, files, name, live, func(string) string { return "" })
			}
			reseal(t, files, -1, 0)
		}, "bundle.json is not the statement the server signed"},
		{"an edited README", func(files map[string][]byte) {
			files[bundle.FileReadme] = append(files[bundle.FileReadme], "All events were checked by the auditor.\n"...)
			reseal(t, files, 0, 0)
		}, "bundle.json is not the statement the server signed"},
		{"an edited README, bundle.json left", func(files map[string][]byte) {
			files[bundle.FileReadme] = append(files[bundle.FileReadme], "x\n"...)
		}, "README.txt: its size or SHA-256 differs"},
		{"the statement re-signed with another key", func(files map[string][]byte) {
			editLine(t, files, bundle.FileEvents, live, func(string) string { return "" })
			editLine(t, files, bundle.FileManifest, live, func(l string) string {
				return strings.Replace(l, `"state":"live"`, `"state":"removed"`, 1)
			})
			reseal(t, files, -1, +1)
			var info bundle.Info
			json.Unmarshal(files[bundle.FileInfo], &info)
			signed, err := note.Sign(&note.Note{Text: bundle.StatementOrigin(info.OrganizationID) + "\n" + string(files[bundle.FileInfo])}, other)
			if err != nil {
				t.Fatal(err)
			}
			files[bundle.FileStatement] = signed
		}, "bundle.sig: the statement is not signed by any trusted key"},
		{"the statement left out", func(files map[string][]byte) { delete(files, bundle.FileStatement) }, "bundle.sig: missing from the bundle"},
		{"a checkpoint note passed off as the statement", func(files map[string][]byte) {
			files[bundle.FileStatement] = files[bundle.FileCheckpoint]
		}, "bundle.sig: a statement of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := verify(t, rezip(t, b, tc.change), key)
			if rep.OK() {
				t.Fatalf("the tampered bundle passed: %+v", rep)
			}
			if all := strings.Join(rep.Problems, "\n"); !strings.Contains(all, tc.want) {
				t.Fatalf("problems do not say %q:\n%s", tc.want, all)
			}
		})
	}
}

func TestVerifyLimitsAndEscapes(t *testing.T) {
	f := newFixture(t)
	b, _ := f.bundle(t, f.filter())
	key := f.log.Key().VerifierKey()

	t.Run("a decompression bomb stops at the recorded size and keeps 100 problems", func(t *testing.T) {
		bomb := rezip(t, b, func(files map[string][]byte) {
			files[bundle.FileEvents] = bytes.Repeat([]byte("x\n"), 25<<19) // 25 MiB
		})
		if len(bomb) > 1<<20 {
			t.Fatalf("the bomb is %d bytes zipped", len(bomb))
		}
		rep := verify(t, bomb, key)
		all := strings.Join(rep.Problems, "\n")
		if rep.OK() || len(rep.Problems) > bundle.MaxProblems+1 || rep.More == 0 || !strings.Contains(all, "events.jsonl: larger than the ") ||
			!strings.Contains(all, "bundle.json records; not read further") {
			t.Fatalf("%d problems kept, %d more:\n%s", len(rep.Problems), rep.More, all)
		}
		// It stopped at the recorded size: far fewer problems than the 13 M lines.
		if rep.More > 1<<20 {
			t.Fatalf("%d problems counted: it read on past the recorded size", rep.More)
		}
	})
	t.Run("unexpected entries are problems, their names escaped", func(t *testing.T) {
		odd := rezip(t, b, nil)
		zr, _ := zip.NewReader(bytes.NewReader(odd), int64(len(odd)))
		var out bytes.Buffer
		zw := zip.NewWriter(&out)
		for _, zf := range zr.File {
			if err := zw.Copy(zf); err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range []string{"../../x", "/etc/evil", "\x1b]0;pwned\x07\x1b[2J‮evil"} {
			w, _ := zw.Create(name)
			w.Write([]byte("x"))
		}
		zw.Close()
		rep := verify(t, out.Bytes(), key)
		all := strings.Join(rep.Problems, "\n")
		for _, want := range []string{`"../../x": not a file of a bundle`, `"/etc/evil": not a file of a bundle`, `\x1b]0;pwned\a\x1b[2J\u202eevil`} {
			if !strings.Contains(all, want) {
				t.Fatalf("problems do not say %q:\n%s", want, all)
			}
		}
		if strings.ContainsAny(all, "\x1b\x07‮") {
			t.Fatalf("a raw control character in the problems:\n%q", all)
		}
	})
	t.Run("Printable escapes controls and bidi overrides", func(t *testing.T) {
		if got := bundle.Printable("auditdb/a\x1b[2Jb‮c\td é"); got != `auditdb/a\u001b[2Jb\u202ec\u0009d é` {
			t.Fatalf("Printable: %q", got)
		}
	})
	t.Run("a tree size of 2^64-1 is read as such", func(t *testing.T) {
		big := rezip(t, b, func(files map[string][]byte) {
			lines := strings.SplitN(string(files[bundle.FileCheckpoint]), "\n", 3)
			lines[1] = "18446744073709551615"
			files[bundle.FileCheckpoint] = []byte(strings.Join(lines, "\n"))
		})
		rep := verify(t, big, key)
		if rep.OK() || rep.TreeSize != math.MaxUint64 || !strings.Contains(strings.Join(rep.Problems, "\n"), "tree size 18446744073709551615") {
			t.Fatalf("tree size %d; problems:\n%s", rep.TreeSize, strings.Join(rep.Problems, "\n"))
		}
	})
}

// A bundle whose sha256-jcs-v2 events had fields erased or pseudonymized verifies offline and
// says which fields were removed lawfully; a field changed behind its commitment is a problem.
func TestBundleReportsErasedFields(t *testing.T) {
	f := newFixture(t)
	erased, pseudonymized, changed := f.live[2], f.live[4], f.live[6]
	for _, ev := range []models.Event{erased, pseudonymized, changed} {
		if !models.PerFieldScheme(ev.HashAlgorithm) {
			t.Fatalf("event %d is of %s", ev.ID, ev.HashAlgorithm)
		}
	}
	gdpr := func(sql string, args ...any) {
		t.Helper()
		err := f.db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(`SET LOCAL auditdb.purpose = 'gdpr'`).Error; err != nil {
				return err
			}
			return tx.Exec(sql, args...).Error
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sealer := pgtest.Sealer(t)
	for _, ev := range []*models.Event{&erased, &pseudonymized} { // as the erasure engine does before its first redaction
		var err error
		if ev.FieldCommitments, err = models.ExpandFieldCommitments(ev); err != nil {
			t.Fatal(err)
		}
	}
	fc, err := sealer.MarkField(erased.FieldCommitments, erased.HashAlgorithm, erased.Hash, "details.ip", models.FieldErased, nil)
	if err != nil {
		t.Fatal(err)
	}
	gdpr(`UPDATE audit_log SET details = details - 'ip', field_commitments = ?::jsonb WHERE id = ?`, string(fc), erased.ID)
	pseudonym := "pseudo-4"
	fc, err = sealer.MarkField(pseudonymized.FieldCommitments, pseudonymized.HashAlgorithm, pseudonymized.Hash, "principalId", models.FieldPseudonymized, models.JSONString(pseudonym))
	if err != nil {
		t.Fatal(err)
	}
	gdpr(`UPDATE audit_log SET principal_id = 'pseudo-4', field_commitments = ?::jsonb WHERE id = ?`, string(fc), pseudonymized.ID)

	b, _ := f.bundle(t, f.filter())
	rep := verify(t, b, f.log.Key().VerifierKey())
	if !rep.OK() {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if rep.V2Events == 0 || rep.V2Events == rep.Events || rep.Fields[models.FieldErased] != 1 || rep.Fields[models.FieldPseudonymized] != 1 ||
		rep.Fields[models.FieldMismatch] != 0 || rep.Fields[models.FieldDisclosedOK] == 0 {
		t.Fatalf("%d of %d events v2, fields %v", rep.V2Events, rep.Events, rep.Fields)
	}
	notes := strings.Join(rep.FieldNotes, "\n")
	for _, want := range []string{fmt.Sprintf("event %d: details.ip erased (%s)", erased.ID, models.NoteVouched),
		fmt.Sprintf("event %d: principalId pseudonymized (%s)", pseudonymized.ID, models.NoteVouched)} {
		if !strings.Contains(notes, want) {
			t.Errorf("field notes %q lack %q", notes, want)
		}
	}

	b = rezip(t, b, func(files map[string][]byte) {
		editLine(t, files, bundle.FileEvents, changed.ID, func(l string) string { return strings.Replace(l, `"ip":"10.0.0.`, `"ip":"10.6.6.`, 1) })
	})
	rep = verify(t, b, f.log.Key().VerifierKey())
	// changed is never redacted (the compact form): its ip's digest is derived from the value,
	// so the changed value shows as a changed hash.
	if want := fmt.Sprintf("event %d: changed: its fields hash to", changed.ID); !slices.ContainsFunc(rep.Problems,
		func(p string) bool { return strings.HasPrefix(p, want) }) {
		t.Fatalf("problems %q lack %q", rep.Problems, want)
	}

	// A database writer marks a principal pseudonymized and puts another value there,
	// copying a genuine MAC: the server refuses to vouch for it in a bundle.
	forged, err := models.EventFieldCommitments(&changed)
	if err != nil {
		t.Fatal(err)
	}
	real, _ := models.ParseFieldCommitments(json.RawMessage(fc), changed.HashAlgorithm)
	forged["principalId"] = models.FieldCommitment{Digest: forged["principalId"].Digest, State: models.FieldPseudonymized, MAC: real["principalId"].MAC}
	raw, _ := json.Marshal(forged)
	gdpr(`UPDATE audit_log SET principal_id = 'pseudo-4', field_commitments = ?::jsonb WHERE id = ?`, string(raw), changed.ID)
	var buf bytes.Buffer
	_, err = bundle.Write(context.Background(), f.db, f.log, sealer, f.org, f.filter(), &buf)
	if models.KindOf(err) != models.KindConflict || !strings.Contains(err.Error(), fmt.Sprintf("event %d: the redaction of principalId", changed.ID)) {
		t.Fatalf("a bundle over a forged pseudonymization: %v", err)
	}
}

// verify-bundle reads event lines strictly: a member given twice, a member name in another
// case, or an unknown member makes the line no event.
func TestBundleEventLinesAreStrict(t *testing.T) {
	f := newFixture(t)
	b, _ := f.bundle(t, f.filter())
	ev := f.live[2]
	for name, edit := range map[string]func(string) string{
		"duplicate member": func(l string) string { return strings.Replace(l, `{"id":`, `{"action":"other.action","id":`, 1) },
		"case-insensitive": func(l string) string { return strings.Replace(l, `"action":`, `"Action":`, 1) },
		"unknown member":   func(l string) string { return strings.Replace(l, `{"id":`, `{"note":"x","id":`, 1) },
	} {
		t.Run(name, func(t *testing.T) {
			rb := rezip(t, b, func(files map[string][]byte) { editLine(t, files, bundle.FileEvents, ev.ID, edit) })
			rep := verify(t, rb, f.log.Key().VerifierKey())
			found := false
			for _, p := range rep.Problems {
				found = found || strings.Contains(p, "not an event")
			}
			if !found {
				t.Fatalf("problems %q: the line was read as an event", rep.Problems)
			}
		})
	}
}
