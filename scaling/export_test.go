package scaling

import "github.com/prometheus/client_golang/prometheus"

// Test hooks for the package's external tests (scaling_test): compiled
// only with the tests, so production code cannot reach them.

// WithPolicy replaces the configured policy.
func WithPolicy(p Policy) Option { return func(c *Controller) { c.policy = p } }

// WithElector replaces the leader election (default: lowest peer address
// when peers_dns is set, else this replica alone).
func WithElector(e Elector) Option { return func(c *Controller) { c.elector = e } }

// Bounds is the controller's bounds step.
func (c *Controller) Bounds(dec Decision, cur int, obs Observation) Decision {
	return c.bounds(dec, cur, obs)
}

// ControllerMetrics are the controller's metric vectors and gauges.
type ControllerMetrics struct {
	Events, Decisions *prometheus.CounterVec
	Active, Max       prometheus.Gauge
}

// Metrics returns c's metrics.
func (c *Controller) Metrics() ControllerMetrics {
	return ControllerMetrics{Events: c.m.events, Decisions: c.m.decisions, Active: c.m.active, Max: c.m.max}
}

// Neutral is an observation that is neither an up nor a down condition.
var Neutral = neutral

// DecisionLogSize is how many decisions Status keeps.
const DecisionLogSize = decisionLogSize
