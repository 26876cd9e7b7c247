package scaling

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Config configures the scaling controller, its observer and its policies.
// A negative MinReplicas and zero MaxReplicas and Target.TargetConcurrency
// take the Profile's values (see Resolved); MinReplicas 0 scales to zero.
type Config struct {
	Profile       string        `yaml:"profile" help:"dev, staging or prod: replica bounds and target concurrency from the seed"`
	Policy        string        `yaml:"policy" help:"thresholds, target or predictive"`
	Mode          string        `yaml:"mode" help:"observation: local, peers, prometheus or runpod (the endpoint's /health)"`
	Provider      string        `yaml:"provider" help:"none (dry run: decisions only logged), compose (Docker Engine) or runpod (RunPod Serverless API)"`
	PeersDNS      string        `yaml:"peers_dns" help:"DNS name that resolves to every replica (peers mode, and leader election)"`
	PeersPort     int           `yaml:"peers_port" help:"port of each peer's /v1/scaling/signals"`
	SelfAddress   string        `yaml:"self_address" help:"this replica's address among the peers (empty: detected from interfaces)"`
	PeerTimeout   time.Duration `yaml:"peer_timeout" help:"time one peer has to answer"`
	PrometheusURL string        `yaml:"prometheus_url" help:"Prometheus base URL (prometheus mode)"`
	Queries       Queries       `yaml:"queries"`
	Interval      time.Duration `yaml:"interval" help:"time between decisions"`
	StaleAfter    time.Duration `yaml:"stale_after" help:"an observation older than this is stale and never scales (0: 3 intervals)"`
	MinReplicas   int           `yaml:"min_replicas" help:"fewest replicas (-1: from profile; 0: scale to zero)"`
	MaxReplicas   int           `yaml:"max_replicas" help:"most replicas (0: from profile)"`
	MaxStep       int           `yaml:"max_step" help:"most replicas added or removed by one decision (0: no limit)"`
	UpCooldown    time.Duration `yaml:"up_cooldown" help:"time after a scale-up before the next one"`
	DownDelay     time.Duration `yaml:"down_delay" help:"time after any change before a scale-down"`
	RetryAttempts int           `yaml:"retry_attempts" help:"provider attempts per decision"`
	RetryBackoff  time.Duration `yaml:"retry_backoff" help:"first retry delay, doubled each attempt, with jitter"`
	Thresholds    Thresholds    `yaml:"thresholds"`
	Target        Target        `yaml:"target"`
	Predictive    Predictive    `yaml:"predictive"`
}

// Queries are the PromQL expressions of prometheus mode; each returns one
// number (a scalar or a one-element vector). An empty query means "unknown".
type Queries struct {
	Replicas    string `yaml:"replicas" help:"PromQL: engines ready (the serving replicas)"`
	Starting    string `yaml:"starting" help:"PromQL: engines starting (not ready yet)"`
	QueueDepth  string `yaml:"queue_depth" help:"PromQL: total queue depth"`
	InFlight    string `yaml:"in_flight" help:"PromQL: total requests in flight"`
	Slots       string `yaml:"slots" help:"PromQL: total inference slots"`
	ArrivalRate string `yaml:"arrival_rate" help:"PromQL: model requests arriving per second"`
	DoneRate    string `yaml:"done_rate" help:"PromQL: model requests finishing per second"`
	P95Latency  string `yaml:"p95_latency" help:"PromQL: p95 model request latency, seconds"`
	ErrorRate   string `yaml:"error_rate" help:"PromQL: share of model requests failing"`
	CPUPercent  string `yaml:"cpu_percent" help:"PromQL: mean CPU % of the replicas"`
	MemPercent  string `yaml:"memory_percent" help:"PromQL: mean memory % of the replicas"`
	GPUPercent  string `yaml:"gpu_percent" help:"PromQL: mean GPU utilisation %"`
}

