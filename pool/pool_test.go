package pool

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurax/aurax/models"
	"github.com/ollama/ollama/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func chat(p *Pool, ctx context.Context, model string) error {
	return p.Chat(ctx, &api.ChatRequest{Model: model}, func(*api.ChatResponse) error { return nil })
}

func TestAcquireGrantsSlotsThenQueuesFirstComeFirstServed(t *testing.T) {
	p := newFakePool(t, Options{Parallel: 2}, map[string]*fakeEngine{"a": {models: []string{"m"}}})
	ctx := context.Background()
	l1, w, err := p.Acquire(ctx, "m")
	require.NoError(t, err)
	require.Zero(t, w)
	l2, _, err := p.Acquire(ctx, "m")
	require.NoError(t, err)
	require.Equal(t, Stats{InFlight: 2, Slots: 2, Engines: 1, Ready: 1}, p.Stats())

	got := make(chan string, 2)
	var wg sync.WaitGroup
	for i, name := range []string{"first", "second"} {
		wg.Go(func() {
			l, _, err := p.Acquire(ctx, "m")
			if err != nil {
				got <- err.Error()
				return
			}
			got <- name
			l.Release()
		})
		require.Eventually(t, func() bool { return p.Stats().Waiting == i+1 }, time.Second, time.Millisecond)
	}
	l1.Release()
	require.Equal(t, "first", <-got)
	require.Equal(t, "second", <-got)
	wg.Wait()
	l2.Release()
	l2.Release() // a second release does nothing
	require.Equal(t, 0, p.Stats().InFlight)
	require.Empty(t, l1.EngineName(), "a released lease names no engine")
}

func TestAdmissionBounds(t *testing.T) {
	f := &fakeEngine{models: []string{"m"}}
	p := newFakePool(t, Options{Parallel: 1, MaxWaiting: 1, MaxWait: 50 * time.Millisecond}, map[string]*fakeEngine{"a": f})
	ctx := context.Background()
	held, _, err := p.Acquire(ctx, "m")
	require.NoError(t, err)

	_, waited, err := p.Acquire(ctx, "m")
	require.ErrorIs(t, err, ErrWaitTimeout)
	require.GreaterOrEqual(t, waited, 50*time.Millisecond)

	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { _, _, err := p.Acquire(cctx, "m"); errc <- err }()
	require.Eventually(t, func() bool { return p.Stats().Waiting == 1 }, time.Second, time.Millisecond)
	_, _, err = p.Acquire(ctx, "m")
	require.ErrorIs(t, err, ErrQueueFull, "one waiting is the most")
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	require.Zero(t, p.Stats().Waiting, "a canceled waiter leaves the line")

	go func() { _, _, err := p.Acquire(ctx, "m"); errc <- err }()
	require.Eventually(t, func() bool { return p.Stats().Waiting == 1 }, time.Second, time.Millisecond)
	p.Drain()
	require.ErrorIs(t, <-errc, ErrDraining, "waiters are turned away on drain")
	_, _, err = p.Acquire(ctx, "m")
	require.ErrorIs(t, err, ErrDraining)
	held.Release()
}

func TestNoEngine(t *testing.T) {
	p := newFakePool(t, Options{}, map[string]*fakeEngine{})
	_, _, err := p.Acquire(context.Background(), "m")
	require.ErrorIs(t, err, ErrNoEngine, "an empty pool")

	f := &fakeEngine{models: []string{"m"}, down: true}
	p = newFakePool(t, Options{}, map[string]*fakeEngine{"a": f})
	p.ProbeAll(context.Background())
	require.Equal(t, "down", engineByName(p, "a:11434").State)
	require.Contains(t, engineByName(p, "a:11434").Reason, "unreachable")
	require.Contains(t, engineByName(p, "a:11434").Reason, "probe failed")
	_, _, err = p.Acquire(context.Background(), "m")
	require.ErrorIs(t, err, ErrNoEngine, "every engine down: fail at once, as one dead Ollama did")
}

