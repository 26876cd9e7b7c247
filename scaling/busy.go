package scaling

import (
	"fmt"
	"math"
	"time"
)

// Busy-slot sizing, the predictive policy's mode when SteadyWindow > 0.
//
// The size is the largest of three needs, in slots:
//   - steady: the busy slots measured directly (in flight + queued, averaged
//     over SteadyWindow: Little's L = λW without estimating λ or W), plus the
//     Erlang-C (square-root staffing) headroom with which at most WaitEps of
//     requests wait longer than SLOWait;
//   - burst: the highest arrival rate of PeakWindow times the measured service
//     time, remembered in full for BurstHold and then halving every
//     BurstHalfLife, so that a start-up overload or one noisy interval does
//     not hold capacity for the whole window;
//   - forecast: the Holt forecast of the arrival rate over the next cold
//     start times the service time, and the load in the system right now.
//
// Scale-out follows the need at once. Scale-in goes to the highest need the
// sizing (steady + burst, not the forecast) gave over DownWindow: hysteresis
// on the smoothed signal.

// BusySizing is the working of one busy-slot sizing, for the decision log
// and tests.
type BusySizing struct {
	Busy        float64 // mean in-flight + queued over the steady window
	SteadySlots int     // Busy plus Erlang-C headroom
	BurstRate   float64 // decayed peak arrival rate
	BurstSlots  float64 // BurstRate × service time
	BurstLoad   float64 // decayed peak in-flight + queued
	Slots       float64 // the largest of the three
}

// burstWeight is how much of a peak age old is still remembered.
func (p *PredictivePolicy) burstWeight(age time.Duration) float64 {
	if age <= p.Cfg.BurstHold || p.Cfg.BurstHalfLife <= 0 {
		return 1
	}
	return math.Exp2(-float64(age-p.Cfg.BurstHold) / float64(p.Cfg.BurstHalfLife))
}

// sizeAt is the steady and burst sizing as seen at s[j]'s time, from s[:j+1].
func (p *PredictivePolicy) sizeAt(s []Observation, j int, f Forecast) BusySizing {
	var z BusySizing
	t := s[j].Time
	var sum, n float64
	for i := j; i >= 0; i-- {
		o := s[i]
		age := t.Sub(o.Time)
		if age <= p.Cfg.SteadyWindow && !math.IsNaN(o.Load()) {
			sum, n = sum+p.busy(o, f), n+1
		}
		if age <= p.Cfg.PeakWindow && !math.IsNaN(o.ArrivalRate) {
			z.BurstRate = max(z.BurstRate, p.Cfg.PeakWeight*o.ArrivalRate*p.burstWeight(age))
		}
		if age <= p.Cfg.PeakWindow && !math.IsNaN(o.Load()) {
			z.BurstLoad = max(z.BurstLoad, p.Cfg.LoadPeakWeight*o.Load()*p.burstWeight(age))
		}
		if age > max(p.Cfg.SteadyWindow, p.Cfg.PeakWindow) {
			break
		}
	}
	if n > 0 {
		z.Busy = sum / n
	}
	limit := int(math.Ceil(float64(p.Limits.Max)*f.SlotsPerReplica)) + 1
	if p.Limits.Max <= 0 {
		limit = int(math.Ceil(z.Busy))*4 + 64
	}
	if z.Busy > 0 {
		z.SteadySlots = SlotsFor(z.Busy, f.ServiceS, p.Cfg.SLOWait.Seconds(), p.Cfg.WaitEps, limit)
	}
	z.BurstSlots = z.BurstRate * f.ServiceS / p.Cfg.Utilization
	z.Slots = max(float64(z.SteadySlots), z.BurstSlots, z.BurstLoad)
	return z
}

// busy is the slots o's load asks for: in flight, plus the queue, each
// queued request as the share of a slot that drains it within QueueDrain.
func (p *PredictivePolicy) busy(o Observation, f Forecast) float64 {
	w := 1.0
	if p.Cfg.QueueDrain > 0 {
		w = min(1, f.ServiceS/p.Cfg.QueueDrain.Seconds())
	}
	return o.InFlight + w*o.QueueDepth
}

func (p *PredictivePolicy) replicas(slots float64, f Forecast) int {
	return int(math.Ceil(slots/f.SlotsPerReplica - 1e-9))
}

func (p *PredictivePolicy) decideBusy(obs Observation, st State, now time.Time, s []Observation, f Forecast) Decision {
	cur := st.Current
	z := p.sizeAt(s, len(s)-1, f)
	rate := f.Rate
	if !math.IsNaN(obs.ArrivalRate) {
		rate = max(rate, obs.ArrivalRate)
	}
	up := max(z.Slots, rate*f.ServiceS/p.Cfg.Utilization, obs.Load())
	want := p.replicas(up, f)
	rule := fmt.Sprintf("busy %.1f slots -> %d with Erlang-C headroom (service %.2fs), burst %.2f/s -> %.1f slots, forecast %.2f/s, load %.0f -> %d",
		z.Busy, z.SteadySlots, f.ServiceS, z.BurstRate, z.BurstSlots, f.Rate, obs.Load(), want)
	if want > cur {
		return p.Limits.Finish(cur, want, "predictive", rule, st, now)
	}
	if obs.Missing > 0 {
		return p.Limits.Finish(cur, cur, "", "", st, now).withNote(fmt.Sprintf("%d replicas missing: no scale-down", obs.Missing))
	}
	// Scale in only to the highest sizing of the whole down window.
	measured := p.replicas(z.Slots, f)
	for j := range s {
		if now.Sub(s[j].Time) > p.Cfg.DownWindow {
			continue
		}
		if s[j].Missing > 0 || math.IsNaN(s[j].Load()) {
			measured = cur
			break
		}
		measured = max(measured, p.replicas(p.sizeAt(s, j, f).Slots, f))
	}
	if measured >= cur {
		return p.Limits.Finish(cur, cur, "", "", st, now).withNote(rule)
	}
	return p.Limits.Finish(cur, measured, "predictive", rule, st, now)
}
