package models

import "testing"

// Both forms of the batch's id set (a bitmap over a narrow id range, a map over a wide
// one) hold exactly the ids added and give each up once.
func TestIDSetTakesEachAddedIDOnce(t *testing.T) {
	for _, c := range []struct {
		name   string
		ids    []int64
		bitmap bool
	}{
		{"narrow range", []int64{1000, 1001, 1003, 1063, 1064, 1127}, true},
		{"wide range", []int64{5, 900, 1_000_000}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			lo, hi := c.ids[0], c.ids[len(c.ids)-1]
			s := newIDSet(lo, hi, len(c.ids))
			if got := s.bits != nil; got != c.bitmap {
				t.Fatalf("bitmap = %v for %d ids over %d, want %v", got, len(c.ids), hi-lo+1, c.bitmap)
			}
			for _, id := range c.ids {
				s.add(id)
			}
			for _, id := range []int64{lo - 1, lo + 2, hi + 1, hi + 64, hi - 1} {
				if s.take(id) {
					t.Errorf("id %d was never added but was taken", id)
				}
			}
			for _, id := range c.ids {
				if !s.take(id) {
					t.Errorf("id %d was added but not taken", id)
				}
				if s.take(id) {
					t.Errorf("id %d was taken twice", id)
				}
			}
		})
	}
}
