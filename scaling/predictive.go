package scaling

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// The predictive policy's tuning. These were settings
// (scaling.predictive.*) while the experiments that chose them ran; each
// was measured with aurax simulate on the code trace and its variants and
// checked on the held-out conversation trace (SIMULATION.md, attempts 4-6).
const (
	// holtAlpha and holtBeta smooth the level and the trend of the Holt
	// forecast of the arrival rate.
	holtAlpha = 0.5
	holtBeta  = 0.2
	// peakWindow is the memory of the highest arrival rate (bursts come
	// back), and the window the burstiness and the mean + burstZ·σ
	// headroom are measured over.
	peakWindow = 10 * time.Minute
	burstZ     = 2.0
	// burstinessLow and burstinessHigh are the burstiness gate
	// (Forecast.Burstiness): at or below low arrivals are steady and get
	// the Erlang-C sizing (steady.go); at or above high they are bursty:
	// the full peak memory, every queued request a missing slot; the peak
	// memory is weighted linearly in between. The code trace reads
	// 0.7-6.4 in every 10-minute window and variant, conversation 0-0.02.
	burstinessLow  = 0.05
	burstinessHigh = 0.3
	// steadyWindow is the window the steady sizing averages the offered
	// load over (2-3 minutes cost 1-4 % more on conversation).
	steadyWindow = 5 * time.Minute
	// waitEps is the share of requests the steady sizing lets wait longer
	// than slo_wait: what a 0.99 attainment target allows (0.007-0.015
	// keep the goal on every conversation variant).
	waitEps = 0.01
	// backlogDrain is how soon a queue is drained: under steady arrivals
	// one that breaks the wait SLO (steadyUp), between the burstiness
	// thresholds one that is not a burst (backlog.go). 20-40 s give the
	// same outcome on every variant; 1-5 minutes left the start-up backlog
	// in the counted time.
	backlogDrain = 30 * time.Second
)

// PredictivePolicy sizes the service for the arrivals it forecasts over the
// next cold start plus one interval. Under bursty arrivals that is a Holt
// (level and trend) forecast of the arrival rate, never below a share of
// the highest rate of the recent peak window (bursts come back), times the
// measured service time (Little's law: in flight / completion rate), every
// slot busy; under steady arrivals, Erlang C on the offered load
// (steady.go). It scales in only when the measured need, not the forecast,
// has stayed below the current size for the whole down window.
type PredictivePolicy struct {
	Cfg      Predictive
	Limits   Limits
	Interval time.Duration
}

// Name implements Policy.
func (p *PredictivePolicy) Name() string { return PolicyPredictive }

// Lookback implements Policy.
func (p *PredictivePolicy) Lookback() time.Duration {
	// The down window replays the steady sizing at each of its samples,
	// each of which reads its own steady window.
	return max(peakWindow, p.Cfg.DownWindow+steadyWindow, 5*time.Minute)
}

// Forecast is the policy's working, exposed for the decision log and tests.
type Forecast struct {
	Level, Trend, Rate, Peak, ServiceS float64
	Mean, Std                          float64 // of the arrival rate over the peak window
	SlotsPerReplica                    float64
	// MedianServiceS is the median of the per-observation in-flight / done
	// rate: unlike the ratio of sums it ignores the intervals just after
	// capacity grew, when new slots fill at once and completions lag a
	// service time behind. 0 when unknown.
	MedianServiceS float64
	// Burstiness is the excess squared coefficient of variation of the
	// arrival rate over the peak window: the Allan variance of the rates
	// (half the mean squared difference of consecutive ones, so a steady
	// trend does not count) less the Poisson noise of counting (mean rate /
	// interval), over the mean rate squared. 0 for Poisson arrivals at a
	// constant or slowly changing rate, whatever the rate; far above 0 for
	// bursty ones. It does not change when the rate is scaled. NaN when
	// unknown (fewer than three observations in the window).
	Burstiness float64
	// QueueFactor calibrates the steady sizing's M/M/c model (steady.go);
	// 1 when unknown.
	QueueFactor float64
}

func (p *PredictivePolicy) forecast(s []Observation, now time.Time) Forecast {
	f := Forecast{ServiceS: p.Cfg.ServiceTime.Seconds(), SlotsPerReplica: float64(p.Cfg.SlotsPerReplica), Burstiness: math.NaN(), QueueFactor: 1}
	if o := s[len(s)-1]; o.Replicas > 0 && o.Slots > 0 {
		f.SlotsPerReplica = float64(o.Slots) / float64(o.Replicas)
	}
	var busy, done, n, sum, sq, span, diff2, prevRate float64
	var ratios []float64
	init := false
	var prev, first time.Time
	for _, o := range s {
		if !math.IsNaN(o.InFlight) && !math.IsNaN(o.DoneRate) {
			busy += o.InFlight
			done += o.DoneRate
			if o.InFlight > 0 && o.DoneRate > 0 {
				ratios = append(ratios, o.InFlight/o.DoneRate)
			}
		}
		if now.Sub(o.Time) <= peakWindow && !math.IsNaN(o.ArrivalRate) {
			if first.IsZero() {
				first = o.Time
			}
			span = o.Time.Sub(first).Seconds()
			f.Peak = max(f.Peak, o.ArrivalRate)
			if n > 0 {
				d := o.ArrivalRate - prevRate
				diff2 += d * d
			}
			prevRate = o.ArrivalRate
			n, sum, sq = n+1, sum+o.ArrivalRate, sq+o.ArrivalRate*o.ArrivalRate
		}
		if math.IsNaN(o.ArrivalRate) {
			continue
		}
		if !init {
			f.Level, f.Trend, prev, init = o.ArrivalRate, 0, o.Time, true
			continue
		}
		dt := o.Time.Sub(prev).Seconds()
		prev = o.Time
		if dt <= 0 {
			continue
		}
		lvl := holtAlpha*o.ArrivalRate + (1-holtAlpha)*(f.Level+f.Trend*dt)
		f.Trend = holtBeta*(lvl-f.Level)/dt + (1-holtBeta)*f.Trend
		f.Level = lvl
	}
	if n > 0 {
		f.Mean = sum / n
		f.Std = math.Sqrt(max(0, sq/n-f.Mean*f.Mean))
	}
	if n > 2 && f.Mean > 0 && span > 0 {
		allan := diff2 / (2 * (n - 1))
		poisson := f.Mean / (span / (n - 1)) // Var(count/T) = mean/T
		f.Burstiness = max(0, allan-poisson) / (f.Mean * f.Mean)
	}
	if done > 0 && busy > 0 {
		f.ServiceS = busy / done
	}
	if len(ratios) > 0 {
		slices.Sort(ratios)
		f.MedianServiceS = ratios[len(ratios)/2]
	}
	h := (p.Cfg.ColdStart + p.Interval).Seconds()
	f.Rate = max(0, f.Level+f.Trend*h)
	return f
}

