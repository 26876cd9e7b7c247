package scaling

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Observation is the load of the service at one moment, as one Observer saw
// it. Unknown values are NaN (never zero: zero load would invite a scale-in).
type Observation struct {
	Time time.Time `json:"time"`
	// Replicas are the serving units ready: engines (each an Ollama, on
	// its own GPU), or RunPod workers.
	Replicas int `json:"replicas"`
	// Sources are the signal sources heard from (gateways, an endpoint, a
	// Prometheus); Missing those expected but not heard from.
	Sources       int     `json:"sources"`
	Missing       int     `json:"missing"`
	Starting      int     `json:"starting"` // serving units started but not ready yet
	Slots         int     `json:"slots"`    // inference slots of the ready replicas
	QueueDepth    float64 `json:"queue_depth"`
	InFlight      float64 `json:"in_flight"`
	ArrivalRate   float64 `json:"arrival_rate"` // requests per second reaching admission
	DoneRate      float64 `json:"done_rate"`    // requests per second completed
	P95LatencyS   float64 `json:"p95_latency_s"`
	ErrorRate     float64 `json:"error_rate"`
	CPUPercent    float64 `json:"cpu_percent"`
	MemoryPercent float64 `json:"memory_percent"`
	GPUPercent    float64 `json:"gpu_percent"`
}

// Unknown returns an observation at t with every signal unknown.
func Unknown(t time.Time) Observation {
	n := math.NaN()
	return Observation{Time: t, QueueDepth: n, InFlight: n, ArrivalRate: n, DoneRate: n,
		P95LatencyS: n, ErrorRate: n, CPUPercent: n, MemoryPercent: n, GPUPercent: n}
}

// Load is the concurrency the service carries: in flight plus queued.
func (o Observation) Load() float64 { return o.InFlight + o.QueueDepth }

// State is what a policy knows besides the current observation. The loop
// keeps it; Decide only reads it.
type State struct {
	Current    int           // replicas the provider runs (or starts)
	LastUp     time.Time     // last applied scale-up
	LastDown   time.Time     // last applied scale-down
	History    []Observation // earlier observations, oldest first, within the policy's Lookback
	StaleAfter time.Duration // an observation older than this is stale
}

// Applied records that the replicas changed to n at now, the bookkeeping
// the cooldowns read: a scale-up starts the up cooldown, either direction
// the scale-down delay. n equal to Current changes nothing. The controller
// and the simulator both keep their State with it.
func (s *State) Applied(n int, now time.Time) {
	switch {
	case n > s.Current:
		s.LastUp = now
	case n < s.Current:
		s.LastDown = now
	default:
		return
	}
	s.Current = n
}

// Observed appends obs to History and drops the observations older than
// keep at now (a policy's Lookback plus one interval keeps its window full).
func (s *State) Observed(obs Observation, now time.Time, keep time.Duration) {
	s.History = append(s.History, obs)
	cut := 0
	for cut < len(s.History) && now.Sub(s.History[cut].Time) > keep {
		cut++
	}
	s.History = s.History[cut:]
}

func (s State) lastChange() time.Time {
	if s.LastUp.After(s.LastDown) {
		return s.LastUp
	}
	return s.LastDown
}

// Direction of a decision.
type Direction string

// Directions.
const (
	Up   Direction = "up"
	Down Direction = "down"
	None Direction = "none"
)

// Decision is what a policy wants: Desired replicas, and why. Direction is
// None when Desired equals the current count; Note says what held it.
type Decision struct {
	Desired   int       `json:"desired"`
	Direction Direction `json:"direction"`
	Reason    string    `json:"reason,omitempty"` // one of Reasons
	Rule      string    `json:"rule,omitempty"`
	Note      string    `json:"note,omitempty"`
}

// Policy decides a replica count. Decide is pure: no I/O, no clock, no
// mutation of st; the same inputs give the same Decision.
type Policy interface {
	Name() string
	Decide(obs Observation, st State, now time.Time) Decision
	// Lookback is how much History the policy reads.
	Lookback() time.Duration
}

// Policy names.
const (
	PolicyThresholds = "thresholds"
	PolicyTarget     = "target"
	PolicyPredictive = "predictive"
)

func isPolicy(s string) bool {
	return s == PolicyThresholds || s == PolicyTarget || s == PolicyPredictive
}

// Limits are the bounds every policy applies to its wish.
type Limits struct {
	Min, Max   int
	MaxStep    int           // 0: unlimited
	UpCooldown time.Duration // since the last scale-up
	DownDelay  time.Duration // since the last change of either direction
}

