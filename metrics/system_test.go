package metrics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestCgroupLimits(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct {
		root string
		want cgroupStats
	}{
		{"v2", cgroupStats{version: 2, cpuLimit: 1.5, memLimit: gib, memUsage: 384 << 20}},
		{"v2nested", cgroupStats{version: 2, cpuLimit: 0.5, memLimit: 256 << 20, memUsage: 128 << 20}},
		{"v2nolimit", cgroupStats{version: 2, memUsage: 700 << 20}},
		{"v1", cgroupStats{version: 1, cpuLimit: 2, memLimit: 2 * gib, memUsage: gib / 2}},
		{"v1nolimit", cgroupStats{version: 1, memUsage: 1536 << 20}},
		{"none", cgroupStats{}},
		{"does-not-exist", cgroupStats{}},
	} {
		t.Run(tc.root, func(t *testing.T) {
			got := newSysReader(filepath.Join("testdata", tc.root)).cgroup()
			require.Equal(t, tc.want, got)
		})
	}
}

func TestSignalsSystem(t *testing.T) {
	// testdata: the process started 100 s before testStart and used 20 CPU
	// seconds; RSS 100 MiB; host 8 GiB; the test reader sees 4 CPUs.
	for _, tc := range []struct {
		root               string
		cores, cpuPct      float64
		memBytes, memLimit uint64
		memPct             float64
	}{
		{"v2", 1.5, 20.0 / 1.5, 384 << 20, 1 << 30, 37.5},
		{"v2nested", 0.5, 40, 128 << 20, 256 << 20, 50},
		{"v2nolimit", 4, 5, 100 << 20, 8 << 30, 100.0 / 8192 * 100},
		{"v1", 2, 10, 512 << 20, 2 << 30, 25},
		{"v1nolimit", 4, 5, 100 << 20, 8 << 30, 100.0 / 8192 * 100},
		{"none", 4, 5, 100 << 20, 8 << 30, 100.0 / 8192 * 100},
	} {
		t.Run(tc.root, func(t *testing.T) {
			m, reg, _ := newTest(t, Options{FSRoot: filepath.Join("testdata", tc.root)})
			s := m.Signals()
			// What Prometheus scrapes divides as the signals do.
			g := gauges(t, reg, "aurax_cpu_cores", "aurax_memory_bytes", "aurax_memory_limit_bytes")
			require.InDelta(t, tc.cores, g["aurax_cpu_cores"], 1e-9, "exported cores")
			require.Equal(t, float64(tc.memBytes), g["aurax_memory_bytes"])
			require.Equal(t, float64(tc.memLimit), g["aurax_memory_limit_bytes"])
			require.InDelta(t, tc.cores, s.CPUCores, 1e-9, "cores")
			require.InDelta(t, tc.cpuPct, s.CPUPercent, 1e-9, "CPU %% since process start")
			require.Equal(t, tc.memBytes, s.MemoryBytes)
			require.Equal(t, tc.memLimit, s.MemoryLimitBytes)
			require.InDelta(t, tc.memPct, s.MemoryPercent, 1e-9)
		})
	}
}

func TestSignalsCPUDelta(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS("testdata/v2")))
	stat := filepath.Join(root, "proc/self/stat")
	orig, err := os.ReadFile(stat)
	require.NoError(t, err)
	setCPU := func(utime, stime string) {
		t.Helper()
		s := strings.Replace(string(orig), " 1500 500 ", " "+utime+" "+stime+" ", 1)
		require.NoError(t, os.WriteFile(stat, []byte(s), 0o644))
	}

	m, _, clk := newTest(t, Options{FSRoot: root})                            // 1.5 cores
	pct := func(s Signals) float64 { return s.CPUPercent * s.CPUCores / 100 } // in cores

	require.InDelta(t, 0.2, pct(m.Signals()), 1e-9, "first call: 20 CPU-s over 100 s since start")

	// +1.5 CPU-s in 5 s: 0.3 cores, 20 % of the 1.5-core quota.
	clk.Advance(5 * time.Second)
	setCPU("1600", "550")
	s := m.Signals()
	require.InDelta(t, 0.3, pct(s), 1e-9)
	require.InDelta(t, 20, s.CPUPercent, 1e-9)

	// A call 100 ms later is measured against the previous sample that is
	// at least a second old, not over 100 ms.
	clk.Advance(100 * time.Millisecond)
	setCPU("1600", "553") // +0.03 s
	require.InDelta(t, (1.5+0.03)/5.1, pct(m.Signals()), 1e-9)

	// 2 s later: against the sample of 2.1 s ago.
	clk.Advance(2 * time.Second)
	setCPU("1800", "553") // +2 s since then
	require.InDelta(t, 2.03/2.1, pct(m.Signals()), 1e-9)

	// The clock standing still, or CPU going backwards, never gives nonsense.
	setCPU("0", "0")
	require.Zero(t, m.Signals().CPUPercent)
}

func TestSignalsOnThisMachine(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	m := New(nil, Options{openGPU: noGPU}, nil)
	defer m.Close()
	s := m.Signals()
	t.Logf("%+v", s)
	require.Positive(t, s.CPUCores)
	require.Positive(t, s.MemoryBytes)
	require.Positive(t, s.MemoryLimitBytes)
	require.Greater(t, s.MemoryPercent, 0.0)
	require.LessOrEqual(t, s.MemoryPercent, 100.0)
	require.GreaterOrEqual(t, s.CPUPercent, 0.0)
}

