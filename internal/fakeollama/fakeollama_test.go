package fakeollama

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurax/aurax/models"
	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/require"
)

// The fake's answers decode with the real Ollama client, as the real
// Ollama's do.
func TestShapesDecodeWithTheRealClient(t *testing.T) {
	s, err := Start(Options{Models: []string{"m"}, Tokens: 3})
	require.NoError(t, err)
	defer s.Close()
	o, err := models.NewOllama(s.URL, models.OllamaOptions{})
	require.NoError(t, err)
	ctx := context.Background()
	l, err := o.List(ctx)
	require.NoError(t, err)
	require.Equal(t, "m", l.Models[0].Name)
	ps, err := o.Running(ctx)
	require.NoError(t, err)
	require.Equal(t, "m", ps.Models[0].Name, "without load settings every model is loaded")
	v, err := o.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, "0.17.4", v)
	var chunks int
	var last api.ChatResponse
	require.NoError(t, o.Chat(ctx, &api.ChatRequest{Model: "m"}, func(r *api.ChatResponse) error { chunks++; last = *r; return nil }))
	require.Equal(t, 4, chunks)
	require.True(t, last.Done)
	require.Equal(t, "stop", last.DoneReason)
	err = o.Chat(ctx, &api.ChatRequest{Model: "x"}, func(*api.ChatResponse) error { return nil })
	require.ErrorAs(t, err, new(*models.ModelNotFoundError))
}

// Slots: the excess waits its turn, in order; beyond MaxQueue, Ollama's 503.
func TestSlotsQueueAsOllamaDoes(t *testing.T) {
	s, err := Start(Options{Models: []string{"m"}, Slots: 1, MaxQueue: 1, Latency: 100 * time.Millisecond})
	require.NoError(t, err)
	defer s.Close()
	body := `{"model":"m","stream":false}`
	var wg sync.WaitGroup
	codes := make(chan int, 3)
	for i := range 3 {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 20 * time.Millisecond)
			resp, err := http.Post(s.URL+"/api/chat", "application/json", strings.NewReader(body))
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	require.Equal(t, map[int]int{200: 2, 503: 1}, got, "one runs, one queues, one is turned away")
	require.Equal(t, int64(3), s.Stats().Peak, "the peak counts every request it held at once, the one turned away too")
}

// LoadDelay and MaxLoaded: a model not loaded costs a load and evicts the
// least recently used one; /api/ps shows what is loaded.
func TestModelLoads(t *testing.T) {
	s, err := Start(Options{Models: []string{"a", "b"}, Loaded: []string{"a"}, MaxLoaded: 1, LoadDelay: 50 * time.Millisecond})
	require.NoError(t, err)
	defer s.Close()
	o, err := models.NewOllama(s.URL, models.OllamaOptions{})
	require.NoError(t, err)
	ctx := context.Background()
	chat := func(m string) time.Duration {
		t0 := time.Now()
		require.NoError(t, o.Chat(ctx, &api.ChatRequest{Model: m}, func(*api.ChatResponse) error { return nil }))
		return time.Since(t0)
	}
	require.Less(t, chat("a"), 50*time.Millisecond, "a is loaded")
	require.GreaterOrEqual(t, chat("b"), 50*time.Millisecond, "b costs a load")
	ps, err := o.Running(ctx)
	require.NoError(t, err)
	require.Len(t, ps.Models, 1)
	require.Equal(t, "b", ps.Models[0].Name, "b evicted a")
	chat("a")
	require.Equal(t, int64(2), s.Stats().Loads)
}
