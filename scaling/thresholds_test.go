package scaling

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// calm is an observation of 4 healthy replicas with nothing to do.
func calm(at time.Time) Observation {
	return Observation{Time: at, Replicas: 4, Slots: 16, QueueDepth: 0, InFlight: 0, ArrivalRate: 0, DoneRate: 0,
		P95LatencyS: 1, ErrorRate: 0, CPUPercent: 10, MemoryPercent: 20, GPUPercent: math.NaN()}
}

// neutral is neither an up nor a down condition on any signal.
func neutral(at time.Time) Observation {
	o := calm(at)
	o.CPUPercent, o.MemoryPercent, o.QueueDepth, o.P95LatencyS = 50, 60, 3, 5
	return o
}

// held runs the condition set by mod from t0 for d (sampled every 15 s) and
// returns the decision at t0+d with 4 current replicas.
func decideHeld(t *testing.T, p Policy, base func(time.Time) Observation, mod func(*Observation), d time.Duration, st State) Decision {
	t.Helper()
	st.Current = 4
	if st.StaleAfter == 0 {
		st.StaleAfter = 45 * time.Second
	}
	var last Observation
	for at := t0; !at.After(t0.Add(d)); at = at.Add(15 * time.Second) {
		o := base(at)
		mod(&o)
		if !at.Equal(t0) {
			st.History = append(st.History, last)
		}
		last = o
	}
	return p.Decide(last, st, t0.Add(d))
}

func seedThresholds(t *testing.T) *ThresholdPolicy {
	t.Helper()
	cfg := DefaultConfig()
	p, err := NewThresholds(cfg.Thresholds, Limits{Min: 2, Max: 50, UpCooldown: time.Minute, DownDelay: 5 * time.Minute})
	require.NoError(t, err)
	return p
}

func TestThresholdsSeedRows(t *testing.T) {
	p := seedThresholds(t)
	rows := []struct {
		name   string
		base   func(time.Time) Observation
		mod    func(*Observation)
		hold   time.Duration // the seed's duration
		step   int
		reason string
	}{
		{"cpu > 80% for 2m: +1", neutral, func(o *Observation) { o.CPUPercent = 85 }, 2 * time.Minute, 1, "cpu"},
		{"memory > 85% for 2m: +1", neutral, func(o *Observation) { o.MemoryPercent = 90 }, 2 * time.Minute, 1, "memory"},
		{"queue > 10: +2", neutral, func(o *Observation) { o.QueueDepth = 11 }, 0, 2, "queue"},
		{"p95 > 10s for 1m: +1", neutral, func(o *Observation) { o.P95LatencyS = 12 }, time.Minute, 1, "latency"},
		{"errors > 5% for 30s: +1", neutral, func(o *Observation) { o.ErrorRate = 0.06 }, 30 * time.Second, 1, "errors"},
		// Down-rules must all hold (down_match: all): the calm observation
		// satisfies cpu, memory and queue; the longest, queue == 0, is 15m.
		{"cpu < 30% for 10m, memory < 40% for 10m, queue == 0 for 15m: -1", calm, func(*Observation) {}, 15 * time.Minute, -1, "cpu"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if r.hold > 0 {
				d := decideHeld(t, p, r.base, r.mod, r.hold-15*time.Second, State{})
				require.Equal(t, 4, d.Desired, "held less than its duration: Decide = %+v; want nothing", d)
				require.Equal(t, None, d.Direction)
			}
			d := decideHeld(t, p, r.base, r.mod, r.hold, State{})
			require.Equal(t, 4+r.step, d.Desired, "held: Decide = %+v; want step %d", d, r.step)
			require.Equal(t, r.reason, d.Reason)
		})
	}
}

func TestThresholdsEachDownRuleAlone(t *testing.T) {
	p := seedThresholds(t)
	// cpu and memory low for 10m but the queue was busy until 5m ago: no scale-down.
	st := State{Current: 4, StaleAfter: time.Minute}
	for at := t0; at.Before(t0.Add(15 * time.Minute)); at = at.Add(15 * time.Second) {
		o := calm(at)
		if at.Before(t0.Add(10 * time.Minute)) {
			o.QueueDepth = 1
		}
		st.History = append(st.History, o)
	}
	now := t0.Add(15 * time.Minute)
	d := p.Decide(calm(now), st, now)
	require.Equal(t, 4, d.Desired, "Decide = %+v; want hold while queue==0 has held only 5m", d)

	// down_match any: cpu < 30% for 10m alone removes one.
	cfg := DefaultConfig().Thresholds
	cfg.DownMatch = "any"
	pa, err := NewThresholds(cfg, Limits{Min: 2, Max: 50})
	require.NoError(t, err)
	d = pa.Decide(calm(now), st, now)
	require.Equal(t, 3, d.Desired, "any: Decide = %+v; want -1", d)
}

