package scaling

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// backlogPolicy is the default predictive policy, prod limits: 4 slots
// per replica, queues drained within backlogDrain (30 s).
func backlogPolicy() *PredictivePolicy {
	return &PredictivePolicy{Cfg: DefaultConfig().Predictive, Limits: Limits{Min: 2, Max: 50, MaxStep: 10}, Interval: 15 * time.Second}
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
		want      float64
	}{
		{name: "no queue", prev: qobs(0, 4, 16, 0, 3), cur: qobs(1, 4, 16, 0, 3), ordered: 4, want: 16},
		// Grows at unchanged, ready capacity: a burst, counted in full.
		{name: "burst", prev: qobs(0, 12, 48, 10, 6), cur: qobs(1, 12, 48, 30, 6), ordered: 12, want: 78},
		// The same queue with 12 more replicas ordered: a backlog; flow
		// 6/s × 5 s = 30 slots plus 30 × 5/30 = 5 slots to drain it.
		{name: "pending capacity", prev: qobs(0, 12, 48, 10, 6), cur: qobs(1, 12, 48, 30, 6), ordered: 24, want: 35},
		// Shrinking at steady capacity: a backlog.
		{name: "shrinking", prev: qobs(0, 12, 48, 40, 6), cur: qobs(1, 12, 48, 30, 6), ordered: 12, want: 35},
		// Ready capacity just changed: growth is not a burst.
		{name: "capacity arrived", prev: qobs(0, 8, 32, 20, 6), cur: qobs(1, 12, 48, 30, 6), ordered: -1, want: 35},
		// The ordered capacity cannot drain it within the drain time
		// (48 − 30 = 18 spare slots × 30 s < 300 × 5 s): counted in full.
		{name: "undrainable", prev: qobs(0, 12, 48, 320, 6), cur: qobs(1, 12, 48, 300, 6), ordered: 12, want: 348},
		// ... and a flow above the capacity never drains.
		{name: "flow above capacity", prev: qobs(0, 12, 48, 40, 12), cur: qobs(1, 12, 48, 30, 12), ordered: 12, want: 78},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := []Observation{tc.prev, tc.cur}
			require.InDelta(t, tc.want, backlogPolicy().sampleLoad(s, 1, tc.ordered, f), 1e-9)
		})
	}
	// Unknown arrival rate: no flow to size from, so the queue counts in full.
	p := backlogPolicy()
	s := []Observation{qobs(0, 12, 48, 40, 6), qobs(1, 12, 48, 30, math.NaN())}
	require.Equal(t, 78.0, p.sampleLoad(s, 1, 12, f))
}

// A start at the minimum size under full load, arrivals between the
// burstiness thresholds: the first scale-out is ordered; while it starts,
// the growing queue is a backlog that it drains, and no further replicas
// are ordered for it.
func TestBacklogDecide(t *testing.T) {
	// 4.3/s and 7.7/s alternating (burstiness 0.15, peak weight 0.4), 5 s
	// service time: 30 busy slots on average. 12 replicas ordered, 4
	// ready, the queue growing to 54.
	var h []Observation
	for i := range 41 {
		h = append(h, qobs(i, 4, 16, 0, 4.3+3.4*float64(i%2)))
		h[i].DoneRate = h[i].InFlight / 5
	}
	h[40].QueueDepth = 40
	obs := qobs(41, 4, 16, 54, 7.7)
	obs.DoneRate = 16.0 / 5
	st := State{Current: 12, History: h, StaleAfter: time.Minute}
	p := backlogPolicy()
	f := p.forecast(append(h, obs), obs.Time)
	require.InDelta(t, 0.15, f.Burstiness, 0.01)
	// The flow (7.7/s × 5 s) plus 54 × 5/30 slots, not 16 + 54: the
	// 12 ordered replicas drain it in 30 s (270 s of work, 9.5 spare slots).
	require.InDelta(t, 47.5, p.upLoad(append(h, obs), 12, f), 1e-9)
	d := p.Decide(obs, st, obs.Time)
	require.Equal(t, 12, d.Desired, "%+v", d)
	require.Contains(t, d.Rule+d.Note, "load 48 ")
}

func TestPredictiveConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Predictive)
		want string
	}{
		{"slo_wait", func(p *Predictive) { p.SLOWait = -time.Second }, "predictive.slo_wait"},
		{"down_window", func(p *Predictive) { p.DownWindow = -time.Second }, "predictive.down_window"},
		{"service_time", func(p *Predictive) { p.ServiceTime = 0 }, "predictive.service_time"},
		{"slots_per_replica", func(p *Predictive) { p.SlotsPerReplica = 0 }, "predictive.slots_per_replica"},
		{"cold_start", func(p *Predictive) { p.ColdStart = -time.Second }, "predictive.cold_start"},
	} {
		c := DefaultConfig()
		tc.set(&c.Predictive)
		require.ErrorContains(t, c.Validate(), tc.want, tc.name)
	}
	require.NoError(t, DefaultConfig().Validate())
}
