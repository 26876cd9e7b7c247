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

// procCPU is the CPU time (user and system) pid and its children alive
// now have used: nginx's work is in its worker, a child of the master.
func procCPU(pid int) time.Duration {
	var t time.Duration
	for _, p := range family(pid) {
		t += statCPU(p)
	}
	return t
}

// procSys is the part of procCPU spent in the kernel (system time).
func procSys(pid int) time.Duration {
	var t time.Duration
	for _, p := range family(pid) {
		s, _ := statField(p, 15)
		t += time.Duration(s) * clockTick
	}
	return t
}

// family is pid and its children alive now.
func family(pid int) []int {
	ps := []int{pid}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		child, err := strconv.Atoi(filepath.Base(d))
		if err != nil || child == pid {
			continue
		}
		if ppid, _ := statField(child, 4); ppid == pid {
			ps = append(ps, child)
		}
	}
	return ps
}

// statCPU is one process's utime + stime.
func statCPU(pid int) time.Duration {
	u, _ := statField(pid, 14)
	s, _ := statField(pid, 15)
	return time.Duration(u+s) * clockTick
}

// statField is field n (1-based, as proc(5) numbers them) of
// /proc/pid/stat; the command name, which may hold spaces, is field 2.
func statField(pid, n int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	fs := strings.Fields(s[i+1:]) // fields 3 onwards
	if n < 3 || n-3 >= len(fs) {
		return 0, false
	}
	v, err := strconv.Atoi(fs[n-3])
	return v, err == nil
}

// procSwitches is the context switches (voluntary and not) that every
// thread of pid and of its children alive now has made: how often the
// proxy went to sleep and was woken, or was put off the CPU.
func procSwitches(pid int) int {
	n := 0
	for _, p := range family(pid) {
		n += taskSwitches(p)
	}
	return n
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
