//go:build linux && cgo

package metrics

import (
	"os"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/stretchr/testify/require"
)

// fakeNVML enforces NVML's contract: after a failed Init, or after
// Shutdown, any call fails the test (the real library would kill the
// process).
type fakeNVML struct {
	t        *testing.T
	initRet  nvml.Return
	countRet nvml.Return
	devs     []*fakeDevice
	live     bool
	calls    []string
}

func (f *fakeNVML) use(name string) {
	f.t.Helper()
	f.calls = append(f.calls, name)
	if !f.live {
		f.t.Fatalf("%s called without a successful Init", name)
	}
}

func (f *fakeNVML) Init() nvml.Return {
	f.calls = append(f.calls, "Init")
	f.live = f.initRet == nvml.SUCCESS
	return f.initRet
}

func (f *fakeNVML) Shutdown() nvml.Return {
	f.use("Shutdown")
	f.live = false
	return nvml.SUCCESS
}

func (f *fakeNVML) DeviceGetCount() (int, nvml.Return) {
	f.use("DeviceGetCount")
	return len(f.devs), f.countRet
}

func (f *fakeNVML) DeviceGetHandleByIndex(i int) (nvml.Device, nvml.Return) {
	f.use("DeviceGetHandleByIndex")
	return f.devs[i], nvml.SUCCESS
}

// fakeDevice implements the nvml.Device methods AURAX calls; the embedded
// nil interface panics on any other.
type fakeDevice struct {
	nvml.Device
	lib     *fakeNVML
	util    uint32
	utilRet nvml.Return
	mem     nvml.Memory
}

func (d *fakeDevice) GetName() (string, nvml.Return) {
	d.lib.use("GetName")
	return "NVIDIA H100", nvml.SUCCESS
}
func (d *fakeDevice) GetUUID() (string, nvml.Return) {
	d.lib.use("GetUUID")
	return "GPU-1234", nvml.SUCCESS
}
func (d *fakeDevice) GetUtilizationRates() (nvml.Utilization, nvml.Return) {
	d.lib.use("GetUtilizationRates")
	return nvml.Utilization{Gpu: d.util}, d.utilRet
}
func (d *fakeDevice) GetMemoryInfo() (nvml.Memory, nvml.Return) {
	d.lib.use("GetMemoryInfo")
	return d.mem, nvml.SUCCESS
}

func TestOpenNVMLFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lib       *fakeNVML
		reason    string
		wantCalls []string
	}{
		{"no library", &fakeNVML{initRet: nvml.ERROR_LIBRARY_NOT_FOUND},
			"nvml init: ERROR_LIBRARY_NOT_FOUND", []string{"Init"}},
		{"no driver", &fakeNVML{initRet: nvml.ERROR_DRIVER_NOT_LOADED},
			"nvml init: ERROR_DRIVER_NOT_LOADED", []string{"Init"}},
		{"count fails", &fakeNVML{countRet: nvml.ERROR_UNKNOWN},
			"nvml device count: ERROR_UNKNOWN", []string{"Init", "DeviceGetCount", "Shutdown"}},
		{"no devices", &fakeNVML{},
			"nvml: no GPU devices", []string{"Init", "DeviceGetCount", "Shutdown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.lib.t = t
			m, _, _ := newTest(t, Options{openGPU: func() (gpuBackend, error) { return openNVMLLib(tc.lib) }})
			st := m.GPU()
			require.False(t, st.Available)
			require.Equal(t, tc.reason, st.Reason)
			m.Signals()
			require.NoError(t, m.Close())
			require.Equal(t, tc.wantCalls, tc.lib.calls, "NVML calls")
		})
	}
}

func TestOpenNVMLReadsDevices(t *testing.T) {
	lib := &fakeNVML{t: t}
	lib.devs = []*fakeDevice{
		{lib: lib, util: 40, mem: nvml.Memory{Total: 80 << 30, Used: 20 << 30}},
		{lib: lib, utilRet: nvml.ERROR_NOT_SUPPORTED, mem: nvml.Memory{Total: 10 << 30, Used: 1 << 30}},
	}
	m, reg, _ := newTest(t, Options{openGPU: func() (gpuBackend, error) { return openNVMLLib(lib) }})
	st := m.GPU()
	require.True(t, st.Available)
	require.Equal(t, []GPUDevice{
		{Index: 0, Name: "NVIDIA H100", UUID: "GPU-1234", UtilizationPercent: 40,
			MemoryUsedBytes: 20 << 30, MemoryTotalBytes: 80 << 30, utilOK: true, memOK: true},
		{Index: 1, Name: "NVIDIA H100", UUID: "GPU-1234",
			MemoryUsedBytes: 1 << 30, MemoryTotalBytes: 10 << 30, memOK: true,
			Error: "utilization: ERROR_NOT_SUPPORTED"},
	}, st.Devices)
	require.InDelta(t, 40, m.Signals().GPUPercent, 1e-9)
	require.Len(t, series(t, reg, "nvidia_gpu_memory_used_bytes"), 2)

	require.NoError(t, m.Close())
	require.False(t, lib.live)
	n := len(lib.calls)
	m.GPU()
	m.Signals()
	series(t, reg, "nvidia_gpu_memory_used_bytes")
	require.Len(t, lib.calls, n, "no NVML call after Close")
}

func TestRealNVMLWithoutDriver(t *testing.T) {
	for _, p := range []string{"/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1", "/usr/lib64/libnvidia-ml.so.1", "/usr/lib/libnvidia-ml.so.1"} {
		if _, err := os.Stat(p); err == nil {
			t.Skip("libnvidia-ml is installed here")
		}
	}
	g, err := openNVML()
	require.Nil(t, g)
	require.EqualError(t, err, "nvml init: ERROR_LIBRARY_NOT_FOUND")
}
