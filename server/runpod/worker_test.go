package runpod

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/internal/fakeollama"
	"github.com/aurax/aurax/internal/retry"
	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/models"
	"github.com/aurax/aurax/pool"
	"github.com/aurax/aurax/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testenv.LeakOptions()...)
}

const (
	workerKey = "rpa_WORKER_KEY_42"
	workerID  = "pod-7"
)

// aurax runs a real AURAX server over the Ollama at ollamaURL, served in
// process, and returns the runner that calls it and its readiness.
func aurax(t *testing.T, ollamaURL, model string, slots int) (*Runner, func() bool) {
	t.Helper()
	cfg := config.Default()
	cfg.Ollama.URL = ollamaURL
	cfg.Models.Default, cfg.Models.Embedding = model, ""
	cfg.Ollama.Parallel = slots
	cfg.Server.DrainTimeout = 5 * time.Second
	cfg.Auth.APIKeys = []string{"in-process-key"}
	require.NoError(t, cfg.Validate())
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.Options{Window: time.Minute}, slog.New(slog.DiscardHandler))
	po, err := cfg.PoolOptions()
	require.NoError(t, err)
	po.Ollama = models.OllamaOptions{ConnectTimeout: time.Second, HeaderTimeout: time.Minute}
	p, err := pool.New(po)
	require.NoError(t, err)
	svc := models.NewService(p, models.Config{DefaultChat: model})
	srv := server.New(server.Options{Config: cfg, Pool: p, Models: svc, Metrics: m, Version: "test"})
	ip := NewInProcess()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ip.Listener(), nil) }()
	client := ip.Client()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		client.CloseIdleConnections()
		m.Close()
	})
	return &Runner{Client: client, BaseURL: InProcessURL, APIKey: "in-process-key"}, srv.Health().Ready
}

// queue is a fake of RunPod's job queue for one worker.
type queue struct {
	t    *testing.T
	srv  *httptest.Server
	jobs chan string // job-take answers (raw JSON)

	mu      sync.Mutex
	takes   []url.Values
	done    map[string]posted
	streams map[string][]json.RawMessage
	pings   []url.Values
	badAuth int
	doneCh  chan string
	take429 int
}

type posted struct {
	Query url.Values
	Body  map[string]json.RawMessage
}

func newQueue(t *testing.T) *queue {
	q := &queue{t: t, jobs: make(chan string, 64), done: map[string]posted{}, streams: map[string][]json.RawMessage{},
		doneCh: make(chan string, 64)}
	q.srv = httptest.NewServer(http.HandlerFunc(q.serve))
	t.Cleanup(q.srv.Close)
	return q
}

func (q *queue) config() Config {
	base := q.srv.URL + "/v2/ep1"
	return Config{
		GetJobURL:     base + "/job-take/$ID?gpu=A100",
		PostOutputURL: base + "/job-done/$RUNPOD_POD_ID/$ID?gpu=A100",
		PostStreamURL: base + "/job-stream/$RUNPOD_POD_ID/$ID?gpu=A100",
		PingURL:       base + "/ping/$RUNPOD_POD_ID?gpu=A100",
		APIKey:        workerKey,
		WorkerID:      workerID,
		PingInterval:  20 * time.Millisecond,
		Concurrency:   2,
		Backoff:       5 * time.Millisecond,
		MaxBackoff:    50 * time.Millisecond,
		PostAttempts:  3,
	}
}

