package scaling

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// busyPolicy is the predictive policy in busy-slot mode with round numbers:
// 4 slots per replica, 1 s service time, no Holt trend.
func busyPolicy() *PredictivePolicy {
	c := DefaultConfig().Predictive
	c.Beta, c.BurstZ = 0, 0
	c.SteadyWindow, c.SLOWait, c.WaitEps = 3*time.Minute, 2*time.Second, 0.01
	c.PeakWindow, c.PeakWeight, c.BurstHold, c.BurstHalfLife = 10*time.Minute, 1, time.Minute, time.Minute
	c.DownWindow = 3 * time.Minute
	c.QueueDrain = time.Hour
	return &PredictivePolicy{Cfg: c, Limits: Limits{Min: 1, Max: 50, MaxStep: 10}, Interval: 15 * time.Second}
}

// steadyObs is a replica set carrying busy slots in flight and queued
// requests, at rate requests/s with a 1 s service time.
func steadyObs(at time.Time, replicas int, busy, queued, rate float64) Observation {
	return Observation{Time: at, Replicas: replicas, Slots: 4 * replicas, InFlight: busy, QueueDepth: queued,
		ArrivalRate: rate, DoneRate: busy, P95LatencyS: 1}
}

// history builds 15 s observations from t0, one per entry of busy/rate.
func history(replicas int, busy, rate []float64) []Observation {
	var h []Observation
	for i := range busy {
		h = append(h, steadyObs(t0.Add(time.Duration(i)*15*time.Second), replicas, busy[i], 0, rate[i]))
	}
	return h
}

func TestBurstWeight(t *testing.T) {
	p := busyPolicy()
	for _, tc := range []struct {
		age  time.Duration
		want float64
	}{
		{0, 1}, {time.Minute, 1}, {2 * time.Minute, 0.5}, {3 * time.Minute, 0.25}, {90 * time.Second, 0.7071},
	} {
		require.InDelta(t, tc.want, p.burstWeight(tc.age), 1e-4, "age %s", tc.age)
	}
	p.Cfg.BurstHalfLife = 0 // no decay: remembered for the whole peak window
	require.Equal(t, 1.0, p.burstWeight(time.Hour))
}

func TestBusySizing(t *testing.T) {
	p := busyPolicy()
	f := Forecast{ServiceS: 1, SlotsPerReplica: 4}
	flat := func(n int, v float64) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = v
		}
		return s
	}
	for _, tc := range []struct {
		name       string
		busy, rate []float64
		queue      float64 // on the newest observation
		drain      time.Duration
		steady     int     // SlotsFor(mean busy, 1 s, 2 s, 1 %)
		burstRate  float64 // decayed peak
	}{
		// 30 busy slots, steady Poisson-like: Erlang C asks for a few more.
		{name: "steady 30", busy: flat(13, 30), rate: flat(13, 30), steady: SlotsFor(30, 1, 2, 0.01, 201), burstRate: 30},
		// The steady mean is over the steady window (3 min = 13 samples) only.
		{name: "old overload forgotten", busy: append(flat(10, 200), flat(13, 30)...), rate: append(flat(10, 30), flat(13, 30)...),
			steady: SlotsFor(30, 1, 2, 0.01, 201), burstRate: 30},
		// A burst of 100/s 4 minutes ago: held 1 min, then 3 half-lives.
		{name: "decayed burst", busy: flat(17, 10), rate: append([]float64{100}, flat(16, 10)...),
			steady: SlotsFor(10, 1, 2, 0.01, 201), burstRate: 100.0 / 8},
		// A queue counts in full without queue_drain ...
		{name: "queue in full", busy: flat(13, 20), rate: flat(13, 20), queue: 26,
			steady: SlotsFor(22, 1, 2, 0.01, 201), burstRate: 20},
		// ... and as service/queue_drain of a slot with it.
		{name: "queue drained", busy: flat(13, 20), rate: flat(13, 20), queue: 26, drain: 2 * time.Second,
			steady: SlotsFor(21, 1, 2, 0.01, 201), burstRate: 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Cfg.QueueDrain = tc.drain
			if tc.drain == 0 {
				p.Cfg.QueueDrain = 0
			}
			s := history(10, tc.busy, tc.rate)
			s[len(s)-1].QueueDepth = tc.queue
			z := p.sizeAt(s, len(s)-1, f)
			require.Equal(t, tc.steady, z.SteadySlots, "%+v", z)
			require.InDelta(t, tc.burstRate, z.BurstRate, 1e-9, "%+v", z)
			require.Equal(t, max(float64(z.SteadySlots), z.BurstSlots, z.BurstLoad), z.Slots)
		})
	}
	// Erlang-C headroom shrinks relative to the load as it grows
	// (square-root staffing).
	small, large := SlotsFor(10, 1, 0.1, 0.01, 1000), SlotsFor(100, 1, 0.1, 0.01, 1000)
	require.Greater(t, float64(small)/10, float64(large)/100)
}

