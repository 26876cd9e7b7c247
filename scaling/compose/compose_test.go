package compose

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/dockertest"
	"github.com/aurax/aurax/internal/retry"
	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/scaling"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
)

func TestNewWithoutDockerIsClearError(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Host = "unix://" + filepath.Join(t.TempDir(), "no-docker.sock")
	cfg.Project, cfg.Service = "p", "s"
	cfg.APITimeout = 2 * time.Second
	_, err := New(context.Background(), cfg, Options{})
	require.ErrorIs(t, err, ErrNoDocker)
	require.Contains(t, err.Error(), "no-docker.sock")
	require.Contains(t, err.Error(), "mount the Docker socket")
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"default", func(*Config) {}, ""},
		{"no service", func(c *Config) { c.Service = "" }, "compose.service"},
		{"bad gpu", func(c *Config) { c.GPUs = "0,x" }, "compose.gpus"},
		{"gpu twice", func(c *Config) { c.GPUs = "1,1" }, "compose.gpus"},
		{"gpu list", func(c *Config) { c.GPUs = "0,1, 2,GPU-4f1e-9a" }, ""},
		{"all gpus", func(c *Config) { c.GPUs = "all" }, ""},
		{"bad port", func(c *Config) { c.EnginePort = 0 }, "compose.engine_port"},
		{"bad host", func(c *Config) { c.Host = "/var/run/docker.sock" }, "compose.host"},
		{"short stop", func(c *Config) { c.StopTimeout = time.Millisecond }, "compose.stop_timeout"},
		{"no api timeout", func(c *Config) { c.APITimeout = 0 }, "compose.api_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestValidateForScalingBounds(t *testing.T) {
	sc := scaling.DefaultConfig()
	sc.Profile, sc.Provider = scaling.ProfileProd, Name
	for _, tc := range []struct {
		gpus string
		max  int // scaling.max_replicas (0: the prod profile's 50)
		want string
	}{
		{"", 0, ""}, // CPU only: no bound
		{"all", 0, ""},
		{"0,1,2", 3, ""},
		{"0,1,2", 2, ""},
		{"0,1,2", 4, "scaling.max_replicas 4 is above compose.gpus, which lists 3 (0,1,2), one engine per GPU"},
		{"0", 0, "scaling.max_replicas 50 is above compose.gpus, which lists 1 (0)"},
		{"0,x", 1, "compose.gpus"},
	} {
		c := DefaultConfig()
		c.GPUs, sc.MaxReplicas = tc.gpus, tc.max
		err := c.ValidateFor(sc)
		if tc.want == "" {
			require.NoError(t, err, "gpus %q, max_replicas %d", tc.gpus, tc.max)
			continue
		}
		require.ErrorContains(t, err, tc.want, "gpus %q, max_replicas %d", tc.gpus, tc.max)
	}
}

func TestCloneSpec(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tmpl := container.InspectResponse{
		ID:   id,
		Name: "/shop_api_1",
		Config: &container.Config{
			Hostname: "0123456789ab", Image: "aurax:dev", Env: []string{"A=1"},
			Cmd: []string{"serve"}, Labels: map[string]string{LabelProject: "shop", LabelService: "api", LabelNumber: "1", "x": "y"},
			Healthcheck: &container.HealthConfig{Test: []string{"CMD", "/app", "check"}, Interval: time.Second},
		},
		HostConfig: &container.HostConfig{
			NetworkMode: "shop_default",
			Resources:   container.Resources{Memory: 64 << 20, NanoCPUs: 5e8},
			PortBindings: network.PortMap{
				network.MustParsePort("8000/tcp"): {{HostPort: "8000"}},
				network.MustParsePort("9000/tcp"): {{HostPort: ""}},
			},
		},
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
			"shop_default": {Aliases: []string{"api", "0123456789ab"}, NetworkID: "n1"},
			"shop_back":    {Aliases: []string{"api", "backend-api"}},
		}},
	}
	s, err := cloneSpec(tmpl, "shop", "api", 4)
	require.NoError(t, err)
	c := s.create
	require.Equal(t, "shop_api_4", c.Name, "Compose v1 naming kept")
	require.Empty(t, c.Config.Hostname)
	require.Equal(t, "4", c.Config.Labels[LabelNumber])
	require.Equal(t, "y", c.Config.Labels["x"])
	require.Equal(t, "shop_api_1", c.Config.Labels[LabelClonedBy])
	require.Equal(t, "1", tmpl.Config.Labels[LabelNumber], "template's labels untouched")
	require.Equal(t, tmpl.Config.Healthcheck, c.Config.Healthcheck)
	require.Equal(t, int64(64<<20), c.HostConfig.Memory)
	require.Len(t, c.HostConfig.PortBindings, 1, "fixed host port dropped, random kept")
	require.Equal(t, []string{"api"}, c.NetworkingConfig.EndpointsConfig["shop_default"].Aliases, "own short-ID alias dropped")
	require.Len(t, s.connect, 1)
	require.Equal(t, "shop_back", s.connect[0].network)
	require.Equal(t, []string{"api", "backend-api"}, s.connect[0].endpoint.Aliases)

	require.Equal(t, "shop-api-7", cloneName("shop-api-1", "shop", "api", 7), "Compose v2 naming")
}

