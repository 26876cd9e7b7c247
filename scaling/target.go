package scaling

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// TargetPolicy is target tracking on concurrency per replica: outside the
// band [ScaleDownThreshold, ScaleUpThreshold] of utilisation it sizes the
// service so that utilisation returns to Utilization; scale-down takes the
// highest recommendation of the stabilization window, as Kubernetes HPA does.
type TargetPolicy struct {
	Cfg    Target
	Limits Limits
}

// Name implements Policy.
func (p *TargetPolicy) Name() string { return PolicyTarget }

// Lookback implements Policy.
func (p *TargetPolicy) Lookback() time.Duration { return p.Cfg.Stabilization }

func (p *TargetPolicy) recommend(o Observation) int {
	return int(math.Ceil(o.Load() / (p.Cfg.TargetConcurrency * p.Cfg.Utilization)))
}

// Decide implements Policy.
func (p *TargetPolicy) Decide(obs Observation, st State, now time.Time) Decision {
	cur := st.Current
	if stale(obs, st, now) || math.IsNaN(obs.Load()) {
		return p.Limits.Finish(cur, cur, "", "", st, now).withNote("stale or unknown load: holding")
	}
	u := obs.Load() / (float64(obs.Replicas) * p.Cfg.TargetConcurrency)
	rule := fmt.Sprintf("concurrency per replica %.2f of target %g", u, p.Cfg.TargetConcurrency)
	switch {
	case u > p.Cfg.ScaleUpThreshold:
		return p.Limits.Finish(cur, max(cur, p.recommend(obs)), "target", fmt.Sprintf("%s > %g", rule, p.Cfg.ScaleUpThreshold), st, now)
	case u < p.Cfg.ScaleDownThreshold && obs.Missing == 0:
		want := 0
		for _, o := range series(obs, st, now, p.Cfg.Stabilization) {
			if o.Missing > 0 || math.IsNaN(o.Load()) {
				want = cur // incomplete data in the window: no scale-down
				break
			}
			want = max(want, p.recommend(o))
		}
		if want >= cur {
			return p.Limits.Finish(cur, cur, "", "", st, now).withNote("stabilization window holds " + strconv.Itoa(want))
		}
		return p.Limits.Finish(cur, want, "target", fmt.Sprintf("%s < %g", rule, p.Cfg.ScaleDownThreshold), st, now)
	}
	return p.Limits.Finish(cur, cur, "", "", st, now).withNote(rule + " within band")
}
