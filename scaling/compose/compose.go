package compose

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/aurax/aurax/scaling"
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
