package ui

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/rag"
	"github.com/aurax/aurax/scaling"
	"github.com/stretchr/testify/require"
)

// TestStateOneEngine: a single Ollama is a pool of one: the page shows
// /health's engines entry as it is, with the queue and the traffic the
// history counted.
func TestStateOneEngine(t *testing.T) {
	src := &fakeSource{health: fixture(t, "health-one.json"), queue: metrics.QueueStats{InFlight: 1, Slots: 1},
		collections: []rag.CollectionInfo{{CollectionSpec: rag.CollectionSpec{Name: "docs", Dimension: 64, Distance: rag.Cosine}, Points: 12}}}
	p := New(src, Options{Replica: "r1"})
	h := p.History()
	h.ObserveModel(metrics.ModelResult{ModelType: "aurax-tiny", HTTPStatus: 200, Duration: 40 * time.Millisecond, Upstream: 38 * time.Millisecond, TTFT: 9 * time.Millisecond})
	h.ObserveModel(metrics.ModelResult{ModelType: "aurax-tiny", HTTPStatus: 502, Duration: 10 * time.Millisecond, Upstream: 9 * time.Millisecond})
	h.ObserveModel(metrics.ModelResult{ModelType: "aurax-tiny", HTTPStatus: 429, Duration: time.Millisecond}) // never reached the engine
	h.Sample()

	st := p.State(context.Background())
	require.Equal(t, "ok", st.Status)
	require.Empty(t, st.Reasons)
	require.Equal(t, "dev", st.Version)
	require.Equal(t, "r1", st.Replica)
	require.Len(t, st.Engines, 1)
	e := st.Engines[0]
	require.Equal(t, "127.0.0.1:11435", e.Name)
	require.Equal(t, "ready", e.State)
	require.True(t, e.OK)
	require.Equal(t, "0.17.4", e.Version)
	require.Equal(t, []string{"aurax-tiny-embed:latest", "aurax-tiny:latest"}, e.Models)
	require.Equal(t, []string{"aurax-tiny:latest"}, e.Loaded)
	require.Equal(t, 1, e.InFlight)
	require.Equal(t, 1, e.Parallel)
	require.Equal(t, uint64(2), e.Requests, "the pool's count: the 429 never reached the engine")
	require.Equal(t, 38.9, e.ServiceEWMAms["aurax-tiny:latest"])
	require.NotNil(t, e.LastErrorAt)
	require.Equal(t, uint64(3), st.Traffic.Requests)
	require.Equal(t, uint64(2), st.Traffic.Errors, "502 and 429 are errors")
	require.Equal(t, 1, st.Queue.Rejected1m)
	require.Equal(t, 128, st.Queue.MaxWaiting)
	require.True(t, st.RAG.Enabled)
	require.Equal(t, "embedded", st.RAG.Store)
	require.Equal(t, 12, st.RAG.Collections[0].Points)
	require.False(t, st.GPU.Available)
	require.Contains(t, st.GPU.Reason, "ERROR_LIBRARY_NOT_FOUND")
	require.Nil(t, st.Scaling)

	// The engine unreachable: it is down and says why; so does the page,
	// which does not add that the model is missing (no engine can be asked).
	var doc map[string]any
	require.NoError(t, json.Unmarshal(fixture(t, "health-one.json"), &doc))
	doc["status"] = "down"
	eng := doc["engines"].([]any)[0].(map[string]any)
	eng["state"], eng["ok"], eng["reason"] = "down", false, "probe failed: dial tcp 127.0.0.1:11435: connect: connection refused"
	doc["checks"].(map[string]any)["models"].(map[string]any)["default_present"] = false
	src.health, _ = json.Marshal(doc)
	st = p.State(context.Background())
	require.Equal(t, "down", st.Status)
	require.Equal(t, "down", st.Engines[0].State)
	require.Equal(t, []string{
		"engine 127.0.0.1:11435 down: probe failed: dial tcp 127.0.0.1:11435: connect: connection refused",
		"no engine is ready",
	}, st.Reasons)
}

