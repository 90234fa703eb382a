package models

import (
	"context"
	"time"
)

// FollowUntilDone runs follow (one subscription to change signals, returning when it
// fails, and reporting whether it was ever confirmed) again and again until ctx ends. The
// pause between attempts doubles from 100 ms to 5 s while attempts fail, and starts over
// after one that was confirmed.
func FollowUntilDone(ctx context.Context, follow func(context.Context) bool) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if follow(ctx) {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
