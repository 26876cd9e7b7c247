// Package fakeollama is an upstream that speaks Ollama's native wire format
// (/api/chat, /api/generate, /api/embed, /api/tags, /api/version) with a fixed,
// configurable latency and no model: the fixed-latency upstream of the
// overhead benchmark, and a controllable one for overload and cancel tests.
// Behaviour under test that depends on a real model uses the real Ollama.
package fakeollama

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
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
	mu       sync.Mutex
	ended    []time.Time // when each canceled request's handler saw its context end
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
	s := &Server{URL: "http://" + ln.Addr().String(), opts: opts, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/chat", s.infer)
	mux.HandleFunc("POST /api/generate", s.infer)
	mux.HandleFunc("POST /api/embed", s.embed)
	mux.HandleFunc("GET /api/tags", s.tags)
	mux.HandleFunc("GET /api/ps", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"models":[]}`)) })
	mux.HandleFunc("GET /api/version", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"version":"0.17.4"}`)) })
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the server and waits for its handlers.
func (s *Server) Close() error { return s.srv.Close() }

// Stats are the fake's counters.
type Stats struct{ Started, Finished, Canceled, InFlight int64 }

// Stats returns the counters now.
func (s *Server) Stats() Stats {
	return Stats{s.started.Load(), s.finished.Load(), s.canceled.Load(), s.inFlight.Load()}
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
	s.inFlight.Add(1)
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
