package scaling

import "math"

// Backlog-aware load: how the predictive policy counts a queue between the
// burstiness thresholds (steady.go has its own rule for steady arrivals).
//
// A queue means one of two things. In a burst it grows while the capacity
// stays put: more arrive than the ready replicas can serve, and every
// queued request is a slot the service lacks. In a backlog (a start at the
// minimum size under full load, or the tail of a burst already answered)
// the capacity has been ordered and the queue is a fixed amount of work
// that the ordered capacity drains: counting each queued request as a
// busy slot orders replicas for work that will be gone before they start,
// and the scale-in memory then holds them for the whole down window.
//
// So a queue counts in full only when it is a burst: it grew since the
// previous observation, the ready replicas did not change over that
// interval, and (for the current decision, where the ordered count is
// known) no ordered replica is still starting; or when the capacity
// (ordered, else ready) cannot serve the arrival flow and drain the queue
// within backlogDrain. Otherwise the load is the
// flow (arrival rate × service time; in flight is the saturated capacity,
// not the demand) plus ServiceS/backlogDrain of a slot per queued request:
// the slots that drain the backlog within backlogDrain.

// sampleLoad is the load s[j] asks for: in flight plus its queue, the
// queue weighted as a burst or a backlog (see above). ordered is the
// replica count ordered at s[j]'s time, or -1 when unknown.
func (p *PredictivePolicy) sampleLoad(s []Observation, j, ordered int, f Forecast) float64 {
	o := s[j]
	if o.QueueDepth <= 0 || p.bursty(f) {
		return o.Load()
	}
	if p.burstQueue(s, j, ordered) || !p.drains(o, ordered, f) {
		return o.Load()
	}
	// In a backlog the ready slots are saturated: in flight says what
	// they carry, not what the arrivals need. The need is the flow
	// (arrival rate × service time) plus the slots that drain the queue.
	r := o.ArrivalRate
	if math.IsNaN(r) {
		return o.Load()
	}
	w := min(1, f.ServiceS/backlogDrain.Seconds())
	return min(o.Load(), r*f.ServiceS+w*o.QueueDepth)
}

// burstQueue reports whether s[j]'s queue is a burst: grown over the last
// interval at unchanged ready capacity, none ordered still starting.
func (p *PredictivePolicy) burstQueue(s []Observation, j, ordered int) bool {
	if j == 0 {
		return false // no previous observation: cannot tell growth
	}
	o, prev := s[j], s[j-1]
	if math.IsNaN(prev.QueueDepth) || o.QueueDepth <= prev.QueueDepth {
		return false
	}
	if o.Replicas != prev.Replicas {
		return false
	}
	return ordered < 0 || ordered <= o.Replicas
}

// upLoad is the load the scale-out sizes for: the current observation's
// in-flight + queued load, the queue weighted as a burst or a backlog.
func (p *PredictivePolicy) upLoad(s []Observation, cur int, f Forecast) float64 {
	return p.sampleLoad(s, len(s)-1, cur, f)
}

// drains reports whether the capacity (ordered, or o's ready replicas when
// ordered is unknown) serves o's arrival flow and drains its queue within
// backlogDrain. A queue it cannot drain counts in full.
func (p *PredictivePolicy) drains(o Observation, ordered int, f Forecast) bool {
	if math.IsNaN(o.ArrivalRate) {
		return false
	}
	if ordered < 0 {
		ordered = o.Replicas
	}
	surplus := float64(ordered)*f.SlotsPerReplica - o.ArrivalRate*f.ServiceS
	return surplus > 0 && o.QueueDepth*f.ServiceS <= surplus*backlogDrain.Seconds()
}
