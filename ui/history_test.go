package ui

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/scaling"
	"github.com/stretchr/testify/require"
)

// fakeClock is a settable clock for History.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }
func ok(model string, d time.Duration) metrics.ModelResult {
	return metrics.ModelResult{ModelType: model, HTTPStatus: 200, Duration: d, Upstream: d, TTFT: d / 4}
}

// TestHistoryPoint: one interval's requests become one point: rates over
// the interval, quantiles of its latencies, the queue and replicas then.
func TestHistoryPoint(t *testing.T) {
	clk := newClock()
	src := &fakeSource{queue: metrics.QueueStats{Waiting: 2, InFlight: 1, Slots: 1}, status: &scaling.Status{Current: 1, Desired: 3}}
	h := NewHistory(src, HistoryOptions{Now: clk.now})
	h.Sample() // the first interval, empty
	for i := range 100 {
		h.ObserveModel(ok("a", time.Duration(i+1)*time.Millisecond)) // 1..100 ms
	}
	h.ObserveModel(metrics.ModelResult{ModelType: "b", HTTPStatus: 429, Duration: time.Millisecond})
	h.ObserveModel(metrics.ModelResult{ModelType: "b", HTTPStatus: 499, Canceled: true, Duration: time.Second})
	h.ObserveQueueWait(20 * time.Millisecond)
	clk.add(2 * time.Second)
	h.Sample()

	ps := h.Points(0)
	require.Len(t, ps, 2)
	require.Zero(t, ps[0].All.N)
	p := ps[1]
	require.Equal(t, clk.t.UnixMilli(), p.T)
	require.Equal(t, 102, p.All.N)
	require.Equal(t, 1, p.All.Errors, "the 429 is an error, the client that left is not")
	require.Equal(t, 51.0, p.All.RPS)
	require.Equal(t, 1, p.Rejected)
	require.InDelta(t, 20, p.WaitP95MS, 20*0.13)
	require.Equal(t, 2, p.Waiting)
	require.Equal(t, &Replicas{Current: 1, Desired: 3}, p.Replicas)
	require.Len(t, p.Models, 2)
	a := p.Models[0]
	require.Equal(t, "a", a.Name)
	require.Equal(t, 50.0, a.RPS)
	require.InDelta(t, 50, a.P50MS, 50*0.13)
	require.InDelta(t, 95, a.P95MS, 95*0.13)
	require.InDelta(t, 95.0/4, a.TTFTP95MS, 95.0/4*0.13)
	require.Equal(t, "b", p.Models[1].Name)

	require.Len(t, h.Points(ps[0].T), 1, "since: only newer points")
	require.Empty(t, h.Points(p.T))
}

// TestHistoryBounded: the ring keeps Span/Interval points, the newest.
func TestHistoryBounded(t *testing.T) {
	clk := newClock()
	h := NewHistory(nil, HistoryOptions{Now: clk.now, Interval: 5 * time.Second, Span: time.Minute})
	for range 30 {
		clk.add(5 * time.Second)
		h.Sample()
	}
	ps := h.Points(0)
	require.Len(t, ps, 12)
	require.Equal(t, clk.t.UnixMilli(), ps[11].T)
	require.Equal(t, clk.t.Add(-55*time.Second).UnixMilli(), ps[0].T)
	require.Nil(t, ps[0].Replicas, "no controller: no replica series")
}

// TestHistoryModelsBounded: MaxModels names get series; the rest are
// counted under OtherModels; a name idle for a whole span frees its slot.
func TestHistoryModelsBounded(t *testing.T) {
	clk := newClock()
	h := NewHistory(nil, HistoryOptions{Now: clk.now, Interval: 5 * time.Second, Span: time.Minute})
	for i := range MaxModels + 4 {
		h.ObserveModel(ok("m"+strconv.Itoa(i), time.Millisecond))
	}
	h.ObserveModel(ok(string(make([]byte, maxNameLen+1)), time.Millisecond))
	clk.add(5 * time.Second)
	h.Sample()
	p := h.Points(0)[0]
	require.Len(t, p.Models, MaxModels+1)
	require.Equal(t, OtherModels, p.Models[MaxModels].Name)
	require.Equal(t, 5, p.Models[MaxModels].N, "4 names beyond the bound and one too long")
	tr, _ := h.summary()
	require.Len(t, tr.Models, MaxModels+1)

	// m0 stays busy; the others go idle for a span and free their slots.
	for range 13 {
		h.ObserveModel(ok("m0", time.Millisecond))
		clk.add(5 * time.Second)
		h.Sample()
	}
	h.ObserveModel(ok("new", time.Millisecond))
	clk.add(5 * time.Second)
	h.Sample()
	require.Equal(t, "new", h.Points(0)[11].Models[0].Name, "a freed slot took the new name")
	tr, _ = h.summary()
	names := []string{}
	for _, m := range tr.Models {
		names = append(names, m.Name)
	}
	require.Equal(t, []string{"m0", "new", OtherModels}, names)
}

// TestHistoryObserveAllocs: the tap's hot path does not allocate once a
// model's name is known.
func TestHistoryObserveAllocs(t *testing.T) {
	h := NewHistory(nil, HistoryOptions{})
	r := ok("aurax-tiny", 30*time.Millisecond)
	h.ObserveModel(r)
	require.Zero(t, testing.AllocsPerRun(1000, func() {
		h.ObserveModel(r)
		h.ObserveQueueWait(time.Millisecond)
	}))
}

