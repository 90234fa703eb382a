package bench

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// A small run of the sealing benchmark writes both schemes' events, every one verifying, and
// reports both ratios and the stored sizes.
func TestSealBenchmarkWritesBothSchemes(t *testing.T) {
	db := pgtest.DB(t)
	org := pgtest.NewOrg(t, "")
	var out bytes.Buffer
	r, err := Seal(context.Background(), SealOptions{DB: db, Sealer: pgtest.Sealer(t), Org: org, Events: 200, Batches: 2,
		BatchSize: 50, Writers: 2, Rounds: 2, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if r.CPURatio <= 0 || r.IngestRatio <= 0 || r.V1RowBytes <= 0 || r.V2RowBytes <= 0 ||
		r.V2RowBytes >= r.V1RowBytes || // v3's compact form (an event salt) is smaller than v1's salt and digest
		!strings.Contains(out.String(), "Seal v3 / Seal v1 CPU ×") {
		t.Fatalf("result %+v\n%s", r, out.String())
	}
	var counts struct{ V1, V2 int64 }
	db.Raw(`SELECT count(*) FILTER (WHERE hash_algorithm = ?) AS v1, count(*) FILTER (WHERE hash_algorithm = ?) AS v2
		FROM audit_log WHERE organization_id = ?`, models.HashAlgorithmV1, models.HashAlgorithmV3, org).Scan(&counts)
	if counts.V1 != 200 || counts.V2 != 200 { // 2 rounds × 2 batches × 50 per scheme
		t.Fatalf("wrote %d v1 and %d v2 events, want 200 each", counts.V1, counts.V2)
	}
	now := time.Now()
	page, err := models.NewEventStore(db).ListFull(context.Background(), org,
		models.EventFilter{From: now.Add(-time.Hour), To: now.Add(time.Minute)}, nil, 500)
	if err != nil || len(page.Events) != 400 {
		t.Fatalf("listed %d events: %v", len(page.Events), err)
	}
	for i := range page.Events {
		if v, err := pgtest.Sealer(t).Verify(&page.Events[i]); err != nil || !v.HashOK || !v.SignatureOK {
			t.Fatalf("event %d (%s) does not verify: %+v %v", page.Events[i].ID, page.Events[i].HashAlgorithm, v, err)
		}
	}
}
