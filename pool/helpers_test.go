package pool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/models"
	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testenv.LeakOptions()...)
}

// fakeEngine is an in-memory engine: it lists models, answers chat with
// one chunk (or two when stream), can hold calls on a gate, and can fail.
type fakeEngine struct {
	mu     sync.Mutex
	models []string
	loaded []string
	gate   chan struct{} // nil: answer at once
	err    error         // returned by inference calls before any chunk
	midErr error         // returned after the first chunk
	down   bool          // every call fails as unreachable
	calls  atomic.Int64
	lists  atomic.Int64
}

var _ models.Backend = (*fakeEngine)(nil)

func (f *fakeEngine) state() (down bool, err, mid error, gate chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down, f.err, f.midErr, f.gate
}

func (f *fakeEngine) set(fn func(f *fakeEngine)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeEngine) infer(ctx context.Context, chunk func(done bool) error) error {
	f.calls.Add(1)
	down, err, mid, gate := f.state()
	if down {
		return models.ErrUnavailable
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err != nil {
		return err
	}
	if mid != nil {
		if err := chunk(false); err != nil {
			return err
		}
		return mid
	}
	return chunk(true)
}

func (f *fakeEngine) Chat(ctx context.Context, req *api.ChatRequest, fn func(*api.ChatResponse) error) error {
	return f.infer(ctx, func(done bool) error {
		return fn(&api.ChatResponse{Model: req.Model, Message: api.Message{Role: "assistant", Content: "ok"}, Done: done})
	})
}

func (f *fakeEngine) Generate(ctx context.Context, req *api.GenerateRequest, fn func(*api.GenerateResponse) error) error {
	return f.infer(ctx, func(done bool) error { return fn(&api.GenerateResponse{Model: req.Model, Response: "ok", Done: done}) })
}

func (f *fakeEngine) Embed(ctx context.Context, req *api.EmbedRequest) (*api.EmbedResponse, error) {
	err := f.infer(ctx, func(bool) error { return nil })
	if err != nil {
		return nil, err
	}
	return &api.EmbedResponse{Model: req.Model, Embeddings: [][]float32{{1, 0}}}, nil
}

func (f *fakeEngine) List(context.Context) (*api.ListResponse, error) {
	f.lists.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, models.ErrUnavailable
	}
	out := &api.ListResponse{}
	for _, m := range f.models {
		out.Models = append(out.Models, api.ListModelResponse{Name: m, Model: m})
	}
	return out, nil
}

func (f *fakeEngine) Running(context.Context) (*api.ProcessResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, models.ErrUnavailable
	}
	out := &api.ProcessResponse{}
	for _, m := range f.loaded {
		out.Models = append(out.Models, api.ProcessModelResponse{Name: m, Model: m})
	}
	return out, nil
}

func (f *fakeEngine) Show(context.Context, *api.ShowRequest) (*api.ShowResponse, error) {
	return &api.ShowResponse{}, nil
}

func (f *fakeEngine) Version(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return "", models.ErrUnavailable
	}
	return "0.17.4", nil
}

// newFakePool builds a pool over fakes named by their URL's host.
func newFakePool(t *testing.T, opts Options, fakes map[string]*fakeEngine) *Pool {
	t.Helper()
	if opts.Targets == nil {
		for name := range fakes {
			opts.Targets = append(opts.Targets, Target{URL: "http://" + name + ":11434"})
		}
	}
	opts.NewBackend = func(t Target) (models.Backend, error) {
		f, ok := fakes[t.URL[len("http://"):len(t.URL)-len(":11434")]]
		if !ok {
			return nil, errors.New("no fake for " + t.URL)
		}
		return f, nil
	}
	if opts.MaxWaiting == 0 {
		opts.MaxWaiting = 16
	}
	if opts.MaxWait == 0 {
		opts.MaxWait = 5 * time.Second
	}
	p, err := New(opts)
	require.NoError(t, err)
	return p
}

// runPool runs p until the test ends.
func runPool(t *testing.T, p *Pool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func engineByName(p *Pool, name string) EngineStatus {
	for _, e := range p.Engines() {
		if e.Name == name {
			return e
		}
	}
	return EngineStatus{}
}
