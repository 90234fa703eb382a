package apijson_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"auditdb/handlers/apijson"
	"auditdb/models/ingest"
)

// receipts converts the writer's receipts into the declared shapes.
func receipts(rs []ingest.Receipt) []apijson.Receipt {
	out := make([]apijson.Receipt, len(rs))
	for i, r := range rs {
		out[i] = apijson.Receipt{ID: r.ID, Hash: r.Hash, Timestamp: r.Timestamp.UTC().Format(apijson.TimeLayout)}
	}
	return out
}

// The hand-written receipts are byte for byte what encoding/json writes for the same
// shapes.
func TestReceiptJSONMatchesEncodingJSON(t *testing.T) {
	var rs []ingest.Receipt
	for i := 0; i < 50; i++ {
		sum := sha256.Sum256([]byte(strconv.Itoa(i)))
		at := time.Date(2026, 11, 27, 3, 4, 5, i*123457000, time.FixedZone("x", (i-25)*1800))
		rs = append(rs, ingest.Receipt{ID: int64(i) * 987654321, Hash: hex.EncodeToString(sum[:]), Timestamp: at})
	}
	for _, r := range rs {
		want, err := json.Marshal(receipts([]ingest.Receipt{r})[0])
		if err != nil {
			t.Fatal(err)
		}
		if got := apijson.AppendReceiptJSON(nil, r); string(got) != string(want) {
			t.Fatalf("receipt\n got %s\nwant %s", got, want)
		}
	}
	for _, n := range []int{1, 2, len(rs)} {
		want, err := json.Marshal(apijson.BatchReceipt{Count: n, Events: receipts(rs[:n])})
		if err != nil {
			t.Fatal(err)
		}
		if got := apijson.AppendBatchReceiptJSON(nil, rs[:n]); string(got) != string(want) {
			t.Fatalf("batch of %d\n got %s\nwant %s", n, got, want)
		}
	}
}
