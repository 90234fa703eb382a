package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc (USER_HZ, 100 on every Linux port Go
// runs on).
const clockTick = 10 * time.Millisecond

// CPUSplit is the CPU time spent during a phase of the benchmark, by who spent it, and the
// time the machine's CPUs sat idle meanwhile. It is read from /proc, so it is known only on
// Linux and only when the server and PostgreSQL run on this machine.
type CPUSplit struct {
	Server, Postgres, LoadGenerator time.Duration
	Idle                            time.Duration // summed over all CPUs
	Wall                            time.Duration
}

// Add sums two splits (phases measured apart).
func (c CPUSplit) Add(o CPUSplit) CPUSplit {
	return CPUSplit{Server: c.Server + o.Server, Postgres: c.Postgres + o.Postgres,
		LoadGenerator: c.LoadGenerator + o.LoadGenerator, Idle: c.Idle + o.Idle, Wall: c.Wall + o.Wall}
}

// total is the CPU time of all three.
func (c CPUSplit) total() time.Duration { return c.Server + c.Postgres + c.LoadGenerator }

// cpuMeter takes CPU snapshots of the server process, every PostgreSQL process, this
// process and the machine.
type cpuMeter struct {
	serverPID int
}

type cpuSnapshot struct {
	at                     time.Time
	server, postgres, self time.Duration
	idle                   time.Duration
	ok                     bool
}

func (m cpuMeter) snapshot() cpuSnapshot {
	if m.serverPID <= 0 { // a server elsewhere: nothing to split, so no /proc scan
		return cpuSnapshot{}
	}
	s := cpuSnapshot{at: time.Now(), ok: true}
	var err error
	if s.server, err = processCPU(m.serverPID); err != nil {
		s.ok = false
	}
	if s.self, err = processCPU(os.Getpid()); err != nil {
		s.ok = false
	}
	if s.postgres, err = postgresCPU(); err != nil {
		s.ok = false
	}
	if s.idle, err = machineIdle(); err != nil {
		s.ok = false
	}
	return s
}

// since returns the CPU spent from s0 to s1; ok is false when either could not be read.
// PostgreSQL backends that ended meanwhile are not counted (the server and the benchmark
// keep theirs open for the whole run).
func since(s0, s1 cpuSnapshot) (CPUSplit, bool) {
	if !s0.ok || !s1.ok {
		return CPUSplit{}, false
	}
	return CPUSplit{Server: s1.server - s0.server, Postgres: max(0, s1.postgres-s0.postgres),
		LoadGenerator: s1.self - s0.self, Idle: s1.idle - s0.idle, Wall: s1.at.Sub(s0.at)}, true
}

// processCPU is the user and system time a process has used, from /proc/<pid>/stat.
func processCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("bench: no process id")
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after it are plain numbers:
	// state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt, majflt, cmajflt,
	// utime, stime.
	end := bytes.LastIndexByte(raw, ')')
	if end < 0 {
		return 0, fmt.Errorf("bench: unreadable /proc/%d/stat", pid)
	}
	f := bytes.Fields(raw[end+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: unreadable CPU times in /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// postgresCPU sums the CPU time of every process named postgres: the server, its
// background workers and every backend.
func postgresCPU() (time.Duration, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	var total time.Duration
	found := false
	for _, d := range dirs {
		comm, err := os.ReadFile(d + "/comm")
		if err != nil || string(bytes.TrimSpace(comm)) != "postgres" {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		if t, err := processCPU(pid); err == nil {
			total += t
			found = true
		}
	}
	if !found {
		return 0, fmt.Errorf("bench: no PostgreSQL process on this machine")
	}
	return total, nil
}

// machineIdle is the idle and I/O-wait time of all CPUs together, from /proc/stat.
func machineIdle() (time.Duration, error) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := bytes.Cut(raw, []byte("\n"))
	f := bytes.Fields(line) // cpu user nice system idle iowait …
	if len(f) < 6 || string(f[0]) != "cpu" {
		return 0, fmt.Errorf("bench: unreadable /proc/stat")
	}
	idle, err1 := strconv.ParseInt(string(f[4]), 10, 64)
	iowait, err2 := strconv.ParseInt(string(f[5]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: unreadable /proc/stat")
	}
	return time.Duration(idle+iowait) * clockTick, nil
}

// perEvent formats a CPU time per event in microseconds.
func perEvent(d time.Duration, events int) string {
	return fmt.Sprintf("%.1f µs", float64(d.Microseconds())/float64(events))
}

// PeakRSSOf returns a function reading VmHWM (peak resident set) of process pid from
// /proc, in bytes.
func PeakRSSOf(pid int) func() (int64, error) {
	return func() (int64, error) {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				return kb << 10, err
			}
		}
		return 0, fmt.Errorf("bench: no VmHWM in /proc/%d/status", pid)
	}
}