func TestContainerIDs(t *testing.T) {
	id := strings.Repeat("ab12", 16)
	in := "1 2 0:1 / / rw - overlay overlay rw\n" +
		"3 4 0:5 /var/lib/docker/containers/" + id + "/hostname /etc/hostname rw - ext4 /dev/vda rw\n" +
		"12:memory:/docker/" + id + "\n"
	require.Equal(t, []string{id}, containerIDs(bufioScanner(in)))
	require.Empty(t, containerIDs(bufioScanner("0::/user.slice\n")))
}

func bufioScanner(s string) *bufio.Scanner { return bufio.NewScanner(strings.NewReader(s)) }

func TestHealthFromStatus(t *testing.T) {
	for in, want := range map[string]container.HealthStatus{
		"Up 3 seconds (health: starting)": container.Starting,
		"Up 2 minutes (healthy)":          container.Healthy,
		"Up 2 minutes (unhealthy)":        container.Unhealthy,
		"Up 5 seconds":                    container.NoHealthcheck,
	} {
		require.Equal(t, want, healthFromStatus(in), "healthFromStatus(%q)", in)
	}
}

// fakeDrainer stands for the gateways: an engine has inFlight requests
// that finish one per Drain call.
type fakeDrainer struct {
	mu       sync.Mutex
	inFlight map[string]int
	drained  []string
	forgot   []string
}

func (d *fakeDrainer) Drain(_ context.Context, addr string) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Contains(d.drained, addr) {
		d.drained = append(d.drained, addr)
	}
	n := d.inFlight[addr]
	if n > 0 {
		d.inFlight[addr] = n - 1
	}
	return n, nil
}

func (d *fakeDrainer) Forget(_ context.Context, addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forgot = append(d.forgot, addr)
}

// engineProject is a Compose-labelled project on the real Docker Engine
// with one engine container made as docker-compose 1.29 makes it (a static
// stand-in that drains on SIGTERM), and a gateway container of another
// service in the same project.
type engineProject struct {
	cli                   *client.Client
	project, label, image string
	netName               string
	first, gateway        string // container IDs
}

func newEngineProject(t *testing.T) *engineProject {
	t.Helper()
	cli := dockertest.Client(t)
	e := &engineProject{cli: cli, project: dockertest.Name("auraxtest")}
	e.label = LabelProject + "=" + e.project
	e.image = e.project + "-replica:test"
	bin := filepath.Join(t.TempDir(), "replica")
	dockertest.BuildStatic(t, "./internal/dockertest/replica", bin)
	dockertest.ScratchImage(t, cli, e.image, bin, `ENTRYPOINT ["/app"]`)
	e.netName = e.project + "_default"
	dockertest.Network(t, cli, e.netName, e.label)
	e.first = e.create(t, "ollama", 1, true)
	e.gateway = e.create(t, "aurax-backend", 1, true)
	return e
}

