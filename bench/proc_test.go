package bench

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// rusageCPU is this process's user and system time as getrusage(2) tells it, a source
// independent of /proc.
func rusageCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// burn works until getrusage counts d more CPU time for this process (however busy the
// machine is).
func burn(t *testing.T, d time.Duration) uint64 {
	var x uint64 = 1
	for end := rusageCPU(t) + d; rusageCPU(t) < end; {
		for i := 0; i < 100_000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	return x
}

func TestProcessCPUCountsThisProcessWork(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	burn(t, 300*time.Millisecond)
	after, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// 300 ms of CPU time by getrusage; /proc counts in 10 ms ticks.
	if got := after - before; got < 200*time.Millisecond || got > 5*time.Second {
		t.Fatalf("300 ms of work counted as %s", got)
	}
	if _, err := processCPU(0); err == nil {
		t.Fatal("processCPU(0) gave no error")
	}
}

func TestCPUMeterSplitsAPhase(t *testing.T) {
	// This process stands in for the server: both the server's and the load generator's
	// share must then hold the work done in between.
	m := cpuMeter{serverPID: os.Getpid()}
	from := m.snapshot()
	if !from.ok {
		t.Fatal("cannot read /proc, or no PostgreSQL process runs on this machine")
	}
	burn(t, 300*time.Millisecond)
	split, ok := since(from, m.snapshot())
	if !ok {
		t.Fatal("the second snapshot failed")
	}
	if split.Server < 200*time.Millisecond || split.LoadGenerator < 200*time.Millisecond {
		t.Fatalf("300 ms of work split as server %s, load generator %s", split.Server, split.LoadGenerator)
	}
	if split.Wall < 300*time.Millisecond || split.Postgres < 0 || split.Idle < 0 {
		t.Fatalf("implausible split %+v", split)
	}
	if _, ok := since(cpuSnapshot{}, m.snapshot()); ok {
		t.Fatal("a failed snapshot gave a split")
	}
	if (cpuMeter{}).snapshot().ok {
		t.Fatal("a meter without a server process gave a snapshot")
	}
	sum := split.Add(split)
	if sum.Server != 2*split.Server || sum.Wall != 2*split.Wall {
		t.Fatalf("Add: %+v", sum)
	}
}
