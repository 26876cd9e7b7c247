package compose

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// resolveGPUs turns compose.gpus into the GPU IDs engines may get.
func resolveGPUs(spec string, visible func() []string) ([]string, error) {
	list, err := gpuList(spec)
	if err != nil || list == nil {
		return nil, err
	}
	var seen []string
	if visible != nil {
		seen = visible()
	}
	if list[0] == "all" {
		if len(seen) == 0 {
			return nil, errors.New("compose.gpus: all, but no GPU is visible to this gateway (NVML); list the engines' GPU IDs instead, e.g. 0,1,2,3")
		}
		return seen, nil
	}
	if len(seen) > 0 {
		for _, id := range list {
			if !slices.Contains(seen, id) {
				return nil, fmt.Errorf("compose.gpus: GPU %s is not on this host (it has %s)", id, strings.Join(seen, ", "))
			}
		}
	}
	return list, nil
}

// engineGPUs maps each engine container of the service to the GPU IDs of
// its device requests (nothing is read without compose.gpus).
func (p *Provider) engineGPUs(ctx context.Context, all []replica) (map[string][]string, error) {
	out := map[string][]string{}
	if len(p.gpus) == 0 {
		return out, nil
	}
	for _, r := range all {
		ictx, cancel := context.WithTimeout(ctx, p.cfg.APITimeout)
		ins, err := p.cli.ContainerInspect(ictx, r.id, client.ContainerInspectOptions{})
		cancel()
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("compose: inspect engine %s: %w", r.name, err)
		}
		if ins.Container.HostConfig != nil {
			for _, d := range ins.Container.HostConfig.DeviceRequests {
				out[r.id] = append(out[r.id], d.DeviceIDs...)
			}
		}
	}
	return out, nil
}

// heldBy are the GPUs the live engines among all hold.
func heldBy(all []replica, gpus map[string][]string) map[string]bool {
	held := map[string]bool{}
	for _, r := range all {
		if r.live() {
			for _, g := range gpus[r.id] {
				held[g] = true
			}
		}
	}
	return held
}

// freeGPU is the first of gpus no engine holds.
func freeGPU(gpus []string, held map[string]bool) (string, bool) {
	for _, g := range gpus {
		if !held[g] {
			return g, true
		}
	}
	return "", false
}
