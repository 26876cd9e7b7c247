package scaling

import (
	"fmt"
	"math"
	"time"
)

// Steady sizing, the predictive policy's path for arrivals the burstiness
// gate calls steady (Poisson-like: their rate varies little beyond the
// noise of counting).
//
// Such a load is best described by its offered load A = λ·S erlangs: the
// arrival rate λ averaged over steadyWindow times the service time S
// measured over the same window (Little's law on the slots: Σ in flight /
// Σ completed). The slots it needs follow from the M/M/c queue (Erlang C):
// the fewest c with which at most waitEps of requests wait longer than
// SLOWait. That headroom covers the Poisson noise of the arrivals, which a
// plan for the highest 15 s rate (or mean + 2σ of 15 s rates) pays for
// twice. Real loads queue more or less than M/M/c (service times less
// variable than the exponential's, requests that come in pairs), so the
// wait tail is calibrated by the queue observed against the queue the
// model predicts (queueFactor).
//
// Scale-out follows the sizing, a shift of the last minute, and a backlog
// that breaks the wait SLO (steadyUp). Scale-in goes to the sizing of the
// down window's mean load (steadyDown): hysteresis on a smoothed signal,
// not a peak memory.

// SteadySizing is the working of one steady sizing, for the decision log
// and tests.
type SteadySizing struct {
	Rate     float64 // mean arrival rate over the window, per second
	ServiceS float64 // measured service time over the window
	Offered  float64 // Rate × ServiceS, erlangs
	Slots    int     // Erlang-C slots for the SLO
	Replicas int
	Samples  int // arrival rates averaged
	// QueueFactor is the measured queue over the M/M/c prediction (see
	// queueFactor); it stretches the wait tail, so it is 1 for an M/M/c
	// load, below 1 for service times less variable than exponential.
	QueueFactor float64
}

// steadyAt sizes for the window (steadyWindow, or the last minute, or the
// down window) of s ending at s[j].
func (p *PredictivePolicy) steadyAt(s []Observation, j int, window time.Duration, f Forecast) SteadySizing {
	z := SteadySizing{ServiceS: f.ServiceS, QueueFactor: f.QueueFactor}
	t := s[j].Time
	var rate, n, busy, done float64
	for i := j; i >= 0 && t.Sub(s[i].Time) < window; i-- {
		o := s[i]
		if !math.IsNaN(o.ArrivalRate) {
			rate, n = rate+o.ArrivalRate, n+1
		}
		if !math.IsNaN(o.InFlight) && !math.IsNaN(o.DoneRate) && !filledFromQueue(s, i) {
			busy, done = busy+o.InFlight, done+o.DoneRate
		}
	}
	if n == 0 {
		return z
	}
	z.Rate, z.Samples = rate/n, int(n)
	if busy > 0 && done > 0 {
		z.ServiceS = busy / done // Little's law on the slots
	}
	z.Offered = z.Rate * z.ServiceS
	limit := p.Limits.Max*int(math.Ceil(f.SlotsPerReplica)) + 1
	if p.Limits.Max <= 0 {
		limit = 4*int(math.Ceil(z.Offered)) + 64
	}
	if z.Offered > 0 {
		z.Slots = SlotsFor(z.Offered, z.ServiceS*f.QueueFactor, p.Cfg.SLOWait.Seconds(), waitEps, limit)
	}
	z.Replicas = int(math.Ceil(float64(z.Slots)/f.SlotsPerReplica - 1e-9))
	return z
}

// maxQueueFactor bounds queueFactor; backlogTail is the probability below
// which a queue is too long for M/M/c even stretched by maxQueueFactor
// (P(queue ≥ n) = Erlang C · ρⁿ): a backlog left by a start under load or a
// shift, which would otherwise hold the factor at its bound for the whole
// lookback.
const (
	maxQueueFactor = 4
	backlogTail    = 1e-3
)

// queuePrior is the weight, in queued requests, of the M/M/c prior in
// queueFactor: with fewer observed or predicted, the factor stays near 1.
const queuePrior = 10

// queueFactor calibrates the M/M/c model on this load: the queue observed
// over s against the mean queue M/M/c predicts for each sample's ready
// slots and offered load (Erlang C · a / (c − a)). Point samples of the
// queue see its time average (PASTA), so the ratio of sums estimates how
// much longer (or shorter) waits are than the model's: more variable
// service times or correlated arrivals give more than 1, the conversation
// trace's service times (squared coefficient of variation 0.5) less. The
// ratio is shrunk towards 1 by queuePrior and clamped to [0.5,
// maxQueueFactor]. Samples with capacity below the load, a backlog queue
// (see backlogTail) or slots just filled from a queue say nothing about
// the stationary queue and are skipped.
func (p *PredictivePolicy) queueFactor(s []Observation, f Forecast) float64 {
	var seen, want float64
	g := f
	g.QueueFactor = 1
	for i, o := range s {
		if o.Slots <= 0 || o.Missing > 0 || math.IsNaN(o.QueueDepth) || filledFromQueue(s, i) {
			continue
		}
		a := p.steadyAt(s, i, steadyWindow, g).Offered
		c := float64(o.Slots)
		if a <= 0 || a >= c {
			continue
		}
		pw := ErlangC(o.Slots, a)
		if pw*math.Pow(a/c, o.QueueDepth/maxQueueFactor) < backlogTail {
			continue // a backlog, not the stationary queue
		}
		seen += o.QueueDepth
		want += pw * a / (c - a)
	}
	return min(maxQueueFactor, max(0.5, (seen+queuePrior)/(want+queuePrior)))
}

