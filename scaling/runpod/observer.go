package runpod

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/aurax/aurax/internal/retry"
	"github.com/aurax/aurax/scaling"
)

// Observer reads the endpoint's queue from GET {QueueURL}/{id}/health: queue
// depth is jobs.inQueue, in flight jobs.inProgress, replicas the workers
// that can take jobs. Arrival and completion rates come from the change of
// the job counters between two calls (unknown on the first call and after
// a counter went down). CPU, memory, GPU and latency are unknown.
type Observer struct {
	c   *client
	now func() time.Time

	mu     sync.Mutex
	prev   Health
	prevAt time.Time
}

var _ scaling.Observer = (*Observer)(nil)

// NewObserver returns the observer for cfg; hc and logger as for New.
func NewObserver(cfg Config, hc *http.Client, logger *slog.Logger) (*Observer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c, err := newClient(cfg, hc, logger.With("component", "runpod", "endpoint", cfg.EndpointID))
	if err != nil {
		return nil, err
	}
	return &Observer{c: c, now: time.Now}, nil
}

// Health reads the endpoint's /health.
func (o *Observer) Health(ctx context.Context) (Health, error) {
	b, err := o.c.do(ctx, http.MethodGet, o.c.cfg.QueueURL, "/"+url.PathEscape(o.c.cfg.EndpointID)+"/health", nil)
	if err != nil {
		return Health{}, err
	}
	h, err := DecodeHealth(b)
	return h, retry.Terminal(err)
}

// Observe implements scaling.Observer. Replicas is at least 1 once RunPod
// answered: the queue counts cover the whole endpoint even when no worker
// runs, and the policies read 0 replicas as "saw nothing" (which would hold
// a scaled-to-zero endpoint at zero while jobs queue).
func (o *Observer) Observe(ctx context.Context) (scaling.Observation, error) {
	h, err := o.Health(ctx)
	if err != nil {
		return scaling.Observation{}, err
	}
	now := o.now()
	obs := scaling.Unknown(now)
	obs.Replicas, obs.Sources = max(1, h.Serving()), 1
	if s := o.c.cfg.WorkerSlots; s > 0 {
		obs.Slots = obs.Replicas * s
	}
	obs.QueueDepth = float64(h.Jobs.InQueue)
	obs.InFlight = float64(h.Jobs.InProgress)

	o.mu.Lock()
	prev, prevAt := o.prev, o.prevAt
	o.prev, o.prevAt = h, now
	o.mu.Unlock()
	if dt := now.Sub(prevAt).Seconds(); !prevAt.IsZero() && dt > 0 {
		done := func(x Health) int64 { return x.Jobs.Completed + x.Jobs.Failed }
		seen := func(x Health) int64 { return done(x) + x.Jobs.InProgress + x.Jobs.InQueue }
		dDone, dFailed, dSeen := done(h)-done(prev), h.Jobs.Failed-prev.Jobs.Failed, seen(h)-seen(prev)
		if dDone >= 0 && dFailed >= 0 && dSeen >= 0 {
			obs.DoneRate = float64(dDone) / dt
			obs.ArrivalRate = float64(dSeen) / dt
			obs.ErrorRate = 0
			if dDone > 0 {
				obs.ErrorRate = float64(dFailed) / float64(dDone)
			}
		}
	}
	if math.IsNaN(obs.ArrivalRate) {
		obs.ErrorRate = math.NaN()
	}
	return obs, nil
}
