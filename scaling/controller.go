package scaling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aurax/aurax/internal/retry"
)

// ErrNotLeader is returned by SetManual on a replica that is not the leader.
var ErrNotLeader = errors.New("scaling: this replica is not the leader")

// decisionLogSize is how many decisions Status keeps.
const decisionLogSize = 100

// Record is one decision as the decision log keeps it.
type Record struct {
	Time        time.Time    `json:"time"`
	Current     int          `json:"current"`
	Decision    Decision     `json:"decision"`
	Result      string       `json:"result"` // applied, held, error
	Error       string       `json:"error,omitempty"`
	Observation *Observation `json:"observation,omitempty"`
}

// Manual is an operator's override.
type Manual struct {
	Replicas int       `json:"replicas"`
	Reason   string    `json:"reason"`
	Until    time.Time `json:"until"`
}

// Status is the controller's state for GET /v1/scaling.
type Status struct {
	Policy    string    `json:"policy"`
	Mode      string    `json:"mode"`
	Provider  string    `json:"provider"`
	Leader    string    `json:"leader"`
	IsLeader  bool      `json:"is_leader"`
	Current   int       `json:"current"`
	Desired   int       `json:"desired"`
	Min       int       `json:"min"`
	Max       int       `json:"max"`
	Paused    bool      `json:"paused"`
	DryRun    string    `json:"dry_run,omitempty"` // why nothing is applied: the provider is a dry run; empty when it applies
	Manual    *Manual   `json:"manual,omitempty"`
	Cooldowns Cooldowns `json:"cooldowns"`
	Decisions []Record  `json:"decisions"` // newest last
}

// Cooldowns are the timers that hold decisions.
type Cooldowns struct {
	LastUp         time.Time `json:"last_up"`
	LastDown       time.Time `json:"last_down"`
	UpRemainingS   float64   `json:"up_remaining_s"`
	DownRemainingS float64   `json:"down_remaining_s"`
}

// Option customises a Controller.
type Option func(*Controller)

// WithReady gives the controller the serving units it can see ready and
// starting (the engines of this gateway's pool): aurax_active_instances and
// aurax_starting_instances report them, instead of the provider's count.
func WithReady(f func() (ready, starting int)) Option { return func(c *Controller) { c.ready = f } }

// Controller is the control loop: observe, decide, apply on the leader,
// record. It is safe for concurrent use.
type Controller struct {
	cfg     Config
	obs     Observer
	prov    Provider
	policy  Policy
	elector Elector
	logger  *slog.Logger
	m       *controllerMetrics
	ready   func() (ready, starting int) // nil: the provider's count is the active one
	wake    chan struct{}                // Wake: decide now, not at the next tick

	act sync.Mutex // serialises ticks and manual overrides (provider calls)

	mu       sync.Mutex
	st       State
	desired  int
	leader   string
	isLeader bool
	paused   bool
	manual   *Manual
	log      []Record
}

// NewController builds a controller. prov nil with provider "none" is a dry
// run starting at min replicas. Metrics are registered on reg only.
func NewController(cfg Config, obs Observer, prov Provider, reg prometheus.Registerer, logger *slog.Logger, opts ...Option) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.Resolved()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "scaling")
	if obs == nil {
		return nil, errors.New("scaling: nil observer")
	}
	if prov == nil {
		if cfg.Provider != ProviderNone {
			return nil, fmt.Errorf("scaling: provider %q not given", cfg.Provider)
		}
		prov = NewDryRun(cfg.MinReplicas, `provider "none": decisions are logged, not applied`, logger)
	}
	c := &Controller{cfg: cfg, obs: obs, prov: prov, logger: logger, wake: make(chan struct{}, 1)}
	for _, o := range opts {
		o(c)
	}
	if c.policy == nil {
		p, err := NewPolicy(cfg.Policy, cfg)
		if err != nil {
			return nil, err
		}
		c.policy = p
	}
	if c.elector == nil {
		if cfg.PeersDNS != "" {
			po, ok := obs.(*PeersObserver)
			if !ok {
				po = &PeersObserver{Name: cfg.PeersDNS, Port: cfg.PeersPort, Resolver: netResolver{}}
			}
			c.elector = &LowestAddress{Peers: po, Self: cfg.SelfAddress}
		} else {
			c.elector = Single{}
		}
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("scaling metrics: %w", err)
	}
	c.m = m
	m.max.Set(float64(cfg.MaxReplicas))
	c.st.StaleAfter = cfg.StaleAfter
	return c, nil
}

// Run ticks every Interval (the first tick at once), and at once after
// Wake, until ctx is done, then returns nil. It starts no goroutine of its
// own.
func (c *Controller) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		c.Tick(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-c.wake:
		}
	}
}

