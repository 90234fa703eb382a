package jobs

import (
	"context"
	"errors"
	"testing"
)

// countingSender answers SendDue from a list of batch sizes.
type countingSender struct {
	batches []int
	calls   int
	err     error
}

func (s *countingSender) SendDue(_ context.Context, limit int) (int, error) {
	s.calls++
	if s.err != nil {
		return 0, s.err
	}
	if len(s.batches) == 0 {
		return 0, nil
	}
	n := min(s.batches[0], limit)
	s.batches = s.batches[1:]
	return n, nil
}

func (s *countingSender) EnqueueNew(ctx context.Context, limit int) (int, error) {
	return s.SendDue(ctx, limit)
}

func TestNotificationJobRounds(t *testing.T) {
	cases := []struct {
		name    string
		batches []int
		calls   int
	}{
		{"nothing due: one round", nil, 1},
		{"a short batch ends the run", []int{sendBatch, 3}, 2},
		{"a full backlog stops after the last round", []int{sendBatch, sendBatch, sendBatch, sendBatch, sendBatch, sendBatch, sendBatch, sendBatch, sendBatch, sendBatch, sendBatch, sendBatch}, maxRounds},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &countingSender{batches: tc.batches}
			if err := SendNotifications(s)(context.Background()); err != nil {
				t.Fatal(err)
			}
			if s.calls != tc.calls {
				t.Fatalf("%d rounds, want %d", s.calls, tc.calls)
			}
		})
	}
	t.Run("an error ends the run and is returned", func(t *testing.T) {
		s := &countingSender{err: errors.New("down")}
		if err := EnqueueNotifications(s)(context.Background()); err == nil || s.calls != 1 {
			t.Fatalf("err %v after %d rounds", err, s.calls)
		}
	})
}
