package server

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// benchHandler measures AURAX's own work for one request (routing,
// middleware, metrics, admission, decode, encode) over the in-memory backend,
// calling the fasthttp handler directly: no network, no upstream.
func benchHandler(b *testing.B, path, body string) {
	s, _ := newTestServer(b, &stubBackend{}, testConfig())
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

func BenchmarkOpenAIEmbeddings(b *testing.B) {
	benchHandler(b, "/v1/embeddings", `{"model":"fake","input":["a","b"]}`)
}
