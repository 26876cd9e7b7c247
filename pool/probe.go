package pool

import (
	"context"
	"time"

	"github.com/ollama/ollama/api"
)

// probeLoop keeps e's state fresh until ctx ends or e leaves the pool:
// /api/ps every PSInterval (liveness and loaded models), /api/tags every
// TagsInterval, the version once; after a failure, again with backoff, and
// after a failed request, when its cooldown ends.
func (p *Pool) probeLoop(ctx context.Context, e *Engine) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.gone:
			return
		case <-e.wake:
			p.mu.Lock()
			wait := e.downUntil.Sub(p.now())
			p.mu.Unlock()
			t.Reset(max(wait, 0))
			continue
		case <-t.C:
		}
		t.Reset(p.probe(ctx, e))
	}
}

// probe asks e once and returns when to ask again.
func (p *Pool) probe(ctx context.Context, e *Engine) time.Duration {
	pctx, cancel := context.WithTimeout(ctx, p.opts.ProbeTimeout)
	defer cancel()
	p.mu.Lock()
	needVersion := e.version == ""
	tagsDue := e.tagsAt.IsZero() || p.now().Sub(e.tagsAt) >= p.opts.TagsInterval
	p.mu.Unlock()

	var version string
	var ps *api.ProcessResponse
	var tags *api.ListResponse
	var err error
	if needVersion {
		version, err = e.backend.Version(pctx)
	}
	if err == nil {
		ps, err = e.backend.Running(pctx)
	}
	if err == nil && tagsDue {
		tags, err = e.backend.List(pctx)
	}
	if ctx.Err() != nil {
		return time.Second
	}
	if err != nil {
		return p.probeFailed(e, err)
	}
	if tags != nil {
		p.setModels(e, tags)
	}
	p.setLoaded(e, ps)
	p.mu.Lock()
	if version != "" {
		e.version = version
	}
	e.checkedAt = p.now()
	p.mu.Unlock()

	if missing := p.missing(e); len(missing) > 0 && p.opts.PullMissing {
		p.setState(e, StateStarting, "")
		if !p.pull(ctx, e, missing) {
			return p.opts.PSInterval
		}
		if tags, err := e.backend.List(pctx); err == nil {
			p.setModels(e, tags)
		}
	}

	if !p.warm(ctx, e, ps) {
		return p.opts.PSInterval
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case e.state == StateDraining:
	case e.state == StateCooldown && p.now().Before(e.downUntil):
	case e.state != StateReady:
		if len(p.missingLocked(e)) > 0 && p.opts.PullMissing {
			break // a pull failed: not ready until it succeeds
		}
		was := e.state
		e.state, e.reason, e.everReady = StateReady, "", true
		p.log.Info("engine ready", "engine", e.name, "was", was.String(), "version", e.version, "models", len(e.tags))
		p.dispatchLocked()
	}
	return p.opts.PSInterval
}

func (p *Pool) probeFailed(e *Engine, err error) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.failures++
	e.checkedAt = p.now()
	e.reason = "probe failed: " + err.Error()
	switch e.state {
	case StateDraining:
	case StateStarting:
		if e.everReady {
			e.state = StateDown
		}
	default:
		if e.state != StateDown {
			p.log.Warn("engine down", "engine", e.name, "err", err)
		}
		e.state = StateDown
		p.dispatchLocked() // waiters may have no engine left
	}
	if e.state == StateStarting {
		return p.opts.PSInterval // joining: it answers soon, and the sooner it is seen the better
	}
	return min(p.opts.CooldownMin<<min(e.failures-1, 16), p.opts.CooldownMax)
}

// setState moves e to s (a draining engine stays draining); an empty
// reason keeps the present one.
func (p *Pool) setState(e *Engine, s State, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.state == StateDraining {
		return
	}
	e.state = s
	if reason != "" {
		e.reason = reason
	}
}

func (p *Pool) missing(e *Engine) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.missingLocked(e)
}

// missingLocked are the required models e does not list.
func (p *Pool) missingLocked(e *Engine) []string {
	var out []string
	for _, m := range p.opts.Require {
		if m != "" && !e.has(modelKey(m)) {
			out = append(out, m)
		}
	}
	return out
}

// live is the engines not removed, a copy taken under the lock.
func (p *Pool) live() []*Engine {
	p.mu.Lock()
	defer p.mu.Unlock()
	es := make([]*Engine, 0, len(p.engines))
	for _, e := range p.engines {
		if !e.removed {
			es = append(es, e)
		}
	}
	return es
}

// ProbeAll probes every engine once, now, and returns when all answered
// (or failed): readiness checks and tests use it.
func (p *Pool) ProbeAll(ctx context.Context) {
	es := p.live()
	each(es, func(_ int, e *Engine) { p.probe(ctx, e) })
}

// warm loads Options.Preload on e when e is joining (not ready yet), lists
// the model and has no model loaded, so that its first request does not
// pay the load. It reports whether e may become ready: false while a load
// of a discovered engine failed (it is tried again at the next probe).
func (p *Pool) warm(ctx context.Context, e *Engine, ps *api.ProcessResponse) bool {
	model := modelKey(p.opts.Preload)
	p.mu.Lock()
	joining := e.state != StateReady && e.state != StateDraining
	want := model != "" && joining && len(ps.Models) == 0 && e.has(model)
	if want && e.state == StateStarting {
		e.reason = "warming up: loading " + model
	}
	p.mu.Unlock()
	if !want {
		return true
	}
	wctx, cancel := context.WithTimeout(ctx, p.opts.WarmTimeout)
	defer cancel()
	start := p.now()
	var load time.Duration
	err := e.backend.Generate(wctx, &api.GenerateRequest{Model: p.opts.Preload}, func(r *api.GenerateResponse) error {
		load = r.LoadDuration
		return nil
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.log.Warn("engine warm-up failed", "engine", e.name, "model", model, "err", err)
		if e.state == StateStarting {
			e.reason = "warm-up failed: " + err.Error()
			return false
		}
		return true // a static engine takes requests anyway, as before the pool
	}
	if load <= 0 {
		load = p.now().Sub(start)
	}
	e.model(model).loaded = true
	e.model(model).load.add(load.Seconds())
	getEWMA(p.modelLoad, model).add(load.Seconds())
	p.log.Info("engine warmed up", "engine", e.name, "model", model, "load", load.Round(time.Millisecond))
	return true
}