// Thresholds are the seed's rule tables. A rule reads
// "SIGNAL OP VALUE [for DURATION] [step N|advisory]", e.g.
// "cpu_percent > 80 for 2m step 1"; see ParseRule.
type Thresholds struct {
	Up        []string `yaml:"up" help:"scale-up rules; the largest step among held rules applies"`
	Down      []string `yaml:"down" help:"scale-down rules; -1 when they have held and no up-rule is active"`
	DownMatch string   `yaml:"down_match" help:"all (every evaluable down-rule held) or any"`
}

// Target is target tracking on concurrency (in-flight plus queued) per replica.
type Target struct {
	TargetConcurrency  float64       `yaml:"target_concurrency" help:"concurrency one replica is sized for (0: from profile)"`
	ScaleUpThreshold   float64       `yaml:"scale_up_threshold" help:"utilisation above which it scales up"`
	ScaleDownThreshold float64       `yaml:"scale_down_threshold" help:"utilisation below which it scales down"`
	Utilization        float64       `yaml:"utilization" help:"utilisation a new size aims at"`
	Stabilization      time.Duration `yaml:"stabilization" help:"scale-down takes the highest recommendation of this window"`
}

// Predictive sizes for forecast arrivals over the cold start. Its tuning
// (Holt smoothing, the peak window, the burstiness gate, the steady and
// backlog sizing) is constants in predictive.go, measured in SIMULATION.md.
type Predictive struct {
	ColdStart       time.Duration `yaml:"cold_start" help:"time a new replica takes to serve"`
	DownWindow      time.Duration `yaml:"down_window" help:"scale in only to the need measured over this whole window"`
	ServiceTime     time.Duration `yaml:"service_time" help:"request service time used until one is measured"`
	SlotsPerReplica int           `yaml:"slots_per_replica" help:"slots assumed until observed"`
	SLOWait         time.Duration `yaml:"slo_wait" help:"the queue wait sized for: Erlang-C headroom, and a longer queue is drained"`
}

// Profile names.
const (
	ProfileDev     = "dev"
	ProfileStaging = "staging"
	ProfileProd    = "prod"
)

// Mode names.
const (
	ModeLocal      = "local"
	ModePeers      = "peers"
	ModePrometheus = "prometheus"
	// ModeRunPod observes a RunPod Serverless endpoint's /health (queue,
	// jobs in progress, workers); serve builds that observer from
	// scaling/runpod, which this package cannot import.
	ModeRunPod = "runpod"
)

// DefaultConfig returns the seed's settings: dev profile, local observation,
// dry-run provider, the seed's threshold tables and target parameters.
func DefaultConfig() Config {
	return Config{
		Profile:       ProfileDev,
		Policy:        PolicyPredictive,
		Mode:          ModeLocal,
		Provider:      "none",
		PeersPort:     8000,
		MinReplicas:   -1,
		PeerTimeout:   2 * time.Second,
		Queries:       DefaultQueries(),
		Interval:      15 * time.Second,
		MaxStep:       10,
		UpCooldown:    60 * time.Second,
		DownDelay:     300 * time.Second,
		RetryAttempts: 4,
		RetryBackoff:  time.Second,
		Thresholds: Thresholds{
			Up: []string{
				"cpu_percent > 80 for 2m step 1",
				"memory_percent > 85 for 2m step 1",
				"queue_depth > 10 step 2",
				"p95_latency_s > 10 for 1m step 1",
				"error_rate > 0.05 for 30s step 1",
			},
			Down: []string{
				"cpu_percent < 30 for 10m step -1",
				"memory_percent < 40 for 10m step -1",
				"queue_depth == 0 for 15m step -1",
				"p95_latency_s < 2 for 15m advisory",
			},
			DownMatch: "all",
		},
		Target: Target{
			ScaleUpThreshold:   0.8,
			ScaleDownThreshold: 0.3,
			Utilization:        0.7,
			Stabilization:      300 * time.Second,
		},
		Predictive: Predictive{
			ColdStart:       60 * time.Second,
			SLOWait:         2 * time.Second,
			DownWindow:      10 * time.Minute,
			ServiceTime:     2 * time.Second,
			SlotsPerReplica: 4,
		},
	}
}