func TestThresholdsLargestStepWins(t *testing.T) {
	p := seedThresholds(t)
	d := decideHeld(t, p, neutral, func(o *Observation) { o.CPUPercent, o.QueueDepth = 90, 20 }, 3*time.Minute, State{})
	require.Equal(t, 6, d.Desired, "Decide = %+v; want +2 (queue beats cpu's +1)", d)
	require.Equal(t, "queue", d.Reason)
}

func TestThresholdsCooldowns(t *testing.T) {
	p := seedThresholds(t)
	queue := func(o *Observation) { o.QueueDepth = 20 }
	now := t0.Add(time.Minute)
	d := decideHeld(t, p, neutral, queue, time.Minute, State{LastUp: now.Add(-30 * time.Second)})
	require.Equal(t, 4, d.Desired, "up within cooldown: Decide = %+v; want hold", d)
	require.Contains(t, d.Note, "cooldown")
	d = decideHeld(t, p, neutral, queue, time.Minute, State{LastUp: now.Add(-61 * time.Second)})
	require.Equal(t, 6, d.Desired, "up after cooldown: Decide = %+v", d)

	now = t0.Add(15 * time.Minute)
	d = decideHeld(t, p, calm, func(*Observation) {}, 15*time.Minute, State{LastUp: now.Add(-4 * time.Minute)})
	require.Equal(t, 4, d.Desired, "down within the scale-down delay: Decide = %+v; want hold", d)
	d = decideHeld(t, p, calm, func(*Observation) {}, 15*time.Minute, State{LastDown: now.Add(-6 * time.Minute)})
	require.Equal(t, 3, d.Desired, "down after the delay: Decide = %+v", d)
}

func TestThresholdsMinMax(t *testing.T) {
	cfg := DefaultConfig()
	p, err := NewThresholds(cfg.Thresholds, Limits{Min: 4, Max: 5})
	require.NoError(t, err)
	d := decideHeld(t, p, neutral, func(o *Observation) { o.QueueDepth = 50 }, 0, State{})
	require.Equal(t, 5, d.Desired, "Decide = %+v; want clamped to max 5", d)
	d = decideHeld(t, p, calm, func(*Observation) {}, 15*time.Minute, State{})
	require.Equal(t, 4, d.Desired, "Decide = %+v; want clamped to min 4", d)
	// out of bounds after a config change: moved in at once
	st := State{Current: 9, StaleAfter: time.Minute}
	d = p.Decide(neutral(t0), st, t0)
	require.Equal(t, 5, d.Desired)
}

func TestStaleNeverScalesDown(t *testing.T) {
	policies := map[string]Policy{}
	for _, name := range []string{PolicyThresholds, PolicyTarget, PolicyPredictive} {
		cfg := DefaultConfig()
		cfg.Profile = ProfileProd
		cfg.DownDelay = 0
		p, err := NewPolicy(name, cfg)
		require.NoError(t, err)
		policies[name] = p
	}
	for name, p := range policies {
		t.Run(name, func(t *testing.T) {
			// A long calm history, then the newest observation is 2 minutes old.
			d := decideHeld(t, p, calm, func(*Observation) {}, 20*time.Minute, State{})
			require.Less(t, d.Desired, 4, "%s: fresh calm data should scale down, got %+v", name, d)
			st := State{Current: 4, StaleAfter: 45 * time.Second}
			for at := t0; at.Before(t0.Add(20 * time.Minute)); at = at.Add(15 * time.Second) {
				st.History = append(st.History, calm(at))
			}
			old := calm(t0.Add(20 * time.Minute))
			now := t0.Add(22 * time.Minute)
			d = p.Decide(old, st, now)
			require.Equal(t, 4, d.Desired, "stale: Decide = %+v; want hold", d)
			// Missing peers: partial data never scales down either.
			fresh := calm(now)
			fresh.Missing = 1
			d = p.Decide(fresh, st, now)
			require.Equal(t, 4, d.Desired, "partial: Decide = %+v; want hold", d)
			// Unknown observation (observer error).
			d = p.Decide(Unknown(now), st, now)
			require.Equal(t, 4, d.Desired, "unknown: Decide = %+v; want hold", d)
		})
	}
}

