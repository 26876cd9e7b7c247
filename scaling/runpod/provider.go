package runpod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"

	"github.com/aurax/aurax/internal/retry"
	"github.com/aurax/aurax/scaling"
)

// ErrOverBudget is returned by SetReplicas for a floor above MaxWorkers.
var ErrOverBudget = errors.New("runpod: replicas above the max_workers budget")

// Provider sets an endpoint's worker bounds: Replicas is workers.min, the
// pre-warmed floor; SetReplicas moves it and keeps workers.max (and the
// optional idle timeout and scaler) as configured. See the package comment.
type Provider struct {
	c      *client
	logger *slog.Logger
	mu     sync.Mutex // one read-modify-write at a time
}

var _ scaling.Provider = (*Provider)(nil)

// New returns the provider for cfg. hc nil is a plain http.Client (each
// call is bounded by cfg.Timeout); logger nil discards.
func New(cfg Config, hc *http.Client, logger *slog.Logger) (*Provider, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "runpod", "endpoint", cfg.EndpointID)
	c, err := newClient(cfg, hc, logger)
	if err != nil {
		return nil, err
	}
	return &Provider{c: c, logger: logger}, nil
}

func (p *Provider) path(suffix string) string {
	return "/serverless/" + url.PathEscape(p.c.cfg.EndpointID) + suffix
}

// Endpoint reads the endpoint's settings.
func (p *Provider) Endpoint(ctx context.Context) (Endpoint, error) {
	b, err := p.c.do(ctx, http.MethodGet, p.c.cfg.BaseURL, p.path(""), nil)
	if err != nil {
		return Endpoint{}, err
	}
	e, err := DecodeEndpoint(b)
	if err != nil {
		return e, retry.Terminal(fmt.Errorf("runpod GET %s: %w", p.path(""), err))
	}
	return e, nil
}

// Workers reads the endpoint's workers summary.
func (p *Provider) Workers(ctx context.Context) (WorkerSummary, error) {
	b, err := p.c.do(ctx, http.MethodGet, p.c.cfg.BaseURL, p.path("/workers"), nil)
	if err != nil {
		return WorkerSummary{}, err
	}
	w, err := DecodeWorkers(b)
	return w, retry.Terminal(err)
}

// Replicas implements scaling.Provider: the endpoint's workers.min.
func (p *Provider) Replicas(ctx context.Context) (int, error) {
	e, err := p.Endpoint(ctx)
	if err != nil {
		return 0, err
	}
	return e.Workers.Min, nil
}

// Patch is the body of PATCH /v2/serverless/{id}: only known fields, and
// only those that change.
type Patch struct {
	Workers *WorkersPatch `json:"workers,omitempty"`
	Scaling *Scaler       `json:"scaling,omitempty"`
}

// WorkersPatch holds the worker settings that change.
type WorkersPatch struct {
	Min         *int `json:"min,omitempty"`
	Max         *int `json:"max,omitempty"`
	IdleTimeout *int `json:"idleTimeout,omitempty"`
}

// Empty reports whether the patch changes nothing.
func (p Patch) Empty() bool { return p.Workers == nil && p.Scaling == nil }

// Plan is the patch that takes e to floor n under cfg: workers.min = n,
// workers.max = cfg.MaxWorkers, and the idle timeout and scaler when
// configured. It is empty when e already has them.
func Plan(cfg Config, e Endpoint, n int) Patch {
	var w WorkersPatch
	set := false
	if e.Workers.Min != n {
		w.Min, set = &n, true
	}
	if m := cfg.MaxWorkers; e.Workers.Max != m {
		w.Max, set = &m, true
	}
	if it := int(cfg.IdleTimeout.Seconds()); cfg.IdleTimeout > 0 && e.Workers.IdleTimeout != it {
		w.IdleTimeout, set = &it, true
	}
	var p Patch
	if set {
		p.Workers = &w
	}
	if cfg.ScalerType != "" && (e.Scaling.Type != cfg.ScalerType || e.Scaling.Value() != float64(cfg.ScalerValue)) {
		s := Scaler{Type: cfg.ScalerType}
		if cfg.ScalerType == ScalerRequestCount {
			s.RequestCount = cfg.ScalerValue
		} else {
			s.QueueDelay = float64(cfg.ScalerValue)
		}
		p.Scaling = &s
	}
	return p
}

// SetReplicas implements scaling.Provider: it sets workers.min = n (and the
// configured max, idle timeout and scaler), sending nothing when the
// endpoint already has them. It reads the endpoint first, so a call repeated
// after a PATCH that failed once RunPod had applied it (a timeout, a 5xx from
// a proxy) sends nothing again. One try: errors are classified (internal/retry)
// for the controller, which retries; n above MaxWorkers is ErrOverBudget,
// terminal, as is a negative n or a 4xx other than 429.
func (p *Provider) SetReplicas(ctx context.Context, n int) error {
	if n < 0 {
		return retry.Terminal(fmt.Errorf("runpod: replicas %d is negative", n))
	}
	if n > p.c.cfg.MaxWorkers {
		return retry.Terminal(fmt.Errorf("%w: %d > runpod.max_workers %d", ErrOverBudget, n, p.c.cfg.MaxWorkers))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	path := p.path("")
	e, err := p.Endpoint(ctx)
	if err != nil {
		return err
	}
	patch := Plan(p.c.cfg, e, n)
	if patch.Empty() {
		return nil
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return retry.Terminal(err)
	}
	if _, err := p.c.do(ctx, http.MethodPatch, p.c.cfg.BaseURL, path, body); err != nil {
		return err
	}
	p.logger.Info("runpod bounds set", "min_from", e.Workers.Min, "min", n, "max_from", e.Workers.Max,
		"max", p.c.cfg.MaxWorkers, "scaler_changed", patch.Scaling != nil)
	return nil
}
