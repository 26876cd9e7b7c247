package pool

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aurax/aurax/models"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Pool. Zero durations and counts take the defaults
// noted.
type Options struct {
	// Targets are the static engines (ollama.url). They start routable, as
	// one Ollama did before there was a pool; discovered engines start
	// only once they answer.
	Targets []Target
	// Discoverers find more engines (ollama.discover).
	Discoverers []Discoverer
	// NewBackend builds an engine's client (default: models.NewOllama with
	// Ollama).
	NewBackend func(Target) (models.Backend, error)
	Ollama     models.OllamaOptions

	Parallel    int           // slots per engine unless its target says (default 1)
	MaxInFlight int           // most requests in flight over all engines (0: the engines' slots)
	MaxWaiting  int           // requests allowed to wait for a slot (ErrQueueFull beyond)
	MaxWait     time.Duration // longest wait for a slot (default 30s)

	PSInterval   time.Duration // loaded models (/api/ps) and liveness, per engine (default 3s)
	TagsInterval time.Duration // models (/api/tags), per engine (default 30s)
	ProbeTimeout time.Duration // one probe (default 5s)
	CooldownMin  time.Duration // first cooldown of a failed engine, doubled per failure (default 1s)
	CooldownMax  time.Duration // longest cooldown (default 30s)
	LoadEstimate time.Duration // model load time assumed until one is measured (default 5s)

	// Preload is the model an engine that has none loaded loads when it
	// joins (an empty generate), before it gets requests when it was
	// discovered: ready means warm. Empty: none. WarmTimeout bounds the load
	// (default 5m).
	Preload     string
	WarmTimeout time.Duration

	// Require are the models an engine must have; with PullMissing it
	// pulls those it lacks and counts as ready only once it has them.
	Require     []string
	PullMissing bool

	// Gateways, when set, tells how many gateways share the engines and
	// which one this is, so that each hands an engine only its share of
	// the engine's slots (polled every GatewayInterval, default 5s).
	Gateways        GatewaySource
	GatewayInterval time.Duration

	// WaitForEngines makes a request wait (up to MaxWait) instead of
	// failing when the pool has no engine at all: scale from zero (see
	// Pool.WaitForEngines for the callback that starts one).
	WaitForEngines bool

	Registerer prometheus.Registerer // engine metrics (nil: none)
	Logger     *slog.Logger
	Now        func() time.Time // default time.Now
	Rand       func() uint64    // default math/rand/v2
}

// GatewaySource reports the live gateways over one pool: this one's index
// among them and their count. An error leaves the last answer in force.
type GatewaySource interface {
	Gateways(ctx context.Context) (self, n int, err error)
}

// Pool is the engines and the admission queue in front of them. It is safe
// for concurrent use; Run keeps the engines' state fresh.
type Pool struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time
	rnd  func() uint64
	m    *poolMetrics

	mu        sync.Mutex
	engines   []*Engine   // every engine, in the order they joined
	scratch   []candidate // route's buffer
	affinity  affinity    // conversation key → the engine it last went to
	byURL     map[string]*Engine
	found     map[int][]Target // discoverer index → its last set
	waiters   list.List        // *waiter, FIFO
	inFlight  int
	draining  bool
	hold      ewma               // slot hold time, seconds (Retry-After)
	pulling   map[string]*Engine // model → the engine pulling it
	modelSvc  map[string]*ewma   // service time per model over all engines
	modelLoad map[string]*ewma   // load time per model over all engines
	gwSelf    int
	gwN       int
	onDemand  atomic.Pointer[func()] // WaitForEngines' callback
	recheck   *time.Timer
	recheckAt time.Time // when recheck fires; zero when it is not set
	running   *runState // nil until Run starts
}

type runState struct {
	ctx context.Context
	wg  *sync.WaitGroup
}

