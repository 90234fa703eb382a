package handlers

import "sync"

// slots counts the heavy downloads running at once (evidence bundles, event exports), per
// organization and in all, under one lock: a slot is checked and taken in one step, so
// parallel requests cannot all pass, and one organization cannot take every slot.
type slots struct {
	mu            sync.Mutex
	perOrg, total int // total 0: no instance-wide cap
	all           int
	byOrg         map[string]int
}

func newSlots(perOrg, total int) *slots {
	return &slots{perOrg: perOrg, total: total, byOrg: map[string]int{}}
}

// refusal says which limit refuses another slot for org.
type refusal int

const (
	refusedNone refusal = iota
	refusedOrg          // org holds perOrg slots already
	refusedAll          // the instance holds total slots already
)

// take reserves a slot for org. release gives it back and may be called more than once.
func (s *slots) take(org string) (release func(), refused refusal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.byOrg[org] >= s.perOrg:
		return nil, refusedOrg
	case s.total > 0 && s.all >= s.total:
		return nil, refusedAll
	}
	s.all++
	s.byOrg[org]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.all--
			if s.byOrg[org]--; s.byOrg[org] <= 0 {
				delete(s.byOrg, org)
			}
		})
	}, refusedNone
}