// TestWaitersFailWhenTheLastEngineGoes: a request waiting for a slot gets
// ErrNoEngine as soon as no engine is left, not after MaxWait.
func TestWaitersFailWhenTheLastEngineGoes(t *testing.T) {
	f := &fakeEngine{models: []string{"m"}}
	p := newFakePool(t, Options{Parallel: 1, MaxWait: time.Minute}, map[string]*fakeEngine{"a": f})
	held, _, err := p.Acquire(context.Background(), "m")
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { _, _, err := p.Acquire(context.Background(), "m"); errc <- err }()
	require.Eventually(t, func() bool { return p.Stats().Waiting == 1 }, time.Second, time.Millisecond)
	f.set(func(f *fakeEngine) { f.down = true })
	p.ProbeAll(context.Background())
	select {
	case err := <-errc:
		require.ErrorIs(t, err, ErrNoEngine)
	case <-time.After(2 * time.Second):
		t.Fatal("the waiter was not failed when the last engine went down")
	}
	held.Release()
}

// TestWorkConserving: a request waiting for a full engine's model does not
// hold up one for a model another engine has free.
func TestWorkConserving(t *testing.T) {
	p := newFakePool(t, Options{Parallel: 1}, map[string]*fakeEngine{"a": {models: []string{"x"}}, "b": {models: []string{"y"}}})
	p.ProbeAll(context.Background())
	ctx := context.Background()
	hx, _, err := p.Acquire(ctx, "x")
	require.NoError(t, err)
	require.Equal(t, "a:11434", hx.EngineName())
	xc := make(chan *Lease, 1)
	go func() { l, _, _ := p.Acquire(ctx, "x"); xc <- l }()
	require.Eventually(t, func() bool { return p.Stats().Waiting == 1 }, time.Second, time.Millisecond)
	hy, _, err := p.Acquire(ctx, "y")
	require.NoError(t, err, "y's engine is free")
	require.Equal(t, "b:11434", hy.EngineName())
	hx.Release()
	l := <-xc
	require.Equal(t, "a:11434", l.EngineName())
	l.Release()
	hy.Release()
}

func TestMaxInFlightCapsThePool(t *testing.T) {
	p := newFakePool(t, Options{Parallel: 4, MaxInFlight: 3, MaxWait: 20 * time.Millisecond},
		map[string]*fakeEngine{"a": {models: []string{"m"}}, "b": {models: []string{"m"}}})
	require.Equal(t, 3, p.Stats().Slots)
	var ls []*Lease
	for range 3 {
		l, _, err := p.Acquire(context.Background(), "m")
		require.NoError(t, err)
		ls = append(ls, l)
	}
	_, _, err := p.Acquire(context.Background(), "m")
	require.ErrorIs(t, err, ErrWaitTimeout)
	for _, l := range ls {
		l.Release()
	}
}

// TestFailoverBeforeTheFirstByte: a call refused by one engine runs on the
// other; the refusing engine cools down, and a probe after the cooldown
// brings it back.
func TestFailoverBeforeTheFirstByte(t *testing.T) {
	bad := &fakeEngine{models: []string{"m"}, err: models.ErrUnavailable}
	good := &fakeEngine{models: []string{"m"}}
	reg := prometheus.NewRegistry()
	p := newFakePool(t, Options{Parallel: 4, CooldownMin: 100 * time.Millisecond, Registerer: reg, PSInterval: 20 * time.Millisecond},
		map[string]*fakeEngine{"bad": bad, "good": good})
	p.ProbeAll(context.Background())
	// Make the bad engine the first choice: the good one has a busy slot.
	var ls []*Lease
	for len(ls) < 2 {
		l, _, err := p.Acquire(context.Background(), "m")
		require.NoError(t, err)
		ls = append(ls, l)
	}
	for _, l := range ls {
		if l.EngineName() == "good:11434" {
			defer l.Release()
		} else {
			l.Release()
		}
	}
	if ls[0].EngineName() == ls[1].EngineName() {
		t.Skip("both leases landed on one engine") // cannot happen: the second goes to the idle engine
	}
	require.NoError(t, chat(p, context.Background(), "m"), "failed over to the good engine")
	require.Equal(t, int64(1), bad.calls.Load())
	require.Equal(t, int64(1), good.calls.Load())
	require.Equal(t, "cooldown", engineByName(p, "bad:11434").State)
	require.Equal(t, 1.0, testutil.ToFloat64(p.m.retries.WithLabelValues("bad:11434")))
	require.Equal(t, 1.0, testutil.ToFloat64(p.m.requests.WithLabelValues("bad:11434", OutcomeServerError))+
		testutil.ToFloat64(p.m.requests.WithLabelValues("bad:11434", OutcomeUnreachable)))
	require.Equal(t, 1.0, testutil.ToFloat64(p.m.requests.WithLabelValues("good:11434", OutcomeOK)))

	bad.set(func(f *fakeEngine) { f.err = nil })
	runPool(t, p)
	require.Eventually(t, func() bool { return engineByName(p, "bad:11434").State == "ready" }, 3*time.Second, 10*time.Millisecond,
		"probed back in after the cooldown")
}