// New builds a pool with its static engines; Run probes and discovers.
func New(opts Options) (*Pool, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Parallel < 1 {
		opts.Parallel = 1
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 30 * time.Second
	}
	setDefault(&opts.PSInterval, 3*time.Second)
	setDefault(&opts.TagsInterval, 30*time.Second)
	setDefault(&opts.ProbeTimeout, 5*time.Second)
	setDefault(&opts.CooldownMin, time.Second)
	setDefault(&opts.CooldownMax, 30*time.Second)
	setDefault(&opts.LoadEstimate, 5*time.Second)
	setDefault(&opts.GatewayInterval, 5*time.Second)
	setDefault(&opts.WarmTimeout, 5*time.Minute)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Uint64
	}
	if opts.NewBackend == nil {
		oo := opts.Ollama
		opts.NewBackend = func(t Target) (models.Backend, error) { return models.NewOllama(t.URL, oo) }
	}
	p := &Pool{
		opts: opts, log: opts.Logger.With("component", "pool"), now: opts.Now, rnd: opts.Rand,
		byURL: map[string]*Engine{}, found: map[int][]Target{}, modelSvc: map[string]*ewma{}, modelLoad: map[string]*ewma{}, pulling: map[string]*Engine{}, gwN: 1,
		hold: ewma{v: 1, n: 1},
	}
	p.m = newPoolMetrics(opts.Registerer, p)
	p.recheck = time.AfterFunc(time.Hour, func() {
		p.mu.Lock()
		p.recheckAt = time.Time{}
		p.dispatchLocked()
		p.mu.Unlock()
	})
	p.recheck.Stop()
	for _, t := range opts.Targets {
		if t.Source == "" {
			t.Source = "static"
		}
		if _, dup := p.byURL[t.URL]; dup {
			return nil, fmt.Errorf("engine %s listed twice", t.URL)
		}
		if _, err := p.addLocked(t, StateUnknown); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// addLocked makes t an engine in state; p.mu held (or p not yet shared).
func (p *Pool) addLocked(t Target, state State) (*Engine, error) {
	b, err := p.opts.NewBackend(t)
	if err != nil {
		return nil, fmt.Errorf("engine %s: %w", t.URL, err)
	}
	e := newEngine(t, b, p.opts.Parallel, state)
	e.slots = share(e.parallel, p.gwN, p.gwSelf, urlHash(e.URL))
	e.gone = make(chan struct{})
	p.engines = append(p.engines, e)
	p.byURL[t.URL] = e
	p.m.added(e)
	if p.running != nil {
		p.startProber(e)
	}
	return e, nil
}

// removeLocked takes e out of the pool: at once when idle, else it drains
// first (Release removes it when its last request ends).
func (p *Pool) removeLocked(e *Engine, why string) {
	if !e.removed {
		e.removed = true
		e.state, e.reason = StateDraining, why
		p.log.Info("engine draining", "engine", e.name, "reason", why, "in_flight", e.inFlight)
	}
	if e.inFlight > 0 {
		return
	}
	if i := slices.Index(p.engines, e); i >= 0 {
		p.engines = slices.Delete(p.engines, i, i+1)
	}
	if p.byURL[e.URL] == e {
		delete(p.byURL, e.URL)
	}
	close(e.gone)
	p.m.removed(e)
	p.log.Info("engine removed", "engine", e.name)
}

// Run probes every engine and follows the discoverers until ctx ends; it
// returns once all of its goroutines have exited. Call it once.
func (p *Pool) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	p.mu.Lock()
	if p.running != nil {
		p.mu.Unlock()
		return errors.New("pool: Run called twice")
	}
	p.running = &runState{ctx: ctx, wg: &wg}
	for _, e := range p.engines {
		p.startProber(e)
	}
	p.mu.Unlock()
	for i, d := range p.opts.Discoverers {
		up := make(chan []Target)
		wg.Go(func() { d.Run(ctx, up) })
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case ts := <-up:
					p.reconcile(i, ts)
				}
			}
		})
	}
	if p.opts.Gateways != nil {
		wg.Go(func() { p.followGateways(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	p.recheck.Stop()
	return nil
}

func (p *Pool) startProber(e *Engine) {
	r := p.running
	r.wg.Go(func() { p.probeLoop(r.ctx, e) })
}

// reconcile applies discoverer i's whole current set: engines new to the
// pool join (starting: they get requests once a probe finds them ready),
// engines no discoverer and no static target lists any more drain out.
func (p *Pool) reconcile(i int, ts []Target) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.found[i] = ts
	p.reconcileLocked()
}

// reconcileLocked makes the engines the static targets and the last sets
// of the discoverers; p.mu held.
func (p *Pool) reconcileLocked() {
	want := map[string]Target{}
	for _, t := range p.opts.Targets {
		want[t.URL] = t
	}
	for _, set := range p.found {
		for _, t := range set {
			if _, ok := want[t.URL]; !ok {
				want[t.URL] = t
			}
		}
	}
	for url, t := range want {
		e, ok := p.byURL[url]
		switch {
		case !ok:
			if _, err := p.addLocked(t, StateStarting); err != nil {
				p.log.Warn("engine not added", "engine", t.Name(), "err", err)
				continue
			}
			p.log.Info("engine discovered", "engine", t.Name(), "source", t.Source)
		case e.removed:
			// Back before it finished draining: a new engine, fresh state.
			if e.inFlight == 0 {
				p.removeLocked(e, "replaced")
				if _, err := p.addLocked(t, StateStarting); err == nil {
					p.log.Info("engine discovered", "engine", t.Name(), "source", t.Source)
				}
			}
		}
	}
	for _, e := range slices.Clone(p.engines) {
		if _, ok := want[e.URL]; !ok && !e.removed {
			p.removeLocked(e, "gone from discovery")
		}
	}
	p.dispatchLocked()
}

// WaitForEngines turns on scale from zero after New: with no engine at
// all, a request waits (up to MaxWait) instead of failing, and onDemand is
// called each time one does (the controller's Wake).
func (p *Pool) WaitForEngines(onDemand func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.opts.WaitForEngines = true
	if onDemand != nil {
		p.onDemand.Store(&onDemand)
	}
}

// Drain stops admitting: Acquire fails with ErrDraining from now on and
// every waiting request gets it; requests holding a slot go on.
func (p *Pool) Drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draining = true
	for el := p.waiters.Front(); el != nil; el = p.waiters.Front() {
		p.failLocked(el.Value.(*waiter), ErrDraining)
	}
}

// DrainEngine stops routing to the engine named name (host:port or URL):
// its requests in flight go on. It returns the in-flight count and whether
// the engine is in the pool.
func (p *Pool) DrainEngine(name string) (inFlight int, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.engines {
		if e.name == name || e.URL == name {
			if e.state != StateDraining {
				e.state, e.reason = StateDraining, "scaled down"
				p.log.Info("engine draining", "engine", e.name, "reason", e.reason, "in_flight", e.inFlight)
			}
			return e.inFlight, true
		}
	}
	return 0, false
}

// Stats is the pool's load at one instant.
type Stats struct {
	Waiting  int // requests waiting for a slot: the queue depth
	InFlight int // requests holding a slot
	Slots    int // slots of the routable engines (capped by MaxInFlight)
	Engines  int // engines in the pool, whatever their state
	Ready    int // routable engines
	Starting int // engines not ready yet
}

// Stats reports the pool's load now.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{Waiting: p.waiters.Len(), InFlight: p.inFlight, Engines: len(p.engines)}
	for _, e := range p.engines {
		switch {
		case e.state.Routable():
			s.Ready++
			s.Slots += e.slots
		case e.state == StateStarting:
			s.Starting++
		}
	}
	if c := p.opts.MaxInFlight; c > 0 && s.Slots > c {
		s.Slots = c
	}
	return s
}

