package pool

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/aurax/aurax/models"
	"github.com/ollama/ollama/api"
)

var _ models.Backend = (*Pool)(nil)

type leaseKey struct{}

// WithLease returns ctx carrying l: a Backend call with it runs on l's
// engine (and fails over by moving l) instead of taking a slot itself.
func WithLease(ctx context.Context, l *Lease) context.Context {
	return context.WithValue(ctx, leaseKey{}, l)
}

func leaseFrom(ctx context.Context) *Lease {
	l, _ := ctx.Value(leaseKey{}).(*Lease)
	return l
}

// attempt is what one upstream call reports to the bookkeeping.
type attempt struct {
	start   time.Time
	first   time.Duration // to the first chunk; 0: none came
	loadDur time.Duration // the engine's load_duration
}

func (a *attempt) chunk(p *Pool, m api.Metrics) {
	if a.first == 0 {
		a.first = max(p.now().Sub(a.start), time.Nanosecond)
	}
	if m.LoadDuration > 0 {
		a.loadDur = m.LoadDuration
	}
}

// run runs call on the engine of the lease in ctx, or on a slot it takes
// for model, and fails over once to another engine when the call fails
// before its first chunk (connection refused or reset, a 5xx, or the
// engine does not have the model after all).
func (p *Pool) run(ctx context.Context, model string, call func(ctx context.Context, e *Engine, a *attempt) error) error {
	l := leaseFrom(ctx)
	if l == nil {
		var err error
		if l, _, err = p.Acquire(ctx, model); err != nil {
			return err
		}
		defer l.Release()
	}
	for n := 0; ; n++ {
		e := l.e
		if e == nil {
			return ErrNoEngine
		}
		a := attempt{start: p.now()}
		err := call(ctx, e, &a)
		p.observe(l, e, &a, err)
		if err == nil || a.first > 0 || n > 0 || ctx.Err() != nil {
			return err
		}
		var nf *models.ModelNotFoundError
		switch {
		case errors.As(err, &nf):
			if !p.forgetModel(e, l.req.model) {
				return err // no other engine lists it: Ollama's 404 stands
			}
		case retryable(err):
			p.markFailed(e, err)
		default:
			return err
		}
		p.m.retry(e)
		p.log.Info("failing over", "engine", e.name, "model", model, "err", err)
		if rerr := l.reroute(ctx); rerr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

// retryable: the engine failed, not the request.
func retryable(err error) bool {
	if errors.Is(err, models.ErrUnavailable) {
		return true
	}
	var ue *models.UpstreamError
	return errors.As(err, &ue) && (ue.Status == 0 || ue.Status >= 500)
}

// observe records one call's outcome on its engine.
func (p *Pool) observe(l *Lease, e *Engine, a *attempt, err error) {
	took := p.now().Sub(a.start).Seconds()
	p.mu.Lock()
	e.requests++
	if err == nil {
		e.failures = 0
		k := l.req.model
		ms := e.model(k)
		ms.svc.add(took)
		getEWMA(p.modelSvc, k).add(took)
		if a.first > 0 {
			ms.ttft.add(a.first.Seconds())
		}
		if l.load && a.loadDur > 0 {
			ms.load.add(a.loadDur.Seconds())
			getEWMA(p.modelLoad, k).add(a.loadDur.Seconds())
		}
	} else if !errors.Is(err, context.Canceled) {
		e.errors++
		e.lastErr, e.lastErrAt = err.Error(), p.now()
	}
	p.mu.Unlock()
	p.m.request(e, err)
}

func getEWMA(m map[string]*ewma, k string) *ewma {
	v := m[k]
	if v == nil {
		v = &ewma{}
		m[k] = v
	}
	return v
}

// markFailed takes e out for a cooldown that doubles with each consecutive
// failure; its prober looks at it again when the cooldown ends.
func (p *Pool) markFailed(e *Engine, err error) {
	p.mu.Lock()
	e.failures++
	cd := min(p.opts.CooldownMin<<min(e.failures-1, 16), p.opts.CooldownMax)
	e.downUntil = p.now().Add(cd)
	if e.state.Routable() {
		e.state = StateCooldown
	}
	e.reason = "failed a request: " + err.Error()
	p.log.Warn("engine cooling down", "engine", e.name, "for", cd, "failures", e.failures, "err", err)
	p.dispatchLocked() // waiters may have no engine left
	p.mu.Unlock()
	e.nudge()
}

// forgetModel records that e lacks model after all, and reports whether
// another routable engine lists it.
func (p *Pool) forgetModel(e *Engine, model string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ms := e.per[model]; ms != nil {
		ms.has, ms.loaded = false, false
	}
	e.tagsAt = time.Time{}
	for _, o := range p.engines {
		if o != e && o.state.Routable() && o.has(model) {
			return true
		}
	}
	return false
}

// Chat implements models.Backend.
func (p *Pool) Chat(ctx context.Context, req *api.ChatRequest, fn func(*api.ChatResponse) error) error {
	return p.run(ctx, req.Model, func(ctx context.Context, e *Engine, a *attempt) error {
		return e.backend.Chat(ctx, req, func(r *api.ChatResponse) error {
			a.chunk(p, r.Metrics)
			return fn(r)
		})
	})
}

// Generate implements models.Backend.
func (p *Pool) Generate(ctx context.Context, req *api.GenerateRequest, fn func(*api.GenerateResponse) error) error {
	return p.run(ctx, req.Model, func(ctx context.Context, e *Engine, a *attempt) error {
		return e.backend.Generate(ctx, req, func(r *api.GenerateResponse) error {
			a.chunk(p, r.Metrics)
			return fn(r)
		})
	})
}

// Embed implements models.Backend.
func (p *Pool) Embed(ctx context.Context, req *api.EmbedRequest) (*api.EmbedResponse, error) {
	var resp *api.EmbedResponse
	err := p.run(ctx, req.Model, func(ctx context.Context, e *Engine, a *attempt) error {
		var err error
		resp, err = e.backend.Embed(ctx, req)
		if err == nil {
			a.loadDur = resp.LoadDuration
		}
		return err
	})
	return resp, err
}

// answering are the engines worth asking about models: routable ones, or
// any that is not draining when none is.
func (p *Pool) answering() []*Engine {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out, rest []*Engine
	for _, e := range p.engines {
		switch {
		case e.state.Routable():
			out = append(out, e)
		case e.state != StateDraining:
			rest = append(rest, e)
		}
	}
	if len(out) == 0 {
		return rest
	}
	return out
}

// each calls fn on every engine in es at once and waits for them.
func each(es []*Engine, fn func(i int, e *Engine)) {
	var wg sync.WaitGroup
	for i, e := range es {
		wg.Go(func() { fn(i, e) })
	}
	wg.Wait()
}

// List implements models.Backend: the union of the engines' models, asked
// of each now (their answers refresh the routing's view too).
func (p *Pool) List(ctx context.Context) (*api.ListResponse, error) {
	es := p.answering()
	if len(es) == 0 {
		return nil, ErrNoEngine
	}
	lists := make([]*api.ListResponse, len(es))
	errs := make([]error, len(es))
	each(es, func(i int, e *Engine) {
		lists[i], errs[i] = e.backend.List(ctx)
		if errs[i] == nil {
			p.setModels(e, lists[i])
		}
	})
	byName := map[string]api.ListModelResponse{}
	ok := false
	for i, l := range lists {
		if errs[i] != nil {
			continue
		}
		ok = true
		for _, m := range l.Models {
			if have, dup := byName[m.Name]; !dup || m.ModifiedAt.After(have.ModifiedAt) {
				byName[m.Name] = m
			}
		}
	}
	if !ok {
		return nil, errors.Join(errs...)
	}
	out := &api.ListResponse{Models: make([]api.ListModelResponse, 0, len(byName))}
	for _, m := range byName {
		out.Models = append(out.Models, m)
	}
	sort.Slice(out.Models, func(i, j int) bool { return out.Models[i].Name < out.Models[j].Name })
	return out, nil
}

// EngineModel is a loaded model and the engine it is loaded on.
type EngineModel struct {
	api.ProcessModelResponse
	Engine string `json:"engine"`
}

// RunningByEngine asks every engine for its loaded models (/api/ps).
func (p *Pool) RunningByEngine(ctx context.Context) ([]EngineModel, error) {
	es := p.answering()
	if len(es) == 0 {
		return nil, ErrNoEngine
	}
	res := make([]*api.ProcessResponse, len(es))
	errs := make([]error, len(es))
	each(es, func(i int, e *Engine) {
		res[i], errs[i] = e.backend.Running(ctx)
		if errs[i] == nil {
			p.setLoaded(e, res[i])
		}
	})
	out := []EngineModel{}
	ok := false
	for i, r := range res {
		if errs[i] != nil {
			continue
		}
		ok = true
		for _, m := range r.Models {
			out = append(out, EngineModel{ProcessModelResponse: m, Engine: es[i].name})
		}
	}
	if !ok {
		return nil, errors.Join(errs...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Running implements models.Backend: the loaded models of every engine.
func (p *Pool) Running(ctx context.Context) (*api.ProcessResponse, error) {
	ms, err := p.RunningByEngine(ctx)
	if err != nil {
		return nil, err
	}
	out := &api.ProcessResponse{Models: make([]api.ProcessModelResponse, len(ms))}
	for i, m := range ms {
		out.Models[i] = m.ProcessModelResponse
	}
	return out, nil
}

// Show implements models.Backend: asked of an engine that lists the model
// (any engine when none does), the next one when it fails.
func (p *Pool) Show(ctx context.Context, req *api.ShowRequest) (*api.ShowResponse, error) {
	k := modelKey(req.Model)
	es := p.answering()
	p.mu.Lock()
	sort.SliceStable(es, func(i, j int) bool { return es[i].has(k) && !es[j].has(k) })
	p.mu.Unlock()
	var err error = ErrNoEngine
	for _, e := range es {
		var resp *api.ShowResponse
		if resp, err = e.backend.Show(ctx, req); err == nil || ctx.Err() != nil {
			return resp, err
		}
	}
	return nil, err
}

// Version implements models.Backend: the version a ready engine reported,
// else the first that answers.
func (p *Pool) Version(ctx context.Context) (string, error) {
	es := p.answering()
	p.mu.Lock()
	for _, e := range es {
		if e.state == StateReady && e.version != "" {
			v := e.version
			p.mu.Unlock()
			return v, nil
		}
	}
	p.mu.Unlock()
	var err error = ErrNoEngine
	for _, e := range es {
		var v string
		if v, err = e.backend.Version(ctx); err == nil || ctx.Err() != nil {
			return v, err
		}
	}
	return "", err
}

func (p *Pool) setModels(e *Engine, l *api.ListResponse) {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := make([]string, len(l.Models))
	for i, x := range l.Models {
		names[i] = x.Name
	}
	e.setModels(names, false)
	e.tagsAt, e.tags = p.now(), l.Models
}

func (p *Pool) setLoaded(e *Engine, r *api.ProcessResponse) {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := make([]string, len(r.Models))
	for i, x := range r.Models {
		names[i] = x.Name
	}
	e.setModels(names, true)
}
