package models_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// recorder is a Subscriber that keeps what it was told.
type recorder struct {
	mu       sync.Mutex
	payloads []string
	resets   []bool
}

func (r *recorder) Notified(p string) { r.mu.Lock(); r.payloads = append(r.payloads, p); r.mu.Unlock() }
func (r *recorder) Reset(live bool)   { r.mu.Lock(); r.resets = append(r.resets, live); r.mu.Unlock() }

func (r *recorder) seen() ([]string, []bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.payloads...), append([]bool(nil), r.resets...)
}

// TestSignalsDeliverTheDataLayersNotifications: a change to the policy tables is announced
// by the database itself with the new version, to every subscriber of that channel and to
// no other; ending the context stops the listener at once and tells the subscribers the
// signals are no longer live.
func TestSignalsDeliverTheDataLayersNotifications(t *testing.T) {
	db := pgtest.DB(t)
	sig := models.NewSignals(pgtest.DSN(t), nil)
	policy, keys := &recorder{}, &recorder{}
	sig.Subscribe(models.ChannelPolicy, policy)
	sig.Subscribe(models.ChannelAPIKeys, keys)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sig.Run(ctx) }()
	waitFor(t, "the signals to be live", sig.Live)

	var version int64
	if err := db.Exec(`INSERT INTO organizations (id, name) VALUES ('sig-org', 'Signals')`).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Raw(`SELECT version FROM policy_version`).Scan(&version).Error; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the policy signal", func() bool {
		p, _ := policy.seen()
		return len(p) > 0 && p[len(p)-1] == strconv.FormatInt(version, 10)
	})
	if p, _ := keys.seen(); len(p) != 0 {
		t.Fatalf("the API-key subscriber heard %q from a policy change", p)
	}

	time.Sleep(50 * time.Millisecond) // into a blocked wait
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run still runs 2 s after its context ended")
	}
	if sig.Live() {
		t.Error("the signals are still live after Run returned")
	}
	if _, r := policy.seen(); len(r) != 2 || !r[0] || r[1] {
		t.Errorf("resets = %v, want [true false]", r)
	}
}
