package bench

import (
	"context"
	"sync"
	"time"

	"gorm.io/gorm"
)

// dbCPU measures the CPU time PostgreSQL spends on one database: the backends (and
// autovacuum workers) pg_stat_activity lists for it, read from /proc. Other databases of a
// shared server are left out, so other people's work does not count. Backends are looked
// up every 200 ms; one that starts during the measurement counts from zero, one that ends
// counts up to its last look.
type dbCPU struct {
	db *gorm.DB

	mu     sync.Mutex
	first  map[int]time.Duration // at the start, or 0 for a backend seen later
	last   map[int]time.Duration
	ok     bool
	done   chan struct{}
	wg     sync.WaitGroup
	looked bool
}

// startDBCPU starts measuring the database db is connected to.
func startDBCPU(ctx context.Context, db *gorm.DB) *dbCPU {
	m := &dbCPU{db: db, first: map[int]time.Duration{}, last: map[int]time.Duration{}, ok: true, done: make(chan struct{})}
	m.look(ctx)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.done:
				return
			case <-t.C:
				m.look(ctx)
			}
		}
	}()
	return m
}

func (m *dbCPU) look(ctx context.Context) {
	var pids []int
	err := m.db.WithContext(ctx).Raw(`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`).Scan(&pids).Error
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.ok = false
		return
	}
	for _, pid := range pids {
		t, err := processCPU(pid)
		if err != nil {
			continue // ended meanwhile, or not on this machine
		}
		if _, seen := m.last[pid]; !seen {
			if m.looked {
				m.first[pid] = 0
			} else {
				m.first[pid] = t
			}
		}
		m.last[pid] = t
	}
	if len(m.last) == 0 {
		m.ok = false // PostgreSQL is not a process on this machine
	}
	m.looked = true
}

// stop takes a last look and returns the CPU time spent; ok is false when it could not be
// read.
func (m *dbCPU) stop(ctx context.Context) (time.Duration, bool) {
	close(m.done)
	m.wg.Wait()
	m.look(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	var total time.Duration
	for pid, t := range m.last {
		total += max(0, t-m.first[pid])
	}
	return total, m.ok
}
