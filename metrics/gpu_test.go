package metrics

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeGPU is a gpuBackend that fails the test if used after Shutdown.
type fakeGPU struct {
	t        *testing.T
	mu       sync.Mutex
	devs     []GPUDevice
	shutdown int
}

func (f *fakeGPU) Devices() []GPUDevice {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shutdown > 0 {
		f.t.Errorf("Devices called after Shutdown")
	}
	return append([]GPUDevice(nil), f.devs...)
}

func (f *fakeGPU) Shutdown() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shutdown++
	return nil
}

func TestGPUPresent(t *testing.T) {
	fake := &fakeGPU{t: t, devs: []GPUDevice{
		{Index: 0, Name: "H100", UtilizationPercent: 30, MemoryUsedBytes: 10 << 30, MemoryTotalBytes: 80 << 30, utilOK: true, memOK: true},
		{Index: 1, Name: "H100", UtilizationPercent: 90, MemoryUsedBytes: 70 << 30, MemoryTotalBytes: 80 << 30, utilOK: true, memOK: true},
		{Index: 2, Name: "MIG", MemoryUsedBytes: 1 << 30, MemoryTotalBytes: 10 << 30, memOK: true, Error: "utilization: ERROR_NOT_SUPPORTED"},
	}}
	m, reg, _ := newTest(t, Options{openGPU: func() (gpuBackend, error) { return fake, nil }})

	st := m.GPU()
	require.True(t, st.Available)
	require.Empty(t, st.Reason)
	require.Len(t, st.Devices, 3)

	s := m.Signals()
	require.True(t, s.GPUAvailable)
	require.InDelta(t, 60, s.GPUPercent, 1e-9, "mean over the devices that report utilisation")

	util := series(t, reg, "nvidia_gpu_utilization_percent")
	require.Len(t, util, 2, "no utilisation series for the device that cannot report it")
	require.Equal(t, 90.0, util["gpu=1"].GetGauge().GetValue())
	require.Len(t, series(t, reg, "nvidia_gpu_memory_used_bytes"), 3)
	require.Equal(t, float64(80<<30), series(t, reg, "nvidia_gpu_memory_total_bytes")["gpu=0"].GetGauge().GetValue())

	require.NoError(t, m.Close())
	require.NoError(t, m.Close())
	require.Equal(t, 1, fake.shutdown, "NVML shut down once")
	require.Empty(t, series(t, reg, "nvidia_gpu_utilization_percent"), "collector gone after Close")
	require.False(t, m.GPU().Available)
	require.False(t, m.Signals().GPUAvailable)
}

func TestGPUAbsent(t *testing.T) {
	// The real NVML: on a machine without the driver, Init fails with
	// ERROR_LIBRARY_NOT_FOUND and nothing else may be called. Not crashing
	// here is the test; on a GPU machine the GPUs must be readable.
	m, reg, _ := newTest(t, Options{openGPU: openNVML})
	st := m.GPU()
	t.Logf("GPU status: %+v", st)
	if st.Available {
		require.NotEmpty(t, st.Devices)
		require.NotEmpty(t, series(t, reg, "nvidia_gpu_memory_total_bytes"))
		return
	}
	require.NotEmpty(t, st.Reason)
	require.True(t, strings.HasPrefix(st.Reason, "nvml"), st.Reason)
	require.Empty(t, st.Devices)
	require.Empty(t, series(t, reg, "nvidia_gpu_utilization_percent"))
	s := m.Signals()
	require.False(t, s.GPUAvailable)
	require.Zero(t, s.GPUPercent)
	require.NoError(t, m.Close())
}