// DefaultQueries are the seed's PromQL, corrected so that each means what
// the local signal means (metrics.Signals): the admission queue's own
// gauges, model requests only (not HTTP requests, so peers polling
// /v1/scaling/signals do not count), whole-request latency (streams
// included), errors as 5xx and 429 over all finished model requests, and
// 0 rather than "unknown" when no request came, as locally. Their range
// is metrics.window's default, 1m: change both together.
func DefaultQueries() Queries {
	return Queries{
		Replicas:    `max(sum by (instance) (aurax_engine_up))`,
		Starting:    `max(count by (instance) (aurax_engine_up{state="starting"})) or vector(0)`,
		QueueDepth:  `sum(aurax_queue_depth)`,
		InFlight:    `sum(aurax_queue_in_flight)`,
		Slots:       `sum(aurax_queue_slots)`,
		ArrivalRate: `sum(rate(aurax_model_arrivals_total[1m])) or vector(0)`,
		DoneRate:    `sum(rate(aurax_model_processing_duration_seconds_count[1m])) or vector(0)`,
		P95Latency:  `histogram_quantile(0.95, sum by (le) (rate(aurax_model_processing_duration_seconds_bucket[1m]))) >= 0 or vector(0)`,
		ErrorRate:   `sum(rate(aurax_model_requests_total{status=~"5..|429"}[1m])) / (sum(rate(aurax_model_requests_total[1m])) > 0) or vector(0)`,
		CPUPercent:  `100 * avg(rate(process_cpu_seconds_total[1m]) / on (instance, job) aurax_cpu_cores)`,
		MemPercent:  `100 * avg(aurax_memory_bytes / (aurax_memory_limit_bytes > 0))`,
		GPUPercent:  `avg(nvidia_gpu_utilization_percent)`,
	}
}

// profileBounds are the seed's per-environment numbers.
func profileBounds(p string) (lo, hi int, tc float64) {
	switch p {
	case ProfileStaging:
		return 2, 2, 10
	case ProfileProd:
		return 2, 50, 10
	default:
		return 1, 1, 10
	}
}

// Resolved fills the fields left zero from the profile and derived defaults.
func (c Config) Resolved() Config {
	lo, hi, tc := profileBounds(c.Profile)
	if c.MinReplicas < 0 {
		c.MinReplicas = lo
	}
	if c.MaxReplicas == 0 {
		c.MaxReplicas = max(hi, c.MinReplicas)
	}
	if c.Target.TargetConcurrency == 0 {
		c.Target.TargetConcurrency = tc
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = 3 * c.Interval
	}
	return c
}

// Validate reports every invalid field, naming it by its YAML path.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("scaling.%s: "+format, append([]any{field}, args...)...))
	}
	c.validateSources(bad)
	c.validateLoop(bad)
	c.Thresholds.validate(bad)
	c.Resolved().Target.validate(bad)
	c.Predictive.validate(bad)
	return errors.Join(errs...)
}

// badField reports one invalid field by its path under scaling.
type badField func(field, format string, args ...any)

// validateSources checks the profile, the policy and where observations
// come from and decisions go.
func (c Config) validateSources(bad badField) {
	switch c.Profile {
	case ProfileDev, ProfileStaging, ProfileProd:
	default:
		bad("profile", "%q is not dev, staging or prod", c.Profile)
	}
	if !isPolicy(c.Policy) {
		bad("policy", "%q is not thresholds, target or predictive", c.Policy)
	}
	switch c.Mode {
	case ModeLocal:
	case ModePeers:
		if c.PeersDNS == "" {
			bad("peers_dns", "required in peers mode")
		}
	case ModePrometheus:
		if u, err := url.Parse(c.PrometheusURL); c.PrometheusURL == "" || err != nil || u.Host == "" {
			bad("prometheus_url", "%q is not an absolute URL (required in prometheus mode)", c.PrometheusURL)
		}
	case ModeRunPod:
	default:
		bad("mode", "%q is not local, peers, prometheus or runpod", c.Mode)
	}
	if c.Provider == "" {
		bad("provider", "empty (use none for a dry run)")
	}
	if c.PeersPort <= 0 || c.PeersPort > 65535 {
		bad("peers_port", "%d is not a port", c.PeersPort)
	}
	if c.PeerTimeout <= 0 {
		bad("peer_timeout", "must be positive")
	}
}

