package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/models"
	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/require"
)

// pullBackend is a stubBackend that starts without the models and gets them
// through Pull, which reports two progress steps and waits for gate between
// them. failWith makes Pull fail instead.
type pullBackend struct {
	stubBackend
	gate     chan struct{}
	failWith error

	mu     sync.Mutex
	have   map[string]bool
	pulled []string
}

func (b *pullBackend) List(context.Context) (*api.ListResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out api.ListResponse
	for m := range b.have {
		out.Models = append(out.Models, api.ListModelResponse{Name: m + ":latest"})
	}
	return &out, nil
}

func (b *pullBackend) Pull(ctx context.Context, model string, fn func(api.ProgressResponse) error) error {
	b.mu.Lock()
	b.pulled = append(b.pulled, model)
	b.mu.Unlock()
	if b.failWith != nil {
		return b.failWith
	}
	if err := fn(api.ProgressResponse{Status: "pulling manifest"}); err != nil {
		return err
	}
	if err := fn(api.ProgressResponse{Status: "downloading", Total: 1000, Completed: 500}); err != nil {
		return err
	}
	select {
	case <-b.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	b.have[model] = true
	b.mu.Unlock()
	return fn(api.ProgressResponse{Status: "success", Total: 1000, Completed: 1000})
}

func (b *pullBackend) pulls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.pulled...)
}

type pullReport struct {
	Engine  string  `json:"engine"`
	Model   string  `json:"model"`
	Status  string  `json:"status"`
	Percent float64 `json:"percent"`
	Active  bool    `json:"active"`
	Error   string  `json:"error"`
	NextTry *string `json:"next_try"`
}

type healthBody struct {
	Status string `json:"status"`
	Checks struct {
		Pull struct {
			Enabled bool         `json:"enabled"`
			Models  []pullReport `json:"models"`
		} `json:"pull"`
	} `json:"checks"`
}

func getHealth(t *testing.T, s *Server) healthBody {
	t.Helper()
	_, body := doReq(t, s, http.MethodGet, "/health", "")
	var hb healthBody
	require.NoError(t, json.Unmarshal([]byte(body), &hb), body)
	return hb
}

func TestPullMissingModelHoldsReadinessUntilPulled(t *testing.T) {
	b := &pullBackend{gate: make(chan struct{}), have: map[string]bool{}}
	cfg := testConfig()
	cfg.Ollama.PullMissing = true
	s, _ := newTestServer(t, b, cfg)
	h := s.Health()
	ctx := context.Background()

	resp, body := doReq(t, s, http.MethodGet, "/health/ready", "")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)

	done := make(chan struct{})
	go func() { defer close(done); h.Check(ctx) }() // probes the engine, which pulls
	require.Eventually(t, func() bool {
		_, body := doReq(t, s, http.MethodGet, "/health/ready", "")
		return json.Valid([]byte(body)) && strings.Contains(body, "pulling fake: downloading 50.0%")
	}, 5*time.Second, 5*time.Millisecond, "readiness names the pull and its progress")
	hb := getHealth(t, s)
	require.True(t, hb.Checks.Pull.Enabled)
	require.Len(t, hb.Checks.Pull.Models, 1)
	require.Equal(t, "fake", hb.Checks.Pull.Models[0].Model)
	require.Equal(t, "127.0.0.1:11434", hb.Checks.Pull.Models[0].Engine)
	require.True(t, hb.Checks.Pull.Models[0].Active)
	require.Equal(t, 50.0, hb.Checks.Pull.Models[0].Percent)

	close(b.gate)
	<-done // the embedding model was pulled after the chat model
	require.Equal(t, []string{"fake", "fake-embed"}, b.pulls())
	resp, body = doReq(t, s, http.MethodGet, "/health/ready", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	hb = getHealth(t, s)
	require.Equal(t, "ok", hb.Status)
	for _, m := range hb.Checks.Pull.Models {
		require.Equal(t, "done", m.Status, m.Model)
		require.False(t, m.Active)
	}

	h.Check(ctx) // nothing missing: nothing pulled again
	require.Len(t, b.pulls(), 2)
}

func TestPullFailureIsReportedAndRetriedLater(t *testing.T) {
	b := &pullBackend{have: map[string]bool{}, failWith: errors.New(`pull model manifest: file does not exist`)}
	cfg := testConfig()
	cfg.Models.Embedding = ""
	cfg.Ollama.PullMissing = true
	s, _ := newTestServer(t, b, cfg)
	h := s.Health()
	ctx := context.Background()
	h.Check(ctx)
	_, body := doReq(t, s, http.MethodGet, "/health/ready", "")
	require.Contains(t, body, "pull of fake failed: pull model manifest: file does not exist")
	h.Check(ctx) // within the retry delay: not tried again
	require.Len(t, b.pulls(), 1)
	_, body = doReq(t, s, http.MethodGet, "/health/ready", "")
	require.Contains(t, body, "pull of fake failed", "the reason stays while the pull waits to be retried")
	hb := getHealth(t, s)
	require.Equal(t, "failed", hb.Checks.Pull.Models[0].Status)
	require.NotNil(t, hb.Checks.Pull.Models[0].NextTry)
}

func TestPullOffByDefault(t *testing.T) {
	b := &pullBackend{have: map[string]bool{}}
	s, _ := newTestServer(t, b, testConfig())
	s.Health().Check(context.Background())
	require.Empty(t, b.pulls())
	_, body := doReq(t, s, http.MethodGet, "/health", "")
	require.Contains(t, body, `"pull":{"enabled":false}`)
	_, body = doReq(t, s, http.MethodGet, "/health/ready", "")
	require.Contains(t, body, `default model \"fake\" not present`)
}

// TestPullAgainstRealOllama asks the real test Ollama for a model it lacks:
// these machines reach no registry, so the pull fails, and the failure is
// what readiness reports. A model it has is never pulled.
func TestPullAgainstRealOllama(t *testing.T) {
	url := testenv.Ollama(t)
	backend, err := models.NewOllama(url, models.OllamaOptions{ConnectTimeout: 2 * time.Second})
	require.NoError(t, err)
	cfg := testConfig()
	cfg.Models.Default = "aurax-no-such-model:1b"
	cfg.Models.Embedding = testenv.EmbedModel
	cfg.Models.Aliases = nil
	cfg.Ollama.PullMissing = true
	s, _ := newTestServer(t, backend, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s.Health().Check(ctx)
	_, body := doReq(t, s, http.MethodGet, "/health/ready", "")
	require.Contains(t, body, "pull of aurax-no-such-model:1b failed")
	hb := getHealth(t, s)
	require.Len(t, hb.Checks.Pull.Models, 1, "the embedding model present was not pulled")
	t.Logf("real Ollama's pull error: %s", hb.Checks.Pull.Models[0].Error)
}
