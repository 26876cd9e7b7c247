package sim

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/aurax/aurax/scaling"
)

// Options configure one simulation.
type Options struct {
	Model    Model
	Scaling  scaling.Config // replica bounds, interval, policy parameters
	Price    float64        // USD per replica-hour
	Target   float64        // SLO attainment target (the oracle's goal)
	Sample   float64        // seconds between timeline points
	Progress func(policy string, frac float64)
}

// DefaultOptions are SIMULATION.md's model: 4 slots, prefill 4,000 tokens/s,
// decode 40 tokens/s per request, 60 s cold start, SLO on a queue wait of
// 2 s, 300 s warm-up, $0.20 per replica-hour, target 0.99, the prod profile.
func DefaultOptions() Options {
	cfg := scaling.DefaultConfig()
	cfg.Profile = scaling.ProfileProd
	return Options{
		Model: Model{Slots: 4, PrefillTPS: 4000, DecodeTPS: 40, ColdStart: 60, MaxWait: 120,
			SLOWait: 2, Warmup: 300, LatencyWin: 60},
		Scaling: cfg,
		Price:   0.20,
		Target:  0.99,
		Sample:  15,
	}
}

// Point is one timeline sample.
type Point struct {
	T        float64 `json:"t"`
	Arrivals int     `json:"arrivals"` // since the previous point
	Queue    int     `json:"queue"`
	Replicas int     `json:"replicas"` // billed: starting, serving or draining
	Ready    int     `json:"ready"`
}

// Result is one policy's outcome over the counted part of the trace.
type Result struct {
	Policy        string  `json:"policy"`
	Requests      int     `json:"requests"`
	Completed     int     `json:"completed"`
	Dropped       int     `json:"dropped"`
	SLOAttainment float64 `json:"slo_attainment"`
	P50LatencyS   float64 `json:"p50_latency_s"`
	P95LatencyS   float64 `json:"p95_latency_s"`
	P99LatencyS   float64 `json:"p99_latency_s"`
	P99WaitS      float64 `json:"p99_wait_s"`
	ReplicaHours  float64 `json:"replica_hours"`
	CostUSD       float64 `json:"cost_usd"`
	ScaleEvents   int     `json:"scale_events"`
	CostVsOracle  float64 `json:"cost_vs_oracle"`
	Timeline      []Point `json:"-"`
}

// epoch anchors the virtual clock.
var epoch = time.Date(2023, 11, 16, 0, 0, 0, 0, time.UTC)

func at(t float64) time.Time { return epoch.Add(time.Duration(t * float64(time.Second))) }

// Interval is implemented by policies that tick at their own period (the
// baselines); the others tick at the configured interval.
type Interval interface{ Interval() time.Duration }

type sampler struct {
	e      *engine
	period float64
	next   float64
	lastN  int
	points []Point
}

// runTo advances the engine to t, sampling the timeline on the way.
func (s *sampler) runTo(t float64) {
	for s.next <= t {
		s.e.runUntil(s.next)
		_, ready, billed := s.e.counts()
		s.points = append(s.points, Point{T: s.next, Arrivals: s.e.next - s.lastN, Queue: len(s.e.queue), Replicas: billed, Ready: ready})
		s.lastN = s.e.next
		s.next += s.period
	}
	s.e.runUntil(t)
}

// Simulate replays reqs through pol.
func Simulate(reqs []Request, pol scaling.Policy, opt Options) Result {
	cfg := opt.Scaling.Resolved()
	iv := cfg.Interval.Seconds()
	if p, ok := pol.(Interval); ok {
		iv = p.Interval().Seconds()
	}
	e := newEngine(opt.Model, reqs, cfg.MinReplicas)
	s := &sampler{e: e, period: opt.Sample}
	st := scaling.State{Current: cfg.MinReplicas, StaleAfter: cfg.StaleAfter}
	last := reqs[len(reqs)-1].At
	horizon := last + 3600
	events := 0
	prev := 0.0
	for t := iv; ; t += iv {
		s.runTo(t)
		obs := e.observe(at(t), t-prev)
		prev = t
		now := at(t)
		d := pol.Decide(obs, st, now)
		if d.Desired != st.Current {
			e.setTarget(d.Desired, opt.Model.ColdStart)
			events++
			st.Applied(d.Desired, now)
		}
		st.Observed(obs, now, pol.Lookback()+cfg.Interval)
		if opt.Progress != nil && int(t/iv)%200 == 0 {
			opt.Progress(pol.Name(), min(1, t/last))
		}
		if (e.finished() && t >= last) || t > horizon {
			break
		}
	}
	return e.result(pol.Name(), events, s.points, opt)
}

