package pool

import (
	"math"
	"time"
)

// request is what routing needs to know of one request.
type request struct {
	model   string     // modelKey of the resolved model
	tried   [2]*Engine // engines this request already failed on: never again
	ahead   int        // requests waiting ahead of this one
	defSvc  float64    // service time (s) assumed where an engine has no measure for the model
	defLoad float64    // model load time (s) assumed where an engine has no measure
	key     uint64     // the conversation's prefix, 0: none
	affine  *Engine    // the engine key last went to, nil: none
}

func (r *request) excluded(e *Engine) bool { return e == r.tried[0] || e == r.tried[1] }

// decision is routing's answer. With no engine, the request waits: until a
// slot frees or the engines change, and at the latest after wait (when not
// zero); none means no engine can take it at all, so it fails now.
type decision struct {
	engine *Engine
	load   bool // the engine does not have the model loaded: it will load it
	wait   time.Duration
	none   bool
}

// candidate is one engine as routing sees it for one request.
type candidate struct {
	e      *Engine
	has    bool
	loaded bool
	svc    float64 // service time for the model, seconds
	load   float64 // load time for the model, seconds
	cost   float64 // expected completion time when free
}

// tieTolerance: costs within this share of the lowest are equal, so that
// the noise of the service-time averages does not pin traffic to one engine.
const tieTolerance = 0.05

// route picks the engine for r among engines, a pure function of their
// state, r and rnd (a random number for the power of two choices); buf is
// scratch space, returned for reuse:
//
//  1. only routable engines with a share of slots, not tried by r, and that
//     have r's model; when no engine lists the model, any of them (tags can
//     be stale, and the engine's own answer is then authoritative);
//  2. a free engine with the model loaded first;
//  3. a free engine that would have to load the model only when the
//     expected wait for a loaded one is longer than the load;
//  4. among equals, the lowest expected completion time: the service time
//     stretched by the share of slots busy (requests in one Ollama share its
//     compute); then the power of two choices on the busy share of slots.
func route(engines []*Engine, r *request, rnd uint64, buf []candidate) (decision, []candidate) {
	cs, starting := candidates(engines, r, buf[:0])
	if len(cs) == 0 {
		return decision{none: starting == 0}, cs
	}
	class, minCost, d, ok := choose(cs, r)
	if !ok {
		return d, cs
	}
	if e := affine(cs, r, class, minCost); e != nil {
		return decision{engine: e, load: class == coldClass}, cs
	}
	return decision{engine: powerOfTwo(cs, class, minCost, rnd), load: class == coldClass}, cs
}

// affinityTolerance: the engine a conversation last went to is chosen
// while its expected completion is within this factor of the best: a hit
// in its prompt cache saves the prompt's evaluation (measured on the tiny
// model: 706 ms for a 1,220-token prefix against 15 ms from the cache).
const affinityTolerance = 2

// affine is r's engine of the last turn when it is a free candidate of
// class within affinityTolerance of minCost.
func affine(cs []candidate, r *request, class int, minCost float64) *Engine {
	if r.affine == nil {
		return nil
	}
	for i := range cs {
		c := &cs[i]
		if c.e == r.affine {
			if c.has && c.e.free() && c.loaded == (class == loadedClass) && c.cost <= minCost*affinityTolerance {
				return c.e
			}
			return nil
		}
	}
	return nil
}

// candidates appends to cs the engines r may go to (rule 1), with what
// each has of r's model, and counts the engines still starting.
func candidates(engines []*Engine, r *request, cs []candidate) ([]candidate, int) {
	starting, withModel := 0, 0
	for _, e := range engines {
		if r.excluded(e) {
			continue
		}
		if e.state == StateStarting {
			starting++
		}
		if !e.state.Routable() || e.slots < 1 {
			continue
		}
		c := candidate{e: e, svc: r.defSvc, load: r.defLoad}
		if ms := e.per[r.model]; ms != nil {
			c.has, c.loaded = ms.has, ms.loaded
			if ms.svc.n > 0 {
				c.svc = ms.svc.v
			}
			if ms.load.n > 0 {
				c.load = ms.load.v
			}
		}
		if c.has {
			withModel++
		}
		cs = append(cs, c)
	}
	if withModel == 0 {
		for i := range cs {
			cs[i].has, cs[i].loaded = true, true // no engine lists it: any may answer
		}
	}
	return cs, starting
}

