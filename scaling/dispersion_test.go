package scaling

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rateSeries is observations 15 s apart with the given arrival rates and,
// for each, in flight and done rate.
func rateSeries(rates []float64, inflight, done []float64) []Observation {
	out := make([]Observation, len(rates))
	for i, r := range rates {
		out[i] = Observation{Time: t0.Add(time.Duration(i) * 15 * time.Second), Replicas: 4, Slots: 16,
			ArrivalRate: r, InFlight: inflight[i], DoneRate: done[i], QueueDepth: 0, P95LatencyS: 1}
	}
	return out
}

func TestForecastDispersionAndMedianService(t *testing.T) {
	p := &PredictivePolicy{Cfg: DefaultConfig().Predictive, Interval: 15 * time.Second}
	ones := []float64{1, 1, 1, 1}
	for _, tc := range []struct {
		name           string
		rates          []float64
		inflight, done []float64
		dispersion     float64 // NaN: unknown
		ratioOfSums    float64
		median         float64
	}{
		// One observation: nothing to measure spread on.
		{name: "unknown", rates: []float64{2}, inflight: []float64{4}, done: []float64{1}, dispersion: math.NaN(), ratioOfSums: 4, median: 4},
		// A constant rate is the least bursty load there is.
		{name: "constant", rates: []float64{2, 2, 2, 2}, inflight: []float64{4, 4, 4, 4}, done: []float64{1, 1, 1, 1}, dispersion: 0, ratioOfSums: 4, median: 4},
		// Rates 0 and 2 per s alternating: counts per 15 s are 0 and 30,
		// mean 15, variance 225: dispersion 15.
		{name: "alternating", rates: []float64{0, 2, 0, 2}, inflight: []float64{5, 5, 5, 20}, done: ones, dispersion: 15, ratioOfSums: 35.0 / 4, median: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := rateSeries(tc.rates, tc.inflight, tc.done)
			f := p.forecast(s, s[len(s)-1].Time)
			if math.IsNaN(tc.dispersion) {
				require.True(t, math.IsNaN(f.Dispersion), "Dispersion = %v; want unknown", f.Dispersion)
			} else {
				require.InDelta(t, tc.dispersion, f.Dispersion, 1e-9)
			}
			require.InDelta(t, tc.ratioOfSums, f.ServiceS, 1e-9, "ServiceS stays the ratio of sums")
			require.InDelta(t, tc.median, f.MedianServiceS, 1e-9)
		})
	}
}

func TestPeakWeightFollowsBurstiness(t *testing.T) {
	c := DefaultConfig().Predictive
	require.Equal(t, 8.0, c.DispersionLow)
	require.Equal(t, 20.0, c.DispersionHigh)
	p := &PredictivePolicy{Cfg: c}
	off := &PredictivePolicy{Cfg: c}
	off.Cfg.DispersionLow = 0
	for _, tc := range []struct {
		p          *PredictivePolicy
		dispersion float64
		weight     float64
		bursty     bool
	}{
		{p, math.NaN(), 1, false}, // unknown: the full peak memory, queues not treated as bursts yet
		{p, 1, 0, false},          // Poisson-like (the conversation trace: 1.2 to 3.8)
		{p, 8, 0, false},
		{p, 14, 0.5, false},
		{p, 20, 1, true},
		{p, 120, 1, true},  // the code trace: 48 to 183
		{off, 1, 1, false}, // gate off: always the full peak memory
		{off, 120, 1, false},
	} {
		f := Forecast{Dispersion: tc.dispersion}
		require.InDeltaf(t, tc.weight, tc.p.peakWeight(f), 1e-9, "peakWeight(D=%v, low=%v)", tc.dispersion, tc.p.Cfg.DispersionLow)
		require.Equalf(t, tc.bursty, tc.p.bursty(f), "bursty(D=%v, low=%v)", tc.dispersion, tc.p.Cfg.DispersionLow)
	}
}

