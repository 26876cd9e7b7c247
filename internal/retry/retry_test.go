package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var errBoom = errors.New("boom")

func TestClasses(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		terminal bool
		wait     time.Duration
		hasWait  bool
	}{
		{"nil", nil, false, 0, false},
		{"plain", errBoom, false, 0, false},
		{"terminal", Terminal(errBoom), true, 0, false},
		{"terminal wrapped", fmt.Errorf("set replicas: %w", Terminal(errBoom)), true, 0, false},
		{"terminal nil", Terminal(nil), false, 0, false},
		{"after", After(errBoom, 3*time.Second), false, 3 * time.Second, true},
		{"after wrapped", fmt.Errorf("take: %w", After(errBoom, time.Second)), false, time.Second, true},
		{"after zero is plain", After(errBoom, 0), false, 0, false},
		{"after nil", After(nil, time.Second), false, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.terminal, IsTerminal(tt.err), "IsTerminal(%v)", tt.err)
			w, ok := WaitOf(tt.err)
			require.Equal(t, tt.hasWait, ok, "WaitOf(%v) ok", tt.err)
			require.Equal(t, tt.wait, w, "WaitOf(%v)", tt.err)
			if tt.err != nil && tt.name != "after nil" && tt.name != "terminal nil" {
				require.ErrorIs(t, tt.err, errBoom, "the class hides the error it marks")
			}
		})
	}
	var te *TerminalError
	require.ErrorAs(t, fmt.Errorf("x: %w", Terminal(io.EOF)), &te)
	require.Equal(t, io.EOF, te.Err)
}

func TestBackoffDelay(t *testing.T) {
	fixed := func(r float64) func() float64 { return func() float64 { return r } }
	tests := []struct {
		b    Backoff
		k    int
		want time.Duration
	}{
		{Backoff{Initial: time.Second, Rand: fixed(0.5)}, 1, time.Second},
		{Backoff{Initial: time.Second, Rand: fixed(0.5)}, 3, 4 * time.Second},
		{Backoff{Initial: time.Second, Rand: fixed(0)}, 3, 2 * time.Second}, // ½ of 4 s
		{Backoff{Initial: time.Second, Rand: fixed(0.999)}, 1, 1499 * time.Millisecond},
		{Backoff{Initial: time.Second, Max: 5 * time.Second, Rand: fixed(0.5)}, 10, 5 * time.Second},
		{Backoff{Initial: time.Second, Max: 5 * time.Second, Rand: fixed(0.999)}, 10, 5 * time.Second}, // capped after the jitter
		{Backoff{Initial: time.Second, Max: 5 * time.Second, Rand: fixed(0)}, 10, 2500 * time.Millisecond},
		{Backoff{Initial: time.Second, Max: time.Minute, Rand: fixed(0.5)}, 1000, time.Minute}, // no overflow
		{Backoff{Rand: fixed(0.5)}, 4, 0},
		{Backoff{Initial: time.Second, Rand: fixed(0.999)}, 1000, time.Duration(float64(time.Second<<32) * 1.499)}, // no cap: no overflow either
	}
	for _, tt := range tests {
		if got := tt.b.Delay(tt.k); got != tt.want {
			t.Errorf("%+v.Delay(%d) = %v; want %v", tt.b, tt.k, got, tt.want)
		}
	}
}

func TestBackoffJitterSpreads(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: time.Minute}
	seen := map[time.Duration]bool{}
	for range 50 {
		d := b.Delay(2)
		require.GreaterOrEqual(t, d, time.Second)
		require.Less(t, d, 3*time.Second)
		seen[d] = true
	}
	require.Greater(t, len(seen), 1, "50 delays without jitter")
}

func TestBackoffWaitHonoursAfter(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 10 * time.Second, Rand: func() float64 { return 0.5 }}
	require.Equal(t, 7*time.Second, b.Wait(1, After(errBoom, 7*time.Second)))
	require.Equal(t, 10*time.Second, b.Wait(1, After(errBoom, time.Hour)), "at most Max")
	require.Equal(t, 2*time.Second, b.Wait(2, errBoom))
}

// recorder is a Policy whose op fails with errs in turn and whose waits are
// recorded, not slept.
func recorder(attempts int, errs ...error) (Policy, func(context.Context) error, *int, *[]time.Duration) {
	var waits []time.Duration
	calls := 0
	p := Policy{Attempts: attempts, Backoff: Backoff{Initial: time.Second, Max: 8 * time.Second, Rand: func() float64 { return 0.5 }},
		Sleep: func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return ctx.Err() }}
	op := func(context.Context) error {
		calls++
		if calls <= len(errs) {
			return errs[calls-1]
		}
		return nil
	}
	return p, op, &calls, &waits
}

func TestDo(t *testing.T) {
	tests := []struct {
		name      string
		attempts  int
		errs      []error
		wantErr   error
		wantCalls int
		wantWaits []time.Duration
	}{
		{"success at once", 4, nil, nil, 1, nil},
		{"retryable then success", 4, []error{errBoom, errBoom}, nil, 3, []time.Duration{time.Second, 2 * time.Second}},
		{"terminal is not retried", 4, []error{Terminal(errBoom)}, errBoom, 1, nil},
		{"terminal after a retry", 4, []error{errBoom, Terminal(io.EOF)}, io.EOF, 2, []time.Duration{time.Second}},
		{"bounded", 3, []error{errBoom, errBoom, errBoom, errBoom}, errBoom, 3, []time.Duration{time.Second, 2 * time.Second}},
		{"after waits what it asks", 4, []error{After(errBoom, 5*time.Second)}, nil, 2, []time.Duration{5 * time.Second}},
		{"one attempt", 1, []error{errBoom}, errBoom, 1, nil},
		{"zero attempts is one", 0, []error{errBoom}, errBoom, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, op, calls, waits := recorder(tt.attempts, tt.errs...)
			var retried []int
			p.OnRetry = func(attempt int, _ time.Duration, _ error) { retried = append(retried, attempt) }
			err := p.Do(t.Context(), op)
			if tt.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tt.wantErr)
			}
			require.Equal(t, tt.wantCalls, *calls, "calls")
			require.Equal(t, tt.wantWaits, *waits, "waits")
			require.Len(t, retried, len(tt.wantWaits), "OnRetry calls")
		})
	}
}

func TestDoCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	p, op, calls, _ := recorder(4, errBoom, errBoom)
	p.Sleep = func(ctx context.Context, d time.Duration) error { cancel(); return ctx.Err() }
	err := p.Do(ctx, op)
	require.ErrorIs(t, err, context.Canceled)
	require.Contains(t, err.Error(), "boom", "the last error is named")
	require.Equal(t, 1, *calls)

	// The real sleep is cut short by the context.
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	p = Policy{Attempts: 2, Backoff: Backoff{Initial: time.Hour}}
	err = p.Do(ctx, func(ctx context.Context) error { return ctx.Err() })
	require.ErrorIs(t, err, context.Canceled)
}
