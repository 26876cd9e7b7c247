package metrics

import (
	"errors"
	"log/slog"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// GPUStatus is the GPU part of /health.
type GPUStatus struct {
	Available bool        `json:"available"`
	Reason    string      `json:"reason,omitempty"` // why no GPU is available
	Devices   []GPUDevice `json:"devices,omitempty"`
}

// GPUDevice is one GPU read now.
type GPUDevice struct {
	Index              int     `json:"index"`
	Name               string  `json:"name,omitempty"`
	UUID               string  `json:"uuid,omitempty"`
	UtilizationPercent float64 `json:"utilization_percent"`
	MemoryUsedBytes    uint64  `json:"memory_used_bytes"`
	MemoryTotalBytes   uint64  `json:"memory_total_bytes"`
	Error              string  `json:"error,omitempty"` // the first reading that failed

	utilOK, memOK bool
}

// gpuBackend reads GPUs. One exists only after NVML initialised, so none of
// its methods can reach an uninitialised NVML; gpuState drops it on
// Shutdown so that nothing reaches NVML afterwards either.
type gpuBackend interface {
	Devices() []GPUDevice
	Shutdown() error
}

var errGPUClosed = errors.New("gpu: closed")

// gpuState guards the backend against use after Close.
type gpuState struct {
	reason string // why backend is nil

	mu      sync.RWMutex
	backend gpuBackend // nil when NVML did not initialise or after Close
	col     *gpuCollector
}

func openGPUState(open func() (gpuBackend, error), logger *slog.Logger) *gpuState {
	if open == nil {
		open = openNVML
	}
	b, err := open()
	if err != nil {
		logger.Info("no GPU metrics", "reason", err.Error())
		return &gpuState{reason: err.Error()}
	}
	g := &gpuState{backend: b}
	g.col = &gpuCollector{g: g}
	return g
}

func (g *gpuState) collector() prometheus.Collector { return g.col }

// devices reads the GPUs; ok is false when there is no backend.
func (g *gpuState) devices() ([]GPUDevice, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.backend == nil {
		return nil, false
	}
	return g.backend.Devices(), true
}

func (g *gpuState) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.backend == nil {
		return nil
	}
	err := g.backend.Shutdown()
	g.backend = nil
	g.reason = errGPUClosed.Error()
	return err
}

func (g *gpuState) status() GPUStatus {
	devs, ok := g.devices()
	if !ok {
		g.mu.RLock()
		defer g.mu.RUnlock()
		return GPUStatus{Reason: g.reason}
	}
	return GPUStatus{Available: true, Devices: devs}
}

// meanUtilization is the mean utilisation over the devices that reported one.
func meanUtilization(devs []GPUDevice) float64 {
	var sum float64
	var n int
	for _, d := range devs {
		if d.utilOK {
			sum += d.UtilizationPercent
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

var (
	gpuUtilDesc = prometheus.NewDesc("nvidia_gpu_utilization_percent",
		"Percent of time over the last sample period during which the GPU was busy, per NVML.", []string{"gpu"}, nil)
	gpuMemUsedDesc = prometheus.NewDesc("nvidia_gpu_memory_used_bytes",
		"GPU memory in use, per NVML.", []string{"gpu"}, nil)
	gpuMemTotalDesc = prometheus.NewDesc("nvidia_gpu_memory_total_bytes",
		"GPU memory installed, per NVML.", []string{"gpu"}, nil)
)

// gpuCollector reads NVML at scrape time. A reading that fails is left out
// of the scrape (and shown in GPUStatus) rather than failing it.
type gpuCollector struct{ g *gpuState }

func (c *gpuCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- gpuUtilDesc
	ch <- gpuMemUsedDesc
	ch <- gpuMemTotalDesc
}

func (c *gpuCollector) Collect(ch chan<- prometheus.Metric) {
	devs, _ := c.g.devices()
	for _, d := range devs {
		idx := strconv.Itoa(d.Index)
		if d.utilOK {
			ch <- prometheus.MustNewConstMetric(gpuUtilDesc, prometheus.GaugeValue, d.UtilizationPercent, idx)
		}
		if d.memOK {
			ch <- prometheus.MustNewConstMetric(gpuMemUsedDesc, prometheus.GaugeValue, float64(d.MemoryUsedBytes), idx)
			ch <- prometheus.MustNewConstMetric(gpuMemTotalDesc, prometheus.GaugeValue, float64(d.MemoryTotalBytes), idx)
		}
	}
}