func TestAdvisoryLatencyRuleNeverActs(t *testing.T) {
	cfg := DefaultConfig().Thresholds
	cfg.Down = []string{"p95_latency_s < 2 for 15m advisory"}
	p, err := NewThresholds(cfg, Limits{Min: 1, Max: 10})
	require.NoError(t, err)
	d := decideHeld(t, p, calm, func(*Observation) {}, 16*time.Minute, State{})
	require.Equal(t, 4, d.Desired, "Decide = %+v", d)
	require.Contains(t, d.Note, "advisory")
}

func TestParseRule(t *testing.T) {
	r, err := ParseRule("cpu_percent > 80 for 2m step +1")
	require.NoError(t, err)
	require.Equal(t, Rule{Signal: "cpu_percent", Op: ">", Value: 80, For: 2 * time.Minute, Step: 1, Text: "cpu_percent > 80 for 2m step +1"}, r)
	for _, bad := range []string{"", "cpu > 80 step 1", "cpu_percent ~ 80 step 1", "cpu_percent > x step 1",
		"cpu_percent > 80", "cpu_percent > 80 for -1s step 1", "cpu_percent > 80 step 0", "cpu_percent > NaN step 1"} {
		_, err := ParseRule(bad)
		require.Error(t, err, "ParseRule(%q)", bad)
	}
}

// FuzzParseRule: a rule from a file or the environment either fails with
// an error or parses to a rule that its own text parses to again, with a
// known signal and comparison and a finite value.
func FuzzParseRule(f *testing.F) {
	for _, s := range append(DefaultConfig().Thresholds.Up, DefaultConfig().Thresholds.Down...) {
		f.Add(s)
	}
	f.Add("queue_per_replica >= 2.5 for 90s step +3")
	f.Add("error_rate == 0 step -1 advisory")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			return
		}
		require.Contains(t, ruleSignals, r.Signal)
		require.Contains(t, []string{">", ">=", "<", "<=", "=="}, r.Op)
		require.False(t, math.IsNaN(r.Value) || math.IsInf(r.Value, 0), "value %v", r.Value)
		require.True(t, r.Step != 0 || r.Advisory, "neither a step nor advisory")
		again, err := ParseRule(r.Text)
		require.NoError(t, err, "ParseRule(%q) of its own text", r.Text)
		require.Equal(t, r, again)
	})
}

func TestTargetPolicy(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Profile = ProfileProd
	p, err := NewPolicy(PolicyTarget, cfg)
	require.NoError(t, err)
	st := State{Current: 4, StaleAfter: time.Minute}
	o := calm(t0)
	o.InFlight = 40 // 10 per replica: utilisation 1.0 > 0.8
	d := p.Decide(o, st, t0)
	require.Equal(t, 6, d.Desired, "Decide = %+v; want ceil(40/7)=6", d) // ceil(40 / (10*0.7))
	o.InFlight = 25                                                      // 0.625: within band
	require.Equal(t, 4, p.Decide(o, st, t0).Desired)
	// Low now, but high 4 minutes ago (inside the 300 s window): hold.
	hi := calm(t0.Add(-4 * time.Minute))
	hi.InFlight = 27
	st.History = []Observation{hi}
	o.InFlight = 2
	require.Equal(t, 4, p.Decide(o, st, t0).Desired)
	st.History = nil
	require.Equal(t, 2, p.Decide(o, st, t0).Desired) // ceil(2/7)=1, min 2
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	c := DefaultConfig()
	c.Profile, c.Mode, c.Interval, c.Thresholds.Up = "qa", ModePeers, 0, []string{"bogus"}
	err := c.Validate()
	require.Error(t, err)
	for _, field := range []string{"scaling.profile", "scaling.peers_dns", "scaling.interval", "scaling.thresholds.up[0]"} {
		require.Contains(t, err.Error(), field)
	}
	c = DefaultConfig()
	c.Profile, c.MinReplicas, c.MaxReplicas = ProfileProd, 5, 3
	require.ErrorContains(t, c.Validate(), "scaling.max_replicas")
	r := DefaultConfig()
	r.Profile = ProfileProd
	require.Equal(t, 2, r.Resolved().MinReplicas)
	require.Equal(t, 50, r.Resolved().MaxReplicas)
	require.Equal(t, 10.0, r.Resolved().Target.TargetConcurrency)
}
