package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// userHZ is the unit of the tick counts in /proc/<pid>/stat. It is 100 on
// every Linux architecture Go supports (procfs assumes the same).
const userHZ = 100

// unlimitedMemory: cgroup v1 reports "no limit" as a huge page-rounded
// number (9223372036854771712 on 4 KiB pages) rather than a keyword.
const unlimitedMemory = 1 << 62

var errFormat = errors.New("unexpected format")

// sysReader reads this process and its cgroup from the files under root.
// What cannot change while the process runs (its start, the host's memory,
// where its cgroup is) is read once.
type sysReader struct {
	root     string
	pageSize uint64
	numCPU   int

	layoutOnce sync.Once
	layout     cgroupLayout

	mu      sync.Mutex
	start   time.Time // process start, zero until read
	hostMem uint64    // MemTotal, 0 until read
}

func newSysReader(root string) *sysReader {
	return &sysReader{root: root, pageSize: uint64(os.Getpagesize()), numCPU: runtime.NumCPU()}
}

// sysSample is one reading of the process and its limits. Zero fields were
// not readable.
type sysSample struct {
	cpuSeconds float64   // user + system CPU time of the process
	start      time.Time // process start
	rss        uint64    // resident set size, bytes
	hostMem    uint64    // MemTotal, bytes
	cg         cgroupStats
}

// cgroupStats is what the cgroup of this process allows and uses.
type cgroupStats struct {
	version  int     // 1 or 2; 0 when no cgroup was found
	cpuLimit float64 // cores allowed by the CPU quota; 0 without a quota
	memLimit uint64  // bytes; 0 without a limit
	memUsage uint64  // working set (usage minus inactive file cache), bytes; 0 when unknown
}

func (r *sysReader) path(p string) string { return filepath.Join(r.root, p) }

func (r *sysReader) read(p string) ([]byte, error) { return os.ReadFile(r.path(p)) }

// sample reads everything; the error is the first thing that could not be
// read, the rest of the sample is still filled in.
func (r *sysReader) sample() (sysSample, error) {
	var s sysSample
	var firstErr error
	note := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	if b, err := r.read("proc/self/stat"); err != nil {
		note(err)
	} else if ps, err := parseProcStat(b); err != nil {
		note(fmt.Errorf("proc/self/stat: %w", err))
	} else {
		s.cpuSeconds = float64(ps.cpuTicks) / userHZ
		s.rss = ps.rssPages * r.pageSize
		r.mu.Lock()
		if r.start.IsZero() {
			if b, err := r.read("proc/stat"); err != nil {
				note(err)
			} else if bt, err := parseBootTime(b); err != nil {
				note(fmt.Errorf("proc/stat: %w", err))
			} else {
				r.start = time.Unix(bt, 0).Add(time.Duration(ps.startTicks) * (time.Second / userHZ))
			}
		}
		s.start = r.start
		r.mu.Unlock()
	}
	r.mu.Lock()
	if r.hostMem == 0 {
		if b, err := r.read("proc/meminfo"); err != nil {
			note(err)
		} else if v, err := parseMemTotal(b); err != nil {
			note(fmt.Errorf("proc/meminfo: %w", err))
		} else {
			r.hostMem = v
		}
	}
	s.hostMem = r.hostMem
	r.mu.Unlock()
	s.cg = r.cgroup()
	return s, firstErr
}

// cpuCores is the CPU this process may use: the cgroup quota, at most the
// CPUs it may run on.
func (r *sysReader) cpuCores(cg cgroupStats) float64 {
	n := float64(r.numCPU)
	if cg.cpuLimit > 0 && cg.cpuLimit < n {
		return cg.cpuLimit
	}
	return n
}

// cgroupLayout is where this process's cgroup files are.
type cgroupLayout struct {
	version        int
	v2Mount, v2Dir string // v2: the mount and this process's cgroup below it
	v1CPU, v1Mem   string // v1: the cgroup directory of each controller, "" if none
}

// findCgroup locates this process's cgroup: v2 when the unified hierarchy
// is mounted at sys/fs/cgroup, else the v1 cpu and memory hierarchies.
func (r *sysReader) findCgroup() cgroupLayout {
	var paths cgroupPaths
	if b, err := r.read("proc/self/cgroup"); err == nil {
		paths = parseProcCgroup(b)
	}
	mount := r.path("sys/fs/cgroup")
	if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err == nil {
		return cgroupLayout{version: 2, v2Mount: mount, v2Dir: cgroupDir(mount, paths.v2)}
	}
	l := cgroupLayout{v1CPU: v1Dir(mount, paths.v1, "cpu"), v1Mem: v1Dir(mount, paths.v1, "memory")}
	if l.v1CPU != "" || l.v1Mem != "" {
		l.version = 1
	}
	return l
}