func TestBusyDecide(t *testing.T) {
	p := busyPolicy()
	flat := func(n int, v float64) []float64 { return slices.Repeat([]float64{v}, n) }
	for _, tc := range []struct {
		name       string
		cur        int
		busy, rate []float64
		want       int
		dir        Direction
	}{
		// 30 busy slots at 1 s: Erlang C wants 33 slots = 9 replicas.
		{name: "scale out to need", cur: 4, busy: flat(20, 30), rate: flat(20, 30), want: 9, dir: Up},
		{name: "at need holds", cur: 9, busy: flat(20, 30), rate: flat(20, 30), want: 9, dir: None},
		{name: "above need scales in", cur: 12, busy: flat(20, 30), rate: flat(20, 30), want: 9, dir: Down},
		// Load fell to 10 slots 10 minutes ago: 12 slots = 3 replicas.
		{name: "scale in after the down window", cur: 9, busy: append(flat(10, 30), flat(40, 10)...),
			rate: append(flat(10, 30), flat(40, 10)...), want: 3, dir: Down},
		// Load fell 1 minute ago: the down window still holds the need.
		{name: "hysteresis holds", cur: 9, busy: append(flat(20, 30), flat(4, 10)...),
			rate: append(flat(20, 30), flat(4, 10)...), want: 9, dir: None},
		// A one-interval burst of 60/s 2 minutes ago still holds 15 replicas.
		{name: "recent burst remembered", cur: 15, busy: append(flat(20, 10), flat(1, 10)...),
			rate: append(append(flat(20, 10), 60), flat(8, 10)...), want: 15, dir: None},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(tc.rate)
			busy := tc.busy
			for len(busy) < n {
				busy = append(busy, busy[len(busy)-1])
			}
			s := history(tc.cur, busy, tc.rate)
			st := State{Current: tc.cur, History: s[:n-1], StaleAfter: time.Minute}
			before := slices.Clone(st.History)
			obs := s[n-1]
			d := p.Decide(obs, st, obs.Time)
			require.Equal(t, tc.want, d.Desired, "%+v", d)
			require.Equal(t, tc.dir, d.Direction, "%+v", d)
			require.Equal(t, before, st.History, "Decide must not mutate the state")
			require.Equal(t, d, p.Decide(obs, st, obs.Time), "Decide is pure")
		})
	}
}

func TestBusyConfigValidation(t *testing.T) {
	cfg := DefaultConfig()
	require.Zero(t, cfg.Predictive.SteadyWindow, "busy-slot sizing is off by default")
	cfg.Predictive.SteadyWindow = time.Minute
	require.Error(t, cfg.Validate(), "wait_eps must be set with steady_window")
	cfg.Predictive.WaitEps = 0.01
	require.NoError(t, cfg.Validate())
	cfg.Predictive.LoadPeakWeight = 2
	require.Error(t, cfg.Validate())
	cfg.Predictive.LoadPeakWeight = 0.5
	cfg.Predictive.BurstHalfLife = -time.Second
	require.Error(t, cfg.Validate())
}
