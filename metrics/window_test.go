package metrics

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

func TestHistIndexBounds(t *testing.T) {
	require.Equal(t, 0, histIndex(-time.Second))
	require.Equal(t, 0, histIndex(0))
	require.Equal(t, histBuckets-1, histIndex(time.Hour))
	prev := 0
	for d := time.Duration(1); d < 300*time.Second; d = d*105/100 + 1 {
		i := histIndex(d)
		require.GreaterOrEqual(t, i, prev, "histIndex(%v) not monotonic", d)
		prev = i
		lo, hi := histBounds(i)
		s := d.Seconds()
		if i < histBuckets-1 {
			require.Truef(t, lo <= s && s < hi*(1+1e-12), "histIndex(%v) = %d with bounds [%g, %g)", d, i, lo, hi)
		}
		if i > 0 && i < histBuckets-1 {
			require.LessOrEqual(t, (hi-lo)/lo, 0.125+1e-12, "bucket %d wider than 12.5%%", i)
		}
	}
}

func TestWindowP95Accuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		gen  func() time.Duration
	}{
		{"uniform 0-10s", func() time.Duration { return time.Duration(rng.Int64N(int64(10 * time.Second))) }},
		{"lognormal ~1s", func() time.Duration { return time.Duration(math.Exp(rng.NormFloat64()) * float64(time.Second)) }},
		{"constant 250ms", func() time.Duration { return 250 * time.Millisecond }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWindow(time.Minute)
			var all []float64
			for i := range 5000 {
				d := tc.gen()
				all = append(all, d.Seconds())
				w.add(time.Duration(i)*10*time.Millisecond, d, false)
			}
			slices.Sort(all)
			exact := all[int(math.Ceil(0.95*float64(len(all))))-1]
			got := w.stats(50 * time.Second).p95
			require.InEpsilon(t, exact, got, 0.125, "p95 = %g; exact %g", got, exact)
		})
	}
}

func TestSignalsWindow(t *testing.T) {
	type step struct {
		at      time.Duration // since New
		observe []ModelResult
		// Signals read at `at`, after observing.
		requests  int
		rate      float64
		errorRate float64
		p95       float64 // ±12.5 %
	}
	ok := func(d time.Duration) ModelResult { return ModelResult{ModelType: "m", HTTPStatus: 200, Duration: d} }
	failed := func(code int) ModelResult {
		return ModelResult{ModelType: "m", HTTPStatus: code, Duration: 100 * time.Millisecond}
	}
	n := func(k int, r ModelResult) []ModelResult { return slices.Repeat([]ModelResult{r}, k) }

	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"empty", []step{{at: 0}, {at: time.Hour}}},
		{"p95 of 100 results", []step{
			{at: 10 * time.Second, observe: append(n(95, ok(time.Second)), n(5, ok(8*time.Second))...),
				requests: 100, rate: 10, p95: 1},
			{at: 11 * time.Second, observe: n(10, ok(8*time.Second)),
				requests: 110, rate: 10, p95: 8},
		}},
		{"errors: 5xx and 429, not 499 or 4xx", []step{
			{at: 20 * time.Second, observe: slices.Concat(n(6, ok(time.Second)), n(1, failed(500)),
				n(1, failed(502)), n(1, failed(429)), n(1, failed(404)),
				[]ModelResult{{ModelType: "m", HTTPStatus: 200, Canceled: true, Duration: time.Second}}),
				requests: 11, rate: 11.0 / 20, errorRate: 3.0 / 11, p95: 1},
		}},
		{"expiry after the window", []step{
			{at: 5 * time.Second, observe: n(30, failed(503)), requests: 30, rate: 6, errorRate: 1, p95: 0.1},
			{at: 30 * time.Second, observe: n(30, ok(2*time.Second)), requests: 60, rate: 2, errorRate: 0.5, p95: 2},
			{at: 64*time.Second + 500*time.Millisecond, requests: 60, rate: 1, errorRate: 0.5, p95: 2},
			{at: 65 * time.Second, requests: 30, rate: 0.5, errorRate: 0, p95: 2},
			{at: 90 * time.Second, requests: 0, rate: 0},
			{at: 10 * time.Minute, observe: n(3, ok(time.Second)), requests: 3, rate: 0.05, p95: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _, clk := newTest(t, Options{})
			for _, st := range tc.steps {
				clk.t = testStart.Add(st.at)
				for _, r := range st.observe {
					m.ObserveModel(r)
				}
				s := m.Signals()
				require.Equal(t, 60.0, s.WindowS)
				require.Equalf(t, st.requests, s.Requests, "at %v: requests", st.at)
				require.InDeltaf(t, st.rate, s.RequestRate, 1e-9, "at %v: rate", st.at)
				require.InDeltaf(t, st.errorRate, s.ErrorRate, 1e-9, "at %v: error rate", st.at)
				if st.p95 == 0 {
					require.Zerof(t, s.P95LatencyS, "at %v: p95", st.at)
				} else {
					require.InEpsilonf(t, st.p95, s.P95LatencyS, 0.125, "at %v: p95", st.at)
				}
			}
		})
	}
}

func TestSignalsArrivals(t *testing.T) {
	m, _, _ := newTest(t, Options{})
	for range 7 {
		m.Arrived("qwen3:coder")
	}
	require.EqualValues(t, 7, m.Signals().ArrivalsTotal)
}

func TestWindowClockGoesBack(t *testing.T) {
	w := newWindow(10 * time.Second)
	w.add(100*time.Second, time.Second, false)
	w.add(50*time.Second, time.Second, true) // ring slot already holds newer data: dropped
	w.add(-time.Second, time.Second, true)   // before the origin: clamped to slot 0, also stale
	st := w.stats(100 * time.Second)
	require.EqualValues(t, 1, st.n)
	require.Zero(t, st.errs)
}

func TestWindowMemoryIsFixed(t *testing.T) {
	for _, win := range []time.Duration{time.Second, 10 * time.Second, time.Minute, time.Hour} {
		w := newWindow(win)
		require.LessOrEqual(t, len(w.slots), windowSlots, "Window %v", win)
		require.GreaterOrEqual(t, w.span, win)
	}
	t.Logf("slot: %d B; a 60-slot window: %d B", unsafe.Sizeof(slot{}), windowSlots*unsafe.Sizeof(slot{}))
}
