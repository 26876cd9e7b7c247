package sim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aurax/aurax/scaling"
)

// Baseline policy names.
const (
	HPA    = "hpa"
	KPA    = "kpa"
	RunPod = "runpod"
	Static = "static"
)

// NewPolicy returns a policy by name: the controller's own (thresholds,
// target, predictive), a baseline (hpa, kpa, runpod) or static:N.
func NewPolicy(name string, cfg scaling.Config) (scaling.Policy, error) {
	cfg = cfg.Resolved()
	lim := scaling.Limits{Min: cfg.MinReplicas, Max: cfg.MaxReplicas}
	switch {
	case name == HPA:
		return &HPAPolicy{TargetPercent: 70, Tolerance: 0.1, Window: 300 * time.Second, Period: 15 * time.Second, Limits: lim}, nil
	case name == KPA:
		return &KPAPolicy{TargetPerReplica: 0.7 * float64(cfg.Predictive.SlotsPerReplica), Stable: 60 * time.Second,
			Panic: 6 * time.Second, Period: 2 * time.Second, Limits: lim}, nil
	case name == RunPod:
		return &RunPodPolicy{ScalerValue: 4, IdleTimeout: 5 * time.Second, Period: 5 * time.Second, Limits: lim}, nil
	case strings.HasPrefix(name, Static+":"):
		n, err := strconv.Atoi(strings.TrimPrefix(name, Static+":"))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("policy %q: want static:N with N >= 1", name)
		}
		return StaticPolicy(n), nil
	}
	return scaling.NewPolicy(name, cfg)
}

// HPAPolicy is the Kubernetes HorizontalPodAutoscaler on average slot
// utilisation (the seed's hpa.yaml: CPU at 70 %): desired =
// ceil(ready × metric / target), no change within ±Tolerance, scale-up at
// most max(2×, +4) per period, scale-down to the highest recommendation of
// the last Window.
type HPAPolicy struct {
	TargetPercent float64
	Tolerance     float64
	Window        time.Duration
	Period        time.Duration
	Limits        scaling.Limits
}

// Name implements scaling.Policy.
func (p *HPAPolicy) Name() string { return HPA }

// Lookback implements scaling.Policy.
func (p *HPAPolicy) Lookback() time.Duration { return p.Window }

// Interval implements Interval: HPA's sync period.
func (p *HPAPolicy) Interval() time.Duration { return p.Period }

// Recommend is HPA's formula for one observation at current replicas.
func (p *HPAPolicy) Recommend(o scaling.Observation, current int) int {
	if o.Replicas == 0 || math.IsNaN(o.CPUPercent) {
		return current
	}
	ratio := o.CPUPercent / p.TargetPercent
	if math.Abs(ratio-1) <= p.Tolerance {
		return current
	}
	return int(math.Ceil(ratio * float64(o.Replicas)))
}

// Decide implements scaling.Policy.
func (p *HPAPolicy) Decide(obs scaling.Observation, st scaling.State, now time.Time) scaling.Decision {
	cur := st.Current
	want := p.Recommend(obs, cur)
	if want > cur {
		want = min(want, max(2*cur, cur+4))
	} else {
		// The recorded recommendations are recomputed from the history.
		for _, o := range st.History {
			if now.Sub(o.Time) <= p.Window {
				want = max(want, p.Recommend(o, o.Replicas))
			}
		}
		want = min(want, cur)
	}
	return finish(cur, want, p.Limits, "cpu", "hpa")
}

// KPAPolicy is Knative's pod autoscaler on concurrency (in flight plus
// queued): stable window 60 s, panic window 6 s, panic when the panic-window
// desire is at least twice the ready replicas, no scale-down while panicking,
// scale-down at most halves.
type KPAPolicy struct {
	TargetPerReplica float64
	Stable, Panic    time.Duration
	Period           time.Duration
	Limits           scaling.Limits
}

// Name implements scaling.Policy.
func (p *KPAPolicy) Name() string { return KPA }

// Lookback implements scaling.Policy.
func (p *KPAPolicy) Lookback() time.Duration { return p.Stable }

