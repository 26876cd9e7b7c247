package models

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// slowServer is an Ollama-wire chat that streams 3 chunks with gap between
// them, over TLS when tls is set, counting the connections it accepted.
func slowServer(t *testing.T, gap time.Duration, tls bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			if i > 0 {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(gap):
				}
			}
			last := map[bool]string{true: "true", false: "false"}[i == 2]
			if _, err := w.Write([]byte(`{"message":{"content":"x"},"done":` + last + "}\n")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, &conns
}

func slowOllama(t *testing.T, tls bool) (*Ollama, *atomic.Int64) {
	srv, conns := slowServer(t, 150*time.Millisecond, tls)
	o, err := NewOllama(srv.URL, OllamaOptions{})
	require.NoError(t, err)
	if tls {
		require.Nil(t, o.up, "https goes through net/http")
		o.http.Transport.(*http.Transport).TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	} else {
		require.NotNil(t, o.up)
	}
	return o, conns
}

// TestIdleHook: under WithIdle, the silences of a streamed answer call the
// hook (each 30 ms of 2 × 150 ms) and lose no chunk, over the upstream
// client and over net/http (https); the connection then serves a call
// without a hook whose gaps are longer than the hook's interval (its
// deadline was cleared). An error from the hook ends the call with that
// error, a cancellation during a silence with the context's.
func TestIdleHook(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tls], func(t *testing.T) {
			o, conns := slowOllama(t, tls)
			var idles atomic.Int64
			ctx := WithIdle(context.Background(), 30*time.Millisecond, func() error { idles.Add(1); return nil })
			n, err := chatN(t, o, ctx, 0, nil)
			require.NoError(t, err)
			require.Equal(t, 3, n, "every chunk")
			require.GreaterOrEqual(t, idles.Load(), int64(4), "the hook in the silences")

			n, err = chatN(t, o, context.Background(), 0, nil)
			require.NoError(t, err, "no deadline left on the reused connection")
			require.Equal(t, 3, n)
			require.EqualValues(t, 1, conns.Load(), "one kept-alive connection for both")

			stopped := errors.New("stopped")
			ctx = WithIdle(context.Background(), 30*time.Millisecond, func() error { return stopped })
			_, err = chatN(t, o, ctx, 0, nil)
			require.ErrorIs(t, err, stopped, "the hook's error, not an engine failure")

			cctx, cancel := context.WithCancel(context.Background())
			var once atomic.Bool
			ctx = WithIdle(cctx, 30*time.Millisecond, func() error {
				if !once.Swap(true) {
					time.AfterFunc(10*time.Millisecond, cancel) // cancelled while it waits
				}
				return nil
			})
			_, err = chatN(t, o, ctx, 0, nil)
			require.ErrorIs(t, err, context.Canceled)
		})
	}
}

// TestWithIdleNone: no interval or no hook leaves the context as it is.
func TestWithIdleNone(t *testing.T) {
	ctx := context.Background()
	require.Nil(t, idleFrom(WithIdle(ctx, 0, func() error { return nil })))
	require.Nil(t, idleFrom(WithIdle(ctx, time.Second, nil)))
	require.NotNil(t, idleFrom(WithIdle(ctx, time.Second, func() error { return nil })))
}
