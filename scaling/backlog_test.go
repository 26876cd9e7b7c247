package scaling

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// backlogPolicy is the default predictive policy with backlog-aware load:
// 4 slots per replica, queues drained within 60 s.
func backlogPolicy() *PredictivePolicy {
	c := DefaultConfig().Predictive
	c.BacklogDrain = time.Minute
	return &PredictivePolicy{Cfg: c, Limits: Limits{Min: 2, Max: 50, MaxStep: 10}, Interval: 15 * time.Second}
}

// qobs is an observation at 15 s step i: ready replicas, in flight, queued,
// arrival rate.
func qobs(i, ready int, inflight, queued, rate float64) Observation {
	return Observation{Time: t0.Add(time.Duration(i) * 15 * time.Second), Replicas: ready, Slots: 4 * ready,
		InFlight: inflight, QueueDepth: queued, ArrivalRate: rate, DoneRate: 1, P95LatencyS: 1}
}

func TestSampleLoad(t *testing.T) {
	f := Forecast{ServiceS: 5, SlotsPerReplica: 4}
	for _, tc := range []struct {
		name      string
		prev, cur Observation
		ordered   int
		drain     time.Duration
		want      float64
	}{
		// Off: the queue is busy slots, as always.
		{name: "off", prev: qobs(0, 4, 16, 100, 6), cur: qobs(1, 4, 16, 150, 6), ordered: 12, want: 166},
		{name: "no queue", prev: qobs(0, 4, 16, 0, 3), cur: qobs(1, 4, 16, 0, 3), ordered: 4, drain: time.Minute, want: 16},
		// Grows at unchanged, ready capacity: a burst, counted in full.
		{name: "burst", prev: qobs(0, 12, 48, 10, 6), cur: qobs(1, 12, 48, 30, 6), ordered: 12, drain: time.Minute, want: 78},
		// The same queue with 12 more replicas ordered: a backlog; flow
		// 6/s × 5 s = 30 slots plus 30 × 5/60 = 2.5 slots to drain it.
		{name: "pending capacity", prev: qobs(0, 12, 48, 10, 6), cur: qobs(1, 12, 48, 30, 6), ordered: 24, drain: time.Minute, want: 32.5},
		// Shrinking at steady capacity: a backlog.
		{name: "shrinking", prev: qobs(0, 12, 48, 40, 6), cur: qobs(1, 12, 48, 30, 6), ordered: 12, drain: time.Minute, want: 32.5},
		// Ready capacity just changed: growth is not a burst.
		{name: "capacity arrived", prev: qobs(0, 8, 32, 20, 6), cur: qobs(1, 12, 48, 30, 6), ordered: -1, drain: time.Minute, want: 32.5},
		// The ordered capacity cannot drain it within the drain time
		// (48 − 30 = 18 spare slots × 60 s < 300 × 5 s): counted in full.
		{name: "undrainable", prev: qobs(0, 12, 48, 320, 6), cur: qobs(1, 12, 48, 300, 6), ordered: 12, drain: time.Minute, want: 348},
		// ... and a flow above the capacity never drains.
		{name: "flow above capacity", prev: qobs(0, 12, 48, 40, 12), cur: qobs(1, 12, 48, 30, 12), ordered: 12, drain: time.Minute, want: 78},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := backlogPolicy()
			p.Cfg.BacklogDrain = tc.drain
			s := []Observation{tc.prev, tc.cur}
			require.InDelta(t, tc.want, p.sampleLoad(s, 1, tc.ordered, f), 1e-9)
		})
	}
	// Unknown arrival rate: no flow to size from, so the queue counts in full.
	p := backlogPolicy()
	s := []Observation{qobs(0, 12, 48, 40, 6), qobs(1, 12, 48, 30, math.NaN())}
	require.Equal(t, 78.0, p.sampleLoad(s, 1, 12, f))
}

// A start at the minimum size under full load: the first scale-out is
// ordered; while it starts, the growing queue is a backlog that it drains,
// and no further replicas are ordered for it.
func TestBacklogDecide(t *testing.T) {
	// 6/s at 5 s: 30 busy slots. 12 replicas ordered, 4 ready, queue 200.
	var h []Observation
	for i := range 40 {
		h = append(h, qobs(i, 4, 16, 0, 6))
	}
	h = append(h, qobs(40, 4, 16, 150, 6))
	obs := qobs(41, 4, 16, 200, 6)
	obs.DoneRate = 16.0 / 5
	for i := range h {
		h[i].DoneRate = h[i].InFlight / 5
	}
	st := State{Current: 12, History: h, StaleAfter: time.Minute}
	p := backlogPolicy()
	p.Cfg.PeakWindow = 0
	p.Cfg.BurstZ = 0
	p.Cfg.BurstinessLow = 0 // the rate path, where backlog.go classifies queues
	d := p.Decide(obs, st, obs.Time)
	require.Equal(t, 12, d.Desired, "%+v", d)
	p.Cfg.BacklogDrain = 0 // off: 216 busy slots -> 54 replicas, step 10
	d = p.Decide(obs, st, obs.Time)
	require.Equal(t, 22, d.Desired, "%+v", d)
}

func TestSteadyConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Predictive)
		want string
	}{
		{"backlog_drain", func(p *Predictive) { p.BacklogDrain = -time.Second }, "backlog_drain"},
		{"steady_window", func(p *Predictive) { p.SteadyWindow = -time.Second }, "steady_window"},
		{"slo_wait", func(p *Predictive) { p.SLOWait = -time.Second }, "slo_wait"},
		{"wait_eps 0", func(p *Predictive) { p.WaitEps = 0 }, "predictive.wait_eps"},
		{"wait_eps 1", func(p *Predictive) { p.WaitEps = 1 }, "predictive.wait_eps"},
		{"burstiness", func(p *Predictive) { p.BurstinessLow, p.BurstinessHigh = 0.3, 0.1 }, "predictive.burstiness_high"},
	} {
		c := DefaultConfig()
		tc.set(&c.Predictive)
		require.ErrorContains(t, c.Validate(), tc.want, tc.name)
	}
	require.NoError(t, DefaultConfig().Validate())
}
