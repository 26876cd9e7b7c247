package scaling

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Rule is one row of a threshold table: Signal Op Value held For, then Step
// replicas (negative to remove). Advisory rules are reported, never acted on.
type Rule struct {
	Signal   string
	Op       string // >, >=, <, <=, ==
	Value    float64
	For      time.Duration
	Step     int
	Advisory bool
	Text     string
}

// signals a rule may read, and the event reason each maps to.
var ruleSignals = map[string]string{
	"cpu_percent":       "cpu",
	"memory_percent":    "memory",
	"queue_depth":       "queue",
	"queue_per_replica": "queue",
	"p95_latency_s":     "latency",
	"error_rate":        "errors",
}

// ParseRule parses "SIGNAL OP VALUE [for DURATION] [step N | advisory]",
// e.g. "queue_depth > 10 step 2" or "p95_latency_s < 2 for 15m advisory".
func ParseRule(s string) (Rule, error) {
	f := strings.Fields(s)
	r := Rule{Text: strings.Join(f, " ")}
	if len(f) < 3 {
		return r, fmt.Errorf("rule %q: want SIGNAL OP VALUE [for DURATION] [step N|advisory]", s)
	}
	if _, ok := ruleSignals[f[0]]; !ok {
		return r, fmt.Errorf("rule %q: unknown signal %q", s, f[0])
	}
	r.Signal = f[0]
	switch f[1] {
	case ">", ">=", "<", "<=", "==":
		r.Op = f[1]
	default:
		return r, fmt.Errorf("rule %q: unknown comparison %q", s, f[1])
	}
	v, err := strconv.ParseFloat(f[2], 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return r, fmt.Errorf("rule %q: value %q is not a number", s, f[2])
	}
	r.Value = v
	rest := f[3:]
	for len(rest) > 0 {
		switch {
		case rest[0] == "for" && len(rest) > 1:
			d, err := time.ParseDuration(rest[1])
			if err != nil || d < 0 {
				return r, fmt.Errorf("rule %q: duration %q", s, rest[1])
			}
			r.For, rest = d, rest[2:]
		case rest[0] == "step" && len(rest) > 1:
			n, err := strconv.Atoi(strings.TrimPrefix(rest[1], "+"))
			if err != nil || n == 0 {
				return r, fmt.Errorf("rule %q: step %q is not a non-zero integer", s, rest[1])
			}
			r.Step, rest = n, rest[2:]
		case rest[0] == "advisory":
			r.Advisory, rest = true, rest[1:]
		default:
			return r, fmt.Errorf("rule %q: unexpected %q", s, rest[0])
		}
	}
	if r.Step == 0 && !r.Advisory {
		return r, fmt.Errorf("rule %q: needs step N or advisory", s)
	}
	return r, nil
}

// Reason is the event reason of the rule's signal.
func (r Rule) Reason() string { return ruleSignals[r.Signal] }

// value reads the rule's signal from o; NaN when unknown.
func (r Rule) value(o Observation) float64 {
	switch r.Signal {
	case "cpu_percent":
		return o.CPUPercent
	case "memory_percent":
		return o.MemoryPercent
	case "queue_depth":
		return o.QueueDepth
	case "queue_per_replica":
		if o.Replicas == 0 {
			return math.NaN()
		}
		return o.QueueDepth / float64(o.Replicas)
	case "p95_latency_s":
		return o.P95LatencyS
	case "error_rate":
		return o.ErrorRate
	}
	return math.NaN()
}

// True reports whether o satisfies the comparison; unknown never does.
func (r Rule) True(o Observation) bool {
	v := r.value(o)
	if math.IsNaN(v) {
		return false
	}
	switch r.Op {
	case ">":
		return v > r.Value
	case ">=":
		return v >= r.Value
	case "<":
		return v < r.Value
	case "<=":
		return v <= r.Value
	}
	return v == r.Value
}

// heldFor is how long the rule has been true without a break, ending at the
// newest observation of s (s oldest first); a gap longer than maxGap or a
// partial observation (for scale-down rules) breaks it. ok is false when it
// is not true now.
func (r Rule) heldFor(s []Observation, now time.Time, maxGap time.Duration, needComplete bool) (time.Duration, bool) {
	since := time.Time{}
	next := now
	for i := len(s) - 1; i >= 0; i-- {
		o := s[i]
		if !r.True(o) || (needComplete && o.Missing > 0) || (maxGap > 0 && next.Sub(o.Time) > maxGap) {
			break
		}
		since, next = o.Time, o.Time
	}
	if since.IsZero() {
		return 0, false
	}
	return now.Sub(since), true
}

