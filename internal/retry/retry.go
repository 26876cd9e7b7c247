// Package retry is AURAX's one retry policy: which errors are worth another
// try (Terminal and After classify them), how long to wait before it (one
// jittered exponential backoff, or what the server asked for), and one
// Retry-After parser. Providers classify their errors and do not retry;
// Policy.Do is the loop that does.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/aurax/aurax/internal/ctxtime"
)

// TerminalError marks an error that another try would repeat: a validation
// error, a 4xx other than 429, a request over the platform's budget. Do
// returns it at once. Unwrap gives the error it marks, so errors.Is and
// errors.As see through it (as controller-runtime's reconcile.TerminalError).
type TerminalError struct{ Err error }

func (e *TerminalError) Error() string { return e.Err.Error() }
func (e *TerminalError) Unwrap() error { return e.Err }

// Terminal marks err as not worth retrying; Terminal(nil) is nil.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return &TerminalError{Err: err}
}

// IsTerminal reports whether err, or an error it wraps, is a TerminalError.
func IsTerminal(err error) bool {
	var t *TerminalError
	return errors.As(err, &t)
}

// AfterError is a retryable error whose server said when to try again (a
// 429's or 503's Retry-After): Do waits Wait instead of its backoff.
type AfterError struct {
	Err  error
	Wait time.Duration
}

func (e *AfterError) Error() string { return fmt.Sprintf("%v (retry after %s)", e.Err, e.Wait) }
func (e *AfterError) Unwrap() error { return e.Err }

// After marks err as retryable no sooner than d; After(nil, d) is nil and a
// d of 0 or less leaves err as it is (retryable after the backoff).
func After(err error, d time.Duration) error {
	if err == nil || d <= 0 {
		return err
	}
	return &AfterError{Err: err, Wait: d}
}

// WaitOf is the wait an AfterError in err's chain asks for.
func WaitOf(err error) (time.Duration, bool) {
	var a *AfterError
	if errors.As(err, &a) {
		return a.Wait, true
	}
	return 0, false
}

// Backoff is exponential backoff with jitter: the wait before retry k
// (k = 1 after the first failure) is Initial·2^(k-1), capped at Max, then
// spread uniformly over [½, 1½) of itself (and capped at Max again), so
// that callers failing together do not retry together.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration // 0: no cap
	// Rand returns a number in [0, 1); nil is math/rand/v2's Float64.
	// Tests fix it.
	Rand func() float64
}

// Delay is the wait before retry k (k ≥ 1).
func (b Backoff) Delay(k int) time.Duration {
	d := b.Initial
	for i := 1; i < k && (b.Max <= 0 || d < b.Max) && d < math.MaxInt64/4; i++ {
		d *= 2
	}
	d = b.capped(d)
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	return b.capped(time.Duration(float64(d) * (0.5 + r())))
}

func (b Backoff) capped(d time.Duration) time.Duration {
	if b.Max > 0 && d > b.Max {
		return b.Max
	}
	return d
}

// Wait is the wait before retry k after err: what an AfterError asks for
// (at most Max), else Delay(k).
func (b Backoff) Wait(k int, err error) time.Duration {
	if d, ok := WaitOf(err); ok {
		return b.capped(d)
	}
	return b.Delay(k)
}

// Policy is a bounded retry loop.
type Policy struct {
	Attempts int // tries in all; less than 1 is 1
	Backoff  Backoff
	// OnRetry, when set, is told about each failure that is retried and
	// the wait before the next try (for a log line).
	OnRetry func(attempt int, wait time.Duration, err error)
	// Sleep waits d or until ctx ends; nil is a timer. Tests record.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Do runs op until it succeeds, returns a terminal error, or has run
// Attempts times, waiting Backoff.Wait between tries; it returns op's last
// error as it is. When ctx ends during a wait it returns an error wrapping
// ctx.Err() that names op's last error.
func (p Policy) Do(ctx context.Context, op func(ctx context.Context) error) error {
	sleep := p.Sleep
	if sleep == nil {
		sleep = ctxtime.Sleep
	}
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil || IsTerminal(err) || attempt >= p.Attempts {
			return err
		}
		if ctx.Err() != nil {
			return ctxErr(ctx, err)
		}
		wait := p.Backoff.Wait(attempt, err)
		if p.OnRetry != nil {
			p.OnRetry(attempt, wait, err)
		}
		if sleep(ctx, wait) != nil {
			return ctxErr(ctx, err)
		}
	}
}

func ctxErr(ctx context.Context, last error) error {
	if errors.Is(last, ctx.Err()) {
		return last
	}
	return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
}