// Engines reports every engine, in the order they joined.
func (p *Pool) Engines() []EngineStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]EngineStatus, len(p.engines))
	for i, e := range p.engines {
		out[i] = e.status()
	}
	return out
}

// HasReady reports, for each model, whether a routable engine has it.
func (p *Pool) HasReady(models ...string) []bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]bool, len(models))
	for i, m := range models {
		k := modelKey(m)
		for _, e := range p.engines {
			if e.state.Routable() && e.has(k) {
				out[i] = true
				break
			}
		}
	}
	return out
}

// followGateways keeps this gateway's share of each engine's slots.
func (p *Pool) followGateways(ctx context.Context) {
	t := time.NewTicker(p.opts.GatewayInterval)
	defer t.Stop()
	for {
		gctx, cancel := context.WithTimeout(ctx, p.opts.GatewayInterval)
		self, n, err := p.opts.Gateways.Gateways(gctx)
		cancel()
		if err != nil {
			p.log.Debug("gateways unknown: keeping the last share", "err", err)
		} else {
			p.setGateways(self, n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Pool) setGateways(self, n int) {
	if n < 1 || self < 0 || self >= n {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if self == p.gwSelf && n == p.gwN {
		return
	}
	p.log.Info("gateways changed: sharing engine slots", "gateways", n, "self", self)
	p.gwSelf, p.gwN = self, n
	for _, e := range p.engines {
		e.slots = share(e.parallel, n, self, urlHash(e.URL))
	}
	p.dispatchLocked()
}

// share is gateway self's part of an engine's parallel slots among n
// gateways: the quotient, plus one of the remainder, given out by the
// engine's hash so that with fewer slots than gateways every gateway still
// gets some engines. Summed over the n gateways it is parallel.
func share(parallel, n, self int, h uint32) int {
	if n <= 1 {
		return parallel
	}
	s := parallel / n
	if int((uint32(self)+h)%uint32(n)) < parallel%n {
		s++
	}
	return s
}

func urlHash(u string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(u))
	return h.Sum32()
}
