package models

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/require"
)

// countingServer is an Ollama-wire chat that streams n chunks, counting
// the connections it accepted.
func countingServer(t *testing.T, chunks int) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range chunks {
			done := i == chunks-1
			if _, err := w.Write([]byte(`{"message":{"content":"x"},"done":` + map[bool]string{true: "true", false: "false"}[done] + "}\n")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			if !done {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(time.Millisecond):
				}
			}
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func chatN(t *testing.T, o *Ollama, ctx context.Context, stopAfter int, cancel func()) (int, error) {
	t.Helper()
	n := 0
	err := o.Chat(ctx, &api.ChatRequest{Model: "m"}, func(*api.ChatResponse) error {
		if n++; n == stopAfter && cancel != nil {
			cancel()
		}
		return nil
	})
	return n, err
}

// TestUpstreamConnections: answers read to their end leave the connection
// for the next request; a cancelled stream's connection is closed, not
// reused; a kept-alive connection the engine closed while idle costs the
// request nothing (it is sent again on a new one).
func TestUpstreamConnections(t *testing.T) {
	srv, conns := countingServer(t, 4)
	o, err := NewOllama(srv.URL, OllamaOptions{})
	require.NoError(t, err)
	require.NotNil(t, o.up, "a plain http URL goes over the upstream client")
	for range 20 {
		n, err := chatN(t, o, context.Background(), 0, nil)
		require.NoError(t, err)
		require.Equal(t, 4, n)
	}
	require.EqualValues(t, 1, conns.Load(), "20 sequential chats over one kept-alive connection")

	ctx, cancel := context.WithCancel(context.Background())
	_, err = chatN(t, o, ctx, 2, cancel)
	require.ErrorIs(t, err, context.Canceled)
	n, err := chatN(t, o, context.Background(), 0, nil)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.EqualValues(t, 2, conns.Load(), "the cancelled stream's connection is not reused")

	srv.CloseClientConnections() // the engine drops the idle connection
	n, err = chatN(t, o, context.Background(), 0, nil)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.EqualValues(t, 3, conns.Load())
}

// TestUpstreamClosesIdleConnections: a connection idle for the idle time
// is closed, with no request to notice it.
func TestUpstreamClosesIdleConnections(t *testing.T) {
	srv, conns := countingServer(t, 1)
	o, err := NewOllama(srv.URL, OllamaOptions{})
	require.NoError(t, err)
	o.up.idleTime = 50 * time.Millisecond
	_, err = chatN(t, o, context.Background(), 0, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		o.up.mu.Lock()
		defer o.up.mu.Unlock()
		return len(o.up.idle) == 0 && o.up.sweep == nil
	}, 10*time.Second, 10*time.Millisecond)
	_, err = chatN(t, o, context.Background(), 0, nil)
	require.NoError(t, err)
	require.EqualValues(t, 2, conns.Load())
}

// TestUpstreamPathPrefix: a base URL with a path keeps it before /api.
func TestUpstreamPathPrefix(t *testing.T) {
	var path atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.Path)
		w.Write([]byte(`{"message":{"content":"x"},"done":true}` + "\n"))
	}))
	t.Cleanup(srv.Close)
	o, err := NewOllama(srv.URL+"/ollama/", OllamaOptions{})
	require.NoError(t, err)
	_, err = chatN(t, o, context.Background(), 0, nil)
	require.NoError(t, err)
	require.Equal(t, "/ollama/api/chat", path.Load())
}

// FuzzUpstreamResponse: whatever bytes an engine answers with, a chat
// returns (an error or chunks), without panicking or hanging.
func FuzzUpstreamResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{\"message\":{\"content\":\"x\"},\"done\":true}"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 404 Not Found\r\nContent-Length: 35\r\n\r\n{\"error\":\"model 'x' not found\"}   "))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"))
	f.Add([]byte("garbage"))
	answers := make(chan []byte)
	addr := rawEngine(f, func(c net.Conn) { // one at a time: the next answer is taken when the connection is
		data := <-answers
		br := bufio.NewReader(c)
		if req, err := http.ReadRequest(br); err == nil {
			req.Body.Close()
		}
		c.Write(data)
		c.Close()
	}, false)
	o, err := NewOllama("http://"+addr, OllamaOptions{HeaderTimeout: 2 * time.Second, ConnectTimeout: time.Second})
	require.NoError(f, err)
	o.up.maxIdle = 0 // one connection per answer: the listener serves one each
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		go func() {
			select {
			case answers <- data:
			case <-ctx.Done():
			}
		}()
		_ = o.Chat(ctx, &api.ChatRequest{Model: "m"}, func(*api.ChatResponse) error { return nil })
	})
}

// TestUpstreamAnswerHeads: the answers whose head readResponse leaves to
// net/http, and those it parses, over a socket, each asked for twice:
// every chat gets its chunks, and the connection is reused exactly when
// the answer allows it.
func TestUpstreamAnswerHeads(t *testing.T) {
	const body = `{"message":{"content":"x"},"done":true}` + "\n"
	chunked := "Transfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(int64(len(body)), 16) + "\r\n" + body + "\r\n0\r\n"
	for _, tc := range []struct {
		name   string
		writes []string // the answer, written in these pieces, a pause between them
		conns  int64    // connections for the two requests
	}{
		{"sized", []string{"HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body}, 1},
		{"chunked", []string{"HTTP/1.1 200 OK\r\n" + chunked + "\r\n"}, 1},
		{"head split across writes", []string{"HTTP/1.1 200 OK\r\nContent-Ty", "pe: application/x-ndjson\r\n" + chunked + "\r\n"}, 1},
		{"trailers", []string{"HTTP/1.1 200 OK\r\nTrailer: X-Done\r\n" + chunked + "X-Done: 1\r\n\r\n"}, 1},
		{"connection close", []string{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body}, 2},
		{"HTTP/1.0, to the close", []string{"HTTP/1.0 200 OK\r\n\r\n" + body}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conns atomic.Int64
			addr := rawEngine(t, func(c net.Conn) { conns.Add(1); answer(c, tc.writes) }, true)
			o, err := NewOllama("http://"+addr, OllamaOptions{HeaderTimeout: 5 * time.Second})
			require.NoError(t, err)
			for range 2 {
				n, err := chatN(t, o, context.Background(), 0, nil)
				require.NoError(t, err)
				require.Equal(t, 1, n)
			}
			require.Equal(t, tc.conns, conns.Load())
		})
	}
}

// answer reads requests from c and writes each the answer in writes; one
// whose head says nothing of a length (HTTP/1.0) or asks for the close ends
// the connection after it.
func answer(c net.Conn, writes []string) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		for i, w := range writes {
			if i > 0 {
				time.Sleep(20 * time.Millisecond)
			}
			if _, err := c.Write([]byte(w)); err != nil {
				return
			}
		}
		if strings.HasPrefix(writes[0], "HTTP/1.0") || strings.Contains(writes[0], "Connection: close") {
			return
		}
	}
}

// rawEngine listens on loopback and hands each connection to serve (in a
// goroutine of its own when concurrent, else in the accepting one); the
// listener and every connection still open are closed when the test ends.
func rawEngine(tb testing.TB, serve func(net.Conn), concurrent bool) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	var mu sync.Mutex
	var open []net.Conn
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range open { // the client's kept-alive ones end their serve
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			if concurrent {
				go serve(c)
			} else {
				serve(c)
			}
		}
	}()
	return ln.Addr().String()
}
