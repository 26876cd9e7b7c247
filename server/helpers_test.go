package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/models"
	"github.com/aurax/aurax/pool"
	"github.com/ollama/ollama/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testenv.LeakOptions()...)
}

// stubBackend is an in-memory models.Backend: each call returns err when
// set, else a one-chunk answer. block, when set, holds chat calls until it
// is closed or the request's context ends.
type stubBackend struct {
	err   error
	block chan struct{}
	lists atomic.Int64 // List calls
}

var _ models.Backend = (*stubBackend)(nil)

func (b *stubBackend) wait(ctx context.Context) error {
	if b.block == nil {
		return nil
	}
	select {
	case <-b.block:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *stubBackend) Chat(ctx context.Context, req *api.ChatRequest, fn func(*api.ChatResponse) error) error {
	if err := b.wait(ctx); err != nil {
		return err
	}
	if b.err != nil {
		return b.err
	}
	return fn(&api.ChatResponse{Model: req.Model, Message: api.Message{Role: "assistant", Content: "ok"}, Done: true, DoneReason: "stop",
		Metrics: api.Metrics{PromptEvalCount: 3, EvalCount: 1}})
}

func (b *stubBackend) Generate(ctx context.Context, req *api.GenerateRequest, fn func(*api.GenerateResponse) error) error {
	if err := b.wait(ctx); err != nil {
		return err
	}
	if b.err != nil {
		return b.err
	}
	return fn(&api.GenerateResponse{Model: req.Model, Response: "ok", Done: true, DoneReason: "stop"})
}

func (b *stubBackend) Embed(ctx context.Context, req *api.EmbedRequest) (*api.EmbedResponse, error) {
	if b.err != nil {
		return nil, b.err
	}
	return &api.EmbedResponse{Model: req.Model, Embeddings: [][]float32{{1, 0}}}, nil
}

func (b *stubBackend) List(context.Context) (*api.ListResponse, error) {
	b.lists.Add(1)
	if b.err != nil {
		return nil, b.err
	}
	return &api.ListResponse{Models: []api.ListModelResponse{{Name: "fake:latest"}, {Name: "fake-embed:latest"}}}, nil
}

func (b *stubBackend) Running(context.Context) (*api.ProcessResponse, error) {
	return &api.ProcessResponse{}, b.err
}

func (b *stubBackend) Version(context.Context) (string, error) { return "0.17.4", b.err }

func (b *stubBackend) Show(_ context.Context, req *api.ShowRequest) (*api.ShowResponse, error) {
	if b.err != nil {
		return nil, b.err
	}
	return &api.ShowResponse{Details: api.ModelDetails{Family: "qwen3"}, Template: "{{ .Prompt }}"}, nil
}

// testConfig is the default configuration aimed at a backend named "fake".
func testConfig() config.Config {
	cfg := config.Default()
	cfg.Models.Default = "fake"
	cfg.Models.Embedding = "fake-embed"
	cfg.Models.Aliases = map[string]string{"qwen3:coder": "fake"}
	cfg.Ollama.Parallel = 4
	cfg.Server.DrainTimeout = 5 * time.Second
	return cfg
}

// newTestServer builds a Server over b with its own registry.
func newTestServer(t testing.TB, b models.Backend, cfg config.Config, mods ...func(*Options)) (*Server, *prometheus.Registry) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.Options{Window: cfg.Metrics.Window}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { m.Close() })
	p := newTestPool(t, b, cfg)
	svc := models.NewService(p, models.Config{DefaultChat: cfg.Models.Default, DefaultEmbed: cfg.Models.Embedding, Aliases: cfg.Models.Aliases})
	opts := Options{Config: cfg, Pool: p, Models: svc, Metrics: m, Version: "test"}
	for _, mod := range mods {
		mod(&opts)
	}
	return New(opts), reg
}

// newTestPool is a pool of one engine, b, sized and bounded by cfg (the
// engine's URL is cfg's first, which b ignores).
func newTestPool(t testing.TB, b models.Backend, cfg config.Config) *pool.Pool {
	t.Helper()
	opts, err := cfg.PoolOptions()
	require.NoError(t, err)
	opts.Targets = opts.Targets[:1]
	opts.NewBackend = func(pool.Target) (models.Backend, error) { return b, nil }
	p, err := pool.New(opts)
	require.NoError(t, err)
	return p
}

// doReq sends one request through app.Test.
func doReq(t *testing.T, s *Server, method, path, body string, header ...string) (*http.Response, string) {
	t.Helper()
	resp, b, err := rawReq(s, method, path, body, header...)
	require.NoError(t, err)
	return resp, b
}

// rawReq is doReq for goroutines other than the test's.
func rawReq(s *Server, method, path, body string, header ...string) (*http.Response, string, error) {
	req, err := http.NewRequest(method, "http://aurax.test"+path, strings.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.App().Test(req, -1)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// serve runs s on a loopback port until the test ends; it returns the base
// URL and a stop func that drains (also called at cleanup).
func serve(t testing.TB, s *Server) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln, nil) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, net.ErrClosed) {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	waitReady(t, "http://"+ln.Addr().String())
	return "http://" + ln.Addr().String(), stop
}

func waitReady(t testing.TB, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", base)
}