// Wake makes Run decide now rather than at its next tick: a request arrived
// with no engine to take it (scale from zero). Cheap and safe to call from
// any goroutine, as often as wanted.
func (c *Controller) Wake() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Tick runs one observe-decide-apply round.
func (c *Controller) Tick(ctx context.Context) {
	c.act.Lock()
	defer c.act.Unlock()
	if ctx.Err() != nil {
		return
	}
	now := time.Now()
	leader, self, lerr := c.elector.Leader(ctx)
	obs, oerr := c.obs.Observe(ctx)
	cur, perr := c.prov.Replicas(ctx)
	c.mu.Lock()
	c.leader, c.isLeader = leader, self && lerr == nil
	c.setActive(cur)
	if perr != nil {
		c.mu.Unlock()
		c.record(now, Record{Time: now, Result: ResultError, Error: "replicas: " + perr.Error()})
		c.logger.Warn("read replicas failed", "err", perr)
		return
	}
	c.st.Current = cur
	if oerr != nil {
		obs = Unknown(now) // stale: holds, never scales down
		c.logger.Warn("observe failed", "err", oerr)
	}
	st := c.st
	st.History = append([]Observation(nil), c.st.History...)
	dec := c.policy.Decide(obs, st, now)
	if oerr != nil {
		dec = dec.withNote("observe: " + oerr.Error())
	}
	dec = c.bounds(dec, cur, obs)
	if c.manual != nil && !now.Before(c.manual.Until) {
		c.logger.Info("manual override expired", "replicas", c.manual.Replicas)
		c.manual = nil
	}
	if c.manual != nil {
		dec = Decision{Desired: c.manual.Replicas, Direction: dir(cur, c.manual.Replicas), Reason: "manual",
			Rule: c.manual.Reason, Note: "manual override until " + c.manual.Until.Format(time.RFC3339)}
	}
	if oerr == nil {
		c.st.Observed(obs, now, c.policy.Lookback()+c.cfg.Interval)
	}
	c.desired = dec.Desired
	c.m.desired.Set(float64(dec.Desired))
	isLeader, paused := c.isLeader, c.paused
	c.mu.Unlock()

	rec := Record{Time: now, Current: cur, Decision: dec, Result: ResultHeld}
	if oerr == nil {
		rec.Observation = &obs
	}
	switch {
	case !isLeader:
		rec.Decision = rec.Decision.withNote("not leader (leader " + leader + ")")
		if lerr != nil {
			rec.Decision = rec.Decision.withNote("election: " + lerr.Error())
		}
	case paused && dec.Desired != cur:
		rec.Decision = rec.Decision.withNote("paused")
	case dec.Desired != cur:
		if err := c.apply(ctx, cur, dec.Desired); err != nil {
			rec.Result, rec.Error = ResultError, err.Error()
		} else {
			rec.Result = ResultApplied
			c.applied(now, cur, dec)
		}
	}
	c.record(now, rec)
}

// apply sets n replicas: the one retry loop of the scaling path (providers
// classify their errors and do not retry). Up to RetryAttempts tries with
// jittered backoff from RetryBackoff (at most an interval; a Retry-After is
// waited as asked, within the same cap); a terminal error (validation,
// over budget, a 4xx) ends it at once. Before each retry it re-reads the
// count: a failed call that was applied anyway is not applied twice.
func (c *Controller) apply(ctx context.Context, cur, n int) error {
	p := retry.Policy{Attempts: c.cfg.RetryAttempts,
		Backoff: retry.Backoff{Initial: c.cfg.RetryBackoff, Max: c.cfg.Interval},
		OnRetry: func(attempt int, wait time.Duration, err error) {
			c.logger.Warn("set replicas failed, retrying", "from", cur, "to", n, "attempt", attempt, "wait", wait, "err", err)
		}}
	tries := 0
	err := p.Do(ctx, func(ctx context.Context) error {
		tries++
		if tries > 1 {
			if got, rerr := c.prov.Replicas(ctx); rerr == nil && got == n {
				return nil
			}
		}
		return c.prov.SetReplicas(ctx, n)
	})
	if err != nil {
		return fmt.Errorf("set replicas %d (%d of %d tries): %w", n, tries, c.cfg.RetryAttempts, err)
	}
	return nil
}

func (c *Controller) applied(now time.Time, cur int, dec Decision) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := dir(cur, dec.Desired)
	c.st.Current = cur // the count just read (a manual override reads it between ticks)
	c.st.Applied(dec.Desired, now)
	if c.ready == nil {
		c.m.active.Set(float64(dec.Desired))
	}
	if knownReason(dec.Reason) {
		c.m.events.WithLabelValues(string(d), dec.Reason).Inc()
	}
	c.logger.Info("scaled", "direction", d, "from", cur, "to", dec.Desired, "reason", dec.Reason, "rule", dec.Rule)
}

// setActive reports the ready (and starting) serving units: the engines
// when the controller sees them, else what the provider runs. c.mu held.
func (c *Controller) setActive(cur int) {
	if c.ready == nil {
		c.m.active.Set(float64(cur))
		return
	}
	ready, starting := c.ready()
	c.m.active.Set(float64(ready))
	c.m.starting.Set(float64(starting))
}

