package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

type recordingTap struct {
	results []ModelResult
	waits   []time.Duration
}

func (r *recordingTap) ObserveModel(res ModelResult)     { r.results = append(r.results, res) }
func (r *recordingTap) ObserveQueueWait(d time.Duration) { r.waits = append(r.waits, d) }

type nopTap struct{}

func (nopTap) ObserveModel(ModelResult)       {}
func (nopTap) ObserveQueueWait(time.Duration) {}

// TestTap: the tap sees each result and queue wait as recorded, and
// nothing once removed.
func TestTap(t *testing.T) {
	m := New(prometheus.NewRegistry(), Options{openGPU: noGPU}, nil)
	defer m.Close()
	m.ObserveModel(benchResult) // before the tap: not replayed
	tap := &recordingTap{}
	m.SetTap(tap)
	m.ObserveModel(benchResult)
	m.ObserveQueueWait(30 * time.Millisecond)
	m.SetTap(nil)
	m.ObserveModel(benchResult)
	m.ObserveQueueWait(time.Second)
	require.Equal(t, []ModelResult{benchResult}, tap.results)
	require.Equal(t, []time.Duration{30 * time.Millisecond}, tap.waits)
}

// BenchmarkObserveModelTap is BenchmarkObserveModel with a tap installed:
// the tap call adds no allocation.
func BenchmarkObserveModelTap(b *testing.B) {
	m := benchMetrics(b, "/")
	m.SetTap(nopTap{})
	m.ObserveModel(benchResult)
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveModel(benchResult)
	}
	if a := testing.AllocsPerRun(100, func() { m.ObserveModel(benchResult) }); a != 0 {
		b.Fatalf("ObserveModel with a tap allocates %v times", a)
	}
}