// TestBurstyQueueCountsInFull: under bursty arrivals a queue the ordered
// capacity could drain still counts in full; under steady ones it is a
// backlog.
func TestBurstyQueueCountsInFull(t *testing.T) {
	p := backlogPolicy()
	p.Cfg.DispersionLow, p.Cfg.DispersionHigh = 8, 20
	s := []Observation{qobs(0, 4, 16, 100, 6), qobs(1, 4, 16, 100, 6)} // a queue 12 ordered replicas drain
	steady := p.sampleLoad(s, 1, 12, Forecast{ServiceS: 5, SlotsPerReplica: 4, Dispersion: 2})
	burst := p.sampleLoad(s, 1, 12, Forecast{ServiceS: 5, SlotsPerReplica: 4, Dispersion: 50})
	require.Equal(t, 116.0, burst, "bursty: in flight + queue")
	require.Less(t, steady, burst, "steady: the flow plus the slots that drain the backlog")
}

// TestSteadyLoadUsesMedianService: right after capacity grew, new slots
// fill at once while completions lag a service time behind, inflating the
// ratio of sums; under steady arrivals the median service time keeps that
// transient from ordering replicas.
func TestSteadyLoadUsesMedianService(t *testing.T) {
	rates := []float64{5, 5.5, 4.5, 5, 5.5, 4.5, 5, 5}
	inflight := []float64{25, 25, 25, 25, 25, 25, 25, 25}
	done := []float64{5, 5, 5, 5, 5, 5, 1, 1} // the last two: completions lagging
	s := rateSeries(rates, inflight, done)
	now := s[len(s)-1].Time
	st := State{Current: 6, History: s[:len(s)-1]}
	gated := &PredictivePolicy{Cfg: DefaultConfig().Predictive, Limits: Limits{Min: 2, Max: 50, MaxStep: 10}, Interval: 15 * time.Second}
	ungated := &PredictivePolicy{Cfg: gated.Cfg, Limits: gated.Limits, Interval: gated.Interval}
	ungated.Cfg.DispersionLow = 0
	f := gated.forecast(s, now)
	require.Less(t, f.Dispersion, gated.Cfg.DispersionLow, "this load is steady")
	require.InDelta(t, 5.0, f.MedianServiceS, 1e-9)
	require.InDelta(t, 200.0/32, f.ServiceS, 1e-9, "the lagging completions inflate the ratio of sums")
	dg := gated.Decide(s[len(s)-1], st, now)
	du := ungated.Decide(s[len(s)-1], st, now)
	require.Greater(t, du.Desired, dg.Desired, "gated %+v, ungated %+v", dg, du)
	require.Greater(t, dg.Desired, st.Current, "the steady load still needs more than 6 replicas")
}

// TestSteadyScaleInIgnoresDrainedBacklog: under steady arrivals, a past
// sample whose slots were all busy draining a start-up backlog does not
// hold those replicas for the down window; under the ungated policy it does.
func TestSteadyScaleInIgnoresDrainedBacklog(t *testing.T) {
	rates := []float64{5, 5.5, 4.5, 5, 5.5, 4.5, 5, 5}
	inflight := []float64{56, 56, 56, 25, 25, 25, 25, 25} // the first three: 14 replicas saturated by a backlog
	done := []float64{5, 5, 5, 5, 5, 5, 5, 5}
	s := rateSeries(rates, inflight, done)
	for i := range s {
		s[i].Replicas, s[i].Slots = 14, 56
	}
	now := s[len(s)-1].Time
	st := State{Current: 14, History: s[:len(s)-1]}
	gated := &PredictivePolicy{Cfg: DefaultConfig().Predictive, Limits: Limits{Min: 2, Max: 50, MaxStep: 10}, Interval: 15 * time.Second}
	ungated := &PredictivePolicy{Cfg: gated.Cfg, Limits: gated.Limits, Interval: gated.Interval}
	ungated.Cfg.DispersionLow = 0
	require.Equal(t, 14, ungated.Decide(s[len(s)-1], st, now).Desired, "ungated: the saturated samples hold 14")
	dg := gated.Decide(s[len(s)-1], st, now)
	require.Less(t, dg.Desired, 14, "gated: scale in to the flow's need: %+v", dg)
	require.Equal(t, Down, dg.Direction)
}