// TestNoRetryAfterTheFirstChunk: a stream that failed after its first
// chunk is not run again (the client already has part of it).
func TestNoRetryAfterTheFirstChunk(t *testing.T) {
	mid := &models.UpstreamError{Message: "connection closed mid-response"}
	a := &fakeEngine{models: []string{"m"}, midErr: mid}
	b := &fakeEngine{models: []string{"m"}, midErr: mid}
	p := newFakePool(t, Options{}, map[string]*fakeEngine{"a": a, "b": b})
	err := chat(p, context.Background(), "m")
	require.ErrorAs(t, err, new(*models.UpstreamError))
	require.Equal(t, int64(1), a.calls.Load()+b.calls.Load())
}

// TestOnlyOneRetry: when the second engine fails too, the error stands.
func TestOnlyOneRetry(t *testing.T) {
	fail := func() *fakeEngine {
		return &fakeEngine{models: []string{"m"}, err: &models.UpstreamError{Status: 500, Message: "boom"}}
	}
	p := newFakePool(t, Options{}, map[string]*fakeEngine{"a": fail(), "b": fail(), "c": fail()})
	err := chat(p, context.Background(), "m")
	var ue *models.UpstreamError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, 500, ue.Status)
	total := int64(0)
	for _, e := range p.Engines() {
		total += int64(e.Requests)
	}
	require.Equal(t, int64(2), total, "one call and one retry")
}

// TestNotRetried: client errors and cancellation are the request's, not
// the engine's.
func TestNotRetried(t *testing.T) {
	for _, err := range []error{&models.UpstreamError{Status: 400, Message: "bad"}, context.Canceled} {
		a := &fakeEngine{models: []string{"m"}, err: err}
		b := &fakeEngine{models: []string{"m"}, err: err}
		p := newFakePool(t, Options{}, map[string]*fakeEngine{"a": a, "b": b})
		require.ErrorIs(t, chat(p, context.Background(), "m"), err)
		require.Equal(t, int64(1), a.calls.Load()+b.calls.Load(), "%v", err)
		for _, e := range p.Engines() {
			require.NotEqual(t, "cooldown", e.State)
		}
	}
}

// TestModelGoneFromOneEngine: an engine that listed the model but answers
// 404 is asked no more for it, and the call runs where the model is.
func TestModelGoneFromOneEngine(t *testing.T) {
	stale := &fakeEngine{models: []string{"m"}, err: &models.ModelNotFoundError{Model: "m"}}
	has := &fakeEngine{models: []string{"m"}}
	p := newFakePool(t, Options{}, map[string]*fakeEngine{"stale": stale, "has": has})
	p.ProbeAll(context.Background())
	p.mu.Lock()
	p.byURL["http://has:11434"].model("m:latest").svc = ewma{v: 3, n: 1} // slower: stale is the first choice
	p.mu.Unlock()
	for range 4 {
		require.NoError(t, chat(p, context.Background(), "m"))
	}
	require.Equal(t, int64(1), stale.calls.Load(), "asked once, then forgotten for the model")
	require.NotContains(t, engineByName(p, "stale:11434").Models, "m:latest")

	alone := newFakePool(t, Options{}, map[string]*fakeEngine{"stale": {models: []string{"m"}, err: &models.ModelNotFoundError{Model: "m"}}})
	require.ErrorAs(t, chat(alone, context.Background(), "m"), new(*models.ModelNotFoundError), "no other engine: Ollama's 404 stands")
}

