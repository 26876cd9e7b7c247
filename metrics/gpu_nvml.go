//go:build linux && cgo

package metrics

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// nvmlLib is the part of nvml.Interface AURAX uses.
//
// Contract (see FACTS.md): after Init fails, calling anything else in the
// library kills the process, so nothing but Init may be called until Init
// returned SUCCESS, and nothing at all after Shutdown.
type nvmlLib interface {
	Init() nvml.Return
	Shutdown() nvml.Return
	DeviceGetCount() (int, nvml.Return)
	DeviceGetHandleByIndex(int) (nvml.Device, nvml.Return)
}

var _ nvmlLib = nvml.Interface(nil)

func openNVML() (gpuBackend, error) { return openNVMLLib(nvml.New()) }

// openNVMLLib initialises lib and looks its devices up once. It returns an
// error, and leaves lib shut down, when NVML is unusable or has no devices.
func openNVMLLib(lib nvmlLib) (gpuBackend, error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		// Return.Error is plain Go when the library did not load, and
		// nvmlErrorString (callable before init) when it did.
		return nil, fmt.Errorf("nvml init: %s", ret.Error())
	}
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		lib.Shutdown()
		return nil, fmt.Errorf("nvml device count: %s", ret.Error())
	}
	if n == 0 {
		lib.Shutdown()
		return nil, fmt.Errorf("nvml: no GPU devices")
	}
	g := &nvmlGPU{lib: lib}
	for i := range n {
		d := nvmlDevice{index: i}
		h, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			d.err = fmt.Sprintf("handle: %s", ret.Error())
		} else {
			d.h = h
			if name, ret := h.GetName(); ret == nvml.SUCCESS {
				d.name = name
			}
			if uuid, ret := h.GetUUID(); ret == nvml.SUCCESS {
				d.uuid = uuid
			}
		}
		g.devs = append(g.devs, d)
	}
	return g, nil
}

type nvmlGPU struct {
	lib  nvmlLib
	devs []nvmlDevice
}

type nvmlDevice struct {
	index      int
	h          nvml.Device // nil when the handle could not be had
	name, uuid string
	err        string
}

// Devices reads utilisation and memory of every device. gpuState
// serialises it with Shutdown.
func (g *nvmlGPU) Devices() []GPUDevice {
	out := make([]GPUDevice, 0, len(g.devs))
	for _, d := range g.devs {
		gd := GPUDevice{Index: d.index, Name: d.name, UUID: d.uuid, Error: d.err}
		if d.h != nil {
			if u, ret := d.h.GetUtilizationRates(); ret == nvml.SUCCESS {
				gd.UtilizationPercent, gd.utilOK = float64(u.Gpu), true
			} else {
				gd.Error = "utilization: " + ret.Error()
			}
			if mem, ret := d.h.GetMemoryInfo(); ret == nvml.SUCCESS {
				gd.MemoryUsedBytes, gd.MemoryTotalBytes, gd.memOK = mem.Used, mem.Total, true
			} else if gd.Error == "" {
				gd.Error = "memory: " + ret.Error()
			}
		}
		out = append(out, gd)
	}
	return out
}

func (g *nvmlGPU) Shutdown() error {
	if ret := g.lib.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("nvml shutdown: %s", ret.Error())
	}
	return nil
}
