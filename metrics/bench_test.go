package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func benchMetrics(b *testing.B, root string) *Metrics {
	b.Helper()
	m := New(prometheus.NewRegistry(), Options{FSRoot: root, openGPU: noGPU}, nil)
	b.Cleanup(func() { m.Close() })
	return m
}

var benchResult = ModelResult{
	ModelType: "qwen3:coder", HTTPStatus: 200,
	Duration: 1200 * time.Millisecond, TTFT: 150 * time.Millisecond, Upstream: 1190 * time.Millisecond,
	PromptTokens: 120, CompletionTokens: 300,
}

func BenchmarkObserveModel(b *testing.B) {
	m := benchMetrics(b, "/")
	m.ObserveModel(benchResult)
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveModel(benchResult)
	}
}

func BenchmarkObserveModelParallel(b *testing.B) {
	m := benchMetrics(b, "/")
	m.ObserveModel(benchResult)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveModel(benchResult)
		}
	})
}

// BenchmarkSignals reads a full 60-slot window and the real /proc and
// cgroup files of this machine.
func BenchmarkSignals(b *testing.B) {
	m := benchMetrics(b, "/")
	for i := range 10000 {
		m.win.add(time.Duration(i)*6*time.Millisecond, time.Duration(i)*time.Millisecond, i%50 == 0)
	}
	m.SetQueueSource(func() QueueStats { return QueueStats{Waiting: 1, InFlight: 2, Slots: 4} })
	b.ReportAllocs()
	for b.Loop() {
		m.Signals()
	}
}