// cgroup reads the limits and memory usage of this process's cgroup.
// Limits are the tightest of the cgroup and its ancestors (v2), or the
// hierarchical memory limit (v1).
func (r *sysReader) cgroup() cgroupStats {
	r.layoutOnce.Do(func() { r.layout = r.findCgroup() })
	switch l := r.layout; l.version {
	case 2:
		return cgroupV2(l.v2Mount, l.v2Dir)
	case 1:
		return cgroupV1(l.v1CPU, l.v1Mem)
	}
	return cgroupStats{}
}

// cgroupDir joins mount and the cgroup path of /proc/self/cgroup; when that
// directory is not there (a cgroup namespace shows the host's path) or would
// leave the mount, the mount itself is the cgroup.
func cgroupDir(mount, p string) string {
	d := filepath.Join(mount, p)
	if d != mount && !strings.HasPrefix(d, mount+string(filepath.Separator)) {
		return mount
	}
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
		return mount
	}
	return d
}

func cgroupV2(mount, leaf string) cgroupStats {
	cg := cgroupStats{version: 2}
	for d := leaf; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "cpu.max")); err == nil {
			if cores, ok, err := parseCPUMax(b); err == nil && ok && (cg.cpuLimit == 0 || cores < cg.cpuLimit) {
				cg.cpuLimit = cores
			}
		}
		if b, err := os.ReadFile(filepath.Join(d, "memory.max")); err == nil {
			if v, ok, err := parseMemoryMax(b); err == nil && ok && (cg.memLimit == 0 || v < cg.memLimit) {
				cg.memLimit = v
			}
		}
		if d == mount || len(d) <= len(mount) {
			break
		}
	}
	stat, _ := os.ReadFile(filepath.Join(leaf, "memory.stat"))
	cg.memUsage = workingSet(filepath.Join(leaf, "memory.current"), stat, "inactive_file")
	return cg
}

func cgroupV1(cpuDir, memDir string) cgroupStats {
	cg := cgroupStats{version: 1}
	if cpuDir != "" {
		q, errQ := readInt(filepath.Join(cpuDir, "cpu.cfs_quota_us"))
		per, errP := readInt(filepath.Join(cpuDir, "cpu.cfs_period_us"))
		if errQ == nil && errP == nil && q > 0 && per > 0 {
			cg.cpuLimit = float64(q) / float64(per)
		}
	}
	if memDir != "" {
		stat, _ := os.ReadFile(filepath.Join(memDir, "memory.stat"))
		limit, ok := parseKeyed(stat, "hierarchical_memory_limit")
		if !ok {
			if v, err := readInt(filepath.Join(memDir, "memory.limit_in_bytes")); err == nil && v > 0 {
				limit, ok = uint64(v), true
			}
		}
		if ok && limit > 0 && limit < unlimitedMemory {
			cg.memLimit = limit
		}
		cg.memUsage = workingSet(filepath.Join(memDir, "memory.usage_in_bytes"), stat, "total_inactive_file")
	}
	return cg
}

// v1Dir finds the cgroup directory of controller ctrl, whose hierarchy is
// mounted under its controller list ("cpu,cpuacct") or its own name; "" if
// there is none.
func v1Dir(mount string, paths map[string]string, ctrl string) string {
	isDir := func(d string) bool {
		fi, err := os.Stat(d)
		return err == nil && fi.IsDir()
	}
	for list, p := range paths {
		if !slices.Contains(strings.Split(list, ","), ctrl) {
			continue
		}
		for _, m := range []string{filepath.Join(mount, list), filepath.Join(mount, ctrl)} {
			if isDir(m) {
				return cgroupDir(m, p)
			}
		}
	}
	if m := filepath.Join(mount, ctrl); isDir(m) {
		return m
	}
	return ""
}

// workingSet is usage minus inactive file cache (from memory.stat), as the
// kubelet and the OOM killer see it; 0 when usage is unreadable.
func workingSet(usageFile string, stat []byte, inactiveKey string) uint64 {
	u, err := readInt(usageFile)
	if err != nil || u <= 0 {
		return 0
	}
	usage := uint64(u)
	if in, ok := parseKeyed(stat, inactiveKey); ok && in < usage {
		usage -= in
	}
	return usage
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
}

