package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// -pin N gives the proxies (nginx, every AURAX process) the last N CPUs of
// the machine and keeps the load generator and the upstreams (this
// process) on the others, so that a proxy's requests do not wait behind
// the load that measures them. On the project's 2-core machine, -pin 1:
// nginx's worker and AURAX each have a core (the one they share, in turn),
// and Go gives AURAX GOMAXPROCS 1, from the affinity it starts with.

// proxyCPUs is the CPU list the proxies are started on ("": unpinned), as
// taskset(1) reads it.
var proxyCPUs string

// pin splits the CPUs this process may run on: the last n for the
// proxies, the rest for this process, all of whose threads it moves there
// (a thread started later inherits the mask of the one that starts it).
// It returns a line for the report.
func pin(n int) (string, error) {
	cpus, err := allowedCPUs()
	if err != nil {
		return "", err
	}
	if n < 1 || n >= len(cpus) {
		return "", fmt.Errorf("-pin %d: this process may run on %d CPUs, and the load needs at least one of its own", n, len(cpus))
	}
	own, proxies := cpus[:len(cpus)-n], cpus[len(cpus)-n:]
	var mine unix.CPUSet
	for _, c := range own {
		mine.Set(c)
	}
	tasks, err := filepath.Glob("/proc/self/task/[0-9]*")
	if err != nil || len(tasks) == 0 {
		return "", fmt.Errorf("-pin: no threads in /proc/self/task (%v)", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(filepath.Base(t))
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &mine); err != nil && err != unix.ESRCH {
			return "", fmt.Errorf("-pin: thread %d: %w", tid, err)
		}
	}
	runtime.GOMAXPROCS(len(own))
	proxyCPUs = cpuList(proxies)
	return fmt.Sprintf("the proxies on CPU %s, the load generator and the upstreams on CPU %s", proxyCPUs, cpuList(own)), nil
}

// allowedCPUs is the CPUs the calling thread may run on, in order.
func allowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, err
	}
	var cpus []int
	for c := range len(set) * 64 {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// proxyCommand runs bin with args on the proxies' CPUs (as exec.Command
// does, unpinned). taskset sets the mask and executes bin, so the process
// keeps its PID, and its children (nginx's worker) the mask.
func proxyCommand(bin string, args ...string) *exec.Cmd {
	if proxyCPUs == "" {
		return exec.Command(bin, args...)
	}
	ts := "/usr/bin/taskset"
	if _, err := os.Stat(ts); err != nil {
		ts = "taskset"
	}
	return exec.Command(ts, append([]string{"-c", proxyCPUs, bin}, args...)...)
}
