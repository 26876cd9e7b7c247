package compose

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aurax/aurax/scaling"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Compose labels, shared by Compose v1 and v2.
const (
	LabelProject = "com.docker.compose.project"
	LabelService = "com.docker.compose.service"
	LabelNumber  = "com.docker.compose.container-number"
	LabelOneOff  = "com.docker.compose.oneoff"
	// LabelClonedBy marks the replicas this provider created.
	LabelClonedBy = "io.aurax.scaling.cloned-from"
)

// ErrNoDocker means the Docker Engine did not answer: no socket mounted, no
// permission on it, or no daemon. The controller then stays in dry run.
var ErrNoDocker = errors.New("compose: Docker Engine not reachable")

// Provider scales one Compose service. It implements scaling.Provider; it is
// safe for concurrent use. Close waits for replicas still draining.
type Provider struct {
	cli     *client.Client
	cfg     Config
	project string
	service string
	self    string // this process's container ID, never removed; may be empty
	logger  *slog.Logger

	mu       sync.Mutex // serialises SetReplicas
	dmu      sync.Mutex
	draining map[string]bool // IDs being stopped: no longer counted
	wg       sync.WaitGroup
}

var _ scaling.Provider = (*Provider)(nil)

// New connects to the Docker Engine, checks that it answers, and finds the
// project and service to scale: from cfg, or from the labels of the
// container this process runs in. It fails with an error wrapping
// ErrNoDocker when the Engine does not answer, and with a plain error when it
// cannot tell which service to scale. ctx bounds the checks only.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := []client.Opt{client.FromEnv}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	p := &Provider{cli: cli, cfg: cfg, project: cfg.Project, service: cfg.Service,
		logger: logger.With("component", "compose"), draining: map[string]bool{}}
	if err := p.init(ctx); err != nil {
		cli.Close()
		return nil, err
	}
	p.logger.Info("compose provider ready", "docker", cli.DaemonHost(), "project", p.project,
		"service", p.service, "self", shortID(p.self))
	return p, nil
}

func (p *Provider) init(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, p.cfg.APITimeout)
	defer cancel()
	if _, err := p.cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		hint := "mount the Docker socket (-v /var/run/docker.sock:/var/run/docker.sock) and give the container its group (group_add)"
		if errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "permission denied") {
			hint = "permission denied on the socket: add the socket's group to the container (group_add: [\"<gid of /var/run/docker.sock>\"])"
		}
		return fmt.Errorf("%w at %s: %v; %s", ErrNoDocker, p.cli.DaemonHost(), err, hint)
	}
	ids := []string{p.cfg.ContainerID}
	if p.cfg.ContainerID == "" {
		ids = selfCandidates()
	}
	for _, id := range ids {
		if id == "" {
			continue
		}
		res, err := p.cli.ContainerInspect(pctx, id, client.ContainerInspectOptions{})
		if err != nil {
			if p.cfg.ContainerID != "" {
				return fmt.Errorf("compose: container_id %q: %w", id, err)
			}
			continue
		}
		p.self = res.Container.ID
		if p.project == "" && res.Container.Config != nil {
			p.project = res.Container.Config.Labels[LabelProject]
			p.service = res.Container.Config.Labels[LabelService]
		}
		break
	}
	if p.project == "" || p.service == "" {
		where := "this process is not in a container the Engine knows"
		if p.self != "" {
			where = "container " + shortID(p.self) + " has no " + LabelProject + "/" + LabelService + " labels"
		}
		return fmt.Errorf("compose: cannot tell which service to scale: %s; set compose.project and compose.service", where)
	}
	return nil
}

// Project and Service name what the provider scales.
func (p *Provider) Project() string { return p.project }

// Service is the Compose service the provider scales.
func (p *Provider) Service() string { return p.service }

// Close waits for replicas still draining to be removed, then closes the
// Engine client.
func (p *Provider) Close() error {
	p.wg.Wait()
	return p.cli.Close()
}

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
		if c.Health != nil { // API ≥ 1.52
			r.health = c.Health.Status
		} else if r.running() {
			r.health = healthFromStatus(c.Status)
		}
		out = append(out, r)
	}
	return out, nil
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

