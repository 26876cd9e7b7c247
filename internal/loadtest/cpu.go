package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// usage is what a proxy has spent: CPU time (user and system), the
// kernel's part of it (system), and its threads' context switches
// (voluntary and not: how often it went to sleep and was woken, or was put
// off the CPU).
type usage struct {
	cpu, sys time.Duration
	switches int
}

// procUsage is the usage of pid and of its children alive now: nginx's
// work is in its worker, a child of the master. Each process's stat file
// is read once.
func procUsage(pid int) usage {
	var u usage
	add := func(p int, fs []string) {
		ut, _ := strconv.Atoi(fs[14-3])
		st, _ := strconv.Atoi(fs[15-3])
		u.cpu += time.Duration(ut+st) * clockTick
		u.sys += time.Duration(st) * clockTick
		u.switches += taskSwitches(p)
	}
	if fs := statFields(pid); fs != nil {
		add(pid, fs)
	}
	parent := strconv.Itoa(pid)
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		child, err := strconv.Atoi(filepath.Base(d))
		if err != nil || child == pid {
			continue
		}
		if fs := statFields(child); fs != nil && fs[4-3] == parent {
			add(child, fs)
		}
	}
	return u
}

// statFields is /proc/pid/stat's fields from the third on (fs[n-3] is
// field n, 1-based as proc(5) numbers them; the command name, field 2,
// may hold spaces), nil when the process is gone or the file is short.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	fs := strings.Fields(s[i+1:])
	if len(fs) < 15-3+1 {
		return nil
	}
	return fs
}

// taskSwitches sums the context switches of pid's threads
// (/proc/pid/task/*/status).
func taskSwitches(pid int) int {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/[0-9]*/status")
	n := 0
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			name, v, _ := strings.Cut(line, ":")
			if name == "voluntary_ctxt_switches" || name == "nonvoluntary_ctxt_switches" {
				k, _ := strconv.Atoi(strings.TrimSpace(v))
				n += k
			}
		}
	}
	return n
}
