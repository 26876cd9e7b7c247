package compose

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aurax/aurax/internal/retry"
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

// Drainer takes an engine out of the gateways' routing before its container
// stops (the engine pools of every gateway). Drain stops new requests to
// the engine at addr (host:port) and returns how many are still in flight
// over all gateways; the provider calls it until that is 0 or StopTimeout
// has passed. Forget says the engine's container is gone.
type Drainer interface {
	Drain(ctx context.Context, addr string) (inFlight int, err error)
	Forget(ctx context.Context, addr string)
}

// Options are the provider's dependencies beyond its Config.
type Options struct {
	Logger *slog.Logger
	// Drainer drains an engine before it stops; nil: stop at once.
	Drainer Drainer
	// VisibleGPUs lists the host's GPUs (NVML): what compose.gpus "all"
	// means, and what a list of IDs is checked against. nil or empty: no
	// GPU is visible here ("all" is then an error; a list is taken as is).
	VisibleGPUs func() []string
}

// Provider scales the engine service of a Compose project: Ollama
// containers, one per GPU when compose.gpus is set. It implements
// scaling.Provider and scaling.Bounded; it is safe for concurrent use.
// Close waits for engines still draining.
type Provider struct {
	cli     *client.Client
	cfg     Config
	project string
	service string
	self    string // this gateway's container ID; may be empty (not in a container)
	gpus    []string
	drainer Drainer
	logger  *slog.Logger
	start   func(ctx context.Context, id string) error // ContainerStart; tests replace it

	mu       sync.Mutex // serialises SetReplicas
	dmu      sync.Mutex
	draining map[string]bool // IDs being stopped: no longer counted
	wg       sync.WaitGroup
}

var (
	_ scaling.Provider = (*Provider)(nil)
	_ scaling.Bounded  = (*Provider)(nil)
)

// New connects to the Docker Engine, checks that it answers, and finds the
// project (cfg, or this container's label) and its engine service, which
// must have at least one container and must not be this gateway's own
// service. It fails with an error wrapping ErrNoDocker when the Engine does
// not answer, and with a plain error naming the setting when the project,
// the service or the GPUs are wrong. ctx bounds the checks only.
func New(ctx context.Context, cfg Config, opts Options) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	gpus, err := resolveGPUs(cfg.GPUs, opts.VisibleGPUs)
	if err != nil {
		return nil, err
	}
	copts := []client.Opt{client.FromEnv}
	if cfg.Host != "" {
		copts = append(copts, client.WithHost(cfg.Host))
	}
	cli, err := client.New(copts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	p := &Provider{cli: cli, cfg: cfg, project: cfg.Project, service: cfg.Service, gpus: gpus, drainer: opts.Drainer,
		logger: logger.With("component", "compose"), draining: map[string]bool{}}
	p.start = func(ctx context.Context, id string) error {
		_, err := p.cli.ContainerStart(ctx, id, client.ContainerStartOptions{})
		return err
	}
	if err := p.init(ctx); err != nil {
		cli.Close()
		return nil, err
	}
	p.logger.Info("compose provider ready", "docker", cli.DaemonHost(), "project", p.project,
		"engine_service", p.service, "gpus", strings.Join(gpus, ","), "self", shortID(p.self))
	return p, nil
}

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
	selfService := ""
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
		if res.Container.Config != nil {
			if p.project == "" {
				p.project = res.Container.Config.Labels[LabelProject]
			}
			selfService = res.Container.Config.Labels[LabelService]
		}
		break
	}
	if p.project == "" {
		where := "this process is not in a container the Engine knows"
		if p.self != "" {
			where = "container " + shortID(p.self) + " has no " + LabelProject + " label"
		}
		return fmt.Errorf("compose: cannot tell which project to scale: %s; set compose.project", where)
	}
	if selfService != "" && selfService == p.service {
		return fmt.Errorf("compose.service: %q is this gateway's own service; the provider scales engines (Ollama containers), never a gateway", p.service)
	}
	rs, err := p.list(ctx)
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		return fmt.Errorf("compose.service: project %q has no container of service %q (docker-compose up creates it)", p.project, p.service)
	}
	return nil
}

// Bound implements scaling.Bounded: with compose.gpus, one engine per GPU.
func (p *Provider) Bound() (int, string) {
	if len(p.gpus) == 0 {
		return -1, ""
	}
	return len(p.gpus), fmt.Sprintf("compose.gpus has %d GPUs (%s), one per engine", len(p.gpus), strings.Join(p.gpus, ","))
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
		return p.scaleUp(ctx, rs, n-len(active))
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

func (p *Provider) scaleUp(ctx context.Context, all []replica, k int) error {
	gpus, err := p.engineGPUs(ctx, all)
	if err != nil {
		return err
	}
	held := heldBy(all, gpus)
	running := len(p.activeReplicas(all))
	// Compose's own engines that a scale-down stopped come back first.
	for _, r := range all {
		if k == 0 {
			return nil
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
			return fmt.Errorf("compose: start engine %s: %w", r.name, err)
		}
		p.logger.Info("engine started", "container", r.name, "number", r.number)
		for _, g := range gpus[r.id] {
			held[g] = true
		}
		k--
		running++
	}
	if k == 0 {
		return nil
	}
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
	for range k {
		var gpu string
		if len(p.gpus) > 0 {
			var ok bool
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
		k--
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
			time.Sleep(100 * time.Millisecond)
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
