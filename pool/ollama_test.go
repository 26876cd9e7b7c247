package pool

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/models"
	"github.com/ollama/ollama/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// Tests against several real Ollama servers serving the tiny models.

func realPool(t *testing.T, opts Options, engines ...*testenv.Engine) *Pool {
	t.Helper()
	for _, e := range engines {
		opts.Targets = append(opts.Targets, Target{URL: e.URL})
	}
	if opts.MaxWaiting == 0 {
		opts.MaxWaiting = 64
	}
	opts.Ollama = models.OllamaOptions{ConnectTimeout: time.Second, HeaderTimeout: time.Minute}
	setDefault(&opts.PSInterval, 200*time.Millisecond)
	setDefault(&opts.CooldownMax, time.Second)
	setDefault(&opts.CooldownMin, 100*time.Millisecond)
	opts.Logger = slog.New(slog.DiscardHandler)
	p, err := New(opts)
	require.NoError(t, err)
	return p
}

func tinyChat(stream bool, tokens int) *api.ChatRequest {
	return &api.ChatRequest{Model: testenv.ChatModel, Stream: &stream,
		Messages: []api.Message{{Role: "user", Content: "Say something."}},
		Options:  map[string]any{"num_predict": tokens}}
}

// TestRealEnginesShareTheLoad: concurrent requests over two real Ollamas
// run on both, each within its slots.
func TestRealEnginesShareTheLoad(t *testing.T) {
	a := testenv.StartEngine(t, "", "OLLAMA_NUM_PARALLEL=1")
	b := testenv.StartEngine(t, "", "OLLAMA_NUM_PARALLEL=1")
	p := realPool(t, Options{Parallel: 1}, a, b)
	runPool(t, p)
	require.Eventually(t, func() bool { return p.Stats().Ready == 2 && p.HasReady(testenv.ChatModel)[0] }, 10*time.Second, 20*time.Millisecond)
	var wg sync.WaitGroup
	var maxInFlight atomic.Int64
	for range 12 {
		wg.Go(func() {
			err := p.Chat(context.Background(), tinyChat(false, 32), func(*api.ChatResponse) error {
				maxInFlight.Store(max(maxInFlight.Load(), int64(p.Stats().InFlight)))
				return nil
			})
			require.NoError(t, err)
		})
	}
	wg.Wait()
	for _, e := range p.Engines() {
		require.Positive(t, e.Requests, "engine %s served none: %+v", e.Name, p.Engines())
		require.Contains(t, e.ServiceEWMAms, testenv.ChatModel+":latest", "the service time is measured")
	}
	require.LessOrEqual(t, maxInFlight.Load(), int64(2), "never more in flight than the engines' slots")
}

// TestRealEnginesRouteToTheLoadedModel: with one model per engine
// (OLLAMA_MAX_LOADED_MODELS=1), chat goes where the chat model is loaded
// and embeddings where the embedding model is: no request makes an engine
// swap models.
func TestRealEnginesRouteToTheLoadedModel(t *testing.T) {
	chatEngine := testenv.StartEngine(t, "", "OLLAMA_MAX_LOADED_MODELS=1")
	embedEngine := testenv.StartEngine(t, "", "OLLAMA_MAX_LOADED_MODELS=1")
	ctx := context.Background()
	direct := func(e *testenv.Engine) models.Backend {
		b, err := models.NewOllama(e.URL, models.OllamaOptions{})
		require.NoError(t, err)
		return b
	}
	require.NoError(t, direct(chatEngine).Chat(ctx, tinyChat(false, 4), func(*api.ChatResponse) error { return nil }))
	_, err := direct(embedEngine).Embed(ctx, &api.EmbedRequest{Model: testenv.EmbedModel, Input: "warm up"})
	require.NoError(t, err)

	reg := prometheus.NewRegistry()
	p := realPool(t, Options{Parallel: 1, Registerer: reg}, chatEngine, embedEngine)
	p.ProbeAll(ctx)
	require.Equal(t, []string{testenv.ChatModel + ":latest"}, engineByName(p, chatEngine.Addr).Loaded)
	require.Equal(t, []string{testenv.EmbedModel + ":latest"}, engineByName(p, embedEngine.Addr).Loaded)
	for range 6 {
		require.NoError(t, p.Chat(ctx, tinyChat(false, 8), func(*api.ChatResponse) error { return nil }))
		_, err := p.Embed(ctx, &api.EmbedRequest{Model: testenv.EmbedModel, Input: "a question"})
		require.NoError(t, err)
	}
	require.Equal(t, uint64(6), engineByName(p, chatEngine.Addr).Requests)
	require.Equal(t, uint64(6), engineByName(p, embedEngine.Addr).Requests)
	for _, e := range []*testenv.Engine{chatEngine, embedEngine} {
		require.Zero(t, testutil.ToFloat64(p.m.loads.WithLabelValues(e.Addr)), "no request made %s load a model", e.Addr)
	}
	p.ProbeAll(ctx)
	require.Equal(t, []string{testenv.ChatModel + ":latest"}, engineByName(p, chatEngine.Addr).Loaded, "still the one it had")
	require.Equal(t, []string{testenv.EmbedModel + ":latest"}, engineByName(p, embedEngine.Addr).Loaded)
}

