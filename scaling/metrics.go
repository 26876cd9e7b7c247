package scaling

import "github.com/prometheus/client_golang/prometheus"

// Reasons are the event reasons of aurax_scaling_events_total: a signal
// of the thresholds policy, a policy, an operator's override, or the
// bounds a count outside them is moved into (Limits.Finish).
var Reasons = []string{"cpu", "memory", "queue", "latency", "errors", "target", "predictive", "manual", "limits"}

// Decision results of aurax_scaling_decisions_total.
const (
	ResultApplied = "applied"
	ResultHeld    = "held"
	ResultError   = "error"
)

type controllerMetrics struct {
	events    *prometheus.CounterVec
	active    prometheus.Gauge
	starting  prometheus.Gauge
	desired   prometheus.Gauge
	max       prometheus.Gauge
	decisions *prometheus.CounterVec
}

// newMetrics registers the controller's metrics on reg, every label pair at 0.
func newMetrics(reg prometheus.Registerer) (*controllerMetrics, error) {
	m := &controllerMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aurax_scaling_events_total", Help: "Replica changes applied, by direction and reason.",
		}, []string{"direction", "reason"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aurax_active_instances", Help: "Replicas ready to serve: engines taking requests (without an engine view, what the provider runs).",
		}),
		starting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aurax_starting_instances", Help: "Replicas started and not ready yet (an engine loading, pulling or warming up).",
		}),
		desired: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aurax_desired_instances", Help: "Replicas the last decision wanted.",
		}),
		max: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aurax_max_instances", Help: "The controller's ceiling (scaling.max_replicas, or the profile's).",
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aurax_scaling_decisions_total", Help: "Scaling decisions by result: applied, held or error.",
		}, []string{"result"}),
	}
	for _, d := range []Direction{Up, Down} {
		for _, r := range Reasons {
			m.events.WithLabelValues(string(d), r)
		}
	}
	for _, r := range []string{ResultApplied, ResultHeld, ResultError} {
		m.decisions.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.events, m.active, m.starting, m.desired, m.max, m.decisions} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func knownReason(r string) bool {
	for _, k := range Reasons {
		if k == r {
			return true
		}
	}
	return false
}
