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
	t := statCPU(pid)
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		child, err := strconv.Atoi(filepath.Base(d))
		if err != nil || child == pid {
			continue
		}
		if ppid, _ := statField(child, 4); ppid == pid {
			t += statCPU(child)
		}
	}
	return t
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
