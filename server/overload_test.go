package server

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/internal/fakeollama"
	"github.com/aurax/aurax/models"
	"github.com/stretchr/testify/require"
)

// newUpstreamServer builds a Server over a real models.Ollama client aimed at
// the fixed-latency upstream fake.
func newUpstreamServer(t testing.TB, opts fakeollama.Options, mod func(*config.Config)) (*Server, *fakeollama.Server) {
	t.Helper()
	up, err := fakeollama.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { up.Close() })
	backend, err := models.NewOllama(up.URL, models.OllamaOptions{})
	require.NoError(t, err)
	cfg := testConfig()
	cfg.Models.Embedding = ""
	cfg.Ollama.URL = up.URL
	if mod != nil {
		mod(&cfg)
	}
	s, _ := newTestServer(t, backend, cfg)
	return s, up
}

// TestOverload sends more concurrent requests than slots plus queue: exactly
// the excess gets 429 with Retry-After, at once, and every admitted request
// completes.
func TestOverload(t *testing.T) {
	const slots, waiting, total = 2, 3, 12
	gate := make(chan struct{})
	s, up := newUpstreamServer(t, fakeollama.Options{Gate: gate, Models: []string{"fake"}}, func(c *config.Config) {
		c.Ollama.Parallel, c.Queue.MaxWaiting, c.Queue.MaxWait = slots, waiting, 30*time.Second
	})
	base, _ := serve(t, s)

	type result struct {
		status     int
		retryAfter string
		body       string
	}
	results := make(chan result, total)
	var wg sync.WaitGroup
	for i := range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path, body := "/v1/chat/completions", chatBody
			if i%2 == 1 {
				path = "/api/chat"
			}
			resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
			if err != nil {
				results <- result{status: -1, body: err.Error()}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- result{resp.StatusCode, resp.Header.Get("Retry-After"), string(b)}
		}()
	}
	// All rejections come back while the admitted ones are still held.
	rejected := 0
	for rejected < total-slots-waiting {
		select {
		case r := <-results:
			require.Equalf(t, http.StatusTooManyRequests, r.status, "while the gate is shut only 429s may return: %s", r.body)
			require.NotEmpty(t, r.retryAfter, "429 without Retry-After")
			rejected++
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d rejections arrived", rejected, total-slots-waiting)
		}
	}
	require.Eventually(t, func() bool { return s.Pool().Stats().InFlight == slots && s.Pool().Stats().Waiting == waiting },
		5*time.Second, 5*time.Millisecond)
	close(gate)
	wg.Wait()
	close(results)
	ok := 0
	for r := range results {
		require.Equalf(t, http.StatusOK, r.status, "admitted request failed: %s", r.body)
		ok++
	}
	require.Equal(t, slots+waiting, ok)
	require.Equal(t, int64(slots+waiting), up.Stats().Finished)
	require.Zero(t, s.Pool().Stats().InFlight)
	require.Zero(t, s.Pool().Stats().Waiting)
}

// TestClientCancelMidStream: a client that goes away mid-stream frees its
// slot and the upstream call ends within a second: while chunks flow, and
// while the engine is silent (the pulled stream waiting under its
// keep-alive deadlines).
func TestClientCancelMidStream(t *testing.T) {
	cases := []struct {
		name      string
		opts      fakeollama.Options
		keepAlive time.Duration
		lines     int           // read before the client leaves
		pause     time.Duration // then waited
	}{
		{name: "flowing", opts: fakeollama.Options{Tokens: 2000, Interval: 10 * time.Millisecond}, keepAlive: 15 * time.Second, lines: 3},
		{name: "silent", opts: fakeollama.Options{Tokens: 3, Interval: 20 * time.Second}, keepAlive: 50 * time.Millisecond, lines: 1,
			pause: 200 * time.Millisecond},
	}
	for _, tc := range cases {
		for _, path := range []string{"/v1/chat/completions", "/api/chat"} {
			t.Run(tc.name+path, func(t *testing.T) {
				s, up := newUpstreamServer(t, tc.opts, func(c *config.Config) {
					c.Ollama.Parallel, c.Server.KeepAlive = 1, tc.keepAlive
				})
				base, _ := serve(t, s)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, "POST", base+path, strings.NewReader(`{"model":"fake","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				require.Equal(t, 200, resp.StatusCode)
				br := bufio.NewReader(resp.Body)
				for range tc.lines { // a few chunks arrive
					_, err := br.ReadString('\n')
					require.NoError(t, err)
				}
				time.Sleep(tc.pause)
				require.Equal(t, 1, s.Pool().Stats().InFlight)
				gone := time.Now()
				cancel()
				resp.Body.Close()
				require.Eventually(t, func() bool { return len(up.CancelTimes()) == 1 && s.Pool().Stats().InFlight == 0 },
					3*time.Second, 5*time.Millisecond, "upstream call and slot must be released")
				lag := up.CancelTimes()[0].Sub(gone)
				t.Logf("upstream saw the cancel %v after the client left", lag)
				require.Less(t, lag, time.Second)
				require.Zero(t, up.Stats().Finished)
			})
		}
	}
}

// TestClientCancelWhileQueued: a client that leaves while waiting for a slot
// leaves the queue, and its request never reaches the upstream.
func TestClientCancelWhileQueued(t *testing.T) {
	gate := make(chan struct{})
	s, up := newUpstreamServer(t, fakeollama.Options{Gate: gate}, func(c *config.Config) {
		c.Ollama.Parallel, c.Queue.MaxWaiting = 1, 4
	})
	base, _ := serve(t, s)
	holder := make(chan int, 1)
	go func() {
		resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(chatBody))
		if err != nil {
			holder <- -1
			return
		}
		resp.Body.Close()
		holder <- resp.StatusCode
	}()
	require.Eventually(t, func() bool { return s.Pool().Stats().InFlight == 1 }, 5*time.Second, 5*time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	waiterDone := make(chan struct{})
	go func() {
		defer close(waiterDone)
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/chat", strings.NewReader(chatBody))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	require.Eventually(t, func() bool { return s.Pool().Stats().Waiting == 1 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	<-waiterDone
	require.Eventually(t, func() bool { return s.Pool().Stats().Waiting == 0 }, time.Second, 5*time.Millisecond,
		"a client that left must leave the queue within a second")
	close(gate)
	require.Equal(t, 200, <-holder)
	require.Equal(t, int64(1), up.Stats().Started, "the canceled request must never reach the upstream")
}

// TestDrain: on shutdown readiness turns 503, new admissions are refused,
// and a stream in flight finishes before Run returns.
func TestDrain(t *testing.T) {
	s, _ := newUpstreamServer(t, fakeollama.Options{Tokens: 40, Interval: 10 * time.Millisecond}, nil)
	base, stop := serve(t, s)
	resp, err := http.Post(base+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"fake","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	_, err = br.ReadString('\n')
	require.NoError(t, err)

	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	require.Eventually(t, func() bool { return s.draining.Load() }, 2*time.Second, time.Millisecond)
	r, body := doReq(t, s, "GET", "/health/ready", "")
	require.Equal(t, 503, r.StatusCode, body)
	r, body = doReq(t, s, "POST", "/v1/chat/completions", chatBody)
	require.Equal(t, 503, r.StatusCode, body)
	require.NotEmpty(t, r.Header.Get("Retry-After"))

	rest, err := io.ReadAll(br)
	require.NoError(t, err, "the stream in flight must finish")
	require.True(t, strings.HasSuffix(string(rest), "data: [DONE]\n\n"), "stream ended without [DONE]: %q", rest)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the drain")
	}
}