// TestRealEngineKilledUnderLoad: SIGKILL one of two engines while requests
// run: every request that had not started streaming completes on the other,
// and the pool takes the engine back once it is up again.
func TestRealEngineKilledUnderLoad(t *testing.T) {
	a := testenv.StartEngine(t, "", "OLLAMA_NUM_PARALLEL=2")
	b := testenv.StartEngine(t, "", "OLLAMA_NUM_PARALLEL=2")
	reg := prometheus.NewRegistry()
	p := realPool(t, Options{Parallel: 2, Registerer: reg}, a, b)
	runPool(t, p)
	require.Eventually(t, func() bool { return p.Stats().Ready == 2 && p.HasReady(testenv.ChatModel)[0] }, 10*time.Second, 20*time.Millisecond)

	const n = 40
	type result struct {
		err     error
		started bool // a chunk had reached the client
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	var begun atomic.Int64
	for i := range n {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 15 * time.Millisecond) // arrivals spread over 600 ms
			begun.Add(1)
			stream := i%2 == 0
			var started bool
			err := p.Chat(context.Background(), tinyChat(stream, 96), func(r *api.ChatResponse) error {
				if stream {
					started = true
				}
				return nil
			})
			results <- result{err, started}
		})
	}
	require.Eventually(t, func() bool { return begun.Load() >= n/3 && engineByName(p, b.Addr).InFlight > 0 }, 10*time.Second, time.Millisecond)
	b.Kill() // with requests in flight on it
	wg.Wait()
	close(results)
	failed, startedFailed := 0, 0
	for r := range results {
		if r.err != nil {
			failed++
			if r.started {
				startedFailed++
			}
		}
	}
	require.Equal(t, startedFailed, failed, "only requests already streaming may fail")
	retried := testutil.ToFloat64(p.m.retries.WithLabelValues(b.Addr))
	require.Positive(t, retried+float64(failed), "the kill hit requests in flight")
	t.Logf("%d requests: %v failed over to the other engine, %d failed mid-stream; engine states %v", n, retried, failed, states(p))
	require.NotEqual(t, "ready", engineByName(p, b.Addr).State)

	b.Restart()
	require.Eventually(t, func() bool { return engineByName(p, b.Addr).State == "ready" }, 10*time.Second, 20*time.Millisecond,
		"the restarted engine is probed back in: %v", states(p))
	for range 8 {
		require.NoError(t, p.Chat(context.Background(), tinyChat(false, 4), func(*api.ChatResponse) error { return nil }))
	}
}

func states(p *Pool) map[string]string {
	out := map[string]string{}
	for _, e := range p.Engines() {
		out[e.Name] = e.State + " " + e.Reason
	}
	return out
}

// TestRealEngineNotListening: an engine URL nothing listens on is down,
// and the pool serves from the other without a failed request.
func TestRealEngineNotListening(t *testing.T) {
	a := testenv.StartEngine(t, "")
	dead := "http://" + testenv.FreeAddr(t, "127.0.0.1")
	p := realPool(t, Options{Targets: []Target{{URL: dead}}}, a)
	for range 4 { // before any probe: the dead engine is tried, and failed over from
		require.NoError(t, p.Chat(context.Background(), tinyChat(false, 4), func(*api.ChatResponse) error { return nil }))
	}
	p.ProbeAll(context.Background())
	d := engineByName(p, strings.TrimPrefix(dead, "http://"))
	require.Equal(t, "down", d.State)
	require.Contains(t, d.Reason, "connection refused")
	require.Equal(t, "ready", engineByName(p, a.Addr).State)
}

// TestRealEnginesConversationAffinity: over two real engines, each turn of
// a conversation goes back to the engine that served its first turn (its
// Ollama holds the prompt in cache), and the prompt evaluation it saves is
// logged: a long system prompt evaluated from the cache against anew.
func TestRealEnginesConversationAffinity(t *testing.T) {
	a := testenv.StartEngine(t, "", "OLLAMA_NUM_PARALLEL=1")
	b := testenv.StartEngine(t, "", "OLLAMA_NUM_PARALLEL=1")
	p := realPool(t, Options{Parallel: 1}, a, b)
	runPool(t, p)
	require.Eventually(t, func() bool { return p.Stats().Ready == 2 }, 10*time.Second, 20*time.Millisecond)
	words := strings.Fields("alpha beta gamma delta omega river stone light cloud field")
	turn := func(conv, n int, keyed bool) (string, time.Duration) {
		var sys strings.Builder
		for i := range 200 {
			sys.WriteString(words[(i*7+conv*3)%len(words)] + " ")
		}
		req := tinyChat(false, 4)
		req.Messages = []api.Message{{Role: "system", Content: fmt.Sprintf("conversation %d: %s", conv, sys.String())}}
		for i := range n {
			req.Messages = append(req.Messages, api.Message{Role: "user", Content: fmt.Sprintf("turn %d", i)})
		}
		key := uint64(0)
		if keyed {
			key = ChatKey(req)
		}
		l, _, err := p.AcquireKey(context.Background(), testenv.ChatModel, key)
		require.NoError(t, err)
		defer l.Release()
		engine := l.EngineName()
		var eval time.Duration
		require.NoError(t, p.Chat(WithLease(context.Background(), l), req, func(r *api.ChatResponse) error {
			eval += r.PromptEvalDuration
			return nil
		}))
		return engine, eval
	}
	var first, later []time.Duration
	for conv := range 4 {
		e1, d1 := turn(conv, 1, true)
		first = append(first, d1)
		for n := 2; n <= 3; n++ {
			e, d := turn(conv, n, true)
			require.Equal(t, e1, e, "conversation %d turn %d went back to its engine", conv, n)
			later = append(later, d)
		}
	}
	t.Logf("prompt evaluation, ~1,200-token system prompt: first turn %v, later turns (prompt cache) %v", first, later)
}
