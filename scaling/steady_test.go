package scaling

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// steadyPolicy is the default predictive policy, prod limits.
func steadyPolicy() *PredictivePolicy {
	return &PredictivePolicy{Cfg: DefaultConfig().Predictive, Limits: Limits{Min: 2, Max: 50, MaxStep: 10}, Interval: 15 * time.Second}
}

// steadySeries is n observations 15 s apart: ready replicas, a constant
// arrival rate, service time svc (in flight = rate × svc, done = rate) and
// queue q.
func steadySeries(n, ready int, rate, svc, q float64) []Observation {
	out := make([]Observation, n)
	for i := range out {
		out[i] = Observation{Time: t0.Add(time.Duration(i) * 15 * time.Second), Replicas: ready, Slots: 4 * ready,
			ArrivalRate: rate, InFlight: rate * svc, DoneRate: rate, QueueDepth: q, P95LatencyS: svc}
	}
	return out
}

func decideOn(p *PredictivePolicy, s []Observation, cur int) Decision {
	now := s[len(s)-1].Time
	return p.Decide(s[len(s)-1], State{Current: cur, History: s[:len(s)-1], StaleAfter: time.Minute}, now)
}

// An M/M/c load of 25 erlangs (5/s × 5 s) with the queue M/M/c predicts:
// Erlang C sizes it, and the decision says so.
func TestSteadyErlangSizing(t *testing.T) {
	p := steadyPolicy()
	s := steadySeries(40, 8, 5, 5, 0)
	c := 32
	pred := ErlangC(c, 25) * 25 / float64(c-25)
	for i := range s {
		s[i].QueueDepth = pred
	}
	f := p.forecast(s, s[len(s)-1].Time)
	require.False(t, p.bursty(f))
	require.Zero(t, p.peakWeight(f), "a constant rate is steady")
	require.InDelta(t, 1, p.queueFactor(s, f), 1e-9, "the queue M/M/c predicts: factor 1")
	f.QueueFactor = 1
	z := p.steadyAt(s, len(s)-1, steadyWindow, f)
	require.InDelta(t, 25, z.Offered, 1e-9)
	slots := SlotsFor(25, 5, 2, 0.01, 1000)
	require.Equal(t, slots, z.Slots)
	require.Equal(t, (slots+3)/4, z.Replicas)
	d := decideOn(p, s, 8)
	require.Equal(t, z.Replicas, d.Desired, "%+v", d)
	require.Contains(t, d.Rule+d.Note, "25.0 erlangs")
}

func TestQueueFactor(t *testing.T) {
	p := steadyPolicy()
	f := Forecast{ServiceS: 5, SlotsPerReplica: 4, QueueFactor: 1}
	// 28 erlangs on 32 slots: M/M/c predicts a mean queue of ~4.
	base := steadySeries(40, 8, 5.6, 5, 0)
	pred := ErlangC(32, 28) * 28 / 4
	for _, tc := range []struct {
		name   string
		queue  float64
		lo, hi float64
	}{
		{"no queue: shorter waits than M/M/c", 0, 0.5, 0.99},
		{"as predicted", pred, 1 - 1e-9, 1 + 1e-9},
		{"twice the prediction", 2 * pred, 1.8, 2},
		{"far above: clamped", 6 * pred, 4, 4},
		// Far beyond any M/M/c tail, even stretched fourfold: a backlog
		// left by a start or a shift, skipped.
		{"backlog", 100 * pred, 1 - 1e-9, 1 + 1e-9},
	} {
		s := append([]Observation(nil), base...)
		for i := range s {
			s[i].QueueDepth = tc.queue
		}
		k := p.queueFactor(s, f)
		require.GreaterOrEqual(t, k, tc.lo, tc.name)
		require.LessOrEqual(t, k, tc.hi, tc.name)
	}
	// A backlog (load above the ready slots) says nothing about the
	// stationary queue: skipped, the prior stays.
	s := steadySeries(10, 2, 5.6, 5, 300)
	require.Equal(t, 1.0, p.queueFactor(s, f))
	// A larger factor stretches the wait tail: more slots.
	g := f
	g.QueueFactor = 2
	require.Greater(t, p.steadyAt(base, len(base)-1, steadyWindow, g).Slots, p.steadyAt(base, len(base)-1, steadyWindow, f).Slots)
}

// The last minute's arrivals far above the window's rate are a shift, not
// noise: the sizing follows them. A small rise is noise.
func TestSteadyShift(t *testing.T) {
	p := steadyPolicy()
	f := Forecast{ServiceS: 5, SlotsPerReplica: 4, QueueFactor: 1}
	s := steadySeries(20, 10, 5, 5, 0)
	for i := 16; i < 20; i++ {
		s[i].ArrivalRate = 5.3 // +6 %: well within counting noise over a minute
	}
	z, _, _ := p.steadyUp(s, 10, f)
	require.Less(t, z.Rate, 5.3, "noise: the window's mean")
	for i := 16; i < 20; i++ {
		s[i].ArrivalRate = 8
	}
	z, _, want := p.steadyUp(s, 10, f)
	require.Equal(t, 8.0, z.Rate, "a shift: the last minute")
	require.Equal(t, (SlotsFor(40, 5, 2, 0.01, 1000)+3)/4, want)
}