func (e *engineProject) create(t *testing.T, service string, number int, start bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: e.project + "_" + service + "_" + strconv.Itoa(number),
		Config: &container.Config{
			Image: e.image, Env: []string{"READY_AFTER=1s", "DRAIN=1s"},
			Labels: map[string]string{LabelProject: e.project, LabelService: service, LabelNumber: strconv.Itoa(number), LabelOneOff: "False"},
			Healthcheck: &container.HealthConfig{Test: []string{"CMD", "/app", "check"},
				Interval: 500 * time.Millisecond, Timeout: 2 * time.Second, Retries: 3},
		},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(e.netName),
			Resources: container.Resources{Memory: 64 << 20, NanoCPUs: 5e8}},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			e.netName: {Aliases: []string{service}}}},
	})
	require.NoError(t, err)
	if start {
		_, err = e.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{})
		require.NoError(t, err)
	}
	return created.ID
}

// engines lists the engine service's containers: number → state.
func (e *engineProject) engines(t *testing.T) map[int]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", e.label, LabelService+"=ollama")})
	require.NoError(t, err)
	out := map[int]string{}
	for _, c := range list.Items {
		n, _ := strconv.Atoi(c.Labels[LabelNumber])
		out[n] = string(c.State)
	}
	return out
}

// TestProviderScalesEnginesOnDocker scales the engine service of a
// Compose-labelled project on the real Docker Engine: clones up to 3
// (idempotently) on the network under the service alias with the
// template's healthcheck and limits; down to 1 newest first, each drained
// through the gateways (until their requests in flight are done) before it
// stops, clones removed; to 0, Compose's own engine stopped, not removed;
// and from 0 back to 1 by starting it again. The gateway is never touched.
func TestProviderScalesEnginesOnDocker(t *testing.T) {
	e := newEngineProject(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := &testenv.SyncBuffer{}
	d := &fakeDrainer{inFlight: map[string]int{}}
	cfg := DefaultConfig()
	cfg.ContainerID = e.gateway // as if it ran in the gateway: project from its labels
	cfg.StopTimeout = 10 * time.Second
	p, err := New(ctx, cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Drainer: d})
	require.NoError(t, err)
	defer p.Close()
	require.Equal(t, e.project, p.Project())
	require.Equal(t, "ollama", p.Service())
	n, bound := p.Bound()
	require.Equal(t, -1, n, "CPU only: no bound but the controller's")
	require.Empty(t, bound)

	require.NoError(t, p.SetReplicas(ctx, 3))
	require.NoError(t, p.SetReplicas(ctx, 3), "idempotent")
	got, err := p.Replicas(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, got, "starting engines count at once")
	require.Equal(t, map[int]string{1: "running", 2: "running", 3: "running"}, e.engines(t))
	list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{Filters: make(client.Filters).Add("label", e.label, LabelService+"=ollama")})
	require.NoError(t, err)
	ips := map[int]string{}
	for _, c := range list.Items {
		num, _ := strconv.Atoi(c.Labels[LabelNumber])
		ips[num] = c.NetworkSettings.Networks[e.netName].IPAddress.String()
		if c.ID == e.first {
			continue
		}
		ins, err := e.cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		require.NoError(t, err)
		ct := ins.Container
		require.Equal(t, e.project+"_ollama_"+c.Labels[LabelNumber], strings.TrimPrefix(ct.Name, "/"))
		require.Contains(t, ct.NetworkSettings.Networks[e.netName].Aliases, "ollama", "Docker's DNS finds it under the service name")
		require.Equal(t, []string{"CMD", "/app", "check"}, ct.Config.Healthcheck.Test)
		require.Equal(t, int64(64<<20), ct.HostConfig.Memory)
		require.Contains(t, ct.Config.Env, "DRAIN=1s")
		require.Empty(t, ct.HostConfig.DeviceRequests, "CPU only")
	}

	// Down to 1: engine 3, then 2, each drained first.
	d.mu.Lock()
	d.inFlight[ips[3]+":11434"] = 3
	d.mu.Unlock()
	require.NoError(t, p.SetReplicas(ctx, 1))
	require.NoError(t, p.SetReplicas(ctx, 1), "idempotent while draining")
	got, _ = p.Replicas(ctx)
	require.Equal(t, 1, got, "draining engines leave the count at once")
	p.wg.Wait()
	require.Equal(t, map[int]string{1: "running"}, e.engines(t), "newest first; clones removed")
	require.ElementsMatch(t, []string{ips[2] + ":11434", ips[3] + ":11434"}, d.drained)
	require.ElementsMatch(t, d.drained, d.forgot, "every drained engine is forgotten once stopped")
	require.Zero(t, d.inFlight[ips[3]+":11434"], "engine 3 stopped only once its requests were done")

	// To zero and back: Compose's own engine is stopped and started again.
	require.NoError(t, p.SetReplicas(ctx, 0))
	p.wg.Wait()
	require.Equal(t, map[int]string{1: "exited"}, e.engines(t), "kept, stopped: a template for scale from zero")
	got, _ = p.Replicas(ctx)
	require.Zero(t, got)
	require.NoError(t, p.SetReplicas(ctx, 1))
	require.Equal(t, map[int]string{1: "running"}, e.engines(t), "started again, no clone")
	require.NoError(t, p.SetReplicas(ctx, 2))
	require.Len(t, e.engines(t), 2)

	ins, err := e.cli.ContainerInspect(ctx, e.gateway, client.ContainerInspectOptions{})
	require.NoError(t, err)
	require.True(t, ins.Container.State.Running, "the gateway is never touched")
	out := logs.String()
	require.Equal(t, 2, strings.Count(out, "engine removed"), out)
	require.Contains(t, out, "engine stopped (kept: Compose made it)")
}

