// Package fakeollama is an upstream that speaks Ollama's native wire format
// (/api/chat, /api/generate, /api/embed, /api/tags, /api/ps, /api/version)
// with a fixed, configurable latency and no model: the fixed-latency
// upstream of the overhead benchmark, a controllable one for overload and
// cancel tests, and, with Slots and LoadDelay, a capacity-limited engine
// for the pool's routing benchmarks: it runs Slots requests at once and
// queues the rest in arrival order as Ollama does (503 beyond MaxQueue),
// and makes a request for a model it has not loaded wait LoadDelay while
// it loads it, keeping at most MaxLoaded models. Behaviour under test that
// depends on a real model uses the real Ollama.
package fakeollama

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ollama/ollama/api"
)

// Options shape the fake's answers.
type Options struct {
	Latency  time.Duration // before the first byte of every inference answer
	Tokens   int           // chunks per streamed answer (default 8)
	Interval time.Duration // between streamed chunks
	Models   []string      // names /api/tags lists (default "fake")
	// Gate, when set, holds every inference request until it is closed or the
	// request's context ends.
	Gate <-chan struct{}
	// Slots, when set, is how many inference requests run at once; the
	// others wait their turn (Ollama's OLLAMA_NUM_PARALLEL), up to MaxQueue
	// waiting (default 512, OLLAMA_MAX_QUEUE), 503 beyond.
	Slots    int
	MaxQueue int
	// LoadDelay is the time a request for a model not loaded waits while
	// the engine loads it (one load at a time); MaxLoaded bounds the models
	// kept loaded, the least recently used evicted (0: no bound). Loaded
	// models are listed by /api/ps.
	LoadDelay time.Duration
	MaxLoaded int
	Loaded    []string // loaded from the start
}

// Server is a running fake.
type Server struct {
	URL  string
	opts Options
	ln   net.Listener
	srv  *http.Server

	started  atomic.Int64
	finished atomic.Int64
	canceled atomic.Int64
	inFlight atomic.Int64
	loads    atomic.Int64
	waiting  atomic.Int64
	peak     atomic.Int64  // most inference requests in the handler at once
	slots    chan struct{} // nil: unlimited
	loadMu   sync.Mutex    // one load at a time
	mu       sync.Mutex
	ended    []time.Time // when each canceled request's handler saw its context end
	loaded   []string    // most recently used last
}

// Start serves on a loopback port until Close.
func Start(opts Options) (*Server, error) {
	if opts.Tokens <= 0 {
		opts.Tokens = 8
	}
	if len(opts.Models) == 0 {
		opts.Models = []string{"fake"}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + ln.Addr().String(), opts: opts, ln: ln, loaded: append([]string(nil), opts.Loaded...)}
	if opts.Slots > 0 {
		s.slots = make(chan struct{}, opts.Slots)
		if s.opts.MaxQueue <= 0 {
			s.opts.MaxQueue = 512
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/chat", s.infer)
	mux.HandleFunc("POST /api/generate", s.infer)
	mux.HandleFunc("POST /api/embed", s.embed)
	mux.HandleFunc("GET /api/tags", s.tags)
	mux.HandleFunc("GET /api/ps", s.ps)
	mux.HandleFunc("GET /api/version", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"version":"0.17.4"}`)) })
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the server and waits for its handlers.
func (s *Server) Close() error { return s.srv.Close() }

// Stats are the fake's counters. Peak is the most inference requests it
// held at once: running, queued for a slot, or being turned away.
type Stats struct{ Started, Finished, Canceled, InFlight, Loads, Peak int64 }

// Stats returns the counters now.
func (s *Server) Stats() Stats {
	return Stats{s.started.Load(), s.finished.Load(), s.canceled.Load(), s.inFlight.Load(), s.loads.Load(), s.peak.Load()}
}

// ResetPeak starts counting Stats.Peak again from now.
func (s *Server) ResetPeak() { s.peak.Store(s.inFlight.Load()) }

// admit takes one of the Slots, waiting in arrival order; false when the
// queue is full (answered 503) or the request ended. release frees it.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	if s.slots == nil {
		return func() {}, true
	}
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, true
	default:
	}
	if s.waiting.Add(1) > int64(s.opts.MaxQueue) {
		s.waiting.Add(-1)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"server busy, please try again.  maximum pending requests exceeded"}`))
		return nil, false
	}
	defer s.waiting.Add(-1)
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, true
	case <-r.Context().Done():
		return nil, false
	}
}