// procStat is what AURAX needs from /proc/<pid>/stat.
type procStat struct {
	cpuTicks   uint64 // utime + stime
	startTicks uint64 // start time after boot
	rssPages   uint64
}

// parseProcStat parses /proc/<pid>/stat. The command name, in parentheses,
// may hold spaces and parentheses itself, so fields count from the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errFormat
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime 14, stime 15, starttime 22, rss 24.
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("%d fields after the command name: %w", len(f), errFormat)
	}
	var v [4]uint64
	for k, idx := range [4]int{11, 12, 19, 21} {
		n, err := strconv.ParseUint(f[idx], 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("field %d: %w", idx+3, err)
		}
		v[k] = n
	}
	if v[0] > (1<<63)-v[1] {
		return procStat{}, fmt.Errorf("cpu ticks overflow: %w", errFormat)
	}
	return procStat{cpuTicks: v[0] + v[1], startTicks: v[2], rssPages: v[3]}, nil
}

// parseBootTime returns btime (seconds since the epoch) from /proc/stat.
func parseBootTime(b []byte) (int64, error) {
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			return strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
		}
	}
	return 0, fmt.Errorf("no btime: %w", errFormat)
}

// parseMemTotal returns MemTotal from /proc/meminfo in bytes.
func parseMemTotal(b []byte) (uint64, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("MemTotal:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 || len(f) > 2 || (len(f) == 2 && string(f[1]) != "kB") {
			return 0, fmt.Errorf("MemTotal %q: %w", rest, errFormat)
		}
		kb, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return 0, err
		}
		if kb > (1<<64-1)/1024 {
			return 0, fmt.Errorf("MemTotal overflow: %w", errFormat)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no MemTotal: %w", errFormat)
}

// cgroupPaths is /proc/self/cgroup: the v2 path ("0::/path") and the v1 path
// of each controller list ("4:cpu,cpuacct:/path").
type cgroupPaths struct {
	v2 string
	v1 map[string]string
}

func parseProcCgroup(b []byte) cgroupPaths {
	var p cgroupPaths
	for line := range strings.Lines(string(b)) {
		parts := strings.SplitN(strings.TrimRight(line, "\r\n"), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			p.v2 = parts[2]
			continue
		}
		if parts[1] == "" || strings.HasPrefix(parts[1], "name=") {
			continue
		}
		if p.v1 == nil {
			p.v1 = make(map[string]string)
		}
		p.v1[parts[1]] = parts[2]
	}
	return p
}

// parseCPUMax parses cgroup v2 cpu.max ("$MAX $PERIOD", MAX may be "max")
// into cores; ok is false without a quota.
func parseCPUMax(b []byte) (cores float64, ok bool, err error) {
	f := bytes.Fields(b)
	if len(f) < 1 || len(f) > 2 {
		return 0, false, fmt.Errorf("cpu.max %q: %w", b, errFormat)
	}
	if string(f[0]) == "max" {
		return 0, false, nil
	}
	quota, err := strconv.ParseUint(string(f[0]), 10, 64)
	if err != nil {
		return 0, false, err
	}
	period := uint64(100000) // the kernel's default when only MAX is written
	if len(f) == 2 {
		if period, err = strconv.ParseUint(string(f[1]), 10, 64); err != nil {
			return 0, false, err
		}
	}
	if quota == 0 || period == 0 {
		return 0, false, fmt.Errorf("cpu.max %q: %w", b, errFormat)
	}
	return float64(quota) / float64(period), true, nil
}

// parseMemoryMax parses cgroup v2 memory.max ("max" or bytes); ok is false
// without a limit.
func parseMemoryMax(b []byte) (uint64, bool, error) {
	s := string(bytes.TrimSpace(b))
	if s == "max" {
		return 0, false, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, err
	}
	if v == 0 || v >= unlimitedMemory {
		return 0, false, nil
	}
	return v, true, nil
}

// parseKeyed returns the value of key in a "key value" file (memory.stat).
func parseKeyed(b []byte, key string) (uint64, bool) {
	for line := range bytes.Lines(b) {
		f := bytes.Fields(line)
		if len(f) == 2 && string(f[0]) == key {
			v, err := strconv.ParseUint(string(f[1]), 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}
