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

// TestStateOneOllama: before the engine pool, /health has checks.ollama;
// the page makes one engine of it, with the queue's slots, the models
// Ollama has loaded and what the history counted.
func TestStateOneOllama(t *testing.T) {
	src := &fakeSource{health: fixture(t, "health-ollama.json"), queue: metrics.QueueStats{InFlight: 1, Slots: 1},
		loaded: []string{"aurax-tiny:latest"}, collections: []rag.CollectionInfo{{CollectionSpec: rag.CollectionSpec{Name: "docs", Dimension: 64, Distance: rag.Cosine}, Points: 12}}}
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
	require.Equal(t, "ollama", st.EnginesFrom)
	require.Len(t, st.Engines, 1)
	e := st.Engines[0]
	require.Equal(t, "127.0.0.1:11435", e.Name)
	require.Equal(t, "ready", e.State)
	require.True(t, e.OK)
	require.Equal(t, "0.17.4", e.Version)
	require.Equal(t, []string{"aurax-tiny", "aurax-tiny-embed"}, e.Models, "the loaded aurax-tiny:latest is aurax-tiny")
	require.Equal(t, []string{"aurax-tiny:latest"}, e.Loaded)
	require.Equal(t, 1, e.InFlight)
	require.Equal(t, 1, e.Slots)
	require.Equal(t, uint64(2), e.Requests, "the 429 never reached the engine")
	require.Equal(t, uint64(1), e.Errors)
	require.InDelta(t, 38*0.9+9*0.1, e.ServiceEWMAMS["aurax-tiny"], 0.2)
	require.InDelta(t, 9, e.TTFTEWMAMS["aurax-tiny"], 0.1)
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

	// Ollama unreachable: the engine is down and says why; so does the page.
	var doc map[string]any
	require.NoError(t, json.Unmarshal(fixture(t, "health-ollama.json"), &doc))
	checks := doc["checks"].(map[string]any)
	doc["status"] = "down"
	checks["ollama"] = map[string]any{"ok": false, "url": "http://127.0.0.1:11435", "error": "dial tcp: connection refused"}
	checks["models"].(map[string]any)["default_present"] = false
	src.health, _ = json.Marshal(doc)
	st = p.State(context.Background())
	require.Equal(t, "down", st.Status)
	require.Equal(t, "down", st.Engines[0].State)
	require.Equal(t, []string{"engine 127.0.0.1:11435 down: unreachable: dial tcp: connection refused"}, st.Reasons,
		"a missing model is not reported while Ollama cannot be asked")
}

// TestStateEngines: after the engine pool, /health has checks.engines; the
// page shows them as they are, and says which are not serving and why.
func TestStateEngines(t *testing.T) {
	src := &fakeSource{health: fixture(t, "health-engines.json"), loadedErr: errors.New("must not be called"),
		collErr: rag.ErrUnavailable}
	st := New(src, Options{}).State(context.Background())
	require.Equal(t, "degraded", st.Status)
	require.Equal(t, "engines", st.EnginesFrom)
	require.Len(t, st.Engines, 4)
	require.Equal(t, []string{"ready", "starting", "draining", "down"},
		[]string{st.Engines[0].State, st.Engines[1].State, st.Engines[2].State, st.Engines[3].State})
	require.Equal(t, 120.5, st.Engines[0].ServiceEWMAMS["aurax-tiny:latest"])
	require.Equal(t, "docker", st.Engines[1].Source)
	require.Equal(t, []string{
		"engine ollama-2 starting: loading aurax-tiny:latest",
		"engine ollama-3 draining: scale-in: draining",
		"engine ollama-4 down: dial tcp 10.0.0.14:11434: connect: connection refused",
		"vector store qdrant unavailable: qdrant health: connection refused",
	}, st.Reasons)
	require.True(t, st.GPU.Available)
	require.Equal(t, "NVIDIA H100", st.GPU.Devices[0].Name)
	require.True(t, st.RAG.Enabled)
	require.False(t, st.RAG.OK)
	require.Equal(t, "qdrant health: connection refused", st.RAG.Error, "the probe's error, not the listing's")

	// A pool without any engine is not the one-Ollama shape.
	src.health = []byte(`{"status":"down","engines":[],"checks":{}}`)
	st = New(src, Options{}).State(context.Background())
	require.Equal(t, "engines", st.EnginesFrom)
	require.Empty(t, st.Engines)
	require.Equal(t, []string{"no engine is ready"}, st.Reasons)
}

// TestStateReasons: each check that fails says why, in words.
func TestStateReasons(t *testing.T) {
	src := &fakeSource{health: []byte(`{"status":"down","draining":true,"checks":{
		"ollama":{"ok":true,"url":"http://o:11434"},
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
	require.Equal(t, `default model "qwen3" not present`, st.Engines[0].Reason)
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
	src := &fakeSource{health: fixture(t, "health-ollama.json"), collErr: ErrNoRAG, status: &scaling.Status{
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
