package pool

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/require"
)

// eng is an engine for routing tables: name, state, slots and in flight,
// the models it has, those loaded, and its service time for "m:latest".
func eng(name string, st State, slots, inFlight int, have, loaded []string, svc float64) *Engine {
	e := newEngine(Target{URL: "http://" + name + ":11434"}, nil, slots, st)
	e.name = name
	e.inFlight = inFlight
	e.setModels(have, false)
	e.setModels(loaded, true)
	if svc > 0 {
		e.model("m:latest").svc = ewma{v: svc, n: 1}
	}
	return e
}

var m = []string{"m"}

func first(d decision, _ []candidate) decision { return d }

func TestRoute(t *testing.T) {
	type want struct {
		engine string // "" for none
		load   bool
		wait   bool // a timed wait (a load avoided)
		none   bool
	}
	cases := []struct {
		name    string
		engines []*Engine
		tried   string
		want    want
	}{
		{"only routable engines", []*Engine{
			eng("down", StateDown, 4, 0, m, m, 1), eng("cool", StateCooldown, 4, 0, m, m, 1),
			eng("start", StateStarting, 4, 0, m, m, 1), eng("drain", StateDraining, 4, 0, m, m, 1),
			eng("ok", StateReady, 4, 3, m, m, 1),
		}, "", want{engine: "ok"}},
		{"an unprobed static engine is routable", []*Engine{eng("static", StateUnknown, 1, 0, nil, nil, 0)}, "", want{engine: "static"}},
		{"only engines with the model", []*Engine{
			eng("other", StateReady, 4, 0, []string{"x"}, []string{"x"}, 0), eng("has", StateReady, 4, 3, m, m, 1),
		}, "", want{engine: "has"}},
		{"no engine lists it: any engine (Ollama answers)", []*Engine{
			eng("a", StateReady, 4, 2, []string{"x"}, nil, 0), eng("b", StateReady, 4, 0, []string{"y"}, nil, 0),
		}, "", want{engine: "b"}},
		{"loaded and free first", []*Engine{
			eng("cold", StateReady, 4, 0, m, nil, 1), eng("warm", StateReady, 4, 3, m, m, 1),
		}, "", want{engine: "warm"}},
		{"wait for a loaded engine when sooner than the load", []*Engine{
			eng("cold", StateReady, 4, 0, m, nil, 1), eng("warm", StateReady, 4, 4, m, m, 1),
		}, "", want{wait: true}},
		{"load when the loaded engine's wait is longer", []*Engine{
			eng("cold", StateReady, 4, 0, m, nil, 1), eng("warm", StateReady, 1, 1, m, m, 30),
		}, "", want{engine: "cold", load: true}},
		{"no loaded engine at all: load", []*Engine{eng("cold", StateReady, 1, 0, m, nil, 0)}, "", want{engine: "cold", load: true}},
		{"every engine full: wait for a slot", []*Engine{
			eng("a", StateReady, 2, 2, m, m, 1), eng("b", StateReady, 1, 1, m, nil, 1),
		}, "", want{}},
		{"nothing routable, nothing starting: none", []*Engine{eng("down", StateDown, 4, 0, m, m, 1)}, "", want{none: true}},
		{"nothing routable but one starting: wait", []*Engine{
			eng("down", StateDown, 4, 0, m, m, 1), eng("start", StateStarting, 4, 0, nil, nil, 0),
		}, "", want{}},
		{"an empty pool: none", nil, "", want{none: true}},
		{"never the engine a request failed on", []*Engine{
			eng("failed", StateReady, 4, 0, m, m, 1), eng("other", StateReady, 4, 3, m, m, 1),
		}, "failed", want{engine: "other"}},
		{"the failed engine was the only one: none", []*Engine{eng("failed", StateReady, 4, 0, m, m, 1)}, "failed", want{none: true}},
		{"no share of slots (another gateway's): skipped", []*Engine{
			eng("zero", StateReady, 0, 0, m, m, 1), eng("one", StateReady, 1, 0, m, m, 5),
		}, "", want{engine: "one"}},
		{"the faster engine when both are idle", []*Engine{
			eng("slow", StateReady, 4, 0, m, m, 3), eng("fast", StateReady, 4, 0, m, m, 1),
		}, "", want{engine: "fast"}},
		{"expected completion: the busy fast engine over the idle slow one", []*Engine{
			eng("slow", StateReady, 4, 0, m, m, 3), eng("fast", StateReady, 4, 1, m, m, 1),
		}, "", want{engine: "fast"}},
		{"expected completion: the idle slow engine over the nearly full fast one", []*Engine{
			eng("slow", StateReady, 4, 0, m, m, 2), eng("fast", StateReady, 4, 3, m, m, 1),
		}, "", want{engine: "slow"}},
		{"less busy among equal costs (power of two choices)", []*Engine{
			eng("busier", StateReady, 4, 1, m, m, 1.0), eng("idle", StateReady, 4, 0, m, m, 1.96),
		}, "", want{engine: "idle"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &request{model: modelKey("m"), defSvc: 1, defLoad: 5}
			for _, e := range tc.engines {
				if e.name == tc.tried {
					r.tried[0] = e
				}
			}
			for _, rnd := range []uint64{0, 1, 1<<32 | 1, 0xdeadbeefcafe} { // the rule, whatever the dice
				d, _ := route(tc.engines, r, rnd, nil)
				got := want{load: d.load, wait: d.wait > 0, none: d.none}
				if d.engine != nil {
					got.engine = d.engine.name
				}
				require.Equal(t, tc.want, got, "route(rnd=%#x) = %+v", rnd, d)
			}
		})
	}
}

