package compose

import (
	"cmp"
	"context"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/aurax/aurax/internal/ctxtime"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// scaleDown marks k victims draining, newest first, and drains them in the
// background.
func (p *Provider) scaleDown(active []replica, k int) {
	victims := slices.Clone(active)
	slices.SortFunc(victims, func(a, b replica) int {
		if c := cmp.Compare(rank(a), rank(b)); c != 0 {
			return c
		}
		if c := b.created.Compare(a.created); c != 0 {
			return c
		}
		return cmp.Compare(b.number, a.number)
	})
	p.dmu.Lock()
	defer p.dmu.Unlock()
	for _, v := range victims {
		if k == 0 {
			break
		}
		if v.id == p.self {
			continue
		}
		k--
		p.draining[v.id] = true
		p.wg.Add(1)
		go p.drain(v)
	}
}

// rank orders scale-down victims: engines not serving (unhealthy, starting)
// go before healthy ones.
func rank(r replica) int {
	switch r.health {
	case container.Unhealthy:
		return 0
	case container.Starting:
		return 1
	}
	return 2
}

// engineStopTimeout is the grace Docker gives a drained engine to exit.
const engineStopTimeout = 10 * time.Second

// drain takes one engine out: the gateways stop routing to it and its
// requests in flight finish (up to StopTimeout), then it is stopped
// (SIGTERM, SIGKILL after engineStopTimeout) and, when the provider made
// it, removed; Compose's own engines stay stopped, templates for a later
// scale-up. It outlives the SetReplicas call that started it; Close waits.
func (p *Provider) drain(r replica) {
	defer p.wg.Done()
	defer func() {
		p.dmu.Lock()
		delete(p.draining, r.id)
		p.dmu.Unlock()
	}()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.StopTimeout+engineStopTimeout+2*p.cfg.APITimeout)
	defer cancel()
	addr := ""
	if r.ip != "" {
		addr = net.JoinHostPort(r.ip, strconv.Itoa(p.cfg.EnginePort))
	}
	p.logger.Info("engine draining", "container", r.name, "engine", addr, "stop_timeout", p.cfg.StopTimeout)
	if p.drainer != nil && addr != "" {
		deadline := time.Now().Add(p.cfg.StopTimeout)
		for {
			n, err := p.drainer.Drain(ctx, addr)
			if err == nil && n == 0 {
				break
			}
			if time.Now().After(deadline) {
				p.logger.Warn("engine drain timed out: stopping it with requests in flight", "container", r.name, "in_flight", n, "err", err)
				break
			}
			_ = ctxtime.Sleep(ctx, 100*time.Millisecond) // a poll of the gateways, not a retry
		}
	}
	secs := int(engineStopTimeout.Seconds())
	if _, err := p.cli.ContainerStop(ctx, r.id, client.ContainerStopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		p.logger.Warn("stop engine failed", "container", r.name, "err", err)
	}
	if p.drainer != nil && addr != "" {
		p.drainer.Forget(ctx, addr)
	}
	if !r.cloned {
		p.logger.Info("engine stopped (kept: Compose made it)", "container", r.name, "number", r.number,
			"drained_in", time.Since(start).Round(time.Millisecond))
		return
	}
	if _, err := p.cli.ContainerRemove(ctx, r.id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		p.logger.Warn("remove engine failed", "container", r.name, "err", err)
		return
	}
	p.logger.Info("engine removed", "container", r.name, "number", r.number, "drained_in", time.Since(start).Round(time.Millisecond))
}