// observe is what the controller would see: ready replicas, queue, in
// flight, rates over the last dt seconds, p95 over the latency window,
// slot utilisation as CPU and GPU (memory is not modelled: unknown).
func (e *engine) observe(t time.Time, dt float64) scaling.Observation {
	_, ready, _ := e.counts()
	busy := 0
	for _, r := range e.reps {
		busy += r.busy()
	}
	o := scaling.Unknown(t)
	o.Replicas, o.Sources = ready, 1
	o.Slots = ready * e.m.Slots
	o.QueueDepth = float64(len(e.queue))
	o.InFlight = float64(busy)
	if dt > 0 {
		o.ArrivalRate = float64(e.arrivals) / dt
		o.DoneRate = float64(e.done) / dt
	}
	o.ErrorRate = 0
	if e.arrivals > 0 {
		o.ErrorRate = float64(e.drops) / float64(e.arrivals)
	}
	o.CPUPercent = 0
	if e.slotSec > 0 {
		o.CPUPercent = min(100, 100*e.busySec/e.slotSec)
	}
	o.GPUPercent = o.CPUPercent
	var lat []float64
	keep := e.recent[:0]
	for i := 0; i+1 < len(e.recent); i += 2 {
		end, l := e.recent[i], e.recent[i+1]
		if end > e.now {
			keep = append(keep, end, l) // not finished yet
			continue
		}
		if end > e.now-e.m.LatencyWin {
			keep = append(keep, end, l)
			lat = append(lat, l)
		}
	}
	e.recent = keep
	o.P95LatencyS = 0
	if len(lat) > 0 {
		slices.Sort(lat)
		o.P95LatencyS = quantile(lat, 0.95)
	}
	e.arrivals, e.done, e.drops, e.busySec, e.slotSec = 0, 0, 0, 0, 0
	return o
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// result summarises the counted requests. Requests still unsettled at the
// horizon count as dropped, so completed + dropped = requests always.
func (e *engine) result(name string, events int, points []Point, opt Options) Result {
	r := Result{Policy: name, ScaleEvents: events, Timeline: points}
	var lat, waits []float64
	met := 0
	for i, q := range e.reqs {
		if q.At < opt.Model.Warmup {
			continue
		}
		r.Requests++
		if e.dropped[i] || e.end[i] < 0 || e.end[i] > e.now {
			r.Dropped++
			// It waited until it was dropped (or until the horizon):
			// finite, so that JSON can carry the p99.
			w := e.now - q.At
			if e.dropped[i] && opt.Model.MaxWait > 0 {
				w = opt.Model.MaxWait
			}
			waits = append(waits, w)
			continue
		}
		r.Completed++
		w := e.start[i] - q.At
		waits = append(waits, w)
		lat = append(lat, e.end[i]-q.At)
		if w <= opt.Model.SLOWait+1e-9 {
			met++
		}
	}
	slices.Sort(lat)
	slices.Sort(waits)
	if r.Requests > 0 {
		r.SLOAttainment = float64(met) / float64(r.Requests)
	}
	r.P50LatencyS, r.P95LatencyS, r.P99LatencyS = quantile(lat, 0.5), quantile(lat, 0.95), quantile(lat, 0.99)
	r.P99WaitS = quantile(waits, 0.99)
	r.ReplicaHours = e.replicaSec / 3600
	r.CostUSD = r.ReplicaHours * opt.Price
	return r
}

// Oracle is the clairvoyant reference: for each window of 60 s it picks the
// fewest replicas (within the configured bounds) with which that window's
// arrivals meet the SLO target, knowing the future, with capacity ready at
// the window's start and the queue carried over between windows.
func Oracle(reqs []Request, opt Options) Result {
	const window = 60.0
	cfg := opt.Scaling.Resolved()
	e := newEngine(opt.Model, reqs, cfg.MinReplicas)
	s := &sampler{e: e, period: opt.Sample}
	last := reqs[len(reqs)-1].At
	events, cur := 0, cfg.MinReplicas
	for t0 := 0.0; t0 <= last; t0 += window {
		a, b := e.next, e.next
		for b < len(reqs) && reqs[b].At < t0+window {
			b++
		}
		n := cfg.MinReplicas
		if b > a {
			lo, hi := cfg.MinReplicas, cfg.MaxReplicas
			for lo < hi {
				mid := (lo + hi) / 2
				if e.tryWindow(mid, a, b) >= opt.Target {
					hi = mid
				} else {
					lo = mid + 1
				}
			}
			n = lo
		}
		if n != cur {
			events++
			cur = n
		}
		e.setTarget(n, 0)
		s.runTo(t0 + window)
		if opt.Progress != nil {
			opt.Progress("oracle", min(1, t0/last))
		}
	}
	for end := e.now + 3600; !e.finished() && e.now < end; {
		s.runTo(e.now + window)
	}
	return e.result("oracle", events, s.points, opt)
}

// tryWindow returns the share of requests a..b-1 that meet the SLO with n
// replicas ready from now on (FIFO: later arrivals never delay them).
func (e *engine) tryWindow(n, a, b int) float64 {
	c := e.clone()
	c.setTarget(n, 0)
	for {
		pending := c.next < b || (len(c.queue) > 0 && c.queue[0] < b)
		if !pending || math.IsInf(c.nextEvent(math.Inf(1)), 1) {
			break
		}
		c.step(math.Inf(1))
	}
	met := 0
	for i := a; i < b; i++ {
		if !c.dropped[i] && c.start[i]-c.reqs[i].At <= c.m.SLOWait+1e-9 {
			met++
		}
	}
	return float64(met) / float64(b-a)
}

// String renders a result as one table row.
func (r Result) String() string {
	return fmt.Sprintf("%-12s %7d %7.4f %8.2f %9.2f %8.2f %6d %6.2f", r.Policy, r.Requests, r.SLOAttainment,
		r.P95LatencyS, r.ReplicaHours, r.CostUSD, r.ScaleEvents, r.CostVsOracle)
}
