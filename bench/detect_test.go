package bench

import (
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{0.9}, 0.9},
		{[]float64{0.8, 0.9, 1.0}, 0.9},
		{[]float64{0.8, 0.9, 0.95, 1.0}, 0.925},
	} {
		if got := median(tc.in); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// A phase's time is taken at the pace of its middle batches: a slow start or end (a held
// detection batch read after the phase) moves it no more than a steady phase of the same pace.
func TestSteadyTimeIsThePaceOfTheMiddleBatches(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ends := make([]time.Time, 100)
	for i := range ends {
		ends[i] = t0.Add(time.Duration(i+1) * 100 * time.Millisecond)
	}
	if got := steadyTime(ends); got != 10*time.Second {
		t.Fatalf("steady phase: %s, want 10s", got)
	}
	for i := 95; i < 100; i++ { // a slow end
		ends[i] = ends[i].Add(5 * time.Second)
	}
	ends[0], ends[1] = ends[0].Add(-3*time.Second), ends[1].Add(-3*time.Second) // batches out of order
	if got := steadyTime(ends); got != 10*time.Second {
		t.Fatalf("phase with a slow end: %s, want the middle's pace, 10s", got)
	}
	ends[50] = ends[50].Add(20 * time.Second) // a stall in the middle counts
	if got := steadyTime(ends); got <= 10*time.Second {
		t.Fatalf("phase with a stall in the middle: %s, want more than 10s", got)
	}
}
