package scaling_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/aurax/aurax/internal/retry"
	. "github.com/aurax/aurax/scaling"
	"github.com/aurax/aurax/scaling/scalingtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeObserver reports a fixed load, stamped with the (fake) current time.
type fakeObserver struct {
	mu    sync.Mutex
	queue float64
	err   error
}

func (f *fakeObserver) set(q float64) { f.mu.Lock(); f.queue = q; f.mu.Unlock() }

func (f *fakeObserver) Observe(ctx context.Context) (Observation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return Observation{}, f.err
	}
	o := Neutral(time.Now())
	o.Replicas, o.QueueDepth = 2, f.queue
	return o, nil
}

type fakeElector struct{ self bool }

func (f fakeElector) Leader(context.Context) (string, bool, error) {
	if f.self {
		return "10.0.0.1", true, nil
	}
	return "10.0.0.1", false, nil
}

// queueConfig is prod with the seed's queue rule held for 30 s.
func queueConfig() Config {
	cfg := DefaultConfig()
	cfg.Profile, cfg.Policy, cfg.Interval = ProfileProd, PolicyThresholds, 10*time.Second
	cfg.Thresholds.Up = []string{"queue_depth > 10 for 30s step 2"}
	return cfg
}

func newTestController(t *testing.T, cfg Config, obs Observer, prov Provider, self bool) (*Controller, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := NewController(cfg, obs, prov, reg, slog.New(slog.DiscardHandler), WithElector(fakeElector{self}))
	require.NoError(t, err)
	return c, reg
}

// run starts c.Run and returns a stop function that waits for it.
func run(c *Controller) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	return func() { cancel(); <-done }
}

func TestLoopQueueAddsTwoAfterHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		obs := &fakeObserver{queue: 15}
		prov := scalingtest.NewMemory(2)
		c, _ := newTestController(t, queueConfig(), obs, prov, true)
		stop := run(c)
		defer stop()

		time.Sleep(29 * time.Second)
		synctest.Wait()
		require.Empty(t, prov.Sets(), "before the 30 s hold nothing is applied")

		time.Sleep(2 * time.Second) // tick at 30 s
		synctest.Wait()
		require.Equal(t, []int{4}, prov.Sets())

		time.Sleep(50 * time.Second) // inside the 60 s cooldown
		synctest.Wait()
		require.Equal(t, []int{4}, prov.Sets())
		require.Equal(t, 1.0, toFloat64(t, c.Metrics().Events.WithLabelValues("up", "queue")))
		require.Equal(t, 4.0, toFloat64(t, c.Metrics().Active))
		s := c.Status()
		require.Equal(t, 4, s.Current)
		require.True(t, s.IsLeader)
		var applied *Record
		for i := range s.Decisions {
			if s.Decisions[i].Result == ResultApplied {
				applied = &s.Decisions[i]
			}
		}
		require.NotNil(t, applied)
		require.Equal(t, "queue", applied.Decision.Reason)
		require.Equal(t, "queue_depth > 10 for 30s step 2", applied.Decision.Rule)
		require.Equal(t, 15.0, applied.Observation.QueueDepth)
	})
}

func TestLoopProviderErrorRetriedOnce(t *testing.T) {
	for _, appliedAnyway := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			obs := &fakeObserver{queue: 15}
			prov := scalingtest.NewMemory(2)
			prov.FailNext(errors.New("provider: 503"), appliedAnyway)
			cfg := queueConfig()
			cfg.Thresholds.Up = []string{"queue_depth > 10 step 2"}
			c, _ := newTestController(t, cfg, obs, prov, true)
			stop := run(c)
			time.Sleep(5 * time.Second) // first tick at 0, one retry after 1 s
			synctest.Wait()
			stop()
			n, err := prov.Replicas(context.Background())
			require.NoError(t, err)
			require.Equal(t, 4, n, "applied once, not twice")
			if appliedAnyway {
				require.Equal(t, []int{4}, prov.Sets(), "the re-read saw 4: no second call")
			} else {
				require.Equal(t, []int{4, 4}, prov.Sets())
			}
			require.Equal(t, 1.0, toFloat64(t, c.Metrics().Decisions.WithLabelValues(ResultApplied)))
			require.Equal(t, 0.0, toFloat64(t, c.Metrics().Decisions.WithLabelValues(ResultError)))
		})
	}
}

