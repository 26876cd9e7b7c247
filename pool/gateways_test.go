package pool

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/fakeollama"
	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/require"
)

type staticGateways struct{ self, n int }

func (g staticGateways) Gateways(context.Context) (int, int, error) { return g.self, g.n, nil }

// TestGatewaysNeverOverfillAnEngine: two gateways over one engine of 4
// slots, each under more load than it can serve: each hands the engine
// only its share, so the engine never holds more than its 4 slots, and
// together they still keep all 4 busy.
func TestGatewaysNeverOverfillAnEngine(t *testing.T) {
	engine, err := fakeollama.Start(fakeollama.Options{Models: []string{"m"}, Latency: 20 * time.Millisecond})
	require.NoError(t, err)
	defer engine.Close()
	run := func(split bool) (peak int64, perSecond float64) {
		engine.ResetPeak()
		var gws []*Pool
		for self := range 2 {
			opts := Options{Targets: []Target{{URL: engine.URL}}, Parallel: 4, MaxWaiting: 64, GatewayInterval: 10 * time.Millisecond}
			if split {
				opts.Gateways = staticGateways{self, 2}
			}
			p, err := New(opts)
			require.NoError(t, err)
			runPool(t, p)
			gws = append(gws, p)
		}
		require.Eventually(t, func() bool { return gws[0].Stats().Ready == 1 && gws[1].Stats().Ready == 1 }, 5*time.Second, 5*time.Millisecond)
		if split {
			require.Eventually(t, func() bool { return gws[0].Stats().Slots == 2 && gws[1].Stats().Slots == 2 }, time.Second, 5*time.Millisecond)
		}
		var wg sync.WaitGroup
		start, n := time.Now(), 0
		var mu sync.Mutex
		for _, p := range gws {
			for range 12 {
				wg.Go(func() {
					for range 10 {
						require.NoError(t, p.Chat(context.Background(), &api.ChatRequest{Model: "m"}, func(*api.ChatResponse) error { return nil }))
						mu.Lock()
						n++
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		return engine.Stats().Peak, float64(n) / time.Since(start).Seconds()
	}
	peak, rate := run(true)
	require.LessOrEqual(t, peak, int64(4), "the engine never holds more than its slots")
	t.Logf("split slots: engine peak %d in flight, %.0f requests/s", peak, rate)
	peak, rate = run(false)
	require.Greater(t, peak, int64(4), "without sharing, two gateways overfill it (Ollama would queue the excess unseen)")
	t.Logf("no split: engine peak %d in flight, %.0f requests/s", peak, rate)
}
