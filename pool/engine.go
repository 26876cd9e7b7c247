package pool

import (
	"sort"
	"time"

	"github.com/aurax/aurax/models"
	"github.com/ollama/ollama/api"
)

// State is where an engine stands in the pool.
type State int

// Engine states. Only StateUnknown and StateReady are routable.
const (
	// StateUnknown: a static engine not probed yet. It is routable, as the
	// one Ollama was before there was a pool: the first probe or the first
	// failure settles it.
	StateUnknown State = iota
	// StateStarting: discovered (or pulling its models, or warming up) and
	// not ready yet; it gets no requests.
	StateStarting
	// StateReady: answered its last probe.
	StateReady
	// StateDown: its last probe failed; probed again with backoff.
	StateDown
	// StateCooldown: a request to it failed; it sits out until a probe
	// after the cooldown finds it again.
	StateCooldown
	// StateDraining: gone from discovery or being scaled down: its requests
	// in flight finish, it gets no new ones, then it leaves the pool.
	StateDraining
)

var stateNames = [...]string{"unknown", "starting", "ready", "down", "cooldown", "draining"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "invalid"
}

// Routable reports whether an engine in state s may be given requests.
func (s State) Routable() bool { return s == StateUnknown || s == StateReady }

// ewma is an exponentially weighted moving average; the first sample sets it.
type ewma struct {
	v float64
	n int
}

const ewmaAlpha = 0.2

func (e *ewma) add(x float64) {
	if e.n == 0 {
		e.v = x
	} else {
		e.v += ewmaAlpha * (x - e.v)
	}
	e.n++
}

// Engine is one Ollama server of the pool. Its mutable fields are guarded
// by the pool's mutex; read them through Pool.Engines.
type Engine struct {
	Target
	name    string
	backend models.Backend

	state    State
	reason   string // why it is not ready, or its last error
	parallel int    // the engine's slots
	slots    int    // this gateway's share of them (see split)
	inFlight int
	removed  bool // gone from discovery: leaves once idle

	version   string
	per       map[string]*modelState  // modelKey → what the engine has of it
	tags      []api.ListModelResponse // the last /api/tags answer
	tagsAt    time.Time
	checkedAt time.Time

	failures  int // consecutive failures (requests or probes)
	downUntil time.Time
	wake      chan struct{} // nudges the prober (after a request failure)
	gone      chan struct{} // closed when the engine has left the pool
	everReady bool

	requests, errors uint64
	lastErr          string
	lastErrAt        time.Time
	pulls            map[string]*PullState
}

func newEngine(t Target, b models.Backend, parallel int, state State) *Engine {
	if t.Parallel > 0 {
		parallel = t.Parallel
	}
	return &Engine{
		Target: t, name: t.Name(), backend: b, state: state, parallel: parallel, slots: parallel,
		per: map[string]*modelState{}, wake: make(chan struct{}, 1),
	}
}

// Name is the engine's host:port.
func (e *Engine) Name() string { return e.name }

// Backend is the engine's Ollama client.
func (e *Engine) Backend() models.Backend { return e.backend }

func (e *Engine) free() bool { return e.inFlight < e.slots }

// modelState is one model on one engine: whether the engine lists it and
// has it loaded, and the times measured for it there. One map lookup per
// engine is all routing needs.
type modelState struct {
	has, loaded bool
	svc         ewma // service time, seconds
	ttft        ewma // time to first chunk, seconds
	load        ewma // model load time, seconds
}

// model returns the state of model k on e, creating it.
func (e *Engine) model(k string) *modelState {
	ms := e.per[k]
	if ms == nil {
		ms = &modelState{}
		e.per[k] = ms
	}
	return ms
}

func (e *Engine) has(k string) bool {
	ms := e.per[k]
	return ms != nil && ms.has
}

// setModels replaces which models e lists (/api/tags) or has loaded
// (/api/ps), keeping what was measured.
func (e *Engine) setModels(names []string, loaded bool) {
	for _, ms := range e.per {
		if loaded {
			ms.loaded = false
		} else {
			ms.has = false
		}
	}
	for _, n := range names {
		ms := e.model(modelKey(n))
		if loaded {
			ms.loaded = true
		} else {
			ms.has = true
		}
	}
}

func (e *Engine) names(loaded bool) []string {
	out := []string{}
	for k, ms := range e.per {
		if loaded && ms.loaded || !loaded && ms.has {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func (e *Engine) times(ttft bool) map[string]float64 {
	out := map[string]float64{}
	for k, ms := range e.per {
		v := ms.svc
		if ttft {
			v = ms.ttft
		}
		if v.n > 0 {
			out[k] = float64(int64(v.v*1e6)) / 1e3
		}
	}
	return out
}

func (e *Engine) nudge() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// EngineStatus is one engine as /health, the status page and the metrics
// report it.
type EngineStatus struct {
	Name          string             `json:"name"`
	URL           string             `json:"url"`
	Source        string             `json:"source"`
	State         string             `json:"state"`
	OK            bool               `json:"ok"`
	Reason        string             `json:"reason"`
	Version       string             `json:"version"`
	Models        []string           `json:"models"`
	Loaded        []string           `json:"loaded"`
	InFlight      int                `json:"in_flight"`
	Slots         int                `json:"slots"`
	Parallel      int                `json:"parallel"`
	ServiceEWMAms map[string]float64 `json:"service_ewma_ms"`
	TTFTEWMAms    map[string]float64 `json:"ttft_ewma_ms"`
	Requests      uint64             `json:"requests"`
	Errors        uint64             `json:"errors"`
	LastError     string             `json:"last_error"`
	LastErrorAt   *time.Time         `json:"last_error_at,omitempty"`
	CheckedAt     time.Time          `json:"checked_at"`
	Pulls         []PullState        `json:"pulls,omitempty"`
}

// status copies e; called with the pool's mutex held.
func (e *Engine) status() EngineStatus {
	s := EngineStatus{
		Name: e.name, URL: e.URL, Source: e.Source, State: e.state.String(), OK: e.state == StateReady,
		Reason: e.reason, Version: e.version, Models: e.names(false), Loaded: e.names(true),
		InFlight: e.inFlight, Slots: e.slots, Parallel: e.parallel,
		ServiceEWMAms: e.times(false), TTFTEWMAms: e.times(true),
		Requests: e.requests, Errors: e.errors, LastError: e.lastErr, CheckedAt: e.checkedAt,
	}
	if !e.lastErrAt.IsZero() {
		t := e.lastErrAt
		s.LastErrorAt = &t
	}
	for _, p := range e.pulls {
		s.Pulls = append(s.Pulls, *p)
	}
	sort.Slice(s.Pulls, func(i, j int) bool { return s.Pulls[i].Model < s.Pulls[j].Model })
	return s
}
