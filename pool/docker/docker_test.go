package docker

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/dockertest"
	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/models"
	"github.com/aurax/aurax/pool"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testenv.LeakOptions()...)
}

// TestDockerDiscoveryOnTheEngine: containers with the label on the real
// Docker Engine (an Ollama-wire upstream in a FROM scratch image) join the
// pool when they start, each soon after its start event, and drain out
// when they stop; a container without the label is never an engine.
func TestDockerDiscoveryOnTheEngine(t *testing.T) {
	cli := dockertest.Client(t)
	name := dockertest.Name("auraxdisc")
	label := "io.aurax.test=" + name // every container of the test: cleanup
	selector := "io.aurax.engine=" + name
	image := name + "-engine:test"
	bin := filepath.Join(t.TempDir(), "fakeupstream")
	dockertest.BuildStatic(t, "./internal/dockertest/fakeupstream", bin)
	dockertest.ScratchImage(t, cli, image, bin, `ENTRYPOINT ["/app"]`)
	netName := name + "_net"
	dockertest.Network(t, cli, netName, label)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	run := func(n string, labels map[string]string) string {
		t.Helper()
		c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name:       name + "_" + n,
			Config:     &container.Config{Image: image, Env: []string{"LATENCY=5ms", "MODELS=m"}, Labels: labels},
			HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(netName)},
		})
		require.NoError(t, err)
		_, err = cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{})
		require.NoError(t, err)
		return c.ID
	}
	engineLabels := map[string]string{"io.aurax.test": name, "io.aurax.engine": name, LabelParallel: "3"}

	d, err := New(cli, selector, Options{Network: netName, Resync: time.Hour})
	require.NoError(t, err)
	p, err := pool.New(pool.Options{Discoverers: []pool.Discoverer{d}, PSInterval: 100 * time.Millisecond,
		MaxWaiting: 4, Ollama: models.OllamaOptions{ConnectTimeout: time.Second}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(pctx) }()
	defer func() { stop(); <-done }()

	readyEngines := func() int { return p.Stats().Ready }
	t0 := time.Now()
	first := run("1", engineLabels)
	run("other", map[string]string{"io.aurax.test": name, "io.aurax.engine": "someone-else"})
	require.Eventually(t, func() bool { return readyEngines() == 1 }, 30*time.Second, 10*time.Millisecond)
	t.Logf("first engine ready %v after its start was asked for", time.Since(t0).Round(time.Millisecond))
	e := p.Engines()[0]
	require.Equal(t, "docker", e.Source)
	require.Equal(t, 3, e.Parallel, "slots from the container's label")

	t1 := time.Now()
	run("2", engineLabels)
	require.Eventually(t, func() bool { return readyEngines() == 2 }, 30*time.Second, 10*time.Millisecond)
	t.Logf("second engine ready %v after its start (events, not the 1 h resync)", time.Since(t1).Round(time.Millisecond))
	require.NoError(t, p.Chat(ctx, &api.ChatRequest{Model: "m"}, func(*api.ChatResponse) error { return nil }))

	_, err = cli.ContainerStop(ctx, first, client.ContainerStopOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(p.Engines()) == 1 }, 30*time.Second, 10*time.Millisecond,
		"the stopped container left the pool")
	require.Equal(t, 3, p.Stats().Slots)
}

func TestNewRejectsABadSelector(t *testing.T) {
	_, err := New(nil, "nolabel", Options{})
	require.ErrorContains(t, err, "LABEL=VALUE")
}