// TestHistorySummary: the model table and queue figures cover the last
// minute; totals cover everything since start.
func TestHistorySummary(t *testing.T) {
	clk := newClock()
	h := NewHistory(nil, HistoryOptions{Now: clk.now, Interval: 10 * time.Second})
	for i := range 10 { // 10 intervals of 10 s, 6 requests each, one 429 each
		for range 5 {
			h.ObserveModel(ok("a", 100*time.Millisecond))
		}
		h.ObserveModel(metrics.ModelResult{ModelType: "a", HTTPStatus: 429, Duration: time.Millisecond})
		h.ObserveQueueWait(time.Duration(i+1) * time.Millisecond)
		clk.add(10 * time.Second)
		h.Sample()
	}
	tr, mq := h.summary()
	require.Equal(t, uint64(60), tr.Requests)
	require.Equal(t, uint64(10), tr.Errors)
	require.Equal(t, 60.0, tr.WindowS)
	require.Equal(t, 0.6, tr.All.RPS, "36 requests in the last 60 s")
	require.InDelta(t, 1.0/6, tr.All.ErrorRate, 0.001)
	require.Equal(t, 6, mq.rejected)
	require.InDelta(t, 10, mq.waitP95MS, 1.3, "the waits of the last 6 intervals were 5..10 ms")
}

// TestHistoryDecisions: the timeline keeps the decisions that changed or
// wanted to change the count, folds repeated holds, and forgets what is
// older than the span.
func TestHistoryDecisions(t *testing.T) {
	clk := newClock()
	h := NewHistory(nil, HistoryOptions{Now: clk.now, Interval: 5 * time.Second, Span: time.Minute})
	rec := func(off time.Duration, cur, want int, result, note string) scaling.Record {
		dir := scaling.None
		if want > cur {
			dir = scaling.Up
		}
		return scaling.Record{Time: clk.t.Add(off), Current: cur, Result: result,
			Decision: scaling.Decision{Desired: want, Direction: dir, Reason: "queue", Rule: "queue_depth > 1", Note: note}}
	}
	st := scaling.Status{Decisions: []scaling.Record{
		rec(0, 1, 1, scaling.ResultHeld, ""),
		rec(time.Second, 1, 2, scaling.ResultApplied, ""),
		rec(2*time.Second, 2, 3, scaling.ResultHeld, "paused"),
		rec(3*time.Second, 2, 3, scaling.ResultHeld, "paused"),
		rec(4*time.Second, 2, 3, scaling.ResultError, ""),
	}}
	h.Ingest(st)
	h.Ingest(st) // again: nothing new
	ds := h.Decisions()
	require.Len(t, ds, 3)
	require.Equal(t, []string{scaling.ResultApplied, scaling.ResultHeld, scaling.ResultError}, []string{ds[0].Result, ds[1].Result, ds[2].Result})
	require.Equal(t, "queue_depth > 1", ds[0].Rule)
	require.Equal(t, "up", ds[0].Direction)

	clk.add(2 * time.Minute)
	h.Ingest(scaling.Status{Decisions: []scaling.Record{rec(0, 3, 2, scaling.ResultApplied, "")}})
	ds = h.Decisions()
	require.Len(t, ds, 1, "the older ones left the span")

	var many []scaling.Record
	for i := range maxDecisions + 10 {
		many = append(many, rec(time.Duration(i+1)*time.Millisecond, 1, 2+i%2, scaling.ResultApplied, ""))
	}
	h.Ingest(scaling.Status{Decisions: many})
	require.Len(t, h.Decisions(), maxDecisions)
}

// TestHistoryRun: Run samples every interval and returns when ctx ends.
func TestHistoryRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewHistory(&fakeSource{}, HistoryOptions{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- h.Run(ctx) }()
		time.Sleep(3*DefaultInterval + time.Millisecond)
		synctest.Wait()
		require.Len(t, h.Points(0), 3)
		cancel()
		require.NoError(t, <-done)
	})
}

// TestQuantile: the histogram's quantiles are within its precision.
func TestQuantile(t *testing.T) {
	for _, d := range []time.Duration{200 * time.Microsecond, 3 * time.Millisecond, 47 * time.Millisecond, 1500 * time.Millisecond, 20 * time.Second} {
		t.Run(d.String(), func(t *testing.T) {
			var h hist
			for range 10 {
				h.add(d)
			}
			want := float64(d.Microseconds()) / 1e3
			require.InDelta(t, want, h.quantile(0.5), want*0.13+0.05, fmt.Sprint(h.quantile(0.5)))
		})
	}
	var h hist
	require.Zero(t, h.quantile(0.95))
	h.add(time.Hour)
	require.InDelta(t, float64(uint64(1)<<hMaxExp)/1e3, h.quantile(0.95), 0.1, "beyond the range: the top bound")
}

// TestHistScale: the chart histogram's array is sized by the scale it uses.
func TestHistScale(t *testing.T) {
	require.Equal(t, hBuckets, histScale.Buckets())
	lo, hi := histBounds(histBucket(3 * time.Millisecond))
	require.True(t, lo <= 3 && 3 < hi, "3 ms in [%g, %g)", lo, hi)
}
