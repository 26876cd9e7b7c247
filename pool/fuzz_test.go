package pool

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aurax/aurax/models"
)

// FuzzEngineState feeds arbitrary /api/tags and /api/ps bodies through the
// real Ollama client into an engine's state and routing: a malformed or
// hostile answer is an error or a harmless state, never a panic, and
// routing still answers.
func FuzzEngineState(f *testing.F) {
	f.Add([]byte(`{"models":[{"name":"aurax-tiny:latest","model":"aurax-tiny:latest","size":435605,"digest":"0d4b","details":{"format":"gguf","family":"qwen3"}}]}`),
		[]byte(`{"models":[{"name":"aurax-tiny:latest","model":"aurax-tiny:latest","size":6700000,"size_vram":0,"expires_at":"2026-12-02T06:16:38Z","context_length":4096}]}`))
	f.Add([]byte(`{"models":[]}`), []byte(`{"models":null}`))
	f.Add([]byte(`{"models":[{"name":""},{"name":"a/b:c"},{"name":"x:"}]}`), []byte(`{"models":[{"name":"x"}]}`))
	f.Add([]byte(`not json`), []byte(`{"error":"boom"}`))
	f.Add([]byte(`{"models":[{"name":1}]}`), []byte(`[]`))
	var tags, ps atomic.Pointer[[]byte]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b *[]byte
		switch r.URL.Path {
		case "/api/tags":
			b = tags.Load()
		case "/api/ps":
			b = ps.Load()
		case "/api/version":
			w.Write([]byte(`{"version":"0.17.4"}`))
			return
		}
		if b == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(*b)
	}))
	defer srv.Close()
	b, err := models.NewOllama(srv.URL, models.OllamaOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tagsBody, psBody []byte) {
		tags.Store(&tagsBody)
		ps.Store(&psBody)
		p, err := New(Options{Targets: []Target{{URL: srv.URL}}, NewBackend: func(Target) (models.Backend, error) { return b, nil }, MaxWaiting: 1})
		if err != nil {
			t.Fatal(err)
		}
		p.ProbeAll(context.Background())
		st := p.Engines()[0]
		if st.State == "ready" && (st.Models == nil || st.Loaded == nil) {
			t.Fatalf("a ready engine lists its models: %+v", st)
		}
		for _, m := range append(append([]string{"aurax-tiny", ""}, st.Models...), st.Loaded...) {
			l, _, err := p.Acquire(context.Background(), m)
			if err == nil {
				l.Release()
			}
		}
		if l, err := p.List(context.Background()); err == nil && l == nil {
			t.Fatal("List answered nil without an error")
		}
	})
}
