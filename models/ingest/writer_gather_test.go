package ingest

import (
	"testing"
	"time"

	"auditdb/models"
)

// TestWriterGather: a gathering takes every request already waiting at once, waits up to
// MaxDelay for more, never exceeds MaxBatch (the request that does not fit starts the next
// gathering) and ends at once when the queue closes.
func TestWriterGather(t *testing.T) {
	req := func(events int) *pendingWrite {
		return &pendingWrite{req: WriteRequest{Events: make([]models.Event, events)}}
	}
	newWriter := func(delay time.Duration) *Writer {
		return &Writer{cfg: WriterConfig{MaxBatch: 10, MaxDelay: delay}.withDefaults(), queue: make(chan *pendingWrite, 32)}
	}

	t.Run("waiting requests go in without waiting for the delay", func(t *testing.T) {
		w := newWriter(time.Hour)
		for i := 0; i < 4; i++ {
			w.queue <- req(2)
		}
		big := req(5)
		w.queue <- big
		start := time.Now()
		batch, carry := w.gather(req(1))
		if len(batch) != 5 || carry != big {
			t.Fatalf("gathered %d requests, carry %v; want 5 (9 events) and the 5-event request carried", len(batch), carry)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("a full gathering waited %s", d)
		}
	})

	t.Run("a request arriving within the delay joins", func(t *testing.T) {
		w := newWriter(200 * time.Millisecond)
		late := req(1)
		go func() {
			time.Sleep(20 * time.Millisecond)
			w.queue <- late
		}()
		batch, carry := w.gather(req(1))
		if len(batch) != 2 || batch[1] != late || carry != nil {
			t.Fatalf("gathered %d requests (carry %v), want the first and the late one", len(batch), carry)
		}
	})

	t.Run("an idle queue ends the gathering after the delay", func(t *testing.T) {
		w := newWriter(30 * time.Millisecond)
		start := time.Now()
		batch, carry := w.gather(req(1))
		if d := time.Since(start); len(batch) != 1 || carry != nil || d < 30*time.Millisecond || d > 5*time.Second {
			t.Fatalf("gathered %d requests (carry %v) after %s, want 1 after about 30ms", len(batch), carry, d)
		}
	})

	t.Run("a closed queue ends the gathering at once", func(t *testing.T) {
		w := newWriter(time.Hour)
		w.queue <- req(1)
		close(w.queue)
		batch, carry := w.gather(req(1))
		if len(batch) != 2 || carry != nil {
			t.Fatalf("gathered %d requests (carry %v), want the 2 queued before closing", len(batch), carry)
		}
	})
}