// TestLoopRetriesClassifiedErrors: apply is the one retry loop: a
// retryable error is tried again at most retry_attempts times in all, with
// jittered backoff (each wait within [½, 1½) of 1, 2, 4 s); a terminal one
// is not retried; a Retry-After is waited as asked. Nothing is applied
// twice.
func TestLoopRetriesClassifiedErrors(t *testing.T) {
	down := errors.New("provider down")
	tests := []struct {
		name      string
		fails     []error
		wantSets  int
		wantN     int    // replicas after the decision
		wantRes   string // the decision's result
		wantCause error
	}{
		{"retryable, bounded at 4 tries", []error{down, down, down, down, down}, 4, 2, ResultError, down},
		{"retryable, then success", []error{down, down}, 3, 4, ResultApplied, nil},
		{"terminal, not retried", []error{retry.Terminal(down)}, 1, 2, ResultError, down},
		{"terminal wrapped, not retried", []error{fmt.Errorf("runpod: %w", retry.Terminal(down))}, 1, 2, ResultError, down},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				prov := scalingtest.NewMemory(2)
				for _, err := range tt.fails {
					prov.FailNext(err, false)
				}
				cfg := queueConfig()
				cfg.Thresholds.Up, cfg.Interval = []string{"queue_depth > 10 step 2"}, time.Minute
				c, _ := newTestController(t, cfg, &fakeObserver{queue: 15}, prov, true)
				stop := run(c)
				time.Sleep(11 * time.Second) // past 1.5+3+6 s, before the next tick
				synctest.Wait()
				stop()
				require.Len(t, prov.Sets(), tt.wantSets, "SetReplicas calls")
				n, _ := prov.Replicas(context.Background())
				require.Equal(t, tt.wantN, n)
				d := c.Status().Decisions
				require.Len(t, d, 1)
				require.Equal(t, tt.wantRes, d[0].Result)
				if tt.wantCause != nil {
					require.Contains(t, d[0].Error, tt.wantCause.Error())
					require.Contains(t, d[0].Error, fmt.Sprintf("(%d of 4 tries)", tt.wantSets))
				}
				require.Equal(t, 1.0, toFloat64(t, c.Metrics().Decisions.WithLabelValues(tt.wantRes)))
			})
		})
	}
}

// TestLoopWaitsRetryAfter: a provider's Retry-After replaces the backoff.
func TestLoopWaitsRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prov := scalingtest.NewMemory(2)
		prov.FailNext(retry.After(errors.New("429"), 20*time.Second), false)
		cfg := queueConfig()
		cfg.Thresholds.Up, cfg.Interval = []string{"queue_depth > 10 step 2"}, time.Minute
		c, _ := newTestController(t, cfg, &fakeObserver{queue: 15}, prov, true)
		stop := run(c)
		defer stop()
		time.Sleep(19 * time.Second)
		synctest.Wait()
		require.Equal(t, []int{4}, prov.Sets(), "no retry before the 20 s asked for")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		require.Equal(t, []int{4, 4}, prov.Sets())
		require.Equal(t, ResultApplied, c.Status().Decisions[0].Result)
	})
}

func TestLoopNonLeaderNeverActs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prov := scalingtest.NewMemory(2)
		c, _ := newTestController(t, queueConfig(), &fakeObserver{queue: 50}, prov, false)
		stop := run(c)
		time.Sleep(20 * time.Minute)
		synctest.Wait()
		stop()
		require.Empty(t, prov.Sets())
		s := c.Status()
		require.False(t, s.IsLeader)
		require.Equal(t, 4, s.Desired, "it still decides")
		require.Contains(t, s.Decisions[len(s.Decisions)-1].Decision.Note, "not leader")
		require.Len(t, s.Decisions, DecisionLogSize)
		require.ErrorIs(t, c.SetManual(context.Background(), 3, "test", time.Minute), ErrNotLeader)
	})
}

func TestLoopPauseAndManual(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prov := scalingtest.NewMemory(2)
		cfg := queueConfig()
		cfg.Thresholds.Up = []string{"queue_depth > 10 step 2"}
		obs := &fakeObserver{queue: 0}
		c, _ := newTestController(t, cfg, obs, prov, true)
		c.Pause()
		obs.set(30)
		stop := run(c)
		defer stop()
		time.Sleep(time.Minute)
		synctest.Wait()
		require.Empty(t, prov.Sets(), "paused")
		require.True(t, c.Status().Paused)

		require.NoError(t, c.SetManual(context.Background(), 7, "launch day", 5*time.Minute))
		require.Equal(t, []int{7}, prov.Sets(), "manual applies even when paused")
		require.Equal(t, 1.0, toFloat64(t, c.Metrics().Events.WithLabelValues("up", "manual")))
		require.Error(t, c.SetManual(context.Background(), 99, "too many", time.Minute))
		c.Resume()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		require.Equal(t, []int{7}, prov.Sets(), "the override holds over the policy")
		require.Equal(t, "launch day", c.Status().Manual.Reason)
	})
}

func TestLoopObserverErrorHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		prov := scalingtest.NewMemory(5)
		c, _ := newTestController(t, queueConfig(), &fakeObserver{err: errors.New("no peer answered")}, prov, true)
		stop := run(c)
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		stop()
		require.Empty(t, prov.Sets())
		require.Contains(t, c.Status().Decisions[0].Decision.Note, "no peer answered")
	})
}

// toFloat64 reads a counter or gauge.
func toFloat64(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// series counts the series of each family in reg.
func seriesCount(t *testing.T, reg *prometheus.Registry) map[string]int {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]int{}
	for _, mf := range mfs {
		out[mf.GetName()] = len(mf.GetMetric())
	}
	return out
}

func TestMetricsCreatedAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := NewController(queueConfig(), &fakeObserver{}, scalingtest.NewMemory(2), reg, nil)
	require.NoError(t, err)
	require.Equal(t, map[string]int{
		"aurax_scaling_events_total":    2 * len(Reasons),
		"aurax_scaling_decisions_total": 3,
		"aurax_active_instances":        1,
		"aurax_starting_instances":      1,
		"aurax_desired_instances":       1,
		"aurax_max_instances":           1,
	}, seriesCount(t, reg))
	require.Equal(t, float64(c.Status().Max), toFloat64(t, c.Metrics().Max), "aurax_max_instances is the controller's ceiling")
}

// boundedMemory is a Memory provider that can run at most max replicas.
type boundedMemory struct {
	*scalingtest.Memory
	max int
}

func (b boundedMemory) Bound() (int, string) { return b.max, "2 GPUs, both held" }

// TestFromZeroWakesAtOnce: with no replica and a request waiting, Wake
// starts the first at once, not at the next tick.
func TestFromZeroWakesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		obs := &fakeObserver{}
		prov := scalingtest.NewMemory(0)
		cfg := queueConfig()
		cfg.MinReplicas, cfg.Interval = 0, time.Minute
		c, _ := newTestController(t, cfg, obs, prov, true)
		stop := run(c)
		defer stop()
		synctest.Wait()
		require.Empty(t, prov.Sets(), "idle at zero: nothing to start")
		obs.set(1)
		time.Sleep(time.Second) // well before the next tick
		synctest.Wait()
		require.Empty(t, prov.Sets(), "without a wake the next tick is a minute away")
		c.Wake()
		synctest.Wait()
		require.Equal(t, []int{1}, prov.Sets(), "woken: one replica for the waiting request")
		require.Contains(t, c.Status().Decisions[len(c.Status().Decisions)-1].Decision.Rule, "from zero")
	})
}

// TestProviderBoundCapsTheDecision: a provider that can run no more stops
// the controller at its bound, and the decision says why.
func TestProviderBoundCapsTheDecision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		obs := &fakeObserver{queue: 50}
		prov := boundedMemory{scalingtest.NewMemory(1), 2}
		c, _ := newTestController(t, queueConfig(), obs, prov, true)
		stop := run(c)
		defer stop()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		require.Equal(t, []int{2}, prov.Sets(), "up to the bound, never beyond")
		last := c.Status().Decisions[len(c.Status().Decisions)-1]
		require.Contains(t, last.Decision.Note, "capped at 2: 2 GPUs, both held")
	})
}

// TestActiveCountsReadyEngines: with the engines' view, active is the ready
// ones and starting the rest.
func TestActiveCountsReadyEngines(t *testing.T) {
	obs := &fakeObserver{}
	reg := prometheus.NewRegistry()
	c, err := NewController(queueConfig(), obs, scalingtest.NewMemory(3), reg, slog.New(slog.DiscardHandler),
		WithElector(fakeElector{true}), WithReady(func() (int, int) { return 2, 1 }))
	require.NoError(t, err)
	c.Tick(context.Background())
	require.Equal(t, 2.0, gauge(t, reg, "aurax_active_instances"))
	require.Equal(t, 1.0, gauge(t, reg, "aurax_starting_instances"))
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestStatusDryRun: Status says why a dry run applies nothing, and says
// nothing for a provider that applies.
func TestStatusDryRun(t *testing.T) {
	cfg := queueConfig()
	c, _ := newTestController(t, cfg, &fakeObserver{}, nil, true)
	require.Contains(t, c.Status().DryRun, `provider "none"`)
	c, _ = newTestController(t, cfg, &fakeObserver{}, NewDryRun(1, "compose unreachable", nil), true)
	require.Equal(t, "compose unreachable", c.Status().DryRun)
	c, _ = newTestController(t, cfg, &fakeObserver{}, scalingtest.NewMemory(1), true)
	require.Empty(t, c.Status().DryRun)
}

// TestToZeroOnlyWhenIdle: a policy that wants zero replicas gets one while
// any request waits or runs.
func TestToZeroOnlyWhenIdle(t *testing.T) {
	cfg := queueConfig()
	cfg.MinReplicas = 0
	c, _ := newTestController(t, cfg, &fakeObserver{}, scalingtest.NewMemory(1), true)
	busy := Neutral(time.Now())
	busy.QueueDepth, busy.InFlight = 0, 1
	d := c.Bounds(Decision{Desired: 0, Direction: Down, Reason: "queue"}, 1, busy)
	require.Equal(t, 1, d.Desired)
	require.Contains(t, d.Note, "to zero only when idle")
	idle := Neutral(time.Now())
	idle.QueueDepth, idle.InFlight = 0, 0
	require.Equal(t, 0, c.Bounds(Decision{Desired: 0, Direction: Down}, 1, idle).Desired)
	unknown := Unknown(time.Now())
	require.Equal(t, 1, c.Bounds(Decision{Desired: 0, Direction: Down}, 1, unknown).Desired, "unknown load is not idle")
}
