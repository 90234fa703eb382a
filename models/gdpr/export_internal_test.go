package gdpr

import (
	"context"
	"io"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/pgtest"
)

// TestExportMemoryIsBounded exports 30,000 events through small chunks: the compressed
// bytes held at once never exceed a chunk plus one zstd block, whatever the export's size,
// and the stored export reads back whole.
func TestExportMemoryIsBounded(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	org := pgtest.NewOrg(t, "big")
	sealer := pgtest.Sealer(t)
	const n = 30_000
	principal := "heavy-user"
	now := time.Now().UTC()
	evs := make([]models.Event, n)
	for i := range evs {
		evs[i] = models.Event{OrganizationID: org, Timestamp: now.Add(-time.Duration(n-i) * time.Millisecond),
			Action: "data.read", Status: "success", DataClassification: "INTERNAL", RetentionPolicy: "standard",
			EventVersion: "1.0", PrincipalID: &principal, Details: []byte(`{"ip":"10.1.2.3","row":"` + time.Duration(i).String() + `"}`)}
		if err := sealer.Seal(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ingest.CopyEvents(ctx, db, models.NewPartitionManager(db), evs); err != nil {
		t.Fatal(err)
	}
	store := NewStore(db, nil)
	r, err := store.Create(ctx, org, Input{Type: TypeAccess, Subject: Subject{PrincipalID: principal}, IdentityCheck: "x",
		RequestedBy: "y"}, models.SystemActor("test"))
	if err != nil {
		t.Fatal(err)
	}
	old := chunkSize
	chunkSize = 16 << 10
	defer func() { chunkSize = old }()
	w, err := createExportFile(ctx, db, r, FormatCSV)
	if err != nil {
		t.Fatal(err)
	}
	var reports int
	got, err := WriteExport(ctx, db, r, FormatCSV, w, now, func(int64) { reports++ })
	if err != nil || got != n {
		t.Fatalf("wrote %d events, %v", got, err)
	}
	if err := w.close(got); err != nil {
		t.Fatal(err)
	}
	const zstdBlock = 128 << 10
	if w.seq < 4 || w.maxBuffered > chunkSize+zstdBlock {
		t.Fatalf("%d chunks, at most %d compressed bytes held (bound %d)", w.seq, w.maxBuffered, chunkSize+zstdBlock)
	}
	if reports < n/5000 {
		t.Fatalf("%d progress reports for %d events", reports, n)
	}
	f, rc, err := store.OpenExport(ctx, org, r.ID, FormatCSV)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	size, err := io.Copy(io.Discard, rc)
	if err != nil || size != f.Size || f.Size < 1<<20 {
		t.Fatalf("read back %d of %d bytes: %v", size, f.Size, err)
	}
}
