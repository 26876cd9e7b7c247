package scaling

import (
	"context"
	"log/slog"
	"sync"
)

// Provider runs the replicas. SetReplicas asks for exactly n replicas and is
// idempotent: calling it again with the same n after an error or a timeout
// never adds more. It returns when the request is accepted (replicas may
// still be starting) or with an error, in which case the count may or may
// not have changed. It tries once: the controller is the one that retries,
// re-reading Replicas first, unless the error is marked terminal
// (internal/retry.Terminal: a bad count, over the platform's bound, a 4xx);
// an error marked with retry.After is retried after the wait it names.
// Replicas returns the count the provider runs or is starting. Both honour
// ctx: on cancellation they return ctx.Err() promptly. Providers are safe
// for concurrent use.
type Provider interface {
	Replicas(ctx context.Context) (int, error)
	SetReplicas(ctx context.Context, n int) error
}

// Bounded is a Provider whose platform caps how many replicas it can run
// (the GPUs the compose provider may hand out). Bound returns that cap and
// why, or a negative n for no cap; the controller stops at it and says so.
type Bounded interface {
	Bound() (n int, why string)
}

// ProviderNone is the dry run's scaling.provider value; the others are
// named by their packages (compose.Name, runpod.Name).
const ProviderNone = "none"

// DryRun is the "none" provider: it records the count it was asked for and
// logs it, changing nothing.
type DryRun struct {
	why    string
	mu     sync.Mutex
	n      int
	logger *slog.Logger
}

var _ Provider = (*DryRun)(nil)

// NewDryRun starts at n replicas; why says why nothing is applied (the
// provider is "none", or the configured one cannot reach its platform) and
// shows in Status.DryRun.
func NewDryRun(n int, why string, logger *slog.Logger) *DryRun {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &DryRun{n: n, why: why, logger: logger}
}

// Why says why this provider applies nothing.
func (d *DryRun) Why() string { return d.why }

// Replicas implements Provider.
func (d *DryRun) Replicas(ctx context.Context) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n, ctx.Err()
}

// SetReplicas implements Provider: it only logs.
func (d *DryRun) SetReplicas(ctx context.Context, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.logger.Info("dry run: would set replicas", "from", d.n, "to", n)
	d.n = n
	return nil
}