func TestParsers(t *testing.T) {
	t.Run("proc stat", func(t *testing.T) {
		for _, tc := range []struct {
			in      string
			want    procStat
			wantErr bool
		}{
			{"1 (a) S 1 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 55 100 9", procStat{10, 55, 9}, false},
			{"1 (a b) c) S 1 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 55 100 9 0 0\n", procStat{10, 55, 9}, false},
			{"1 (a) S 1 1", procStat{}, true},
			{"no paren", procStat{}, true},
			{"1 (a) S 1 1 1 0 -1 0 0 0 0 0 x 3 0 0 20 0 1 0 55 100 9", procStat{}, true},
			{"1 (a) S 1 1 1 0 -1 0 0 0 0 0 18446744073709551615 1 0 0 20 0 1 0 55 100 9", procStat{}, true},
		} {
			got, err := parseProcStat([]byte(tc.in))
			require.Equal(t, tc.wantErr, err != nil, "parseProcStat(%q) err = %v", tc.in, err)
			require.Equal(t, tc.want, got, "parseProcStat(%q)", tc.in)
		}
	})
	t.Run("cpu.max", func(t *testing.T) {
		for _, tc := range []struct {
			in      string
			cores   float64
			ok, err bool
		}{
			{"max 100000\n", 0, false, false},
			{"max", 0, false, false},
			{"200000 100000\n", 2, true, false},
			{"50000", 0.5, true, false},
			{"0 100000", 0, false, true},
			{"100 0", 0, false, true},
			{"", 0, false, true},
			{"a b", 0, false, true},
			{"1 2 3", 0, false, true},
		} {
			c, ok, err := parseCPUMax([]byte(tc.in))
			require.Equal(t, tc.err, err != nil, "parseCPUMax(%q) err = %v", tc.in, err)
			require.Equal(t, tc.ok, ok, "parseCPUMax(%q) ok", tc.in)
			require.InDelta(t, tc.cores, c, 1e-12, "parseCPUMax(%q)", tc.in)
		}
	})
	t.Run("memory.max", func(t *testing.T) {
		for _, tc := range []struct {
			in      string
			want    uint64
			ok, err bool
		}{
			{"max\n", 0, false, false},
			{"1073741824\n", 1 << 30, true, false},
			{"9223372036854771712", 0, false, false},
			{"-1", 0, false, true},
			{"", 0, false, true},
		} {
			v, ok, err := parseMemoryMax([]byte(tc.in))
			require.Equal(t, tc.err, err != nil, "parseMemoryMax(%q) err = %v", tc.in, err)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, v)
		}
	})
	t.Run("proc cgroup", func(t *testing.T) {
		p := parseProcCgroup([]byte("12:memory:/a\n4:cpu,cpuacct:/b:c\n1:name=systemd:/d\n0::/e\r\ngarbage\n"))
		require.Equal(t, cgroupPaths{v2: "/e", v1: map[string]string{"memory": "/a", "cpu,cpuacct": "/b:c"}}, p)
	})
	t.Run("meminfo", func(t *testing.T) {
		v, err := parseMemTotal([]byte("MemFree: 1 kB\nMemTotal:  2048 kB\n"))
		require.NoError(t, err)
		require.EqualValues(t, 2<<20, v)
		for _, bad := range []string{"", "MemTotal:\n", "MemTotal: 1 MB\n", "MemTotal: 18446744073709551615 kB"} {
			_, err := parseMemTotal([]byte(bad))
			require.Error(t, err, "parseMemTotal(%q)", bad)
		}
	})
}

func TestCgroupPathCannotEscapeMount(t *testing.T) {
	mount := filepath.Join("testdata", "v2", "sys", "fs", "cgroup")
	for _, p := range []string{"/../../../../proc", "../..", "/nonexistent", ""} {
		require.Equal(t, mount, cgroupDir(mount, p), "cgroupDir(%q)", p)
	}
}

// FuzzParsers feeds the decoders of /proc and cgroup files arbitrary bytes:
// none may panic, and what they accept must be sane.
func FuzzParsers(f *testing.F) {
	err := filepath.WalkDir("testdata", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(p, "fuzz") {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
		return err
	})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, b []byte) {
		if ps, err := parseProcStat(b); err == nil {
			require.GreaterOrEqual(t, ps.cpuTicks, uint64(0))
		}
		if c, ok, err := parseCPUMax(b); err == nil && ok {
			require.Positive(t, c)
		} else {
			require.Zero(t, c)
		}
		if v, ok, err := parseMemoryMax(b); err == nil && ok {
			require.Positive(t, v)
			require.Less(t, v, uint64(unlimitedMemory))
		}
		parseBootTime(b)
		parseMemTotal(b)
		parseKeyed(b, "inactive_file")
		p := parseProcCgroup(b)
		mount := filepath.Join("testdata", "v2", "sys", "fs", "cgroup")
		d := cgroupDir(mount, p.v2)
		require.True(t, d == mount || strings.HasPrefix(d, mount+string(filepath.Separator)), "cgroupDir(%q) = %q", p.v2, d)
	})
}

// gauges reads the named unlabelled gauges from reg; a missing one fails.
func gauges(t *testing.T, reg *prometheus.Registry, names ...string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		if len(mf.GetMetric()) == 1 && mf.GetMetric()[0].GetGauge() != nil {
			got[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	for _, n := range names {
		require.Contains(t, got, n)
	}
	return got
}
