package server

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aurax/aurax/internal/fakeollama"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// benchHandler measures AURAX's own work for one request (routing,
// middleware, metrics, admission, decode, encode) over the in-memory backend,
// calling the fasthttp handler directly: no network, no upstream.
func benchHandler(b *testing.B, path, body string, mods ...func(*Options)) {
	s, _ := newTestServer(b, &stubBackend{}, testConfig(), mods...)
	h := s.App().Handler()
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI(path)
		ctx.Request.Header.SetContentType("application/json")
		ctx.Request.SetBodyString(body)
		h(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

func BenchmarkOpenAIChat(b *testing.B) { benchHandler(b, "/v1/chat/completions", chatBody) }

func BenchmarkOllamaChat(b *testing.B) { benchHandler(b, "/api/chat", chatBody) }

// BenchmarkOpenAIChatAccessLog is BenchmarkOpenAIChat with the access log
// written (a text handler into io.Discard): the cost of its line.
func BenchmarkOpenAIChatAccessLog(b *testing.B) {
	benchHandler(b, "/v1/chat/completions", chatBody, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	})
}

func BenchmarkOpenAIEmbeddings(b *testing.B) {
	benchHandler(b, "/v1/embeddings", `{"model":"fake","input":["a","b"]}`)
}

// benchServed measures one request through the server's whole read path
// (the connection, header and body reading, readBody, the access log)
// over an in-memory listener and one keep-alive client connection.
func benchServed(b *testing.B, path, body string) {
	s, _ := newTestServer(b, &stubBackend{}, testConfig())
	ln := fasthttputil.NewInmemoryListener()
	done := make(chan error, 1)
	go func() { done <- s.App().Listener(lingerListener{Listener: ln, linger: time.Second}) }()
	b.Cleanup(func() { _ = s.App().Shutdown(); <-done })
	hc := &fasthttp.HostClient{Addr: "aurax.test", MaxConns: 1, Dial: func(string) (net.Conn, error) { return ln.Dial() }}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req.Reset()
		req.SetRequestURI("http://aurax.test" + path)
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.SetBodyString(body)
		if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatalf("status %d, err %v: %s", resp.StatusCode(), err, resp.Body())
		}
	}
}

func BenchmarkOpenAIChatServed(b *testing.B) { benchServed(b, "/v1/chat/completions", chatBody) }

// benchHop measures one whole hop, as a client sees it: a keep-alive
// connection over loopback TCP to AURAX (its connection watcher included),
// AURAX's call to an Ollama-wire upstream over loopback TCP (models.Ollama:
// the HTTP client, its connection pool, the NDJSON reader), the answer back.
// The upstream answers at once; its own work and the client's are in the
// figures too, the same before and after a change to AURAX.
func benchHop(b *testing.B, path, body string) {
	s, _ := newUpstreamServer(b, fakeollama.Options{Models: []string{"fake"}}, nil)
	base, _ := serve(b, s)
	hc := &fasthttp.HostClient{Addr: strings.TrimPrefix(base, "http://"), MaxConns: 1, MaxIdleConnDuration: 100 * time.Millisecond,
		Dial: func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }}
	b.Cleanup(hc.CloseIdleConnections)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req.Reset()
		req.SetRequestURI(base + path)
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.SetBodyString(body)
		if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatalf("status %d, err %v: %s", resp.StatusCode(), err, resp.Body())
		}
	}
}

func BenchmarkOpenAIChatHop(b *testing.B) { benchHop(b, "/v1/chat/completions", chatBody) }

func BenchmarkOllamaChatHop(b *testing.B) { benchHop(b, "/api/chat", chatBody) }

// BenchmarkOpenAIChatStreamHop is BenchmarkOpenAIChatHop streamed: the
// upstream's 8 chunks as SSE events, and [DONE].
func BenchmarkOpenAIChatStreamHop(b *testing.B) {
	benchHop(b, "/v1/chat/completions", `{"model":"fake","messages":[{"role":"user","content":"hi"}],"stream":true}`)
}

// BenchmarkOllamaChatStreamHop: the upstream's 8 chunks as NDJSON lines.
func BenchmarkOllamaChatStreamHop(b *testing.B) {
	benchHop(b, "/api/chat", `{"model":"fake","messages":[{"role":"user","content":"hi"}],"stream":true}`)
}
