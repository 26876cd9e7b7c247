package runpod

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/fakerunpod"
	"github.com/stretchr/testify/require"
)

func TestObserve(t *testing.T) {
	api, cfg := newFake(t, startEndpoint())
	cfg.WorkerSlots = 4
	o, err := NewObserver(cfg, nil, nil)
	require.NoError(t, err)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	o.now = func() time.Time { return now }
	h := fakerunpod.Health{Jobs: fakerunpod.Jobs{Completed: 100, Failed: 2, InProgress: 6, InQueue: 3},
		Workers: map[string]int64{"idle": 1, "running": 2, "initializing": 4, "throttled": 1}}
	api.SetHealth(func() fakerunpod.Health { return h })

	first, err := o.Observe(t.Context())
	require.NoError(t, err)
	require.Equal(t, 3, first.Replicas, "idle + running")
	require.Equal(t, 12, first.Slots)
	require.Equal(t, 3.0, first.QueueDepth)
	require.Equal(t, 6.0, first.InFlight)
	require.True(t, math.IsNaN(first.ArrivalRate), "no rate from one answer")
	require.True(t, math.IsNaN(first.CPUPercent))

	// 10 s later: 20 more done (2 failed), 2 more in progress, queue empty.
	now = now.Add(10 * time.Second)
	h.Jobs = fakerunpod.Jobs{Completed: 118, Failed: 4, InProgress: 8, InQueue: 0}
	second, err := o.Observe(t.Context())
	require.NoError(t, err)
	require.InDelta(t, 2.0, second.DoneRate, 1e-9)
	require.InDelta(t, (20+2-3)/10.0, second.ArrivalRate, 1e-9, "done + in progress + queued, differenced")
	require.InDelta(t, 0.1, second.ErrorRate, 1e-9)

	// Counters reset (RunPod restarted them): rates unknown, not negative.
	now = now.Add(10 * time.Second)
	h.Jobs = fakerunpod.Jobs{Completed: 1}
	third, err := o.Observe(t.Context())
	require.NoError(t, err)
	require.True(t, math.IsNaN(third.ArrivalRate))

	// No worker at all (scaled to zero) still counts as an observation.
	h.Workers = map[string]int64{"idle": 0}
	zero, err := o.Observe(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, zero.Replicas)
}

func TestObserveNewKeys(t *testing.T) {
	api, cfg := newFake(t, startEndpoint())
	o, err := NewObserver(cfg, nil, nil)
	require.NoError(t, err)
	api.SetHealth(func() fakerunpod.Health {
		return fakerunpod.Health{Workers: map[string]int64{"ready": 5, "running": 2}}
	})
	obs, err := o.Observe(t.Context())
	require.NoError(t, err)
	require.Equal(t, 5, obs.Replicas, "ready counts when larger than idle+running")
	require.Zero(t, obs.Slots, "slots unknown without worker_slots")
}

func TestDecodeHealth(t *testing.T) {
	tests := []struct {
		in      string
		serving int
		err     bool
	}{
		{`{"jobs":{"completed":1,"failed":0,"inProgress":2,"inQueue":3,"retried":0},"workers":{"idle":1,"running":2}}`, 3, false},
		{`{"jobs":{},"workers":{"idle":1,"future":{"nested":true},"label":"x"}}`, 1, false},
		{`{"jobs":{"inQueue":-1},"workers":{}}`, 0, true},
		{`{"jobs":{"inQueue":"3"},"workers":{}}`, 0, true},
		{`{"workers":{"idle":1}}`, 0, true},
		{`{"jobs":{},"workers":{"idle":-2}}`, 0, true},
		{`{"jobs":{}} {}`, 0, true},
		{`[]`, 0, true},
	}
	for _, tt := range tests {
		h, err := DecodeHealth([]byte(tt.in))
		if tt.err {
			require.Error(t, err, "DecodeHealth(%s)", tt.in)
			continue
		}
		require.NoError(t, err, "DecodeHealth(%s)", tt.in)
		require.Equal(t, tt.serving, h.Serving(), "DecodeHealth(%s).Serving()", tt.in)
	}
}

func FuzzDecodeHealth(f *testing.F) {
	f.Add([]byte(`{"jobs":{"completed":1,"failed":0,"inProgress":2,"inQueue":3,"retried":0},"workers":{"idle":1,"running":2}}`))
	f.Add([]byte(`{"jobs":{},"workers":{"ready":9223372036854775807}}`))
	f.Add([]byte(`{"jobs":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHealth(b)
		if err != nil {
			return
		}
		j := h.Jobs
		if j.Completed < 0 || j.Failed < 0 || j.InProgress < 0 || j.InQueue < 0 || h.Serving() < 0 {
			t.Fatalf("DecodeHealth(%q) = %+v: negative count accepted", b, h)
		}
	})
}

func FuzzDecodeEndpoint(f *testing.F) {
	f.Add([]byte(`{"id":"ep","workers":{"min":1,"max":3,"idleTimeout":5},"scaling":{"type":"QUEUE_DELAY","queueDelay":4},"gpuIds":"AMPERE_16"}`))
	f.Add([]byte(`{"workers":{"min":4,"max":3}}`))
	f.Add([]byte(`{"id":"ep","workers":{"min":0,"max":2},"scaling":{"type":"QUEUE_DELAY","queueDelay":2.5},"version":3,"env":{}}`))
	f.Add([]byte(`{"scaling":{"type":"REQUEST_COUNT","requestCount":1.5}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEndpoint(b)
		if err != nil {
			return
		}
		if e.Workers.Min < 0 || e.Workers.Min > e.Workers.Max || e.Scaling.Value() < 0 || e.Scaling.QueueDelay > maxQueueDelay {
			t.Fatalf("DecodeEndpoint(%q) = %+v: impossible bounds accepted", b, e)
		}
		// What it decoded encodes back to the same endpoint.
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", e, err)
		}
		if e2, err := DecodeEndpoint(again); err != nil || e2 != e {
			t.Fatalf("DecodeEndpoint(%s) = %+v, %v; want %+v", again, e2, err, e)
		}
		// What the provider would send for it is valid JSON the fake accepts.
		p := Plan(DefaultConfig(), e, e.Workers.Min)
		if p.Workers != nil && p.Workers.Max != nil && *p.Workers.Max < e.Workers.Min && p.Workers.Min == nil {
			t.Fatalf("Plan(%+v) lowers max below min", e)
		}
	})
}

func FuzzDecodeWorkers(f *testing.F) {
	f.Add([]byte(`{"summary":{"running":1,"idle":2,"initializing":0,"throttled":0,"unhealthy":0,"total":3},"workers":[]}`))
	f.Add([]byte(`{"summary":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeWorkers(b)
		if err != nil {
			return
		}
		if s.Running < 0 || s.Idle < 0 || s.Total < 0 {
			t.Fatalf("DecodeWorkers(%q) = %+v: negative count accepted", b, s)
		}
	})
}

func TestWorkersSummary(t *testing.T) {
	api, cfg := newFake(t, startEndpoint())
	api.SetHealth(func() fakerunpod.Health {
		return fakerunpod.Health{Workers: map[string]int64{"idle": 1, "running": 2, "initializing": 1}}
	})
	p, _ := newProvider(t, cfg, nil)
	s, err := p.Workers(t.Context())
	require.NoError(t, err)
	require.Equal(t, WorkerSummary{Running: 2, Idle: 1, Initializing: 1, Total: 4}, s)
}