// load makes model the most recently used, loading it first (LoadDelay,
// one load at a time) when it is not loaded; false when the request ended.
func (s *Server) load(r *http.Request, model string) bool {
	if s.opts.LoadDelay <= 0 && s.opts.MaxLoaded <= 0 && len(s.opts.Loaded) == 0 {
		return true
	}
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	s.mu.Lock()
	i := slices.Index(s.loaded, model)
	s.mu.Unlock()
	if i < 0 {
		if !sleep(r, s.opts.LoadDelay) {
			return false
		}
		s.loads.Add(1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i = slices.Index(s.loaded, model); i >= 0 {
		s.loaded = slices.Delete(s.loaded, i, i+1)
	}
	s.loaded = append(s.loaded, model)
	if s.opts.MaxLoaded > 0 && len(s.loaded) > s.opts.MaxLoaded {
		s.loaded = s.loaded[len(s.loaded)-s.opts.MaxLoaded:]
	}
	return true
}

// ps lists the loaded models; without load settings every model counts as
// loaded, as on an Ollama that has served them all.
func (s *Server) ps(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	out := api.ProcessResponse{Models: []api.ProcessModelResponse{}}
	loaded := s.loaded
	if s.opts.LoadDelay <= 0 && s.opts.MaxLoaded <= 0 && len(s.opts.Loaded) == 0 {
		loaded = s.opts.Models
	}
	for _, m := range loaded {
		out.Models = append(out.Models, api.ProcessModelResponse{Name: m, Model: m})
	}
	s.mu.Unlock()
	json.NewEncoder(w).Encode(out)
}

// CancelTimes returns when each canceled request's handler noticed it.
func (s *Server) CancelTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.ended...)
}

type inferReq struct {
	Model  string `json:"model"`
	Stream *bool  `json:"stream"`
}

func (s *Server) infer(w http.ResponseWriter, r *http.Request) {
	s.started.Add(1)
	if n := s.inFlight.Add(1); n > s.peak.Load() {
		s.peak.Store(n) // racy max, exact enough for a peak
	}
	defer s.inFlight.Add(-1)
	var req inferReq
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"error":"invalid JSON"}`, http.StatusBadRequest)
		return
	}
	if !s.known(req.Model) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":"model '%s' not found"}`, req.Model)
		return
	}
	canceled := func() {
		s.canceled.Add(1)
		s.mu.Lock()
		s.ended = append(s.ended, time.Now())
		s.mu.Unlock()
	}
	release, ok := s.admit(w, r)
	if !ok {
		return
	}
	defer release()
	if !s.load(r, req.Model) {
		canceled()
		return
	}
	if s.opts.Gate != nil {
		select {
		case <-s.opts.Gate:
		case <-r.Context().Done():
			canceled()
			return
		}
	}
	if !sleep(r, s.opts.Latency) {
		canceled()
		return
	}
	chat := r.URL.Path == "/api/chat"
	stream := req.Stream == nil || *req.Stream
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	now := time.Now()
	if !stream {
		enc.Encode(s.chunk(chat, req.Model, now, "hello from the fake upstream", true))
		s.finished.Add(1)
		return
	}
	for i := range s.opts.Tokens {
		if i > 0 && !sleep(r, s.opts.Interval) {
			canceled()
			return
		}
		enc.Encode(s.chunk(chat, req.Model, now, "tok ", false))
		if flusher != nil {
			flusher.Flush()
		}
	}
	enc.Encode(s.chunk(chat, req.Model, now, "", true))
	s.finished.Add(1)
}

func (s *Server) chunk(chat bool, model string, at time.Time, text string, done bool) any {
	m := api.Metrics{}
	reason := ""
	if done {
		m = api.Metrics{TotalDuration: time.Since(at), PromptEvalCount: 5, EvalCount: s.opts.Tokens}
		reason = "stop"
	}
	if chat {
		return api.ChatResponse{Model: model, CreatedAt: at, Message: api.Message{Role: "assistant", Content: text}, Done: done, DoneReason: reason, Metrics: m}
	}
	return api.GenerateResponse{Model: model, CreatedAt: at, Response: text, Done: done, DoneReason: reason, Metrics: m}
}

func (s *Server) embed(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
		Input any    `json:"input"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"error":"invalid JSON"}`, http.StatusBadRequest)
		return
	}
	n := 1
	if in, ok := req.Input.([]any); ok {
		n = len(in)
	}
	if !sleep(r, s.opts.Latency) {
		return
	}
	vecs := make([][]float32, n)
	for i := range vecs {
		vecs[i] = []float32{1, 0, 0, 0}
	}
	json.NewEncoder(w).Encode(api.EmbedResponse{Model: req.Model, Embeddings: vecs, PromptEvalCount: n})
}

func (s *Server) tags(w http.ResponseWriter, r *http.Request) {
	var out api.ListResponse
	for _, m := range s.opts.Models {
		out.Models = append(out.Models, api.ListModelResponse{Name: m, Model: m, ModifiedAt: time.Unix(1700000000, 0)})
	}
	json.NewEncoder(w).Encode(out)
}

func (s *Server) known(model string) bool {
	for _, m := range s.opts.Models {
		if m == model {
			return true
		}
	}
	return false
}

// sleep waits d or until the request ends; false when it ended.
func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return r.Context().Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
