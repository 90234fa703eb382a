package models

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// TestDetectReplay is a profiling harness, skipped unless DETECT_REPLAY_DSN names a scratch
// copy of a bench database (e.g. `createdb -T <db>_bench_detect <copy>` after
// `auditdb bench detect`). It resets detection's state there (cursor, hit runs, alerts,
// counts; the events stay), replays detection over the busiest organization's log in
// batches of DETECT_REPLAY_BATCH leaves (default 8000, about what a pass reads during the
// benchmark's ingest) with the clock at each batch's newest event, and prints, per third of
// the log, the CPU time per event of this process and of its one PostgreSQL backend (from
// /proc) and each statement's backend CPU and wall time. Run it with -cpuprofile for the Go
// side. It fails unless every leaf is processed.
func TestDetectReplay(t *testing.T) {
	dsn := os.Getenv("DETECT_REPLAY_DSN")
	if dsn == "" {
		t.Skip("DETECT_REPLAY_DSN not set")
	}
	batch, _ := strconv.Atoi(os.Getenv("DETECT_REPLAY_BATCH"))
	if batch <= 0 {
		batch = 8000
	}
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := db.DB()
	sqlDB.SetMaxOpenConns(1)
	ctx := context.Background()
	for _, q := range []string{`UPDATE detection_cursor SET leaf_index = 0`, `TRUNCATE detection_hit_run`, `DELETE FROM alerts`,
		`TRUNCATE event_counts_hourly`, `TRUNCATE event_counts_daily`, `VACUUM ANALYZE detection_hit_run`} {
		if err := db.Exec(q).Error; err != nil {
			t.Fatal(q, err)
		}
	}
	var pid int
	db.Raw(`SELECT pg_backend_pid()`).Scan(&pid)
	stmt := map[string]time.Duration{}
	calls := map[string]int{}
	var starts []time.Time
	var cpuStarts []time.Duration
	stmtCPU := map[string]time.Duration{}
	before := func(*gorm.DB) { starts = append(starts, time.Now()); cpuStarts = append(cpuStarts, procCPU(pid)) }
	after := func(tx *gorm.DB) {
		d := time.Since(starts[len(starts)-1])
		starts = starts[:len(starts)-1]
		c := procCPU(pid) - cpuStarts[len(cpuStarts)-1]
		cpuStarts = cpuStarts[:len(cpuStarts)-1]
		k := strings.Join(strings.Fields(tx.Statement.SQL.String()), " ")
		if len(k) > 90 {
			k = k[:90]
		}
		stmt[k] += d
		stmtCPU[k] += c
		calls[k]++
	}
	db.Callback().Raw().Before("gorm:raw").Register("replay:before", before)
	db.Callback().Raw().After("gorm:raw").Register("replay:after", after)
	db.Callback().Row().Before("gorm:row").Register("replay:before", before)
	db.Callback().Row().After("gorm:row").Register("replay:after", after)
	var org string
	db.Raw(`SELECT organization_id FROM detection_cursor ORDER BY (SELECT count(*) FROM audit_leaf l WHERE l.organization_id = detection_cursor.organization_id) DESC LIMIT 1`).Scan(&org)
	var total int64
	db.Raw(`SELECT count(*) FROM audit_leaf WHERE organization_id = ?`, org).Scan(&total)
	var clock time.Time
	d := NewDetector(db, func() time.Time { return clock }).WithBatch(batch)
	third := total/3 + 1
	var done int64
	seg := 0
	goCPU0, pgCPU0, wall0 := selfCPU(), procCPU(pid), time.Now()
	report := func() {
		goCPU, pgCPU := selfCPU()-goCPU0, procCPU(pid)-pgCPU0
		n := float64(done - int64(seg)*third)
		fmt.Printf("third %d: %.0f events, Go %.1f µs/event, PostgreSQL %.1f µs/event, wall %.1f µs/event\n", seg+1, n,
			float64(goCPU.Microseconds())/n, float64(pgCPU.Microseconds())/n, float64(time.Since(wall0).Microseconds())/n)
		keys := make([]string, 0, len(stmt))
		for k := range stmt {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return stmtCPU[keys[i]] > stmtCPU[keys[j]] })
		for _, k := range keys[:min(len(keys), 10)] {
			fmt.Printf("  cpu %7.0f ms wall %7.1f ms %5d  %s\n", float64(stmtCPU[k].Milliseconds()), float64(stmt[k].Microseconds())/1000, calls[k], k)
		}
		clear(stmt)
		clear(stmtCPU)
		clear(calls)
		goCPU0, pgCPU0, wall0 = selfCPU(), procCPU(pid), time.Now()
	}
	for done < total {
		var next time.Time
		var cur int64
		db.Raw(`SELECT leaf_index FROM detection_cursor WHERE organization_id = ?`, org).Scan(&cur)
		db.Raw(`SELECT max(event_timestamp) FROM audit_leaf WHERE organization_id = ? AND leaf_index >= ? AND leaf_index < ?`,
			org, cur, cur+int64(batch)).Scan(&next)
		clock = next.Add(500 * time.Millisecond)
		n, _, err := d.processOrg(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		done += int64(n)
		if done >= int64(seg+1)*third {
			report()
			seg++
		}
	}
	if done > int64(seg)*third {
		report()
	}
	if done != total {
		t.Fatalf("replayed %d of %d leaves", done, total)
	}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}
