package sim

import (
	"math"
	"slices"
)

// Model is the serving model of the simulator.
type Model struct {
	Slots      int     // concurrent requests per replica
	PrefillTPS float64 // prompt tokens per second per request
	DecodeTPS  float64 // generated tokens per second per request
	ColdStart  float64 // seconds from a replica's start to serving
	MaxWait    float64 // seconds a request may queue before it is dropped (429); 0: never
	SLOWait    float64 // a request meets the SLO when it waited at most this
	Warmup     float64 // seconds replayed but not counted
	LatencyWin float64 // window of the observed p95 latency
}

func (m Model) service(r Request) float64 {
	return float64(r.Prompt)/m.PrefillTPS + float64(r.Gen)/m.DecodeTPS
}

type replica struct {
	readyAt  float64
	draining bool
	slots    []float64 // end time of the request in each slot; -1 free
}

func (r *replica) busy() int {
	n := 0
	for _, e := range r.slots {
		if e >= 0 {
			n++
		}
	}
	return n
}

// engine is the discrete-event state. Everything is copyable by clone so the
// oracle can try sizes on the future.
type engine struct {
	m    Model
	reqs []Request
	svc  []float64

	now   float64
	next  int   // next arrival
	queue []int // FIFO of waiting request indices
	reps  []*replica

	start   []float64 // dispatch time, -1 not yet
	end     []float64 // completion time, -1 not yet
	dropped []bool
	settled int // completed + dropped

	// accounting since warm-up
	replicaSec float64
	// since the last observation
	arrivals, done, drops int
	busySec, slotSec      float64
	recent                []float64 // completion time, latency pairs within LatencyWin
}

func newEngine(m Model, reqs []Request, initial int) *engine {
	e := &engine{m: m, reqs: reqs, svc: make([]float64, len(reqs)),
		start: make([]float64, len(reqs)), end: make([]float64, len(reqs)), dropped: make([]bool, len(reqs))}
	for i, r := range reqs {
		e.svc[i] = m.service(r)
		e.start[i], e.end[i] = -1, -1
	}
	for range initial {
		e.reps = append(e.reps, e.newReplica(0))
	}
	return e
}

func (e *engine) newReplica(readyAt float64) *replica {
	r := &replica{readyAt: readyAt, slots: make([]float64, e.m.Slots)}
	for i := range r.slots {
		r.slots[i] = -1
	}
	return r
}

func (e *engine) clone() *engine {
	c := *e
	c.queue = slices.Clone(e.queue)
	c.reps = make([]*replica, len(e.reps))
	for i, r := range e.reps {
		cr := *r
		cr.slots = slices.Clone(r.slots)
		c.reps[i] = &cr
	}
	c.start, c.end, c.dropped = slices.Clone(e.start), slices.Clone(e.end), slices.Clone(e.dropped)
	c.recent = slices.Clone(e.recent)
	return &c
}

// done reports whether every request has completed or been dropped.
func (e *engine) finished() bool { return e.settled == len(e.reqs) }

// active counts replicas that are not draining; ready those also serving.
func (e *engine) counts() (active, ready, billed int) {
	for _, r := range e.reps {
		billed++
		if r.draining {
			continue
		}
		active++
		if r.readyAt <= e.now {
			ready++
		}
	}
	return
}

// nextEvent is the time of the next thing that changes state, capped at limit.
func (e *engine) nextEvent(limit float64) float64 {
	t := limit
	if e.next < len(e.reqs) {
		t = min(t, e.reqs[e.next].At)
	}
	for _, r := range e.reps {
		if r.readyAt > e.now {
			t = min(t, r.readyAt)
		}
		for _, end := range r.slots {
			if end >= 0 {
				t = min(t, end)
			}
		}
	}
	if len(e.queue) > 0 && e.m.MaxWait > 0 {
		t = min(t, e.reqs[e.queue[0]].At+e.m.MaxWait)
	}
	return max(t, e.now)
}

// advance moves the clock to t, integrating cost and utilisation.
func (e *engine) advance(t float64) {
	dt := t - e.now
	if dt <= 0 {
		return
	}
	counted := dt
	if e.now < e.m.Warmup {
		counted = max(0, t-e.m.Warmup)
	}
	busy, slots := 0, 0
	for _, r := range e.reps {
		if !r.draining && r.readyAt <= e.now {
			slots += len(r.slots)
		}
		busy += r.busy()
	}
	e.replicaSec += float64(len(e.reps)) * counted
	e.busySec += float64(busy) * dt
	e.slotSec += float64(slots) * dt
	e.now = t
}

// step processes everything due at the next event, up to limit.
func (e *engine) step(limit float64) {
	e.advance(e.nextEvent(limit))
	now := e.now
	// completions
	kept := e.reps[:0]
	for _, r := range e.reps {
		for i, end := range r.slots {
			if end >= 0 && end <= now {
				r.slots[i] = -1
				e.done++
				e.settled++
			}
		}
		if r.draining && r.busy() == 0 {
			continue // drained: gone
		}
		kept = append(kept, r)
	}
	clear(e.reps[len(kept):])
	e.reps = kept
	// arrivals
	for e.next < len(e.reqs) && e.reqs[e.next].At <= now {
		e.queue = append(e.queue, e.next)
		e.next++
		e.arrivals++
	}
	e.dispatch()
}

func (e *engine) dispatch() {
	now := e.now
	for len(e.queue) > 0 && e.m.MaxWait > 0 && now >= e.reqs[e.queue[0]].At+e.m.MaxWait {
		i := e.queue[0]
		e.queue = e.queue[1:]
		e.dropped[i] = true
		e.drops++
		e.settled++
	}
	for _, r := range e.reps {
		if len(e.queue) == 0 {
			break
		}
		if r.draining || r.readyAt > now {
			continue
		}
		for s, end := range r.slots {
			if len(e.queue) == 0 {
				break
			}
			if end >= 0 {
				continue
			}
			i := e.queue[0]
			e.queue = e.queue[1:]
			e.start[i] = now
			e.end[i] = now + e.svc[i]
			r.slots[s] = e.end[i]
			e.recent = append(e.recent, e.end[i], e.end[i]-e.reqs[i].At)
		}
	}
}

// runUntil processes every event up to and including t.
func (e *engine) runUntil(t float64) {
	for {
		e.step(t)
		if e.now >= t && e.nextEvent(math.Inf(1)) > t {
			return
		}
	}
}

// setTarget makes n replicas active: new ones start (ready after the cold
// start), surplus ones drain (starting ones first, then the least busy).
func (e *engine) setTarget(n int, coldStart float64) {
	active, _, _ := e.counts()
	for ; active < n; active++ {
		e.reps = append(e.reps, e.newReplica(e.now+coldStart))
	}
	for ; active > n; active-- {
		var victim *replica
		for _, r := range e.reps {
			if r.draining {
				continue
			}
			if victim == nil || better(r, victim, e.now) {
				victim = r
			}
		}
		victim.draining = true
	}
	// drained-at-once replicas leave now
	kept := e.reps[:0]
	for _, r := range e.reps {
		if r.draining && r.busy() == 0 {
			continue
		}
		kept = append(kept, r)
	}
	clear(e.reps[len(kept):])
	e.reps = kept
	e.dispatch()
}

// better reports whether a is a better scale-in victim than b.
func better(a, b *replica, now float64) bool {
	aReady, bReady := a.readyAt <= now, b.readyAt <= now
	if aReady != bReady {
		return !aReady
	}
	if !aReady {
		return a.readyAt > b.readyAt
	}
	return a.busy() < b.busy()
}