// TestProviderGivesEachEngineItsOwnGPU: with compose.gpus, each new engine
// gets a GPU no other engine holds (a device request, as `docker create
// --gpus device=N` records it), and when none is free the provider says so
// and the bound is the GPUs. No GPU here: the containers are created and
// their HostConfig read, their start stubbed; a real start fails, clearly.
func TestProviderGivesEachEngineItsOwnGPU(t *testing.T) {
	e := newEngineProject(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := DefaultConfig()
	cfg.ContainerID = e.gateway
	cfg.GPUs = "0,1,2"
	// An engine holds GPU 1 already (created, not startable here).
	holder, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: e.project + "_ollama_9",
		Config: &container.Config{Image: e.image,
			Labels: map[string]string{LabelProject: e.project, LabelService: "ollama", LabelNumber: "9", LabelOneOff: "False"}},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(e.netName),
			Resources: container.Resources{DeviceRequests: []container.DeviceRequest{{DeviceIDs: []string{"1"}, Capabilities: [][]string{{"gpu"}}}}}},
	})
	require.NoError(t, err)
	p, err := New(ctx, cfg, Options{VisibleGPUs: func() []string { return nil }})
	require.NoError(t, err)
	defer p.Close()
	n, why := p.Bound()
	require.Equal(t, 3, n)
	require.Contains(t, why, "one per engine")

	var started []string
	p.start = func(_ context.Context, id string) error { started = append(started, id); return nil }
	require.NoError(t, p.SetReplicas(ctx, 3), "two clones: GPUs 0 and 2, never the held 1")
	err = p.SetReplicas(ctx, 4)
	var be *BoundError
	require.ErrorAs(t, err, &be)
	require.True(t, retry.IsTerminal(err), "no GPU frees up within one decision's retries")
	require.Contains(t, err.Error(), "every GPU of compose.gpus (0,1,2) is held by an engine")
	gpus := map[string]bool{}
	for _, id := range started {
		ins, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		require.NoError(t, err)
		drs := ins.Container.HostConfig.DeviceRequests
		require.Len(t, drs, 1)
		require.Equal(t, [][]string{{"gpu"}}, drs[0].Capabilities)
		require.Len(t, drs[0].DeviceIDs, 1)
		gpus[drs[0].DeviceIDs[0]] = true
	}
	require.Equal(t, map[string]bool{"0": true, "2": true}, gpus)

	// A real start on this GPU-less host fails, names the GPU, and leaves
	// no half-made engine.
	_, err = e.cli.ContainerRemove(ctx, holder.ID, client.ContainerRemoveOptions{Force: true})
	require.NoError(t, err)
	p.start = func(ctx context.Context, id string) error {
		_, err := p.cli.ContainerStart(ctx, id, client.ContainerStartOptions{})
		return err
	}
	before := len(e.engines(t))
	err = p.SetReplicas(ctx, 2) // one running + 2 created: active is 1
	require.Error(t, err)
	require.Contains(t, err.Error(), "with GPU 1")
	require.Len(t, e.engines(t), before, "the failed clone was removed")
}