func (q *queue) serve(w http.ResponseWriter, r *http.Request) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if r.Header.Get("Authorization") != workerKey {
		q.badAuth++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	query := r.URL.Query()
	if query.Get("gpu") != "A100" {
		q.t.Errorf("%s %s lost the template's query", r.Method, r.URL)
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v2/ep1/"), "/")
	switch {
	case r.Method == "GET" && len(parts) == 2 && parts[0] == "job-take" && parts[1] == workerID:
		q.takes = append(q.takes, query)
		if q.take429 > 0 {
			q.take429--
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		q.mu.Unlock()
		var job string
		select {
		case job = <-q.jobs:
		case <-time.After(30 * time.Millisecond): // the long poll, shortened
		case <-r.Context().Done():
		}
		q.mu.Lock()
		if job == "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		io.WriteString(w, job)
	case r.Method == "POST" && len(parts) == 3 && parts[1] == workerID && (parts[0] == "job-done" || parts[0] == "job-stream"):
		var body map[string]json.RawMessage
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			q.t.Errorf("%s body %q: %v", r.URL.Path, b, err)
		}
		if parts[0] == "job-stream" {
			if query.Get("isStream") != "true" {
				q.t.Errorf("stream post without isStream=true: %s", r.URL)
			}
			q.streams[parts[2]] = append(q.streams[parts[2]], body["output"])
			return
		}
		q.done[parts[2]] = posted{query, body}
		q.doneCh <- parts[2]
	case r.Method == "GET" && len(parts) == 2 && parts[0] == "ping" && parts[1] == workerID:
		q.pings = append(q.pings, query)
	default:
		q.t.Errorf("unexpected %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusNotFound)
	}
}

func (q *queue) add(id, input string) {
	b, _ := json.Marshal(map[string]json.RawMessage{"id": json.RawMessage(`"` + id + `"`), "input": json.RawMessage(input)})
	if input == "" {
		b = []byte(`{"id":"` + id + `"}`)
	}
	q.jobs <- string(b)
}

// wait returns when n results were posted.
func (q *queue) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-q.doneCh:
		case <-time.After(20 * time.Second):
			t.Fatalf("timed out waiting for %d results", n)
		}
	}
}

func (q *queue) result(id string) posted {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.done[id]
}