// filledFromQueue reports whether s[i] or the sample before it saw new
// slots filled from a queue: they all start at once and their completions
// lag a service time behind, so such samples overstate in flight / done.
func filledFromQueue(s []Observation, i int) bool {
	for k := i; k >= max(1, i-1); k-- {
		if s[k].Slots > s[k-1].Slots && s[k-1].QueueDepth > 0 {
			return true
		}
	}
	return false
}

// steadyDown is the replica count scale-in may go to under steady
// arrivals: the steady sizing of the offered load averaged over the whole
// down window, or cur when data in it is missing.
func (p *PredictivePolicy) steadyDown(s []Observation, cur int, now time.Time, f Forecast) int {
	var win []Observation
	for _, o := range s {
		if now.Sub(o.Time) > p.Cfg.DownWindow {
			continue
		}
		if o.Missing > 0 || math.IsNaN(o.Load()) {
			return cur
		}
		win = append(win, o)
	}
	if len(win) == 0 {
		return cur
	}
	return p.steadyAt(win, len(win)-1, p.Cfg.DownWindow, f).Replicas
}

// steadyUp is the steady sizing for scale-out: Erlang C on the offered load
// of the steady window, or of the last minute when its arrivals exceed the
// window's rate by more than three standard deviations of Poisson counting
// (a real shift, not noise); plus the slots that drain the queue within
// backlogDrain. A queue the headroom absorbs adds nothing: under Poisson
// arrivals short queues are expected, and sizing on each would order a
// replica for every fluctuation.
func (p *PredictivePolicy) steadyUp(s []Observation, cur int, f Forecast) (SteadySizing, float64, int) {
	last := len(s) - 1
	z := p.steadyAt(s, last, steadyWindow, f)
	short := p.steadyAt(s, last, time.Minute, f)
	if short.Rate > z.Rate && z.Rate > 0 {
		// Arrivals in the last minute (each rate covers one interval)
		// against the window's rate.
		iv := p.Interval.Seconds()
		if iv <= 0 {
			iv = 15
		}
		span := float64(short.Samples) * iv
		want := z.Rate * span
		if (short.Rate*span-want)/math.Sqrt(want) > 3 {
			z = short
		}
	}
	queue := 0.0
	o := s[last]
	breach := o.QueueDepth > 0 && o.Slots > 0 && o.QueueDepth*z.ServiceS/float64(o.Slots) > p.Cfg.SLOWait.Seconds()
	if breach {
		// The queue breaks the wait SLO now: a backlog (a start under load, a
		// shift the window has not caught up with). Size for the flow of
		// the last minute, if higher, and drain the backlog.
		if short.Rate > z.Rate {
			z.Rate = short.Rate
			z.Offered = z.Rate * z.ServiceS
		}
		// The backlog's work (queue × service time) must be done, beyond
		// the flow, by the ready slots over the next cold start plus
		// backlogDrain and by the slots ordered (current and Erlang
		// sizing) over backlogDrain once they are ready; replicas ordered
		// now do the rest within backlogDrain. A start-up backlog must not
		// order replicas that sit idle through the scale-down delay once
		// the capacity already ordered has drained it.
		drain := backlogDrain.Seconds()
		ordered := float64(max(cur, z.Replicas)) * f.SlotsPerReplica
		ready := float64(o.Slots)
		spare := (ready-z.Offered)*(p.Cfg.ColdStart.Seconds()+drain) + max(0, ordered-ready)*drain
		queue = max(0, o.QueueDepth*z.ServiceS-spare) / drain
	}
	want := z.Replicas
	if queue > 0 {
		want = max(cur, z.Replicas) + int(math.Ceil(queue/f.SlotsPerReplica-1e-9))
	}
	return z, queue, want
}

func (p *PredictivePolicy) decideSteady(obs Observation, st State, now time.Time, s []Observation, f Forecast) Decision {
	cur := st.Current
	f.QueueFactor = p.queueFactor(s, f)
	z, queue, want := p.steadyUp(s, cur, f)
	rule := fmt.Sprintf("steady arrivals (burstiness %.3f): %.2f/s × %.2fs = %.1f erlangs -> %d slots (Erlang C, P(wait > %s) ≤ %g, queue factor %.2f), queue %.0f drains in %s with %.1f slots -> %d",
		f.Burstiness, z.Rate, z.ServiceS, z.Offered, z.Slots, p.Cfg.SLOWait, waitEps, f.QueueFactor, obs.QueueDepth, backlogDrain, queue, want)
	if want > cur {
		return p.Limits.Finish(cur, want, "predictive", rule, st, now)
	}
	if obs.Missing > 0 {
		return p.Limits.Finish(cur, cur, "", "", st, now).withNote(fmt.Sprintf("%d replicas missing: no scale-down", obs.Missing))
	}
	down := max(want, p.steadyDown(s, cur, now, f))
	if down >= cur {
		return p.Limits.Finish(cur, cur, "", "", st, now).withNote(rule)
	}
	return p.Limits.Finish(cur, down, "predictive", rule, st, now)
}
