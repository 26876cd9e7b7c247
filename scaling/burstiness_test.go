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

func TestForecastBurstinessAndMedianService(t *testing.T) {
	p := &PredictivePolicy{Cfg: DefaultConfig().Predictive, Interval: 15 * time.Second}
	ones := []float64{1, 1, 1, 1}
	fours := []float64{4, 4, 4, 4}
	for _, tc := range []struct {
		name           string
		rates          []float64
		inflight, done []float64
		burstiness     float64 // NaN: unknown
		ratioOfSums    float64
		median         float64
	}{
		// Two observations: too few to tell noise from bursts.
		{name: "unknown", rates: []float64{2, 3}, inflight: []float64{4, 4}, done: []float64{1, 1}, burstiness: math.NaN(), ratioOfSums: 4, median: 4},
		// A constant rate is the least bursty load there is.
		{name: "constant", rates: []float64{2, 2, 2, 2}, inflight: fours, done: ones, burstiness: 0, ratioOfSums: 4, median: 4},
		// A steady ramp: differences of 1/s, Allan variance 0.5, less the
		// Poisson noise 2.5/15 of the mean rate, over 2.5²: a trend is not
		// a burst.
		{name: "ramp", rates: []float64{1, 2, 3, 4}, inflight: fours, done: ones, burstiness: (0.5 - 2.5/15) / 6.25, ratioOfSums: 4, median: 4},
		// Rates 0 and 2 per s alternating: Allan variance 2, mean 1.
		{name: "alternating", rates: []float64{0, 2, 0, 2}, inflight: []float64{5, 5, 5, 20}, done: ones, burstiness: 2 - 1.0/15, ratioOfSums: 35.0 / 4, median: 5},
		// Scaling the rate scales the Allan variance and the mean squared
		// alike: the same burstiness (up to the Poisson term).
		{name: "alternating ×10", rates: []float64{0, 20, 0, 20}, inflight: []float64{5, 5, 5, 20}, done: ones, burstiness: (200 - 10.0/15) / 100, ratioOfSums: 35.0 / 4, median: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := rateSeries(tc.rates, tc.inflight, tc.done)
			f := p.forecast(s, s[len(s)-1].Time)
			if math.IsNaN(tc.burstiness) {
				require.True(t, math.IsNaN(f.Burstiness), "Burstiness = %v; want unknown", f.Burstiness)
			} else {
				require.InDelta(t, tc.burstiness, f.Burstiness, 1e-9)
			}
			require.InDelta(t, tc.ratioOfSums, f.ServiceS, 1e-9, "ServiceS stays the ratio of sums")
			require.InDelta(t, tc.median, f.MedianServiceS, 1e-9)
			require.Equal(t, 1.0, f.QueueFactor, "the steady path calibrates it")
		})
	}
}

func TestPeakWeightFollowsBurstiness(t *testing.T) {
	p := &PredictivePolicy{Cfg: DefaultConfig().Predictive}
	for _, tc := range []struct {
		burstiness float64
		weight     float64
		bursty     bool
	}{
		{math.NaN(), 1, false}, // unknown: the full peak memory, queues not treated as bursts yet
		{0.005, 0, false},      // Poisson-like (the conversation trace: 0 to 0.02)
		{0.05, 0, false},
		{0.175, 0.5, false},
		{0.3, 1, true},
		{2, 1, true}, // the code trace: 0.7 to 6
	} {
		f := Forecast{Burstiness: tc.burstiness}
		require.InDeltaf(t, tc.weight, p.peakWeight(f), 1e-9, "peakWeight(B=%v)", tc.burstiness)
		require.Equalf(t, tc.bursty, p.bursty(f), "bursty(B=%v)", tc.burstiness)
	}
}

// TestBurstyQueueCountsInFull: under bursty arrivals a queue the ordered
// capacity could drain still counts in full; in between it is a backlog.
func TestBurstyQueueCountsInFull(t *testing.T) {
	p := backlogPolicy()
	s := []Observation{qobs(0, 4, 16, 100, 6), qobs(1, 4, 16, 100, 6)} // a queue 12 ordered replicas drain
	between := p.sampleLoad(s, 1, 12, Forecast{ServiceS: 5, SlotsPerReplica: 4, Burstiness: 0.1})
	burst := p.sampleLoad(s, 1, 12, Forecast{ServiceS: 5, SlotsPerReplica: 4, Burstiness: 1})
	require.Equal(t, 116.0, burst, "bursty: in flight + queue")
	require.Less(t, between, burst, "between the thresholds: the flow plus the slots that drain the backlog")
}
