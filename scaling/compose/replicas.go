package compose

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Counts is the state of the service's replicas.
type Counts struct {
	Healthy   int // running and healthy (or running without a healthcheck)
	Starting  int // running, healthcheck not passed yet
	Unhealthy int // running, healthcheck failing
	Draining  int // being stopped by a scale-down
	Stopped   int // created, exited or dead
}

// Active is what Replicas reports: running and not draining.
func (c Counts) Active() int { return c.Healthy + c.Starting + c.Unhealthy }

type replica struct {
	id      string
	name    string
	number  int
	created time.Time
	state   container.ContainerState
	health  container.HealthStatus
	cloned  bool
	ip      string // on the project's network (or the first), "" when it has none
}

// live: running or about to (created, restarting): it holds its GPU.
func (r replica) live() bool {
	return r.state != container.StateExited && r.state != container.StateDead && r.state != container.StateRemoving
}

func (r replica) running() bool { return r.state == container.StateRunning }

// list returns the service's containers (one-off `run` containers excluded).
func (p *Provider) list(ctx context.Context) ([]replica, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.APITimeout)
	defer cancel()
	f := make(client.Filters).Add("label", LabelProject+"="+p.project, LabelService+"="+p.service)
	res, err := p.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("compose: list %s/%s: %w", p.project, p.service, ctxErr(ctx, err))
	}
	out := make([]replica, 0, len(res.Items))
	for _, c := range res.Items {
		if strings.EqualFold(c.Labels[LabelOneOff], "true") {
			continue
		}
		n, _ := strconv.Atoi(c.Labels[LabelNumber])
		r := replica{id: c.ID, number: n, created: time.Unix(c.Created, 0), state: c.State,
			health: container.NoHealthcheck, cloned: c.Labels[LabelClonedBy] != ""}
		if len(c.Names) > 0 {
			r.name = strings.TrimPrefix(c.Names[0], "/")
		}
		r.ip = p.address(c)
		if c.Health != nil { // API ≥ 1.52
			r.health = c.Health.Status
		} else if r.running() {
			r.health = healthFromStatus(c.Status)
		}
		out = append(out, r)
	}
	return out, nil
}

// address is the container's IP on the project's default network, else on
// the first network that gives it one.
func (p *Provider) address(c container.Summary) string {
	if c.NetworkSettings == nil {
		return ""
	}
	nets := c.NetworkSettings.Networks
	if n := nets[p.project+"_default"]; n != nil && n.IPAddress.IsValid() {
		return n.IPAddress.String()
	}
	for _, name := range slices.Sorted(maps.Keys(nets)) {
		if n := nets[name]; n != nil && n.IPAddress.IsValid() {
			return n.IPAddress.String()
		}
	}
	return ""
}

// healthFromStatus reads the health from the list's status text ("Up 3
// minutes (healthy)"), which is all older Engines (API < 1.52) give.
func healthFromStatus(s string) container.HealthStatus {
	switch {
	case strings.Contains(s, "(healthy)"):
		return container.Healthy
	case strings.Contains(s, "(unhealthy)"):
		return container.Unhealthy
	case strings.Contains(s, "(health: starting)"):
		return container.Starting
	}
	return container.NoHealthcheck
}

func (p *Provider) count(rs []replica) Counts {
	p.dmu.Lock()
	defer p.dmu.Unlock()
	var c Counts
	for _, r := range rs {
		switch {
		case p.draining[r.id]:
			c.Draining++
		case !r.running():
			c.Stopped++
		case r.health == container.Starting:
			c.Starting++
		case r.health == container.Unhealthy:
			c.Unhealthy++
		default:
			c.Healthy++
		}
	}
	return c
}

// Status counts the service's replicas by state.
func (p *Provider) Status(ctx context.Context) (Counts, error) {
	rs, err := p.list(ctx)
	if err != nil {
		return Counts{}, err
	}
	return p.count(rs), nil
}

// Replicas implements scaling.Provider: running replicas that are not being
// drained, healthy or not yet (ReadyReplicas counts only healthy ones).
func (p *Provider) Replicas(ctx context.Context) (int, error) {
	c, err := p.Status(ctx)
	return c.Active(), err
}

// ReadyReplicas counts replicas whose healthcheck passes: the ones nginx
// should be sending traffic to.
func (p *Provider) ReadyReplicas(ctx context.Context) (int, error) {
	c, err := p.Status(ctx)
	return c.Healthy, err
}