// bounds applies what no policy knows: from zero, a request waiting starts
// the first replica at once; to zero only when idle (never with a request
// waiting or in flight); and the provider's own cap (the free GPUs).
func (c *Controller) bounds(dec Decision, cur int, obs Observation) Decision {
	switch {
	case cur == 0 && dec.Desired == 0 && c.cfg.MaxReplicas > 0 && obs.Load() > 0:
		dec = Decision{Desired: 1, Direction: Up, Reason: "queue", Rule: "from zero: a request is waiting and no replica runs"}
	case cur > 0 && dec.Desired == 0 && !(obs.Load() == 0):
		dec.Desired, dec.Direction = 1, dir(cur, 1)
		dec = dec.withNote("to zero only when idle: requests are waiting or in flight (or the load is unknown)")
	}
	if b, ok := c.prov.(Bounded); ok {
		if n, why := b.Bound(); n >= 0 && dec.Desired > n {
			dec.Desired = max(n, min(cur, dec.Desired))
			dec.Direction = dir(cur, dec.Desired)
			dec = dec.withNote(fmt.Sprintf("capped at %d: %s", dec.Desired, why))
		}
	}
	return dec
}

func (c *Controller) record(now time.Time, r Record) {
	c.m.decisions.WithLabelValues(r.Result).Inc()
	if r.Result == ResultHeld {
		c.logger.Debug("decision held", "current", r.Current, "desired", r.Decision.Desired, "note", r.Decision.Note)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = append(c.log, r)
	if len(c.log) > decisionLogSize {
		c.log = append([]Record(nil), c.log[len(c.log)-decisionLogSize:]...)
	}
}

// SetManual overrides the policy with replicas for ttl and applies it now.
// It fails with ErrNotLeader on a follower, and for a count outside
// [min, max] or a non-positive ttl.
func (c *Controller) SetManual(ctx context.Context, replicas int, reason string, ttl time.Duration) error {
	if replicas < c.cfg.MinReplicas || replicas > c.cfg.MaxReplicas {
		return fmt.Errorf("scaling: replicas %d outside [%d, %d]", replicas, c.cfg.MinReplicas, c.cfg.MaxReplicas)
	}
	if ttl <= 0 {
		return errors.New("scaling: ttl must be positive")
	}
	c.act.Lock()
	defer c.act.Unlock()
	leader, self, err := c.elector.Leader(ctx)
	if err != nil || !self {
		return fmt.Errorf("%w (leader %q)", ErrNotLeader, leader)
	}
	now := time.Now()
	cur, err := c.prov.Replicas(ctx)
	if err != nil {
		return fmt.Errorf("scaling: read replicas: %w", err)
	}
	c.mu.Lock()
	c.manual = &Manual{Replicas: replicas, Reason: reason, Until: now.Add(ttl)}
	c.desired = replicas
	c.mu.Unlock()
	dec := Decision{Desired: replicas, Direction: dir(cur, replicas), Reason: "manual", Rule: reason}
	rec := Record{Time: now, Current: cur, Decision: dec, Result: ResultHeld}
	if replicas != cur {
		if err := c.apply(ctx, cur, replicas); err != nil {
			rec.Result, rec.Error = ResultError, err.Error()
			c.record(now, rec)
			return err
		}
		rec.Result = ResultApplied
		c.applied(now, cur, dec)
	}
	c.record(now, rec)
	return nil
}

// Pause stops applying decisions (they are still made and recorded).
func (c *Controller) Pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = true
	c.logger.Info("paused")
}

// Resume applies decisions again.
func (c *Controller) Resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = false
	c.logger.Info("resumed")
}

// Status returns a copy of the controller's state.
func (c *Controller) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	s := Status{Policy: c.policy.Name(), Mode: c.cfg.Mode, Provider: c.cfg.Provider, Leader: c.leader,
		IsLeader: c.isLeader, Current: c.st.Current, Desired: c.desired, Min: c.cfg.MinReplicas,
		Max: c.cfg.MaxReplicas, Paused: c.paused, Decisions: append([]Record{}, c.log...)}
	if c.manual != nil {
		m := *c.manual
		s.Manual = &m
	}
	if d, ok := c.prov.(*DryRun); ok {
		s.DryRun = d.Why()
	}
	s.Cooldowns = Cooldowns{LastUp: c.st.LastUp, LastDown: c.st.LastDown}
	if !c.st.LastUp.IsZero() {
		s.Cooldowns.UpRemainingS = max(0, (c.cfg.UpCooldown - now.Sub(c.st.LastUp)).Seconds())
	}
	if lc := c.st.lastChange(); !lc.IsZero() {
		s.Cooldowns.DownRemainingS = max(0, (c.cfg.DownDelay - now.Sub(lc)).Seconds())
	}
	return s
}