// NewPolicy builds the named policy from cfg (resolved against its profile).
func NewPolicy(name string, cfg Config) (Policy, error) {
	cfg = cfg.Resolved()
	lim := Limits{Min: cfg.MinReplicas, Max: cfg.MaxReplicas, MaxStep: cfg.MaxStep,
		UpCooldown: cfg.UpCooldown, DownDelay: cfg.DownDelay}
	switch name {
	case PolicyThresholds:
		return NewThresholds(cfg.Thresholds, lim)
	case PolicyTarget:
		return &TargetPolicy{Cfg: cfg.Target, Limits: lim}, nil
	case PolicyPredictive:
		return &PredictivePolicy{Cfg: cfg.Predictive, Limits: lim, Interval: cfg.Interval}, nil
	}
	return nil, fmt.Errorf("unknown policy %q", name)
}

// stale reports whether obs cannot be trusted at now.
func stale(obs Observation, st State, now time.Time) bool {
	return (obs.Sources == 0 && obs.Replicas == 0) || (st.StaleAfter > 0 && now.Sub(obs.Time) > st.StaleAfter)
}

// Finish turns a wish into a Decision: clamps to Min/Max and MaxStep and
// holds inside cooldowns (st's LastUp and LastDown, see State.Applied). A
// count already outside [Min, Max] moves in at once, reason "limits" when
// the policy gave none.
func (l Limits) Finish(cur, want int, reason, rule string, st State, now time.Time) Decision {
	d := Decision{Desired: cur, Direction: None, Reason: reason, Rule: rule}
	// Out of bounds (config changed, manual override expired): move in now.
	if cur < l.Min || cur > l.Max {
		want = min(max(want, l.Min), l.Max)
		d.Desired, d.Note = want, fmt.Sprintf("clamped to [%d, %d]", l.Min, l.Max)
		d.Direction = dir(cur, want)
		if d.Reason == "" {
			d.Reason = "limits"
		}
		return d
	}
	clamped := min(max(want, l.Min), l.Max)
	if clamped != want {
		d.Note = fmt.Sprintf("wanted %d, clamped to [%d, %d]", want, l.Min, l.Max)
	}
	want = clamped
	if l.MaxStep > 0 && want > cur+l.MaxStep {
		want, d.Note = cur+l.MaxStep, fmt.Sprintf("step limited to %d", l.MaxStep)
	}
	if l.MaxStep > 0 && want < cur-l.MaxStep {
		want, d.Note = cur-l.MaxStep, fmt.Sprintf("step limited to %d", l.MaxStep)
	}
	switch {
	case want > cur && !st.LastUp.IsZero() && now.Sub(st.LastUp) < l.UpCooldown:
		d.Note = fmt.Sprintf("wants %d; scale-up cooldown %s left", want, (l.UpCooldown - now.Sub(st.LastUp)).Round(time.Second))
		return d
	case want < cur && !st.lastChange().IsZero() && now.Sub(st.lastChange()) < l.DownDelay:
		d.Note = fmt.Sprintf("wants %d; scale-down delay %s left", want, (l.DownDelay - now.Sub(st.lastChange())).Round(time.Second))
		return d
	}
	d.Desired, d.Direction = want, dir(cur, want)
	return d
}

func dir(cur, want int) Direction {
	switch {
	case want > cur:
		return Up
	case want < cur:
		return Down
	}
	return None
}

// series is History plus the current observation, oldest first, restricted
// to the window ending at now.
func series(obs Observation, st State, now time.Time, window time.Duration) []Observation {
	out := make([]Observation, 0, len(st.History)+1)
	for _, o := range st.History {
		if now.Sub(o.Time) <= window && o.Time.Before(obs.Time) {
			out = append(out, o)
		}
	}
	return append(out, obs)
}

// MarshalJSON writes unknown (NaN) signals as null: JSON has no NaN.
func (o Observation) MarshalJSON() ([]byte, error) {
	f := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		Time          time.Time `json:"time"`
		Replicas      int       `json:"replicas"`
		Sources       int       `json:"sources"`
		Missing       int       `json:"missing"`
		Starting      int       `json:"starting"`
		Slots         int       `json:"slots"`
		QueueDepth    *float64  `json:"queue_depth"`
		InFlight      *float64  `json:"in_flight"`
		ArrivalRate   *float64  `json:"arrival_rate"`
		DoneRate      *float64  `json:"done_rate"`
		P95LatencyS   *float64  `json:"p95_latency_s"`
		ErrorRate     *float64  `json:"error_rate"`
		CPUPercent    *float64  `json:"cpu_percent"`
		MemoryPercent *float64  `json:"memory_percent"`
		GPUPercent    *float64  `json:"gpu_percent"`
	}{o.Time, o.Replicas, o.Sources, o.Missing, o.Starting, o.Slots, f(o.QueueDepth), f(o.InFlight), f(o.ArrivalRate), f(o.DoneRate),
		f(o.P95LatencyS), f(o.ErrorRate), f(o.CPUPercent), f(o.MemoryPercent), f(o.GPUPercent)})
}
