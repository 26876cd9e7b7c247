package pool

import (
	"container/list"
	"context"
	"errors"
	"math"
	"time"
)

// Admission errors.
var (
	ErrQueueFull   = errors.New("admission queue full")
	ErrWaitTimeout = errors.New("waited too long for an inference slot")
	ErrDraining    = errors.New("server is draining")
	// ErrNoEngine: no engine can take the request (none in the pool, or
	// every one down, cooling down or draining).
	ErrNoEngine = errors.New("no model engine is available")
)

// Lease is a slot on one engine. Release it exactly once (later calls do
// nothing); a call that fails over moves it to another engine.
type Lease struct {
	p     *Pool
	e     *Engine // nil once released, or when a failover found no engine
	req   request
	load  bool // routing chose an engine that had to load the model
	start time.Time
}

// Engine is the engine the lease holds a slot on; nil once released.
func (l *Lease) Engine() *Engine { return l.e }

// EngineName is the engine's host:port, "" once released.
func (l *Lease) EngineName() string {
	if e := l.e; e != nil {
		return e.name
	}
	return ""
}

// Release frees the slot.
func (l *Lease) Release() {
	p := l.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releaseLocked(l)
}

func (p *Pool) releaseLocked(l *Lease) {
	e := l.e
	if e == nil {
		return
	}
	l.e = nil
	e.inFlight--
	p.inFlight--
	p.hold.add(p.now().Sub(l.start).Seconds())
	if e.removed && e.inFlight == 0 {
		p.removeLocked(e, e.reason)
	}
	if p.waiters.Len() > 0 {
		p.dispatchLocked()
	}
}

type grant struct {
	l   *Lease
	err error
}

type waiter struct {
	req  request
	ch   chan grant // buffered: a grant never blocks the dispatcher
	elem *list.Element
}

// Acquire takes a slot for model (the resolved name) on the engine routing
// picks, waiting when none is free. It returns at once with ErrQueueFull
// when MaxWaiting requests already wait, ErrDraining after Drain, and
// ErrNoEngine when no engine can take it; after waiting, ErrWaitTimeout
// after MaxWait or ctx.Err() when ctx ends first (or ErrNoEngine when the
// last engine went away). The wait is reported either way.
func (p *Pool) Acquire(ctx context.Context, model string) (*Lease, time.Duration, error) {
	return p.AcquireKey(ctx, model, 0)
}

// AcquireKey is Acquire for a request of a conversation: key (not 0)
// names its prefix (the system prompt and first turn, say), and routing
// prefers the engine the key last went to, whose Ollama still holds that
// prefix in its prompt cache, when it is free and not much slower than the
// best choice (see route).
func (p *Pool) AcquireKey(ctx context.Context, model string, key uint64) (*Lease, time.Duration, error) {
	r := p.newRequest(model)
	r.key = key
	p.mu.Lock()
	if p.draining {
		p.mu.Unlock()
		return nil, 0, ErrDraining
	}
	if p.waiters.Len() == 0 {
		l, err, done := p.tryLocked(&r)
		if done {
			p.mu.Unlock()
			return l, 0, err
		}
	}
	if p.waiters.Len() >= p.opts.MaxWaiting {
		p.mu.Unlock()
		return nil, 0, ErrQueueFull
	}
	start := p.now()
	w := p.enqueueLocked(r, false)
	p.dispatchLocked()
	p.mu.Unlock()
	l, err := p.await(ctx, w)
	return l, p.now().Sub(start), err
}

func (p *Pool) newRequest(model string) request {
	r := request{model: modelKey(model), defSvc: 1, defLoad: p.opts.LoadEstimate.Seconds()}
	p.mu.Lock()
	if s := p.modelSvc[r.model]; s != nil && s.n > 0 {
		r.defSvc = s.v
	}
	if s := p.modelLoad[r.model]; s != nil && s.n > 0 {
		r.defLoad = s.v // a load measured on one engine stands for the others
	}
	p.mu.Unlock()
	return r
}

// tryLocked grants r a slot now if routing finds one; done is false when r
// must wait.
func (p *Pool) tryLocked(r *request) (l *Lease, err error, done bool) {
	if c := p.opts.MaxInFlight; c > 0 && p.inFlight >= c {
		return nil, nil, false
	}
	var d decision
	r.affine = p.affinity.get(r.key)
	d, p.scratch = route(p.engines, r, p.rnd(), p.scratch)
	switch {
	case d.engine != nil:
		return p.takeLocked(d.engine, *r, d.load), nil, true
	case d.none && p.opts.WaitForEngines && p.noEngineLocked():
		// Scale from zero: wait for the engine being started.
		if f := p.onDemand.Load(); f != nil {
			(*f)()
		}
		return nil, nil, false
	case d.none:
		return nil, ErrNoEngine, true
	}
	if d.wait > 0 {
		p.recheckIn(d.wait)
	}
	return nil, nil, false
}