// TestStateEngines: every state of the pool's engines comes through as it
// is, and each engine not serving says why.
func TestStateEngines(t *testing.T) {
	src := &fakeSource{health: fixture(t, "health-engines.json"), collErr: rag.ErrUnavailable}
	st := New(src, Options{}).State(context.Background())
	require.Equal(t, "degraded", st.Status)
	states := []string{}
	for _, e := range st.Engines {
		states = append(states, e.State)
	}
	require.Equal(t, []string{"ready", "starting", "draining", "down", "cooldown", "unknown"}, states)
	require.Equal(t, 120.5, st.Engines[0].ServiceEWMAms["aurax-tiny:latest"])
	require.Equal(t, []int{1, 2}, []int{st.Engines[0].Slots, st.Engines[0].Parallel}, "this gateway's share of the engine's slots")
	require.Equal(t, "docker", st.Engines[1].Source)
	require.Equal(t, 42.4, st.Engines[1].Pulls[0].Percent)
	require.Equal(t, []string{
		"engine ollama-2 starting: loading aurax-tiny:latest",
		"engine ollama-3 draining: scale-in: draining",
		`engine ollama-4 down: probe failed: Get "http://10.0.0.14:11434/api/ps": dial tcp 10.0.0.14:11434: connect: connection refused`,
		"engine ollama-5 cooldown: failed a request: upstream: 500 Internal Server Error: model runner has unexpectedly stopped",
		"engine 10.0.0.16:11434 unknown: not probed yet",
		"vector store qdrant unavailable: qdrant health: connection refused",
	}, st.Reasons)
	require.True(t, st.GPU.Available)
	require.Equal(t, "NVIDIA H100", st.GPU.Devices[0].Name)
	require.True(t, st.RAG.Enabled)
	require.False(t, st.RAG.OK)
	require.Equal(t, "qdrant health: connection refused", st.RAG.Error, "the probe's error, not the listing's")

	// A pool without any engine, and a body without the list, are both no
	// engine.
	for _, body := range []string{`{"status":"down","engines":[],"checks":{}}`, `{"status":"down","checks":{}}`} {
		src.health = []byte(body)
		st = New(src, Options{}).State(context.Background())
		require.NotNil(t, st.Engines)
		require.Empty(t, st.Engines)
		require.Equal(t, []string{"no engine is ready"}, st.Reasons)
	}
}

// TestEngineWhy: an engine without a reason says what its state means.
func TestEngineWhy(t *testing.T) {
	for _, tc := range []struct {
		e    Engine
		want string
	}{
		{Engine{State: "down", Reason: "probe failed: x", LastError: "y"}, "probe failed: x"},
		{Engine{State: "down", LastError: "y"}, "y"},
		{Engine{State: "unknown"}, "not probed yet"},
		{Engine{State: "starting"}, "joining the pool"},
		{Engine{State: "draining"}, "gets no new requests"},
		{Engine{State: "cooldown"}, "a request failed"},
		{Engine{State: "weird"}, "no reason given"},
	} {
		require.Equal(t, tc.want, engineWhy(tc.e), "engineWhy(%+v)", tc.e)
	}
}

// TestStateReasons: each check that fails says why, in words.
func TestStateReasons(t *testing.T) {
	src := &fakeSource{health: []byte(`{"status":"down","draining":true,
		"engines":[{"name":"o:11434","state":"ready","ok":true}],"checks":{
		"models":{"default":"qwen3","default_present":false,"embedding":"emb","embedding_present":false},
		"pull":{"enabled":true,"models":[{"model":"qwen3","status":"pulling abc","percent":42.4,"active":true},{"model":"emb","status":"failed","error":"no space left","active":false}]},
		"queue":{"waiting":8,"max_waiting":8}}}`), collErr: ErrNoRAG}
	st := New(src, Options{}).State(context.Background())
	require.Equal(t, []string{
		"draining: shutting down, new requests are refused",
		`default model "qwen3" not present (pulling: pulling abc 42%)`,
		`embedding model "emb" not present (pull failed: no space left)`,
		"admission queue full: 8 waiting",
	}, st.Reasons)
	require.False(t, st.RAG.Enabled)

	src.health = []byte(`{"status":"maybe"}`)
	st = New(src, Options{}).State(context.Background())
	require.Equal(t, "unknown", st.Status)
	require.Contains(t, st.Reasons[0], "health unreadable")
	src.health, src.healthErr = nil, errors.New("boom")
	st = New(src, Options{}).State(context.Background())
	require.Equal(t, "unknown", st.Status)
	require.Equal(t, []string{"health unreadable: boom"}, st.Reasons)
	require.NotNil(t, st.Engines)
}

// TestStateScaling: the controller's state with its notable decisions.
func TestStateScaling(t *testing.T) {
	now := time.Now()
	src := &fakeSource{health: fixture(t, "health-one.json"), collErr: ErrNoRAG, status: &scaling.Status{
		Policy: "thresholds", Mode: "local", Provider: "none", DryRun: `provider "none"`, Current: 1, Desired: 2, Min: 1, Max: 4,
		Decisions: []scaling.Record{
			{Time: now.Add(-3 * time.Second), Current: 1, Decision: scaling.Decision{Desired: 1, Direction: scaling.None}, Result: scaling.ResultHeld},
			{Time: now.Add(-2 * time.Second), Current: 1, Decision: scaling.Decision{Desired: 2, Direction: scaling.Up, Reason: "queue", Rule: "queue_depth > 10 for 30s step 1"}, Result: scaling.ResultApplied},
		}}}
	st := New(src, Options{Admin: true}).State(context.Background())
	require.NotNil(t, st.Scaling)
	require.Equal(t, `provider "none"`, st.Scaling.DryRun)
	require.True(t, st.Scaling.Admin)
	require.Len(t, st.Scaling.Decisions, 1, "a held no-op is not on the timeline")
	require.Equal(t, "queue_depth > 10 for 30s step 1", st.Scaling.Decisions[0].Rule)
	b, err := json.Marshal(st)
	require.NoError(t, err)
	require.Contains(t, string(b), `"rule":"queue_depth \u003e 10 for 30s step 1"`)
}