func TestResolveGPUs(t *testing.T) {
	visible := func() []string { return []string{"0", "1"} }
	for _, tc := range []struct {
		spec    string
		visible func() []string
		want    []string
		err     string
	}{
		{"", visible, nil, ""},
		{"all", visible, []string{"0", "1"}, ""},
		{"all", nil, nil, "no GPU is visible"},
		{"1", visible, []string{"1"}, ""},
		{"0,7", visible, nil, "GPU 7 is not on this host (it has 0, 1)"},
		{"0,7", nil, []string{"0", "7"}, ""},
	} {
		got, err := resolveGPUs(tc.spec, tc.visible)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.spec)
			continue
		}
		require.NoError(t, err, tc.spec)
		require.Equal(t, tc.want, got, tc.spec)
	}
}

func TestFreeGPU(t *testing.T) {
	g, ok := freeGPU([]string{"0", "1", "2"}, map[string]bool{"0": true, "2": true})
	require.True(t, ok)
	require.Equal(t, "1", g)
	_, ok = freeGPU([]string{"0"}, map[string]bool{"0": true})
	require.False(t, ok)
	live := []replica{{id: "a", state: container.StateRunning}, {id: "b", state: container.StateExited}, {id: "c", state: container.StateCreated}}
	require.Equal(t, map[string]bool{"0": true, "2": true},
		heldBy(live, map[string][]string{"a": {"0"}, "b": {"1"}, "c": {"2"}}), "a stopped engine holds no GPU")
}

// TestNewRefusesTheGatewaysOwnService: the provider scales engines, never
// the gateway it runs in, and a service without containers is an error
// naming the setting.
func TestNewRefusesTheGatewaysOwnService(t *testing.T) {
	e := newEngineProject(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.ContainerID, cfg.Service = e.gateway, "aurax-backend"
	_, err := New(ctx, cfg, Options{})
	require.ErrorContains(t, err, "is this gateway's own service")
	cfg.Service = "olama"
	_, err = New(ctx, cfg, Options{})
	require.ErrorContains(t, err, `compose.service: project "`+e.project+`" has no container of service "olama"`)
}

func TestSetReplicasRefusesNegative(t *testing.T) {
	p := &Provider{}
	require.Error(t, p.SetReplicas(context.Background(), -1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.True(t, errors.Is(p.SetReplicas(ctx, 2), context.Canceled))
}

func TestClassifyEngineErrors(t *testing.T) {
	for _, tc := range []struct {
		err      error
		terminal bool
	}{
		{nil, false},
		{fmt.Errorf("compose: create x: %w", cerrdefs.ErrInvalidArgument), true},
		{fmt.Errorf("compose: start x: %w", cerrdefs.ErrPermissionDenied), true},
		{cerrdefs.ErrUnauthenticated, true}, // the Engine refuses this client
		{cerrdefs.ErrNotImplemented, true},
		{fmt.Errorf("compose: create x: %w", cerrdefs.ErrConflict), false}, // a name still held by a container being removed
		{cerrdefs.ErrNotFound, false},
		{errors.New("connection reset"), false},
		{retry.Terminal(errors.New("already")), true},
	} {
		require.Equal(t, tc.terminal, retry.IsTerminal(classify(tc.err)), "classify(%v)", tc.err)
	}
	require.True(t, retry.IsTerminal(new(Provider).SetReplicas(context.Background(), -1)), "a negative count is terminal")
}
