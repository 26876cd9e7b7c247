package compose

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aurax/aurax/internal/retry"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// SetReplicas implements scaling.Provider. Up: it starts stopped engines of
// the service first (those Compose made, kept stopped by a scale-down),
// then clones one (the newest healthy running engine, else any) until n
// run, each with a GPU no other engine holds when compose.gpus is set; it
// returns once they are started: they take requests once the gateways'
// pools find them ready and warm. Down: the newest engines leave the count
// at once and drain in the background: the gateways stop routing to them,
// their requests in flight finish (up to StopTimeout), then the container
// is stopped, and removed when the provider made it. Calling it again with
// the same n changes nothing; n may be 0 (scale to zero: requests wait for
// the first engine).
func (p *Provider) SetReplicas(ctx context.Context, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if n < 0 {
		return retry.Terminal(fmt.Errorf("compose: %d engines: at least 0", n))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rs, err := p.list(ctx)
	if err != nil {
		return err
	}
	p.cleanStopped(ctx, rs)
	active := p.activeReplicas(rs)
	switch {
	case len(active) < n:
		return classify(p.scaleUp(ctx, rs, n-len(active)))
	case len(active) > n:
		p.scaleDown(active, len(active)-n)
	}
	return nil
}

// classify marks the Engine's answers that another try would repeat as
// terminal (internal/retry): an invalid request, a permission the socket
// lacks, an API the Engine does not have. A conflict or a container gone
// meanwhile stays retryable: the next try lists the containers anew.
func classify(err error) error {
	if err != nil && !retry.IsTerminal(err) && (cerrdefs.IsInvalidArgument(err) || cerrdefs.IsPermissionDenied(err) ||
		cerrdefs.IsUnauthorized(err) || cerrdefs.IsNotImplemented(err)) {
		return retry.Terminal(err)
	}
	return err
}

func (p *Provider) activeReplicas(rs []replica) []replica {
	p.dmu.Lock()
	defer p.dmu.Unlock()
	var out []replica
	for _, r := range rs {
		if r.running() && !p.draining[r.id] {
			out = append(out, r)
		}
	}
	return out
}

// cleanStopped removes clones this provider made that have stopped (a drain
// cut short by a restart of this process, a crash): Compose's own stopped
// containers are left to Compose, and to a later scale-up.
func (p *Provider) cleanStopped(ctx context.Context, rs []replica) {
	for _, r := range rs {
		if !r.cloned || r.live() || p.isDraining(r.id) {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, p.cfg.APITimeout)
		_, err := p.cli.ContainerRemove(rctx, r.id, client.ContainerRemoveOptions{Force: true})
		cancel()
		if err != nil && !cerrdefs.IsNotFound(err) {
			p.logger.Warn("remove stopped engine failed", "container", r.name, "err", err)
			continue
		}
		p.logger.Info("removed stopped engine", "container", r.name, "state", r.state)
	}
}

func (p *Provider) isDraining(id string) bool {
	p.dmu.Lock()
	defer p.dmu.Unlock()
	return p.draining[id]
}

// BoundError is a scale-up that hit the platform's bound: no free GPU.
// SetReplicas returns it marked terminal (internal/retry): a retry within
// the same decision would find the GPUs as held.
type BoundError struct {
	Wanted, Running int
	Reason          string
}

func (e *BoundError) Error() string {
	return fmt.Sprintf("compose: %d engines wanted, %d running: %s", e.Wanted, e.Running, e.Reason)
}

// scaleUp adds k engines: Compose's own that a scale-down stopped first,
// then clones, each with a GPU no live engine holds when compose.gpus is set.
func (p *Provider) scaleUp(ctx context.Context, all []replica, k int) error {
	gpus, err := p.engineGPUs(ctx, all)
	if err != nil {
		return err
	}
	held := heldBy(all, gpus)
	started, err := p.restartStopped(ctx, all, gpus, held, k)
	if err != nil || started == k {
		return err
	}
	return p.cloneUp(ctx, all, held, len(p.activeReplicas(all))+started, k-started)
}

// restartStopped starts up to k of Compose's stopped engines whose GPUs are
// free, marking them held; it returns how many it started.
func (p *Provider) restartStopped(ctx context.Context, all []replica, gpus map[string][]string, held map[string]bool, k int) (int, error) {
	started := 0
	for _, r := range all {
		if started == k {
			break
		}
		if r.cloned || r.live() || p.isDraining(r.id) {
			continue
		}
		if slices.ContainsFunc(gpus[r.id], func(g string) bool { return held[g] }) {
			continue // its GPU went to another engine meanwhile: clone one instead
		}
		sctx, cancel := context.WithTimeout(ctx, p.cfg.APITimeout)
		err := p.start(sctx, r.id)
		cancel()
		if err != nil {
			return started, fmt.Errorf("compose: start engine %s: %w", r.name, err)
		}
		p.logger.Info("engine started", "container", r.name, "number", r.number)
		for _, g := range gpus[r.id] {
			held[g] = true
		}
		started++
	}
	return started, nil
}

// cloneUp clones k engines from the template, numbered after the highest,
// each with a free GPU when compose.gpus is set; running is the engines
// running before it.
func (p *Provider) cloneUp(ctx context.Context, all []replica, held map[string]bool, running, k int) error {
	tmpl, ok := template(all)
	if !ok {
		return retry.Terminal(fmt.Errorf("compose: no engine container of %s/%s to clone", p.project, p.service))
	}
	ictx, cancel := context.WithTimeout(ctx, p.cfg.APITimeout)
	ins, err := p.cli.ContainerInspect(ictx, tmpl.id, client.ContainerInspectOptions{})
	cancel()
	if err != nil {
		return fmt.Errorf("compose: inspect template %s: %w", tmpl.name, err)
	}
	next := 0
	for _, r := range all {
		next = max(next, r.number)
	}
	for ; k > 0; k-- {
		var gpu string
		if len(p.gpus) > 0 {
			if gpu, ok = freeGPU(p.gpus, held); !ok {
				return retry.Terminal(&BoundError{Wanted: running + k, Running: running,
					Reason: fmt.Sprintf("every GPU of compose.gpus (%s) is held by an engine", strings.Join(p.gpus, ","))})
			}
		}
		next++
		if _, err := p.startClone(ctx, ins.Container, next, gpu); err != nil {
			return err
		}
		if gpu != "" {
			held[gpu] = true
		}
		running++
	}
	return nil
}

// template is the engine a clone copies: the newest healthy running one,
// else the newest running one, else the newest of any state (scale from
// zero clones a stopped one).
func template(all []replica) (replica, bool) {
	if len(all) == 0 {
		return replica{}, false
	}
	score := func(r replica) int {
		switch {
		case r.running() && (r.health == container.Healthy || r.health == container.NoHealthcheck):
			return 2
		case r.running():
			return 1
		}
		return 0
	}
	return slices.MaxFunc(all, func(a, b replica) int {
		if c := cmp.Compare(score(a), score(b)); c != 0 {
			return c
		}
		return a.created.Compare(b.created)
	}), true
}

func (p *Provider) startClone(ctx context.Context, tmpl container.InspectResponse, number int, gpu string) (string, error) {
	spec, err := cloneSpec(tmpl, p.project, p.service, number)
	if err != nil {
		return "", err
	}
	if gpu != "" {
		spec.create.HostConfig.DeviceRequests = []container.DeviceRequest{{DeviceIDs: []string{gpu}, Capabilities: [][]string{{"gpu"}}}}
	}
	cctx, cancel := context.WithTimeout(ctx, p.cfg.APITimeout)
	defer cancel()
	created, err := p.cli.ContainerCreate(cctx, spec.create)
	if err != nil {
		return "", fmt.Errorf("compose: create %s: %w", spec.create.Name, ctxErr(cctx, err))
	}
	fail := func(step string, err error) error {
		// A half-made engine must not stay: remove it so a retry starts clean.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.APITimeout)
		defer rcancel()
		_, _ = p.cli.ContainerRemove(rctx, created.ID, client.ContainerRemoveOptions{Force: true})
		if gpu != "" {
			err = fmt.Errorf("%w (with GPU %s)", err, gpu)
		}
		return fmt.Errorf("compose: %s %s: %w", step, spec.create.Name, ctxErr(cctx, err))
	}
	for _, nc := range spec.connect {
		if _, err := p.cli.NetworkConnect(cctx, nc.network, client.NetworkConnectOptions{
			Container: created.ID, EndpointConfig: nc.endpoint}); err != nil {
			return "", fail("connect network "+nc.network+" to", err)
		}
	}
	if err := p.start(cctx, created.ID); err != nil {
		return "", fail("start", err)
	}
	p.logger.Info("engine started", "container", spec.create.Name, "id", shortID(created.ID),
		"number", number, "from", tmpl.Name, "image", tmpl.Config.Image, "gpu", gpu)
	return created.ID, nil
}
