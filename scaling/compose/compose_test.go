package compose

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/dockertest"
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
	_, err := New(context.Background(), cfg, nil)
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
		{"project without service", func(c *Config) { c.Project = "p" }, "compose.project"},
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

// syncBuffer is a log sink the drain goroutines may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestProviderOnDocker scales a Compose-labelled service on the real Docker
// Engine: clone up to 3 (idempotently), all healthy, on the network under
// the service alias with the template's healthcheck and limits; then down to
// 1, newest first, each drained by SIGTERM (exit 0) and removed, never the
// provider's own container.
func TestProviderOnDocker(t *testing.T) {
	cli := dockertest.Client(t)
	t0 := time.Now()
	project := dockertest.Name("auraxtest")
	label := LabelProject + "=" + project
	image := project + "-replica:test"
	bin := filepath.Join(t.TempDir(), "replica")
	dockertest.BuildStatic(t, "./internal/dockertest/replica", bin)
	dockertest.ScratchImage(t, cli, image, bin, `ENTRYPOINT ["/app"]`)
	t.Logf("image built in %v", time.Since(t0).Round(time.Millisecond))
	netName := project + "_default"
	dockertest.Network(t, cli, netName, label)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The first replica, made as docker-compose 1.29 makes it.
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: project + "_app_1",
		Config: &container.Config{
			Image: image, Env: []string{"READY_AFTER=1s", "DRAIN=1s"},
			Labels: map[string]string{LabelProject: project, LabelService: "app", LabelNumber: "1", LabelOneOff: "False"},
			Healthcheck: &container.HealthConfig{Test: []string{"CMD", "/app", "check"},
				Interval: 500 * time.Millisecond, Timeout: 2 * time.Second, Retries: 3},
		},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(netName),
			Resources: container.Resources{Memory: 64 << 20, NanoCPUs: 5e8}},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			netName: {Aliases: []string{"app"}}}},
	})
	require.NoError(t, err)
	_, err = cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{})
	require.NoError(t, err)

	logs := &syncBuffer{}
	cfg := DefaultConfig()
	cfg.ContainerID = created.ID // as if it ran in that container: project and service from its labels
	cfg.StopTimeout = 10 * time.Second
	p, err := New(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	require.Equal(t, project, p.Project())
	require.Equal(t, "app", p.Service())

	ready := func(want int) {
		t.Helper()
		require.Eventually(t, func() bool {
			n, err := p.ReadyReplicas(ctx)
			return err == nil && n == want
		}, 30*time.Second, 200*time.Millisecond, "want %d healthy replicas; logs:\n%s", want, logs)
	}
	ready(1)
	t.Logf("first replica healthy at %v", time.Since(t0).Round(time.Millisecond))
	n, err := p.Replicas(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	start := time.Now()
	require.NoError(t, p.SetReplicas(ctx, 3))
	require.NoError(t, p.SetReplicas(ctx, 3), "idempotent")
	t.Logf("SetReplicas(3) twice: %v", time.Since(start).Round(time.Millisecond))
	n, err = p.Replicas(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n, "starting replicas count at once")
	ready(3)
	t.Logf("3 healthy after %v", time.Since(start).Round(time.Millisecond))

	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", label)})
	require.NoError(t, err)
	require.Len(t, list.Items, 3)
	var numbers []int
	for _, c := range list.Items {
		num, _ := strconv.Atoi(c.Labels[LabelNumber])
		numbers = append(numbers, num)
		if c.ID == created.ID {
			continue
		}
		ins, err := cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		require.NoError(t, err)
		ct := ins.Container
		require.Equal(t, project+"_app_"+c.Labels[LabelNumber], strings.TrimPrefix(ct.Name, "/"))
		require.Contains(t, ct.NetworkSettings.Networks, netName)
		require.Contains(t, ct.NetworkSettings.Networks[netName].Aliases, "app")
		require.Equal(t, []string{"CMD", "/app", "check"}, ct.Config.Healthcheck.Test)
		require.Equal(t, int64(64<<20), ct.HostConfig.Memory)
		require.Equal(t, int64(5e8), ct.HostConfig.NanoCPUs)
		require.Contains(t, ct.Config.Env, "DRAIN=1s")
	}
	slices.Sort(numbers)
	require.Equal(t, []int{1, 2, 3}, numbers)

	numbersNow := func() []int {
		t.Helper()
		list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", label)})
		require.NoError(t, err)
		var out []int
		for _, c := range list.Items {
			num, _ := strconv.Atoi(c.Labels[LabelNumber])
			out = append(out, num)
		}
		slices.Sort(out)
		return out
	}
	start = time.Now()
	require.NoError(t, p.SetReplicas(ctx, 2))
	p.wg.Wait()
	require.Equal(t, []int{1, 2}, numbersNow(), "newest first")
	require.NoError(t, p.SetReplicas(ctx, 1))
	require.NoError(t, p.SetReplicas(ctx, 1), "idempotent while draining")
	n, err = p.Replicas(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "draining replicas leave the count at once")
	require.NoError(t, p.Close()) // waits for the drains
	t.Logf("scale-down 3→2→1 drained and removed in %v", time.Since(start).Round(time.Millisecond))
	require.Equal(t, []int{1}, numbersNow(), "the provider's own replica stays")
	out := logs.String()
	t.Logf("done at %v", time.Since(t0).Round(time.Millisecond))
	require.Equal(t, 2, strings.Count(out, "replica removed"), out)
	require.Equal(t, 2, strings.Count(out, "exit_code=0"), "drained on SIGTERM, not killed:\n%s", out)
}

func TestSetReplicasRefusesZero(t *testing.T) {
	p := &Provider{}
	err := p.SetReplicas(context.Background(), 0)
	require.Error(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.True(t, errors.Is(p.SetReplicas(ctx, 2), context.Canceled))
}