// TestRouteWaitIsTheExpectedWait: the timed wait is the loaded engine's
// expected wait, which grows with the requests queued ahead.
func TestRouteWaitIsTheExpectedWait(t *testing.T) {
	es := []*Engine{eng("cold", StateReady, 4, 0, m, nil, 1), eng("warm", StateReady, 2, 2, m, m, 1)}
	r := &request{model: "m:latest", defSvc: 1, defLoad: 5}
	require.Equal(t, 500*time.Millisecond, first(route(es, r, 0, nil)).wait, "one of two slots frees in half a service time")
	r.ahead = 2
	require.Equal(t, 1500*time.Millisecond, first(route(es, r, 0, nil)).wait)
	r.ahead = 10 // 5.5 s > the 5 s load: load it instead
	d := first(route(es, r, 0, nil))
	require.Equal(t, "cold", d.engine.name)
	require.True(t, d.load)
	es[0].model("m:latest").load = ewma{v: 0.2, n: 1} // a measured 200 ms load beats a 500 ms wait
	r.ahead = 0
	require.Equal(t, "cold", first(route(es, r, 0, nil)).engine.name)
}

// TestRouteSpreadsEqualEngines: identical idle engines all get requests.
func TestRouteSpreadsEqualEngines(t *testing.T) {
	es := []*Engine{eng("a", StateReady, 4, 0, m, m, 1), eng("b", StateReady, 4, 0, m, m, 1), eng("c", StateReady, 4, 0, m, m, 1)}
	seen := map[string]int{}
	for rnd := range uint64(300) {
		d, _ := route(es, &request{model: "m:latest", defSvc: 1}, rnd*0x9e3779b97f4a7c15, nil)
		seen[d.engine.name]++
	}
	require.Len(t, seen, 3, "%v", seen)
	for n, c := range seen {
		require.Greater(t, c, 50, "engine %s got %d of 300", n, c)
	}
}

func TestShare(t *testing.T) {
	for parallel := 1; parallel <= 9; parallel++ {
		for n := 1; n <= 5; n++ {
			for h := range uint32(7) {
				sum := 0
				for self := range n {
					s := share(parallel, n, self, h)
					require.GreaterOrEqual(t, s, parallel/n)
					require.LessOrEqual(t, s, parallel/n+1)
					sum += s
				}
				require.Equal(t, parallel, sum, "share(%d, %d, *, %d) sums to the engine's slots", parallel, n, h)
			}
		}
	}
	// Two gateways, engines of one slot each: each gateway gets some.
	got := [2]int{}
	for h := range uint32(10) {
		for self := range 2 {
			got[self] += share(1, 2, self, h)
		}
	}
	require.Equal(t, [2]int{5, 5}, got)
}