// A queue under the wait SLO is expected under Poisson arrivals and adds
// nothing; a backlog adds only what the capacity already ordered cannot
// drain in time.
func TestSteadyBacklog(t *testing.T) {
	p := steadyPolicy()
	f := Forecast{ServiceS: 5, SlotsPerReplica: 4, QueueFactor: 1}
	// 30 erlangs, 10 replicas ready: 40 slots drain 8 requests a second.
	s := steadySeries(20, 10, 6, 5, 0)
	s[19].QueueDepth = 10 // 10 × 5 s / 40 slots = 1.25 s: under the SLO
	z, q, want := p.steadyUp(s, 10, f)
	require.Zero(t, q)
	require.Equal(t, z.Replicas, want)
	// A start under load: 4 ready, 12 ordered, 200 queued.
	s = steadySeries(20, 4, 6, 5, 0)
	s[19].QueueDepth = 200
	_, q, want = p.steadyUp(s, 12, f)
	require.Positive(t, q, "12 replicas (48 slots) barely keep up with the flow: more to drain 200")
	require.Greater(t, want, 12)
	// With 24 ordered the spare capacity drains it: nothing more.
	_, q, want = p.steadyUp(s, 24, f)
	require.Zero(t, q)
	require.LessOrEqual(t, want, 24)
}

// Scale-in under steady arrivals goes to the sizing of the down window's
// mean load, not its highest sample; missing data holds.
func TestSteadyScaleIn(t *testing.T) {
	p := steadyPolicy()
	s := steadySeries(60, 16, 5, 5, 0) // 25 erlangs on 16 replicas
	for i := 40; i < 60; i += 2 {
		s[i].ArrivalRate = 6 // noise around 5.5/s
	}
	d := decideOn(p, s, 16)
	require.Equal(t, Down, d.Direction, "%+v", d)
	f := p.forecast(s, s[len(s)-1].Time)
	f.QueueFactor = p.queueFactor(s, f)
	require.Equal(t, p.steadyDown(s, 16, s[len(s)-1].Time, f), d.Desired)
	require.Less(t, d.Desired, 12)
	s[50].Missing = 1
	d = decideOn(p, s, 16)
	require.Equal(t, 16, d.Desired, "a replica missing in the window: no scale-in")
	s[50].Missing = 0
	s[59].InFlight = math.NaN()
	require.Equal(t, 16, decideOn(p, s, 16).Desired, "unknown load: hold")
}

// A start under load: two observations cannot tell bursts from noise, so
// the steady sizing decides on the measured flow and the queue.
func TestSteadyStart(t *testing.T) {
	p := steadyPolicy()
	s := steadySeries(2, 2, 6, 5, 0) // 30 erlangs on 8 slots
	for i := range s {
		s[i].InFlight, s[i].DoneRate = 8, 8.0/5
		s[i].QueueDepth = float64(50 * (i + 1))
	}
	d := decideOn(p, s, 2)
	require.Contains(t, d.Rule, "steady arrivals (burstiness NaN)")
	require.Contains(t, d.Rule, "30.0 erlangs")
	require.Equal(t, 12, d.Desired, "at least the flow's 10 replicas, step-limited to +10: %+v", d)
}

// The shift test counts the arrivals of the last minute whatever the
// interval: at 5 s, twelve rates make the minute.
func TestSteadyShiftInterval(t *testing.T) {
	p := steadyPolicy()
	p.Interval = 5 * time.Second
	f := Forecast{ServiceS: 5, SlotsPerReplica: 4, QueueFactor: 1}
	s := steadySeries(60, 10, 5, 5, 0)
	for i := range s {
		s[i].Time = t0.Add(time.Duration(i) * 5 * time.Second)
	}
	for i := 48; i < 60; i++ {
		s[i].ArrivalRate = 5.6 // 336 in a minute against the window's 5.12/s, 307: 1.6σ, noise
	}
	z, _, _ := p.steadyUp(s, 10, f)
	require.Less(t, z.Rate, 5.6)
	for i := 48; i < 60; i++ {
		s[i].ArrivalRate = 6.5 // 390 against the window's 5.3/s, 318: 4σ, a shift
	}
	z, _, _ = p.steadyUp(s, 10, f)
	require.Equal(t, 6.5, z.Rate)
}

// BenchmarkPredictiveDecide is one decision over a full lookback (15 min
// of 15 s observations), steady (Erlang C, queue calibration) and bursty.
func BenchmarkPredictiveDecide(b *testing.B) {
	p := steadyPolicy()
	steady := steadySeries(61, 12, 6, 6, 1)
	bursty := steadySeries(61, 12, 6, 6, 0)
	for i := range bursty {
		if i%8 != 0 {
			bursty[i].ArrivalRate = 0.5
		} else {
			bursty[i].ArrivalRate, bursty[i].QueueDepth = 30, 40
		}
	}
	for _, bc := range []struct {
		name string
		s    []Observation
	}{{"steady", steady}, {"bursty", bursty}} {
		b.Run(bc.name, func(b *testing.B) {
			st := State{Current: 12, History: bc.s[:len(bc.s)-1], StaleAfter: time.Minute}
			obs, now := bc.s[len(bc.s)-1], bc.s[len(bc.s)-1].Time
			b.ReportAllocs()
			for b.Loop() {
				p.Decide(obs, st, now)
			}
		})
	}
}