// Classes of a free engine for a request.
const (
	loadedClass = iota // the model is loaded
	coldClass          // it would have to load it
)

// choose costs the candidates and picks the class to route in (rules 2
// and 3); when no engine should take the request now, ok is false and d
// says how long it waits at most.
func choose(cs []candidate, r *request) (class int, minCost float64, d decision, ok bool) {
	costs := [2]float64{math.Inf(1), math.Inf(1)}
	var cold *candidate // the cheapest free engine that would load the model
	minWait := math.Inf(1)
	for i := range cs {
		c := &cs[i]
		if !c.has {
			continue
		}
		e := c.e
		if !e.free() {
			if c.loaded { // the next of its slots to free, plus those queued ahead
				minWait = min(minWait, c.svc*float64(e.inFlight-e.slots+1+r.ahead)/float64(e.slots))
			}
			c.cost = math.Inf(1)
			continue
		}
		c.cost = c.svc * float64(e.inFlight+1) / float64(e.slots)
		k := coldClass
		if c.loaded {
			k = loadedClass
		}
		if c.cost < costs[k] {
			costs[k] = c.cost
			if k == coldClass {
				cold = c
			}
		}
	}
	switch {
	case !math.IsInf(costs[loadedClass], 1):
		return loadedClass, costs[loadedClass], decision{}, true
	case cold != nil && minWait < cold.load:
		return 0, 0, decision{wait: max(time.Duration(minWait*float64(time.Second)), time.Millisecond)}, false
	case cold != nil:
		return coldClass, costs[coldClass], decision{}, true
	}
	return 0, 0, decision{}, false // every engine with the model is full
}

// powerOfTwo picks among the free engines of class within tieTolerance of
// minCost (rule 4): two at random, the one with the smaller busy share of
// slots. It reuses cs's storage.
func powerOfTwo(cs []candidate, class int, minCost float64, rnd uint64) *Engine {
	limit := minCost * (1 + tieTolerance)
	n := 0
	for i := range cs {
		c := &cs[i]
		if c.has && c.cost <= limit && c.loaded == (class == loadedClass) {
			cs[n] = *c
			n++
		}
	}
	a := int(rnd % uint64(n))
	b := a
	if n > 1 {
		b = int((rnd >> 32) % uint64(n-1))
		if b >= a {
			b++
		}
	}
	ea, eb := cs[a].e, cs[b].e
	if eb.inFlight*ea.slots < ea.inFlight*eb.slots {
		return eb
	}
	return ea
}

// affinityCap bounds the conversations remembered; the oldest go first.
const affinityCap = 8192

// affinity remembers, per conversation key, the engine it last went to;
// guarded by the pool's mutex.
type affinity struct {
	m    map[uint64]*Engine
	ring []uint64 // keys in the order they were first put
	next int
}

func (a *affinity) get(key uint64) *Engine {
	if key == 0 {
		return nil
	}
	return a.m[key]
}

func (a *affinity) put(key uint64, e *Engine) {
	if key == 0 {
		return
	}
	if a.m == nil {
		a.m = make(map[uint64]*Engine, affinityCap)
		a.ring = make([]uint64, affinityCap)
	}
	if _, ok := a.m[key]; !ok {
		if old := a.ring[a.next]; old != 0 {
			delete(a.m, old)
		}
		a.ring[a.next] = key
		a.next = (a.next + 1) % affinityCap
	}
	a.m[key] = e
}
