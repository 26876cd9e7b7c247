// Package scaling is AURAX's embedded autoscaler: it observes load (this
// replica, all peers, or Prometheus), runs a pure policy
// (Decide(observation, state, now) Decision), and, on the leader only,
// applies the decision through a Provider, recording every decision with its
// reason, rule and observation.
//
// Policies: "thresholds" (the seed's rule tables), "target" (target tracking
// on concurrency per replica) and "predictive" (a Holt forecast of arrivals
// over the cold start with a peak memory when they are bursty, Erlang C on
// the offered load when they are steady). The same Decide code and State
// bookkeeping run inside the trace simulator in scaling/sim.
package scaling