// need is the replicas for a rate and a load, every slot busy.
func (p *PredictivePolicy) need(rate, load float64, f Forecast) int {
	slots := max(rate*f.ServiceS, load)
	return int(math.Ceil(slots/f.SlotsPerReplica - 1e-9))
}

// peakWeight is the share of the peak window's highest rate planned for,
// by how bursty the arrivals are. Poisson-like arrivals (burstiness near 0)
// get none: their peak is noise the mean + zσ covers; bursty ones
// (burstiness far above 0) keep it all, since their bursts are shorter
// than a cold start. Unknown burstiness keeps it all too.
func (p *PredictivePolicy) peakWeight(f Forecast) float64 {
	if math.IsNaN(f.Burstiness) {
		return 1
	}
	return min(1, max(0, (f.Burstiness-burstinessLow)/(burstinessHigh-burstinessLow)))
}

// bursty reports whether the burstiness gate sees arrivals bursty enough
// for the full peak memory; then a queue always counts in full, as the
// front of a burst that comes back (see backlog.go).
func (p *PredictivePolicy) bursty(f Forecast) bool {
	return f.Burstiness >= burstinessHigh
}

// Decide implements Policy.
func (p *PredictivePolicy) Decide(obs Observation, st State, now time.Time) Decision {
	cur := st.Current
	if stale(obs, st, now) || math.IsNaN(obs.Load()) {
		return p.Limits.Finish(cur, cur, "", "", st, now).withNote("stale or unknown load: holding")
	}
	s := series(obs, st, now, p.Lookback())
	f := p.forecast(s, now)
	w := p.peakWeight(f)
	// Steady arrivals get the steady sizing; so does a start, until three
	// observations can tell noise from bursts: it sizes for the flow it
	// measures and drains a queue that breaks the SLO, where the bursty
	// path would plan on one sample and the configured service time.
	if w == 0 || math.IsNaN(f.Burstiness) {
		return p.decideSteady(obs, st, now, s, f)
	}
	steady := w < 1
	if steady && f.MedianServiceS > 0 {
		f.ServiceS = f.MedianServiceS
	}
	plan := max(f.Rate, w*f.Peak, f.Mean+burstZ*f.Std)
	if !math.IsNaN(obs.ArrivalRate) {
		plan = max(plan, obs.ArrivalRate)
	}
	load := p.upLoad(s, cur, f)
	want := p.need(plan, load, f)
	rule := fmt.Sprintf("forecast %.2f/s, peak %.2f/s, mean+%gσ %.2f/s, service %.2fs, load %.0f -> %d", f.Rate, f.Peak, burstZ, f.Mean+burstZ*f.Std, f.ServiceS, load, want)
	if want > cur {
		return p.Limits.Finish(cur, want, "predictive", rule, st, now)
	}
	if obs.Missing > 0 {
		return p.Limits.Finish(cur, cur, "", "", st, now).withNote(fmt.Sprintf("%d replicas missing: no scale-down", obs.Missing))
	}
	// Scale in only below the measured need of the whole down window.
	measured := want
	for j, o := range s {
		if now.Sub(o.Time) > p.Cfg.DownWindow {
			continue
		}
		if o.Missing > 0 || math.IsNaN(o.Load()) {
			measured = cur
			break
		}
		r := o.ArrivalRate
		if math.IsNaN(r) {
			r = 0
		}
		load := p.sampleLoad(s, j, -1, f)
		if steady {
			// Under steady arrivals a past sample needed its flow plus the
			// slots that drain its queue within backlogDrain: slots saturated
			// while a backlog (a start-up queue, say) drained are not need,
			// and must not hold replicas for the whole down window.
			q := max(0, o.QueueDepth)
			load = min(load, r*f.ServiceS+min(1, f.ServiceS/backlogDrain.Seconds())*q)
		}
		measured = max(measured, p.need(r, load, f))
	}
	if measured >= cur {
		return p.Limits.Finish(cur, cur, "", "", st, now).withNote(rule)
	}
	return p.Limits.Finish(cur, measured, "predictive", rule, st, now)
}