// SetReplicas implements scaling.Provider. Up: it clones a running replica
// (the newest healthy one when there is one) until n run, and returns once
// they are started; they count as ready when their healthcheck passes. Down:
// it takes the newest replicas (not yet healthy ones first) out of the count
// at once, then stops each in the background (SIGTERM, up to StopTimeout to
// drain, then SIGKILL) and removes it. Calling it again with the same n
// changes nothing. n below 1 is refused: the replica running the controller
// would have to remove itself.
func (p *Provider) SetReplicas(ctx context.Context, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if n < 1 {
		return fmt.Errorf("compose: %d replicas: at least 1", n)
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
		return p.scaleUp(ctx, rs, active, n-len(active))
	case len(active) > n:
		p.scaleDown(active, len(active)-n)
	}
	return nil
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
// containers are left to Compose.
func (p *Provider) cleanStopped(ctx context.Context, rs []replica) {
	for _, r := range rs {
		if !r.cloned || r.running() || p.isDraining(r.id) || r.state == container.StateRemoving {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, p.cfg.APITimeout)
		_, err := p.cli.ContainerRemove(rctx, r.id, client.ContainerRemoveOptions{Force: true})
		cancel()
		if err != nil && !cerrdefs.IsNotFound(err) {
			p.logger.Warn("remove stopped replica failed", "container", r.name, "err", err)
			continue
		}
		p.logger.Info("removed stopped replica", "container", r.name, "state", r.state)
	}
}

func (p *Provider) isDraining(id string) bool {
	p.dmu.Lock()
	defer p.dmu.Unlock()
	return p.draining[id]
}

func (p *Provider) scaleUp(ctx context.Context, all, active []replica, k int) error {
	if len(active) == 0 {
		return fmt.Errorf("compose: no running replica of %s/%s to clone", p.project, p.service)
	}
	tmpl := slices.MaxFunc(active, func(a, b replica) int {
		ha, hb := a.health == container.Healthy || a.health == container.NoHealthcheck, b.health == container.Healthy || b.health == container.NoHealthcheck
		if ha != hb {
			if ha {
				return 1
			}
			return -1
		}
		return a.created.Compare(b.created)
	})
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
	for range k {
		next++
		if err := p.startClone(ctx, ins.Container, next); err != nil {
			return err
		}
	}
	return nil
}

func (p *Provider) startClone(ctx context.Context, tmpl container.InspectResponse, number int) error {
	spec, err := cloneSpec(tmpl, p.project, p.service, number)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, p.cfg.APITimeout)
	defer cancel()
	created, err := p.cli.ContainerCreate(cctx, spec.create)
	if err != nil {
		return fmt.Errorf("compose: create %s: %w", spec.create.Name, ctxErr(cctx, err))
	}
	fail := func(step string, err error) error {
		// A half-made replica must not stay: remove it so a retry starts clean.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.APITimeout)
		defer rcancel()
		_, _ = p.cli.ContainerRemove(rctx, created.ID, client.ContainerRemoveOptions{Force: true})
		return fmt.Errorf("compose: %s %s: %w", step, spec.create.Name, ctxErr(cctx, err))
	}
	for _, nc := range spec.connect {
		if _, err := p.cli.NetworkConnect(cctx, nc.network, client.NetworkConnectOptions{
			Container: created.ID, EndpointConfig: nc.endpoint}); err != nil {
			return fail("connect network "+nc.network+" to", err)
		}
	}
	if _, err := p.cli.ContainerStart(cctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return fail("start", err)
	}
	p.logger.Info("replica started", "container", spec.create.Name, "id", shortID(created.ID),
		"number", number, "from", tmpl.Name, "image", tmpl.Config.Image)
	return nil
}

// scaleDown marks k victims draining and stops them in the background.
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
	if k > 0 {
		p.logger.Warn("scale-down short: this replica is never removed", "missing", k)
	}
}

// rank orders scale-down victims: replicas not serving (unhealthy, starting)
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

// drain stops (SIGTERM, then SIGKILL after StopTimeout) and removes one
// replica. It outlives the SetReplicas call that started it; Close waits.
func (p *Provider) drain(r replica) {
	defer p.wg.Done()
	defer func() {
		p.dmu.Lock()
		delete(p.draining, r.id)
		p.dmu.Unlock()
	}()
	start := time.Now()
	secs := int(p.cfg.StopTimeout.Round(time.Second).Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.StopTimeout+2*p.cfg.APITimeout)
	defer cancel()
	p.logger.Info("replica draining", "container", r.name, "number", r.number, "stop_timeout", p.cfg.StopTimeout)
	if _, err := p.cli.ContainerStop(ctx, r.id, client.ContainerStopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		p.logger.Warn("stop replica failed", "container", r.name, "err", err)
	}
	exit := -1
	if ins, err := p.cli.ContainerInspect(ctx, r.id, client.ContainerInspectOptions{}); err == nil && ins.Container.State != nil {
		exit = ins.Container.State.ExitCode
	}
	if _, err := p.cli.ContainerRemove(ctx, r.id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		p.logger.Warn("remove replica failed", "container", r.name, "err", err)
		return
	}
	p.logger.Info("replica removed", "container", r.name, "number", r.number, "exit_code", exit,
		"drained_in", time.Since(start).Round(time.Millisecond))
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ctxErr prefers the context's error, which says "deadline exceeded" where
// the client's says only "request canceled".
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}