// validateLoop checks the loop's timing, bounds, cooldowns and retries.
func (c Config) validateLoop(bad badField) {
	r := c.Resolved()
	if c.Interval <= 0 {
		bad("interval", "must be positive")
	}
	if c.StaleAfter < 0 {
		bad("stale_after", "must not be negative")
	}
	if c.MinReplicas < -1 {
		bad("min_replicas", "%d: -1 (from the profile), 0 (scale to zero) or more", c.MinReplicas)
	}
	if r.MaxReplicas < r.MinReplicas {
		bad("max_replicas", "%d is below min_replicas %d", r.MaxReplicas, r.MinReplicas)
	}
	if c.MaxStep < 0 {
		bad("max_step", "%d is negative", c.MaxStep)
	}
	if c.UpCooldown < 0 {
		bad("up_cooldown", "must not be negative")
	}
	if c.DownDelay < 0 {
		bad("down_delay", "must not be negative")
	}
	if c.RetryAttempts < 1 {
		bad("retry_attempts", "%d: at least 1", c.RetryAttempts)
	}
	if c.RetryBackoff < 0 {
		bad("retry_backoff", "must not be negative")
	}
}

func (t Thresholds) validate(bad badField) {
	for i, s := range t.Up {
		if ru, err := ParseRule(s); err != nil {
			bad(fmt.Sprintf("thresholds.up[%d]", i), "%v", err)
		} else if ru.Step < 0 {
			bad(fmt.Sprintf("thresholds.up[%d]", i), "step %d must not be negative", ru.Step)
		}
	}
	for i, s := range t.Down {
		if ru, err := ParseRule(s); err != nil {
			bad(fmt.Sprintf("thresholds.down[%d]", i), "%v", err)
		} else if ru.Step > 0 {
			bad(fmt.Sprintf("thresholds.down[%d]", i), "step %d must not be positive", ru.Step)
		}
	}
	if m := t.DownMatch; m != "all" && m != "any" {
		bad("thresholds.down_match", "%q is not all or any", m)
	}
}

// validate checks a resolved Target (its concurrency from the profile).
func (t Target) validate(bad badField) {
	if t.TargetConcurrency <= 0 {
		bad("target.target_concurrency", "must be positive")
	}
	if !(t.ScaleDownThreshold >= 0 && t.ScaleDownThreshold < t.Utilization && t.Utilization <= t.ScaleUpThreshold) {
		bad("target", "need 0 <= scale_down_threshold (%g) < utilization (%g) <= scale_up_threshold (%g)",
			t.ScaleDownThreshold, t.Utilization, t.ScaleUpThreshold)
	}
	if t.Stabilization < 0 {
		bad("target.stabilization", "must not be negative")
	}
}

func (p Predictive) validate(bad badField) {
	if p.ColdStart < 0 {
		bad("predictive.cold_start", "must not be negative")
	}
	if p.DownWindow < 0 {
		bad("predictive.down_window", "must not be negative")
	}
	if p.ServiceTime <= 0 {
		bad("predictive.service_time", "must be positive")
	}
	if p.SlotsPerReplica <= 0 {
		bad("predictive.slots_per_replica", "must be positive")
	}
	if p.SLOWait < 0 {
		bad("predictive.slo_wait", "must not be negative")
	}
}
