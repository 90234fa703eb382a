package handlers

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Under 200 parallel takes, no organization gets more than its slots and the instance no
// more than its total; released slots can be taken again, and a second release is a no-op.
func TestSlotsHoldUnderParallelTakes(t *testing.T) {
	s := newSlots(2, 5)
	orgs := []string{"a", "b", "c", "d"}
	var got [4]atomic.Int32
	var total atomic.Int32
	var releases sync.Map
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := i % len(orgs)
			if release, refused := s.take(orgs[o]); refused == refusedNone {
				got[o].Add(1)
				total.Add(1)
				releases.Store(i, release)
			}
		}()
	}
	wg.Wait()
	for o := range orgs {
		if n := got[o].Load(); n > 2 {
			t.Errorf("org %s got %d slots, limit 2", orgs[o], n)
		}
	}
	if n := total.Load(); n != 5 {
		t.Fatalf("%d slots taken in all, want exactly the total 5", n)
	}
	if _, refused := s.take("e"); refused != refusedAll {
		t.Fatalf("a sixth slot: refusal %d, want the instance's", refused)
	}
	releases.Range(func(_, v any) bool {
		r := v.(func())
		r()
		r() // a second release gives nothing back twice
		return true
	})
	if s.all != 0 || len(s.byOrg) != 0 {
		t.Fatalf("after every release: %d held, %v", s.all, s.byOrg)
	}
	uncapped := newSlots(1, 0)
	if _, refused := uncapped.take("a"); refused != refusedNone {
		t.Fatal("no total means no instance-wide cap")
	}
	if _, refused := uncapped.take("a"); refused != refusedOrg {
		t.Fatalf("org a's second slot: refusal %d, want the organization's", refused)
	}
}
