package metrics_test

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aurax/aurax/metrics"
)

// The server wires Metrics like this: middleware first, /metrics served
// from the same registry, the admission queue as the queue source, and one
// ObserveModel per finished model request.
func ExampleNew() {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.Options{Namespace: "aurax"}, slog.New(slog.DiscardHandler))
	defer m.Close()

	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(m.Middleware())
	app.Get("/metrics", m.Handler())

	m.SetQueueSource(func() metrics.QueueStats { return metrics.QueueStats{Waiting: 2, InFlight: 1, Slots: 1} })
	m.Arrived("qwen3:coder")
	m.ObserveModel(metrics.ModelResult{
		ModelType: "qwen3:coder", HTTPStatus: 200,
		Duration: 1500 * time.Millisecond, PromptTokens: 12, CompletionTokens: 40,
	})

	s := m.Signals()
	fmt.Println("queue depth:", s.QueueDepth, "in flight:", s.InFlight, "requests in window:", s.Requests)
	// Output: queue depth: 2 in flight: 1 requests in window: 1
}