func (p *Pool) takeLocked(e *Engine, r request, load bool) *Lease {
	e.inFlight++
	p.inFlight++
	p.affinity.put(r.key, e)
	if load {
		e.model(r.model).loaded = true // it will be: later requests share this load
		p.m.modelLoad(e)
	}
	return &Lease{p: p, e: e, req: r, load: load, start: p.now()}
}

func (p *Pool) enqueueLocked(r request, front bool) *waiter {
	w := &waiter{req: r, ch: make(chan grant, 1)}
	if front {
		w.elem = p.waiters.PushFront(w)
	} else {
		w.elem = p.waiters.PushBack(w)
	}
	return w
}

func (p *Pool) failLocked(w *waiter, err error) {
	p.waiters.Remove(w.elem)
	w.elem = nil
	w.ch <- grant{err: err}
}

// dispatchLocked grants slots to the waiting requests, first come first
// served among those that can be served: one that must wait for its model
// does not hold up one for a model with a free engine.
func (p *Pool) dispatchLocked() {
	ahead := 0
	for el := p.waiters.Front(); el != nil; {
		next := el.Next()
		w := el.Value.(*waiter)
		w.req.ahead = ahead
		l, err, done := p.tryLocked(&w.req)
		switch {
		case done && err != nil:
			p.failLocked(w, err)
		case done:
			p.waiters.Remove(el)
			w.elem = nil
			w.ch <- grant{l: l}
		default:
			ahead++
			if c := p.opts.MaxInFlight; c > 0 && p.inFlight >= c {
				return
			}
		}
		el = next
	}
}

// recheckIn routes the waiting requests again after d at the latest (a
// wait chosen over a model load may end sooner than a slot frees).
func (p *Pool) recheckIn(d time.Duration) {
	at := p.now().Add(d)
	if !p.recheckAt.IsZero() && !at.Before(p.recheckAt) {
		return
	}
	p.recheckAt = at
	p.recheck.Reset(d)
}

// noEngineLocked: no engine in the pool but ones being drained away.
func (p *Pool) noEngineLocked() bool {
	for _, e := range p.engines {
		if !e.removed && e.state != StateDraining {
			return false
		}
	}
	return true
}

// await waits for w's grant, MaxWait, or ctx.
func (p *Pool) await(ctx context.Context, w *waiter) (*Lease, error) {
	timer := time.NewTimer(p.opts.MaxWait)
	defer timer.Stop()
	var err error
	select {
	case g := <-w.ch:
		return g.l, g.err
	case <-timer.C:
		err = ErrWaitTimeout
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.mu.Lock()
	if w.elem != nil {
		p.waiters.Remove(w.elem)
		w.elem = nil
		p.mu.Unlock()
		return nil, err
	}
	p.mu.Unlock()
	g := <-w.ch // granted (or failed) just as the wait ended
	if g.l != nil && ctx.Err() != nil {
		g.l.Release()
		return nil, ctx.Err()
	}
	return g.l, g.err
}

// reroute moves l off its engine, which failed before the first byte, to
// another one: at once when one is free, else first in line. It returns
// ErrNoEngine when no other engine can take it; l then holds nothing.
func (l *Lease) reroute(ctx context.Context) error {
	p := l.p
	p.mu.Lock()
	failed := l.e
	if failed == nil {
		p.mu.Unlock()
		return ErrNoEngine
	}
	p.releaseLocked(l)
	r := l.req
	if r.tried[0] == nil {
		r.tried[0] = failed
	} else {
		r.tried[1] = failed
	}
	r.ahead = 0
	nl, err, done := p.tryLocked(&r)
	if done {
		p.mu.Unlock()
		if err != nil {
			return err
		}
		l.e, l.req, l.load, l.start = nl.e, nl.req, nl.load, nl.start
		return nil
	}
	w := p.enqueueLocked(r, true)
	p.dispatchLocked()
	p.mu.Unlock()
	nl, err = p.await(ctx, w)
	if err != nil {
		return err
	}
	l.e, l.req, l.load, l.start = nl.e, nl.req, nl.load, nl.start
	return nil
}

// RetryAfter estimates when a rejected client should try again: the time
// for the present queue to drain at the recent slot hold time, 1 to 60 s.
func (p *Pool) RetryAfter() time.Duration {
	p.mu.Lock()
	hold, waiting := p.hold.v, p.waiters.Len()
	slots := 0
	for _, e := range p.engines {
		if e.state.Routable() {
			slots += e.slots
		}
	}
	p.mu.Unlock()
	est := (float64(waiting)/float64(max(slots, 1)) + 1) * hold
	return time.Duration(math.Max(1, math.Min(60, math.Ceil(est)))) * time.Second
}
