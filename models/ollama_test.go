package models

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/testenv"
	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/require"
)

// TestOllamaErrors checks that transport and status failures come back as
// the sentinels and types the HTTP edge maps to statuses.
func TestOllamaErrors(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedURL := "http://" + closed.Addr().String()
	closed.Close()

	status := func(code int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	midStream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"model":"m","message":{"role":"assistant","content":"a"},"done":false}` + "\n"))
		w.Write([]byte(`{"error":"llama runner process has terminated"}` + "\n"))
	}))
	t.Cleanup(midStream.Close)

	cases := []struct {
		name  string
		url   string
		check func(t *testing.T, err error)
	}{
		{"connection refused", closedURL, func(t *testing.T, err error) { require.ErrorIs(t, err, ErrUnavailable) }},
		{"header timeout", slow.URL, func(t *testing.T, err error) { require.ErrorIs(t, err, ErrTimeout) }},
		{"model not found", status(404, `{"error":"model 'ghost' not found"}`), func(t *testing.T, err error) {
			var nf *ModelNotFoundError
			require.ErrorAs(t, err, &nf)
			require.Equal(t, "ghost", nf.Model)
		}},
		{"server error", status(500, `{"error":"llama runner crashed"}`), func(t *testing.T, err error) {
			var ue *UpstreamError
			require.ErrorAs(t, err, &ue)
			require.Equal(t, 500, ue.Status)
			require.Equal(t, "llama runner crashed", ue.Message)
		}},
		{"busy", status(503, `{"error":"server busy, please try again.  maximum pending requests exceeded"}`), func(t *testing.T, err error) {
			var ue *UpstreamError
			require.ErrorAs(t, err, &ue)
			require.Equal(t, 503, ue.Status)
		}},
		{"error mid-stream", midStream.URL, func(t *testing.T, err error) {
			var ue *UpstreamError
			require.ErrorAs(t, err, &ue)
			require.Contains(t, ue.Message, "terminated")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := NewOllama(tc.url, OllamaOptions{HeaderTimeout: 200 * time.Millisecond, ConnectTimeout: time.Second})
			require.NoError(t, err)
			err = o.Chat(context.Background(), &api.ChatRequest{Model: "m"}, func(*api.ChatResponse) error { return nil })
			require.Error(t, err)
			tc.check(t, err)
		})
	}
}

// TestOllamaCancel: canceling ctx ends a stream with ctx.Err().
func TestOllamaCancel(t *testing.T) {
	ended := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(ended)
		for {
			if _, err := w.Write([]byte(`{"message":{"content":"x"},"done":false}` + "\n")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}))
	defer srv.Close()
	o, err := NewOllama(srv.URL, OllamaOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err = o.Chat(ctx, &api.ChatRequest{Model: "m"}, func(r *api.ChatResponse) error {
		if n++; n == 3 {
			cancel()
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	select {
	case <-ended:
	case <-time.After(time.Second):
		t.Fatal("upstream handler still running a second after cancel")
	}
}

// TestLongLine: an NDJSON object longer than the read buffer is reassembled.
func TestLongLine(t *testing.T) {
	long := strings.Repeat("y", 100<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"message":{"content":"` + long + `"},"done":true}` + "\n"))
	}))
	defer srv.Close()
	o, err := NewOllama(srv.URL, OllamaOptions{})
	require.NoError(t, err)
	var got string
	require.NoError(t, o.Chat(context.Background(), &api.ChatRequest{Model: "m"}, func(r *api.ChatResponse) error {
		got = r.Message.Content
		return nil
	}))
	require.Equal(t, long, got)
}

// TestRealOllama runs every Backend call against the real test Ollama.
func TestRealOllama(t *testing.T) {
	url := testenv.Ollama(t)
	o, err := NewOllama(url, OllamaOptions{})
	require.NoError(t, err)
	svc := NewService(o, Config{DefaultChat: testenv.ChatModel, DefaultEmbed: testenv.EmbedModel, Aliases: map[string]string{"qwen3:coder": testenv.ChatModel}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	v, err := o.Version(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, v)

	has, err := svc.Has(ctx, "qwen3:coder", testenv.EmbedModel, "ghost-model")
	require.NoError(t, err)
	require.Equal(t, []bool{true, true, false}, has, "the alias resolves to a present model; the ghost is absent")

	var chunks int
	var last api.ChatResponse
	err = svc.Chat(ctx, &api.ChatRequest{Model: "qwen3:coder", Messages: []api.Message{{Role: "user", Content: "hello"}},
		Options: map[string]any{"num_predict": 12, "seed": 1}}, func(r *api.ChatResponse) error {
		chunks++
		last = *r
		return nil
	})
	require.NoError(t, err)
	require.True(t, last.Done)
	require.Greater(t, last.EvalCount, 0)
	require.Greater(t, chunks, 1, "chat must stream")

	vecs, err := svc.EmbedTexts(ctx, "", []string{"a", "b"})
	require.NoError(t, err)
	require.Len(t, vecs, 2)
	require.Len(t, vecs[0], 64)

	err = svc.Chat(ctx, &api.ChatRequest{Model: "ghost-model", Messages: []api.Message{{Role: "user", Content: "x"}}}, func(*api.ChatResponse) error { return nil })
	var nf *ModelNotFoundError
	require.True(t, errors.As(err, &nf), "got %v", err)
	require.Equal(t, "ghost-model", nf.Model)
}