func startWorker(t *testing.T, cfg Config, r *Runner, ready func() bool) (stop func()) {
	t.Helper()
	w, err := NewWorker(cfg, r, nil, ready, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(20 * time.Second):
				t.Fatal("worker did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestWorkerServesJobs(t *testing.T) {
	up, err := fakeollama.Start(fakeollama.Options{Tokens: 4, Models: []string{"fake"}})
	require.NoError(t, err)
	defer up.Close()
	runner, ready := aurax(t, up.URL, "fake", 2)
	q := newQueue(t)
	stop := startWorker(t, q.config(), runner, ready)

	chat := `{"model":"fake","messages":[{"role":"user","content":"hi"}]`
	jobs := []struct{ id, input, wantErr string }{
		{"openai", `{"openai_route":"/v1/chat/completions","openai_input":` + chat + `}}`, ""},
		{"openai-stream", `{"openai_route":"/v1/chat/completions","openai_input":` + chat + `,"stream":true}}`, ""},
		{"ollama-stream", `{"ollama_route":"/api/chat","ollama_input":` + chat + `}}`, ""},
		{"ollama", `{"ollama_route":"/api/chat","ollama_input":` + chat + `,"stream":false}}`, ""},
		{"unknown-route", `{"openai_route":"/v1/images","openai_input":{}}`, "unknown openai_route"},
		{"no-input", ``, "no input"},
		{"invalid-body", `{"openai_route":"/v1/chat/completions","openai_input":{"model":"fake","messages":"hi"}}`, "400"},
		{"unknown-model", `{"ollama_route":"/api/chat","ollama_input":{"model":"nope","messages":[]}}`, "404"},
		{"after-failures", `{"openai_route":"/v1/models"}`, ""},
	}
	for _, j := range jobs {
		q.add(j.id, j.input)
	}
	q.wait(t, len(jobs))
	stop()

	for _, j := range jobs {
		res := q.result(j.id)
		require.NotNil(t, res.Body, "job %s: no result", j.id)
		if j.wantErr != "" {
			var msg string
			require.NoError(t, json.Unmarshal(res.Body["error"], &msg), "job %s: %v", j.id, res.Body)
			require.Contains(t, msg, j.wantErr, "job %s", j.id)
			require.NotContains(t, res.Body, "output")
			continue
		}
		require.NotContains(t, res.Body, "error", "job %s failed: %s", j.id, res.Body["error"])
		streamed := strings.HasSuffix(j.id, "-stream")
		require.Equal(t, map[bool]string{true: "true", false: "false"}[streamed], res.Query.Get("isStream"), "job %s", j.id)
	}

	// Non-streamed: the API's answer itself.
	var completion struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	require.NoError(t, json.Unmarshal(q.result("openai").Body["output"], &completion))
	require.Equal(t, "chat.completion", completion.Object)
	require.Contains(t, completion.Choices[0].Message.Content, "hello")

	// Streamed: every chunk posted in order, and the same list as output.
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, id := range []string{"openai-stream", "ollama-stream"} {
		var agg []json.RawMessage
		require.NoError(t, json.Unmarshal(q.done[id].Body["output"], &agg))
		require.GreaterOrEqual(t, len(agg), 4, "job %s: chunks", id)
		require.Equal(t, len(agg), len(q.streams[id]), "job %s: stream posts vs aggregate", id)
		for i := range agg {
			require.JSONEq(t, string(agg[i]), string(q.streams[id][i]), "job %s chunk %d", id, i)
		}
	}
	var frames []string
	require.NoError(t, json.Unmarshal(q.done["openai-stream"].Body["output"], &frames))
	require.True(t, strings.HasPrefix(frames[0], "data: {"), "SSE frame text: %q", frames[0])
	require.Equal(t, "data: [DONE]\n\n", frames[len(frames)-1])
	var last struct {
		Done bool `json:"done"`
	}
	var lines []json.RawMessage
	require.NoError(t, json.Unmarshal(q.done["ollama-stream"].Body["output"], &lines))
	require.NoError(t, json.Unmarshal(lines[len(lines)-1], &last))
	require.True(t, last.Done)

	// Protocol: the raw key everywhere, job_in_progress on every take.
	require.Zero(t, q.badAuth)
	seen := map[string]bool{}
	for _, tk := range q.takes {
		seen[tk.Get("job_in_progress")] = true
	}
	require.True(t, seen["0"], "a take with job_in_progress=0")
	require.Subset(t, []string{"0", "1"}, keys(seen))
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestWorkerHeartbeatsAndFinishesJobsOnStop(t *testing.T) {
	gate := make(chan struct{})
	up, err := fakeollama.Start(fakeollama.Options{Tokens: 2, Models: []string{"fake"}, Gate: gate})
	require.NoError(t, err)
	defer up.Close()
	runner, ready := aurax(t, up.URL, "fake", 2)
	q := newQueue(t)
	q.take429 = 2 // the first takes are rate limited
	stop := startWorker(t, q.config(), runner, ready)
	q.add("held-1", `{"ollama_route":"/api/generate","ollama_input":{"model":"fake","prompt":"x","stream":false}}`)
	q.add("held-2", `{"ollama_route":"/api/generate","ollama_input":{"model":"fake","prompt":"y","stream":false}}`)

	require.Eventually(t, func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		for _, p := range q.pings {
			if p.Get("job_id") == "held-1,held-2" {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "a heartbeat carrying both jobs in progress")

	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("worker stopped with jobs in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(gate)
	<-stopped
	for _, id := range []string{"held-1", "held-2"} {
		require.Contains(t, q.result(id).Body, "output", "job %s finished after the stop", id)
	}
}

func TestWorkerRealOllamaChat(t *testing.T) {
	ollama := testenv.Ollama(t)
	runner, ready := aurax(t, ollama, testenv.ChatModel, 1)
	q := newQueue(t)
	startWorker(t, q.config(), runner, ready)
	q.add("real", `{"openai_route":"/v1/chat/completions","openai_input":{"model":"`+testenv.ChatModel+
		`","messages":[{"role":"user","content":"Say hi"}],"max_tokens":8}}`)
	q.wait(t, 1)
	res := q.result("real")
	require.NotContains(t, res.Body, "error", "%s", res.Body["error"])
	var c struct {
		Model   string `json:"model"`
		Choices []struct {
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	require.NoError(t, json.Unmarshal(res.Body["output"], &c))
	require.Equal(t, testenv.ChatModel, c.Model)
	require.Len(t, c.Choices, 1)
	require.Positive(t, c.Usage.CompletionTokens)
}

func TestRunLocal(t *testing.T) {
	up, err := fakeollama.Start(fakeollama.Options{Models: []string{"fake"}})
	require.NoError(t, err)
	defer up.Close()
	runner, _ := aurax(t, up.URL, "fake", 1)
	var out bytes.Buffer
	err = RunLocal(t.Context(), runner, []byte(`{"input":{"ollama_route":"/api/chat","ollama_input":{"model":"fake","messages":[{"role":"user","content":"hi"}],"stream":false}}}`), &out)
	require.NoError(t, err)
	require.Contains(t, out.String(), `"output"`)

	out.Reset()
	err = RunLocal(t.Context(), runner, []byte(`{"input":{"ollama_route":"/api/pull"}}`), &out)
	require.Error(t, err)
	require.Contains(t, out.String(), `"error"`)
	require.Error(t, RunLocal(t.Context(), runner, []byte(`not json`), io.Discard))
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{
		"RUNPOD_WEBHOOK_GET_JOB":     "https://api.runpod.ai/v2/ep/job-take/$ID?gpu=A100",
		"RUNPOD_WEBHOOK_POST_OUTPUT": "https://api.runpod.ai/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=A100",
		"RUNPOD_AI_API_KEY":          "k",
		"RUNPOD_POD_ID":              "pod",
		"RUNPOD_PING_INTERVAL":       "2500",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, queue, err := FromEnv(lookup)
	require.NoError(t, err)
	require.True(t, queue)
	require.Equal(t, 2500*time.Millisecond, cfg.PingInterval)

	env["RUNPOD_PING_INTERVAL"] = "soon"
	_, _, err = FromEnv(lookup)
	require.Error(t, err)

	delete(env, "RUNPOD_WEBHOOK_GET_JOB")
	env["RUNPOD_PING_INTERVAL"] = "10000"
	_, queue, err = FromEnv(lookup)
	require.NoError(t, err)
	require.False(t, queue, "local mode without RUNPOD_WEBHOOK_GET_JOB")

	env["RUNPOD_WEBHOOK_GET_JOB"] = "x"
	delete(env, "RUNPOD_POD_ID")
	_, _, err = FromEnv(lookup)
	require.ErrorContains(t, err, "RUNPOD_POD_ID")
}

// TestPostRetriesByClass: a result post is retried on 5xx and 429 (its
// Retry-After capped at MaxBackoff) up to PostAttempts, never on another
// 4xx.
func TestPostRetriesByClass(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int
		wantPosts int
		terminal  bool // the error is marked so (nil error: success)
		wantErr   bool
	}{
		{"5xx retried, then ok", []int{503, 502, 200}, 3, false, false},
		{"bounded at PostAttempts", []int{500, 500, 500, 500}, 3, false, true},
		{"429 retried after its Retry-After, capped", []int{429, 200}, 2, false, false},
		{"4xx not retried", []int{400, 200}, 1, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			posts := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				posts++
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(tt.statuses[min(posts, len(tt.statuses))-1])
			}))
			defer srv.Close()
			cfg := Config{GetJobURL: srv.URL + "/take/$ID", PostOutputURL: srv.URL + "/done/$RUNPOD_POD_ID/$ID", WorkerID: workerID,
				Concurrency: 1, PingInterval: time.Second, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, PostAttempts: 3}
			w, err := NewWorker(cfg, nil, srv.Client(), nil, nil)
			require.NoError(t, err)
			err = w.post(t.Context(), cfg.PostOutputURL, "job1", false, map[string]any{"output": "x"})
			require.Equal(t, tt.wantErr, err != nil, "post: %v", err)
			require.Equal(t, tt.terminal, retry.IsTerminal(err), "IsTerminal(%v)", err)
			require.Equal(t, tt.wantPosts, posts, "posts")
		})
	}
}