// TestWaitRatherThanLoad: with the model loaded on a busy engine only, a
// request waits for it rather than make the idle engine load the model,
// when the wait is expected to be shorter than a load.
func TestWaitRatherThanLoad(t *testing.T) {
	warm := &fakeEngine{models: []string{"m"}, loaded: []string{"m"}}
	cold := &fakeEngine{models: []string{"m"}}
	p := newFakePool(t, Options{Parallel: 1, LoadEstimate: 10 * time.Second}, map[string]*fakeEngine{"warm": warm, "cold": cold})
	p.ProbeAll(context.Background())
	held, _, err := p.Acquire(context.Background(), "m")
	require.NoError(t, err)
	require.Equal(t, "warm:11434", held.EngineName())
	got := make(chan *Lease, 1)
	go func() { l, _, _ := p.Acquire(context.Background(), "m"); got <- l }()
	require.Eventually(t, func() bool { return p.Stats().Waiting == 1 }, time.Second, time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	require.Equal(t, 1, p.Stats().Waiting, "it waits for the loaded engine")
	held.Release()
	l := <-got
	require.Equal(t, "warm:11434", l.EngineName())
	l.Release()

	// A measured load shorter than the wait: load it.
	p2 := newFakePool(t, Options{Parallel: 1, LoadEstimate: time.Millisecond}, map[string]*fakeEngine{"warm": warm, "cold": cold})
	p2.ProbeAll(context.Background())
	h, _, err := p2.Acquire(context.Background(), "m")
	require.NoError(t, err)
	l, _, err = p2.Acquire(context.Background(), "m")
	require.NoError(t, err)
	require.Equal(t, "cold:11434", l.EngineName())
	require.True(t, l.load)
	h.Release()
	l.Release()
}

// fakeDiscoverer sends the sets given to it.
type fakeDiscoverer struct{ sets chan []Target }

func (d *fakeDiscoverer) Run(ctx context.Context, up chan<- []Target) {
	for {
		select {
		case <-ctx.Done():
			return
		case ts := <-d.sets:
			select {
			case up <- ts:
			case <-ctx.Done():
				return
			}
		}
	}
}

// TestDiscoveryAddsAndDrainsEngines: a discovered engine gets requests
// once a probe finds it; one that disappears finishes its requests in
// flight, gets no new ones, then leaves.
func TestDiscoveryAddsAndDrainsEngines(t *testing.T) {
	d := &fakeDiscoverer{sets: make(chan []Target)}
	fakes := map[string]*fakeEngine{"a": {models: []string{"m"}, loaded: []string{"m"}}, "b": {models: []string{"m"}, loaded: []string{"m"}}}
	reg := prometheus.NewRegistry()
	p := newFakePool(t, Options{Targets: []Target{}, Discoverers: []Discoverer{d}, Parallel: 4, PSInterval: 20 * time.Millisecond, Registerer: reg}, fakes)
	runPool(t, p)
	d.sets <- []Target{{URL: "http://a:11434", Source: "dns"}, {URL: "http://b:11434", Source: "dns"}}
	require.Eventually(t, func() bool { return p.Stats().Ready == 2 }, 2*time.Second, 5*time.Millisecond)
	require.Equal(t, "dns", engineByName(p, "b:11434").Source)

	var onB *Lease
	for onB == nil {
		l, _, err := p.Acquire(context.Background(), "m")
		require.NoError(t, err)
		if l.EngineName() == "b:11434" {
			onB = l
		} else {
			defer l.Release()
		}
	}
	d.sets <- []Target{{URL: "http://a:11434", Source: "dns"}}
	require.Eventually(t, func() bool { return engineByName(p, "b:11434").State == "draining" }, time.Second, 5*time.Millisecond)
	for range 5 {
		l, _, err := p.Acquire(context.Background(), "m")
		require.NoError(t, err, "%+v", p.Engines())
		require.Equal(t, "a:11434", l.EngineName(), "no new request for a draining engine")
		l.Release()
	}
	require.Equal(t, 2.0, float64(testutil.CollectAndCount(p.m.retries)), "both engines' series while b drains")
	onB.Release()
	require.Eventually(t, func() bool { return p.Stats().Engines == 1 }, time.Second, 5*time.Millisecond, "b leaves once idle")
	require.Equal(t, 1, testutil.CollectAndCount(p.m.retries), "a removed engine's series go")
}

func TestGatewaysShareSlots(t *testing.T) {
	p := newFakePool(t, Options{Parallel: 4}, map[string]*fakeEngine{"a": {models: []string{"m"}}})
	require.Equal(t, 4, p.Stats().Slots)
	p.setGateways(1, 2)
	require.Equal(t, 2, p.Stats().Slots)
	p.setGateways(0, 3)
	require.Contains(t, []int{1, 2}, p.Stats().Slots)
	p.setGateways(5, 2) // nonsense: ignored
	require.Contains(t, []int{1, 2}, p.Stats().Slots)
}

// TestListIsTheUnion: /api/tags over the pool lists every engine's models
// once, and a failing engine does not hide the others'.
func TestListIsTheUnion(t *testing.T) {
	p := newFakePool(t, Options{}, map[string]*fakeEngine{
		"a": {models: []string{"x:latest", "both:latest"}}, "b": {models: []string{"y:latest", "both:latest"}}, "c": {down: true},
	})
	l, err := p.List(context.Background())
	require.NoError(t, err)
	var names []string
	for _, m := range l.Models {
		names = append(names, m.Name)
	}
	require.Equal(t, []string{"both:latest", "x:latest", "y:latest"}, names)
	require.True(t, p.HasReady("x")[0], "the listing refreshes the routing's view")
}

func TestRunningNamesTheEngine(t *testing.T) {
	p := newFakePool(t, Options{}, map[string]*fakeEngine{"a": {loaded: []string{"x:latest"}}, "b": {loaded: []string{"x:latest", "y:latest"}}})
	ms, err := p.RunningByEngine(context.Background())
	require.NoError(t, err)
	var got []string
	for _, m := range ms {
		got = append(got, m.Name+"@"+m.Engine)
	}
	require.ElementsMatch(t, []string{"x:latest@a:11434", "x:latest@b:11434", "y:latest@b:11434"}, got)
}

func TestEmbedTakesItsOwnSlot(t *testing.T) {
	gate := make(chan struct{})
	f := &fakeEngine{models: []string{"e"}, gate: gate}
	p := newFakePool(t, Options{Parallel: 1}, map[string]*fakeEngine{"a": f})
	done := make(chan error, 1)
	go func() {
		_, err := p.Embed(context.Background(), &api.EmbedRequest{Model: "e", Input: "x"})
		done <- err
	}()
	require.Eventually(t, func() bool { return p.Stats().InFlight == 1 }, time.Second, time.Millisecond,
		"an embedding without a lease is admitted like any request")
	close(gate)
	require.NoError(t, <-done)
	require.Zero(t, p.Stats().InFlight)
}

func TestParseTargets(t *testing.T) {
	ts, err := ParseTargets(" http://gpu0:11434 ,https://gpu1#parallel=8,, http://[::1]:9")
	require.NoError(t, err)
	require.Equal(t, []Target{
		{URL: "http://gpu0:11434", Source: "static"},
		{URL: "https://gpu1:443", Parallel: 8, Source: "static"},
		{URL: "http://[::1]:9", Source: "static"},
	}, ts)
	require.Equal(t, "[::1]:9", ts[2].Name())
	for _, bad := range []string{"gpu0:11434", "http://", "http://a:1#parallel=x", "http://a:1#gpu=1", "http://a:1?x=1", "http://u@a:1"} {
		_, err := ParseTargets(bad)
		require.Error(t, err, bad)
		require.True(t, strings.Contains(err.Error(), "engine"), err.Error())
	}
}

func TestParseDiscover(t *testing.T) {
	kind, host, port, _, err := ParseDiscover("dns:ollama:11500")
	require.NoError(t, err)
	require.Equal(t, []any{"dns", "ollama", 11500}, []any{kind, host, port})
	_, host, port, _, err = ParseDiscover("dns:ollama")
	require.NoError(t, err)
	require.Equal(t, []any{"ollama", 11434}, []any{host, port})
	kind, _, _, label, err := ParseDiscover("docker:io.aurax.role=engine")
	require.NoError(t, err)
	require.Equal(t, []string{"docker", "io.aurax.role=engine"}, []string{kind, label})
	for _, bad := range []string{"", "dns:", "dns::1", "dns:h:0", "docker:", "docker:=x", "k8s:x"} {
		_, _, _, _, err := ParseDiscover(bad)
		require.Error(t, err, bad)
	}
}

// TestScaleFromZeroHoldsTheRequest: with no engine and WaitForEngines, a
// request waits, the callback is told at once, and the engine that joins
// takes it.
func TestScaleFromZeroHoldsTheRequest(t *testing.T) {
	d := &fakeDiscoverer{sets: make(chan []Target)}
	p := newFakePool(t, Options{Targets: []Target{}, Discoverers: []Discoverer{d}, PSInterval: 20 * time.Millisecond},
		map[string]*fakeEngine{"a": {models: []string{"m"}}})
	woken := make(chan struct{}, 8)
	p.WaitForEngines(func() { woken <- struct{}{} })
	runPool(t, p)
	got := make(chan error, 1)
	go func() { got <- chat(p, context.Background(), "m") }()
	select {
	case <-woken:
	case <-time.After(2 * time.Second):
		t.Fatal("the waiting request did not ask for an engine")
	}
	require.Equal(t, 1, p.Stats().Waiting)
	d.sets <- []Target{{URL: "http://a:11434", Source: "dns"}}
	select {
	case err := <-got:
		require.NoError(t, err, "the first engine took the request that waited for it")
	case <-time.After(5 * time.Second):
		t.Fatal("the request was not served once the engine joined")
	}
}

// TestForgottenEngineRejoinsAfresh: an engine forgotten (its container
// stopped) while discovery still lists its address joins again, starting,
// and takes requests once a probe finds it.
func TestForgottenEngineRejoinsAfresh(t *testing.T) {
	d := &fakeDiscoverer{sets: make(chan []Target)}
	f := &fakeEngine{models: []string{"m"}}
	p := newFakePool(t, Options{Targets: []Target{}, Discoverers: []Discoverer{d}, PSInterval: 20 * time.Millisecond},
		map[string]*fakeEngine{"a": f})
	runPool(t, p)
	d.sets <- []Target{{URL: "http://a:11434", Source: "dns"}}
	require.Eventually(t, func() bool { return p.Stats().Ready == 1 }, 2*time.Second, 5*time.Millisecond)
	f.set(func(f *fakeEngine) { f.down = true }) // stopped
	_, ok := p.DrainEngine("a:11434")
	require.True(t, ok)
	require.True(t, p.ForgetEngine("a:11434"))
	require.Equal(t, 1, p.Stats().Engines, "still listed: it is there again, as a new engine")
	require.Equal(t, "starting", engineByName(p, "a:11434").State)
	f.set(func(f *fakeEngine) { f.down = false }) // restarted at the same address
	require.Eventually(t, func() bool { return p.Stats().Ready == 1 }, 2*time.Second, 5*time.Millisecond)
	require.NoError(t, chat(p, context.Background(), "m"))
}