func BenchmarkRoute(b *testing.B) {
	for _, n := range []int{4, 64} {
		b.Run("engines="+strconv.Itoa(n), func(b *testing.B) {
			es := make([]*Engine, n)
			for i := range es {
				es[i] = eng("e"+strconv.Itoa(i), StateReady, 4, i%4, []string{"m", "x"}, []string{"m"}, 1+float64(i%3)/10)
			}
			r := &request{model: "m:latest", defSvc: 1, defLoad: 5}
			var buf []candidate
			var d decision
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if d, buf = route(es, r, uint64(i)*0x9e3779b97f4a7c15, buf); d.engine == nil {
					b.Fatal("no engine")
				}
			}
		})
	}
}

// TestRouteAffinity: the engine a conversation last went to is chosen when
// it is free and within the tolerance of the best, whatever the dice; not
// when it is full, much slower, or would have to load the model.
func TestRouteAffinity(t *testing.T) {
	for _, tc := range []struct {
		name   string
		last   *Engine
		others []*Engine
		want   string
	}{
		{"free and as good", eng("last", StateReady, 4, 1, m, m, 1), []*Engine{eng("idle", StateReady, 4, 0, m, m, 1)}, "last"},
		{"full", eng("last", StateReady, 1, 1, m, m, 1), []*Engine{eng("idle", StateReady, 4, 0, m, m, 1)}, "idle"},
		{"far slower", eng("last", StateReady, 4, 3, m, m, 1), []*Engine{eng("idle", StateReady, 4, 0, m, m, 1)}, "idle"},
		{"would load", eng("last", StateReady, 4, 0, m, nil, 1), []*Engine{eng("idle", StateReady, 4, 0, m, m, 1)}, "idle"},
		{"gone", eng("last", StateDown, 4, 0, m, m, 1), []*Engine{eng("idle", StateReady, 4, 0, m, m, 1)}, "idle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := append([]*Engine{tc.last}, tc.others...)
			for _, rnd := range []uint64{0, 1, 1<<32 | 1, 0xdeadbeefcafe} {
				r := &request{model: "m:latest", defSvc: 1, defLoad: 5, key: 7, affine: tc.last}
				d, _ := route(es, r, rnd, nil)
				require.Equal(t, tc.want, d.engine.name, "rnd %#x", rnd)
			}
		})
	}
}

func TestAffinityIsBounded(t *testing.T) {
	var a affinity
	e := eng("e", StateReady, 1, 0, m, m, 1)
	for k := uint64(1); k <= affinityCap+10; k++ {
		a.put(k, e)
	}
	require.Len(t, a.m, affinityCap)
	require.Nil(t, a.get(1), "the oldest went first")
	require.Equal(t, e, a.get(affinityCap+10))
	a.put(0, e)
	require.Nil(t, a.get(0), "0 is no key")
}

func TestChatKey(t *testing.T) {
	conv := func(turns ...string) *api.ChatRequest {
		r := &api.ChatRequest{Model: "m", Messages: []api.Message{{Role: "system", Content: "You are terse."}}}
		for _, t := range turns {
			r.Messages = append(r.Messages, api.Message{Role: "user", Content: t})
		}
		return r
	}
	k := ChatKey(conv("hello"))
	require.NotZero(t, k)
	require.Equal(t, k, ChatKey(conv("hello", "and then?")), "later turns share the key")
	require.NotEqual(t, k, ChatKey(conv("another conversation")))
	require.Zero(t, ChatKey(&api.ChatRequest{Model: "m", Messages: []api.Message{{Role: "user", Content: "one shot"}}}))
	other := conv("hello")
	other.Model = "x"
	require.NotEqual(t, k, ChatKey(other), "per model")
	require.Zero(t, GenerateKey(&api.GenerateRequest{Model: "m", Prompt: "short"}))
	long := strings.Repeat("x", 5000)
	require.Equal(t, GenerateKey(&api.GenerateRequest{Model: "m", Prompt: long + "a"}), GenerateKey(&api.GenerateRequest{Model: "m", Prompt: long + "b"}))
}