// ThresholdPolicy is the seed's rule tables.
type ThresholdPolicy struct {
	Up, Down []Rule
	DownAll  bool
	Limits   Limits
}

// NewThresholds parses the configured rules.
func NewThresholds(c Thresholds, lim Limits) (*ThresholdPolicy, error) {
	p := &ThresholdPolicy{Limits: lim, DownAll: c.DownMatch != "any"}
	for _, s := range c.Up {
		r, err := ParseRule(s)
		if err != nil {
			return nil, err
		}
		p.Up = append(p.Up, r)
	}
	for _, s := range c.Down {
		r, err := ParseRule(s)
		if err != nil {
			return nil, err
		}
		p.Down = append(p.Down, r)
	}
	return p, nil
}

// Name implements Policy.
func (p *ThresholdPolicy) Name() string { return PolicyThresholds }

// Lookback implements Policy: the longest hold of any rule, plus a margin.
func (p *ThresholdPolicy) Lookback() time.Duration {
	var d time.Duration
	for _, r := range append(append([]Rule(nil), p.Up...), p.Down...) {
		d = max(d, r.For)
	}
	return d + time.Minute
}

// Decide implements Policy. Scale-up takes the largest step among up-rules
// that have held their duration; scale-down removes one replica when the
// down-rules have held (all evaluable ones, or any, per DownAll), no up-rule
// is true now, and no observation in the hold was stale or partial.
func (p *ThresholdPolicy) Decide(obs Observation, st State, now time.Time) Decision {
	cur := st.Current
	if stale(obs, st, now) {
		return p.Limits.Finish(cur, cur, "", "", st, now).withNote("stale observation: holding")
	}
	s := series(obs, st, now, p.Lookback())
	gap := st.StaleAfter
	best, bestRule, upActive := 0, Rule{}, false
	var pending []string
	for _, r := range p.Up {
		if !r.True(obs) {
			continue
		}
		upActive = true
		held, _ := r.heldFor(s, now, gap, false)
		if held < r.For {
			pending = append(pending, fmt.Sprintf("%s: held %s of %s", r.Text, held.Round(time.Second), r.For))
			continue
		}
		if !r.Advisory && r.Step > best {
			best, bestRule = r.Step, r
		}
	}
	if best > 0 {
		return p.Limits.Finish(cur, cur+best, bestRule.Reason(), bestRule.Text, st, now)
	}
	if upActive {
		d := p.Limits.Finish(cur, cur, "", "", st, now)
		return d.withNote(strings.Join(append([]string{"up-rule not held long enough"}, pending...), "; "))
	}
	if obs.Missing > 0 {
		return p.Limits.Finish(cur, cur, "", "", st, now).withNote(fmt.Sprintf("%d replicas missing: no scale-down", obs.Missing))
	}
	var acting []Rule
	var advisory []string
	evaluable, heldAll := 0, true
	for _, r := range p.Down {
		if math.IsNaN(r.value(obs)) {
			continue // a signal this deployment does not have
		}
		held, ok := r.heldFor(s, now, gap, true)
		isHeld := ok && held >= r.For
		if r.Advisory {
			if isHeld {
				advisory = append(advisory, "advisory: "+r.Text)
			}
			continue
		}
		evaluable++
		if isHeld {
			acting = append(acting, r)
		} else {
			heldAll = false
		}
	}
	down := len(acting) > 0 && (!p.DownAll || heldAll && len(acting) == evaluable)
	if down {
		d := p.Limits.Finish(cur, cur-1, acting[0].Reason(), acting[0].Text, st, now)
		if len(advisory) > 0 && d.Note == "" {
			d.Note = strings.Join(advisory, "; ")
		}
		return d
	}
	d := p.Limits.Finish(cur, cur, "", "", st, now)
	if len(advisory) > 0 {
		d = d.withNote(strings.Join(advisory, "; "))
	}
	return d
}

func (d Decision) withNote(n string) Decision {
	if d.Note == "" {
		d.Note = n
	} else if n != "" {
		d.Note = n + "; " + d.Note
	}
	return d
}
