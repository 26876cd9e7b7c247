package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/internal/testenv"
	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/require"
)

// engineRequests reads each engine's request count from /health.
func engineRequests(t *testing.T, base string) map[string]uint64 {
	t.Helper()
	resp, err := http.Get(base + "/health")
	require.NoError(t, err)
	defer resp.Body.Close()
	var h struct {
		Engines []struct {
			Name     string `json:"name"`
			Requests uint64 `json:"requests"`
		} `json:"engines"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&h))
	n := map[string]uint64{}
	for _, e := range h.Engines {
		n[e.Name] = e.Requests
	}
	return n
}

// TestConversationAffinityThroughTheAPI: over two real engines, every turn
// of a conversation, through the Ollama and the OpenAI chat APIs, goes to
// the engine its first turn went to, whose prompt cache holds the prefix.
// Without the key routing picks between two idle engines at random, so
// eleven or more of twelve later turns staying put by chance is 13 in 4096.
func TestConversationAffinityThroughTheAPI(t *testing.T) {
	a := testenv.StartEngine(t, "", "OLLAMA_NUM_PARALLEL=1")
	b := testenv.StartEngine(t, "", "OLLAMA_NUM_PARALLEL=1")
	base := poolServer(t, []string{a.URL, b.URL}, func(c *config.Config) {
		c.Models.Default = testenv.ChatModel
		c.Ollama.Parallel = 1
	})
	require.Eventually(t, func() bool { return len(engineRequests(t, base)) == 2 }, 20*time.Second, 50*time.Millisecond)
	client := ollamaClient(t, base)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	turn := func(conv, n int) string {
		before := engineRequests(t, base)
		system := fmt.Sprintf("conversation %d: %s", conv, strings.Repeat(fmt.Sprintf("word%d ", conv), 10))
		msgs := []api.Message{{Role: "system", Content: system}}
		for i := range n {
			msgs = append(msgs, api.Message{Role: "user", Content: fmt.Sprintf("turn %d", i)})
		}
		if conv%2 == 0 {
			stream := false
			require.NoError(t, client.Chat(ctx, &api.ChatRequest{Model: testenv.ChatModel, Messages: msgs, Stream: &stream,
				Options: map[string]any{"num_predict": 2}}, func(api.ChatResponse) error { return nil }))
		} else {
			body, err := json.Marshal(map[string]any{"model": testenv.ChatModel, "messages": msgs, "max_tokens": 2})
			require.NoError(t, err)
			resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(string(body)))
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
		var served []string
		for name, n := range engineRequests(t, base) {
			if n > before[name] {
				served = append(served, name)
			}
		}
		require.Len(t, served, 1, "one engine served conversation %d turn %d", conv, n)
		return served[0]
	}
	stayed := 0
	for conv := range 4 {
		first := turn(conv, 1)
		for n := 2; n <= 4; n++ {
			if e := turn(conv, n); e == first {
				stayed++
			} else {
				t.Logf("conversation %d turn %d went to %s, not %s", conv, n, e, first)
			}
		}
	}
	// Affinity yields by design when the engine's expected completion is
	// over twice the other's, and a first turn's uncached prompt raises its
	// engine's service-time average: one turn of twelve may move. By chance
	// (no key) 11 or 12 of 12 stay with probability 13/4096.
	require.GreaterOrEqual(t, stayed, 11, "later turns that went back to their conversation's engine, of 12")
}
