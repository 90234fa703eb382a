package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStatusClass(t *testing.T) {
	for status, want := range map[int]string{100: "1xx", 200: "2xx", 201: "2xx", 303: "3xx", 404: "4xx", 429: "4xx",
		500: "5xx", 503: "5xx", 99: "other", 600: "other", 0: "other"} {
		if got := StatusClass(status); got != want {
			t.Errorf("StatusClass(%d) = %q, want %q", status, got, want)
		}
	}
}

// TestSwitchedOff: with recording off nothing moves; switched on again, it does.
func TestSwitchedOff(t *testing.T) {
	defer SetEnabled(true)
	before := testutil.ToFloat64(ingestEvents)
	SetEnabled(false)
	IngestCommitted(5)
	WriterQueued(3)
	if got := testutil.ToFloat64(ingestEvents); got != before {
		t.Errorf("recording off: events moved from %v to %v", before, got)
	}
	SetEnabled(true)
	IngestCommitted(5)
	if got := testutil.ToFloat64(ingestEvents); got != before+5 {
		t.Errorf("recording on: events %v, want %v", got, before+5)
	}
}