// Interval implements Interval: KPA's tick.
func (p *KPAPolicy) Interval() time.Duration { return p.Period }

func (p *KPAPolicy) avg(obs scaling.Observation, st scaling.State, now time.Time, w time.Duration) float64 {
	sum, n := obs.Load(), 1.0
	for _, o := range st.History {
		if now.Sub(o.Time) < w {
			sum += o.Load()
			n++
		}
	}
	return sum / n
}

// Decide implements scaling.Policy. Panic mode lasts until a stable window
// passes without the panic condition; the history carries it.
func (p *KPAPolicy) Decide(obs scaling.Observation, st scaling.State, now time.Time) scaling.Decision {
	cur := st.Current
	stable := int(math.Ceil(p.avg(obs, st, now, p.Stable) / p.TargetPerReplica))
	panicDesire := int(math.Ceil(p.avg(obs, st, now, p.Panic) / p.TargetPerReplica))
	ready := max(obs.Replicas, 1)
	// Panic mode starts when the panic-window desire reaches twice the
	// ready replicas and lasts until a whole stable window has passed
	// without that condition: derived from the history, which holds it.
	panicking := panicDesire >= 2*ready
	for i, o := range st.History {
		if panicking || now.Sub(o.Time) >= p.Stable {
			continue
		}
		h := scaling.State{History: st.History[:i]}
		if d := int(math.Ceil(p.avg(o, h, o.Time, p.Panic) / p.TargetPerReplica)); d >= 2*max(o.Replicas, 1) {
			panicking = true
		}
	}
	want := stable
	if panicking {
		want = max(panicDesire, stable, cur)
	}
	if want < cur {
		want = max(want, int(math.Ceil(float64(cur)/2)))
	}
	return finish(cur, want, p.Limits, "queue", "kpa")
}

// RunPodPolicy is RunPod Serverless' REQUEST_COUNT scaler:
// ceil((inQueue + inProgress) / ScalerValue) workers; a worker idle for
// IdleTimeout stops.
type RunPodPolicy struct {
	ScalerValue float64
	IdleTimeout time.Duration
	Period      time.Duration
	Limits      scaling.Limits
}

// Name implements scaling.Policy.
func (p *RunPodPolicy) Name() string { return RunPod }

// Lookback implements scaling.Policy.
func (p *RunPodPolicy) Lookback() time.Duration { return p.IdleTimeout }

// Interval implements Interval.
func (p *RunPodPolicy) Interval() time.Duration { return p.Period }

// Decide implements scaling.Policy.
func (p *RunPodPolicy) Decide(obs scaling.Observation, st scaling.State, now time.Time) scaling.Decision {
	cur := st.Current
	want := int(math.Ceil(obs.Load() / p.ScalerValue))
	if want < cur {
		// workers stop only after being idle for IdleTimeout
		for _, o := range st.History {
			if now.Sub(o.Time) <= p.IdleTimeout {
				want = max(want, int(math.Ceil(o.Load()/p.ScalerValue)))
			}
		}
		want = min(want, cur)
	}
	return finish(cur, want, p.Limits, "queue", "runpod")
}

// StaticPolicy always wants N replicas.
type StaticPolicy int

// Name implements scaling.Policy.
func (p StaticPolicy) Name() string { return fmt.Sprintf("static:%d", int(p)) }

// Lookback implements scaling.Policy.
func (p StaticPolicy) Lookback() time.Duration { return 0 }

// Decide implements scaling.Policy.
func (p StaticPolicy) Decide(_ scaling.Observation, st scaling.State, _ time.Time) scaling.Decision {
	return finish(st.Current, int(p), scaling.Limits{Min: int(p), Max: int(p)}, "", "static")
}

func finish(cur, want int, lim scaling.Limits, reason, rule string) scaling.Decision {
	want = min(max(want, lim.Min), lim.Max)
	d := scaling.Decision{Desired: want, Direction: scaling.None}
	if want > cur {
		d.Direction, d.Reason, d.Rule = scaling.Up, reason, rule
	} else if want < cur {
		d.Direction, d.Reason, d.Rule = scaling.Down, reason, rule
	}
	return d
}
