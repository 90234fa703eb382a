package cli

import (
	"auditdb/models"
	"bytes"
	"context"
	"strings"
	"testing"
)

// The ingest benchmark recreates its database, so it refuses one that is not a bench
// database by name, and leaves that database alone.
func TestBenchIngestDropsOnlyItsOwnDatabase(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), []string{"bench", "ingest", "--database", "auditdb"}, env(nil), &out)
	if err == nil || !strings.Contains(err.Error(), "--database") || !strings.Contains(err.Error(), "_bench_ingest") {
		t.Fatalf("err = %v, want a refusal naming --database", err)
	}
	for _, name := range []string{"_bench_ingest", "auditdb_bench_ingest_old"} {
		err := dropBenchDatabase(context.Background(), "postgres://postgres@127.0.0.1:5432/"+name, "_bench_ingest")
		if models.KindOf(err) != models.KindInvalid || !strings.Contains(err.Error(), "--database") {
			t.Errorf("%s: err = %v, want the name refused before any connection", name, err)
		}
	}
}
