package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/bundle"
	"auditdb/web/webtest"
)

func TestVerifyBundleCommand(t *testing.T) {
	w := webtest.New(t)
	org := w.Org("bundle")
	now := time.Now().UTC()
	var evs []models.Event
	for i := range 40 {
		evs = append(evs, models.Event{OrganizationID: org, Timestamp: now.Add(-time.Duration(i) * time.Minute),
			Action: "test.cli", Status: "success", Details: []byte(fmt.Sprintf(`{"ip":"10.0.0.1","i":%d}`, i))})
	}
	evs = w.Events(evs...)
	w.Sequence()
	var buf bytes.Buffer
	sum, err := bundle.Write(context.Background(), w.DB, w.Log, w.Sealer, org,
		models.EventFilter{From: now.Add(-time.Hour), To: now.Add(time.Minute)}, &buf)
	if err != nil || sum.Events != 40 {
		t.Fatalf("bundle of %d events: %v", sum.Events, err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.zip")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	key := w.Log.Key().VerifierKey()
	run := func(env map[string]string, args ...string) (string, error) {
		var out bytes.Buffer
		err := Run(context.Background(), append([]string{"verify-bundle"}, args...), func(k string) string { return env[k] }, &out)
		return out.String(), err
	}

	out, err := run(nil, "--key", key, path)
	if err != nil || !strings.Contains(out, "checkpoint signed by trusted key auditdb+") || !strings.Contains(out, "40 events") ||
		!strings.Contains(out, "40 events of schemes sha256-jcs-v2/sha256-jcs-v3: committed fields 80 disclosed") ||
		!strings.HasSuffix(out, "OK\n") {
		t.Fatalf("a fresh bundle: %v\n%s", err, out)
	}
	// The trusted key may come from the environment; without any, it passes but says so.
	if out, err := run(map[string]string{"AUDITDB_VERIFIER_KEY": key}, path); err != nil || !strings.Contains(out, "trusted key") {
		t.Fatalf("key from the environment: %v\n%s", err, out)
	}
	if out, err := run(nil, path); err != nil || !strings.Contains(out, "WARNING: no trusted key given") {
		t.Fatalf("without a trusted key: %v\n%s", err, out)
	}

	// One event's line changed: exit non-zero, naming the event.
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var tampered bytes.Buffer
	zw := zip.NewWriter(&tampered)
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if f.Name == bundle.FileEvents {
			b = bytes.Replace(b, []byte(fmt.Sprintf(`"id":%d,`, evs[7].ID)), []byte(fmt.Sprintf(`"id":%d,`, evs[7].ID+1_000_000)), 1)
		}
		fw, _ := zw.Create(f.Name)
		fw.Write(b)
	}
	zw.Close()
	bad := filepath.Join(dir, "tampered.zip")
	os.WriteFile(bad, tampered.Bytes(), 0o600)
	out, err = run(nil, "--key", key, bad)
	if err == nil || !strings.Contains(out, fmt.Sprintf("PROBLEM: event %d (events.jsonl line", evs[7].ID+1_000_000)) ||
		!strings.Contains(out, fmt.Sprintf("PROBLEM: event %d: in the manifest", evs[7].ID)) {
		t.Fatalf("a tampered bundle: %v\n%s", err, out)
	}
	if _, err := run(nil); models.KindOf(err) != models.KindInvalid {
		t.Fatalf("without a file: %v", err)
	}
}
