package server

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aurax/aurax/config"
	"github.com/aurax/aurax/metrics"
	"github.com/aurax/aurax/models"
	"github.com/aurax/aurax/pool"
	"github.com/aurax/aurax/rag"
	"github.com/aurax/aurax/rag/embedded"
	"github.com/ollama/ollama/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// wordEmbedder is a deterministic bag-of-words embedder: equal texts get
// equal vectors, texts sharing words get close ones.
func wordEmbedder(dim int) rag.Embedder {
	return rag.EmbedderFunc(func(ctx context.Context, model string, texts []string) ([][]float32, error) {
		out := make([][]float32, len(texts))
		for i, t := range texts {
			v := make([]float32, dim)
			v[0] = 0.01 // never the zero vector
			for _, w := range strings.Fields(strings.ToLower(t)) {
				h := fnv.New32a()
				h.Write([]byte(strings.Trim(w, ".,?!")))
				v[h.Sum32()%uint32(dim)]++
			}
			out[i] = v
		}
		return out, nil
	})
}

// recordingBackend is stubBackend that keeps the last chat request.
type recordingBackend struct {
	stubBackend
	mu   sync.Mutex
	last api.ChatRequest
}

func (b *recordingBackend) Chat(ctx context.Context, req *api.ChatRequest, fn func(*api.ChatResponse) error) error {
	b.mu.Lock()
	b.last = *req
	b.last.Messages = append([]api.Message(nil), req.Messages...)
	b.mu.Unlock()
	return b.stubBackend.Chat(ctx, req, fn)
}

func (b *recordingBackend) lastChat() api.ChatRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// failingStore is a store that cannot be reached.
type failingStore struct{ RAGStore }

var errStoreDown = fmt.Errorf("%w: dial tcp 10.0.0.9:6334: connection refused", rag.ErrUnavailable)

func (failingStore) Search(context.Context, string, rag.Query) ([]rag.Hit, error) {
	return nil, errStoreDown
}
func (failingStore) ListCollections(context.Context) ([]rag.CollectionInfo, error) {
	return nil, errStoreDown
}
func (failingStore) Ping(context.Context) error { return errStoreDown }

// ragConfig is testConfig with small chunks.
func ragConfig() config.Config {
	cfg := testConfig()
	cfg.RAG.ChunkSize, cfg.RAG.ChunkOverlap, cfg.RAG.TopK = 80, 10, 3
	cfg.RAG.MaxDocumentBytes = 2000
	cfg.RAG.Aliases = map[string]string{"fake-rag": "fake@docs"}
	return cfg
}

// openStore opens an embedded store in the test's temp dir.
func openStore(t *testing.T) *embedded.Store {
	t.Helper()
	st, err := embedded.Open(t.TempDir()+"/rag.db", embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

// newRAGServer builds a Server with retrieval over store and emb, on b (a
// pool of one engine over b unless b is a pool).
func newRAGServer(t testing.TB, b models.Backend, cfg config.Config, store RAGStore, emb rag.Embedder) (*Server, *rag.Metrics) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.Options{Window: cfg.Metrics.Window}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { m.Close() })
	rm := rag.NewMetrics(reg)
	p, ok := b.(*pool.Pool)
	if !ok {
		p = newTestPool(t, b, cfg)
	}
	svc := models.NewService(p, models.Config{DefaultChat: cfg.Models.Default, DefaultEmbed: cfg.Models.Embedding, Aliases: cfg.Models.Aliases})
	s := New(Options{Config: cfg, Pool: p, Models: svc, Metrics: m, Version: "test", RAG: &RAG{Store: store, Embedder: emb, Metrics: rm}})
	return s, rm
}

// oaErr is the OpenAI error body.
type oaErr struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func decodeErr(t *testing.T, body string) oaErr {
	t.Helper()
	var e oaErr
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	require.NotEmpty(t, e.Error.Message, body)
	require.NotEmpty(t, e.Error.Type, body)
	return e
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

const corpus = `{"documents":[
 {"id":"bees","text":"Bees make honey in hives. A colony has one queen.\n\nWorker bees gather nectar from flowers all summer long.","metadata":{"topic":"insects","year":2024}},
 {"id":"rome","text":"Rome is the capital of Italy. The Colosseum held sixty thousand people.","metadata":{"topic":"cities","year":2023}},
 {"id":"tea","text":"Green tea is steamed or pan fired soon after picking to stop oxidation.","metadata":{"topic":"food"}}]}`

type collectionList struct {
	Data []rag.CollectionInfo `json:"data"`
}

func points(t *testing.T, s *Server, name string) int {
	t.Helper()
	resp, body := doReq(t, s, "GET", "/v1/rag/collections", "")
	require.Equal(t, 200, resp.StatusCode, body)
	var l collectionList
	require.NoError(t, json.Unmarshal([]byte(body), &l))
	for _, c := range l.Data {
		if c.Name == name {
			return c.Points
		}
	}
	t.Fatalf("collection %q not listed in %s", name, body)
	return 0
}

// TestRAGAPI walks the collection, document and search routes.
func TestRAGAPI(t *testing.T) {
	s, rm := newRAGServer(t, &stubBackend{}, ragConfig(), openStore(t), wordEmbedder(32))

	resp, body := doReq(t, s, "POST", "/v1/rag/collections", `{"name":"docs"}`)
	require.Equal(t, 201, resp.StatusCode, body)
	var info rag.CollectionInfo
	require.NoError(t, json.Unmarshal([]byte(body), &info))
	require.Equal(t, rag.CollectionSpec{Name: "docs", Dimension: 32, Distance: rag.Cosine, EmbedModel: "fake-embed"}, info.CollectionSpec)
	resp, body = doReq(t, s, "POST", "/v1/rag/collections", `{"name":"docs","distance":"cosine"}`)
	require.Equal(t, 200, resp.StatusCode, "an existing compatible collection: %s", body)

	resp, body = doReq(t, s, "POST", "/v1/rag/collections/docs/documents", corpus)
	require.Equal(t, 200, resp.StatusCode, body)
	var res rag.IngestResult
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	require.Equal(t, 3, res.Documents)
	require.GreaterOrEqual(t, res.Chunks, 4, "the bees document is two chunks at size 80")
	require.Empty(t, res.Failed)
	require.Equal(t, res.Chunks, points(t, s, "docs"))
	require.Equal(t, float64(res.Chunks), testutil.ToFloat64(rm.ChunksIngested))

	t.Run("re-ingest changes nothing", func(t *testing.T) {
		resp, body := doReq(t, s, "POST", "/v1/rag/collections/docs/documents", corpus)
		require.Equal(t, 200, resp.StatusCode, body)
		require.Equal(t, res.Chunks, points(t, s, "docs"))
	})

	search := func(t *testing.T, body string) []rag.Hit {
		t.Helper()
		resp, out := doReq(t, s, "POST", "/v1/rag/search", body)
		require.Equal(t, 200, resp.StatusCode, out)
		var r ragSearchResponse
		require.NoError(t, json.Unmarshal([]byte(out), &r))
		require.Equal(t, "fake-embed", r.Model)
		return r.Data
	}
	t.Run("exact chunk text comes first", func(t *testing.T) {
		hits := search(t, `{"collection":"docs","query":"Rome is the capital of Italy. The Colosseum held sixty thousand people."}`)
		require.NotEmpty(t, hits)
		require.Equal(t, "rome", hits[0].DocumentID)
		require.InDelta(t, 1.0, hits[0].Score, 1e-5)
		require.Equal(t, "cities", hits[0].Metadata["topic"])
	})
	t.Run("filter, top_k and min_score", func(t *testing.T) {
		hits := search(t, `{"collection":"docs","query":"capital of Italy","filter":{"topic":["insects","food"]},"top_k":10}`)
		require.NotEmpty(t, hits)
		for _, h := range hits {
			require.NotEqual(t, "rome", h.DocumentID)
		}
		require.Len(t, search(t, `{"collection":"docs","query":"honey","top_k":1}`), 1)
		require.Empty(t, search(t, `{"collection":"docs","query":"zzz unrelated","min_score":0.99}`))
	})
	t.Run("delete a document", func(t *testing.T) {
		resp, body := doReq(t, s, "DELETE", "/v1/rag/collections/docs/documents/rome", "")
		require.Equal(t, 200, resp.StatusCode, body)
		for _, h := range search(t, `{"collection":"docs","query":"Rome is the capital of Italy.","top_k":10}`) {
			require.NotEqual(t, "rome", h.DocumentID)
		}
	})
	t.Run("document ids with slashes", func(t *testing.T) {
		resp, body := doReq(t, s, "POST", "/v1/rag/collections/docs/documents", `{"documents":[{"id":"dir/a.md","text":"slash id"}]}`)
		require.Equal(t, 200, resp.StatusCode, body)
		resp, body = doReq(t, s, "DELETE", "/v1/rag/collections/docs/documents/dir%2Fa.md", "")
		require.Equal(t, 200, resp.StatusCode, body)
		require.Contains(t, body, `"id":"dir/a.md"`)
	})
	t.Run("delete the collection", func(t *testing.T) {
		resp, body := doReq(t, s, "DELETE", "/v1/rag/collections/docs", "")
		require.Equal(t, 200, resp.StatusCode, body)
		resp, body = doReq(t, s, "POST", "/v1/rag/search", `{"collection":"docs","query":"honey"}`)
		require.Equal(t, 404, resp.StatusCode, body)
	})
}

// TestRAGBadInput: every bad request is a 4xx in the endpoint's wire
// format, naming the field at fault.
func TestRAGBadInput(t *testing.T) {
	s, _ := newRAGServer(t, &stubBackend{}, ragConfig(), openStore(t), wordEmbedder(16))
	for _, body := range []string{`{"name":"docs"}`, `{"name":"tiny","dimension":3}`} {
		resp, out := doReq(t, s, "POST", "/v1/rag/collections", body)
		require.Equal(t, 201, resp.StatusCode, out)
	}
	big := strings.Repeat("a", 2001)
	chat := func(rag string) string {
		return `{"model":"fake","messages":[{"role":"user","content":"hi"}],"rag":` + rag + `}`
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		param, code              string
	}{
		{"collection without name", "POST", "/v1/rag/collections", `{}`, 400, "name", ""},
		{"collection bad name", "POST", "/v1/rag/collections", `{"name":"a b"}`, 400, "name", ""},
		{"collection bad distance", "POST", "/v1/rag/collections", `{"name":"x","distance":"manhattan"}`, 400, "distance", ""},
		{"collection conflicting dimension", "POST", "/v1/rag/collections", `{"name":"docs","dimension":3}`, 409, "dimension", "collection_exists"},
		{"collection not JSON", "POST", "/v1/rag/collections", `{"name":`, 400, "", ""},
		{"no documents", "POST", "/v1/rag/collections/docs/documents", `{"documents":[]}`, 400, "documents", ""},
		{"documents not a list", "POST", "/v1/rag/collections/docs/documents", `{"documents":"x"}`, 400, "documents", ""},
		{"empty document", "POST", "/v1/rag/collections/docs/documents", `{"documents":[{"id":"a","text":"  \n"}]}`, 400, "documents[0].text", ""},
		{"missing id", "POST", "/v1/rag/collections/docs/documents", `{"documents":[{"text":"x"}]}`, 400, "documents[0].id", ""},
		{"duplicate id", "POST", "/v1/rag/collections/docs/documents", `{"documents":[{"id":"a","text":"x"},{"id":"a","text":"y"}]}`, 400, "documents[1].id", ""},
		{"oversized document", "POST", "/v1/rag/collections/docs/documents", `{"documents":[{"id":"a","text":"` + big + `"}]}`, 413, "documents[0].text", "document_too_large"},
		{"nested metadata", "POST", "/v1/rag/collections/docs/documents", `{"documents":[{"id":"a","text":"x","metadata":{"a":{"b":1}}}]}`, 400, "documents[0].metadata", ""},
		{"unknown collection", "POST", "/v1/rag/collections/nope/documents", `{"documents":[{"id":"a","text":"x"}]}`, 404, "collection", "collection_not_found"},
		{"dimension mismatch on ingest", "POST", "/v1/rag/collections/tiny/documents", `{"documents":[{"id":"a","text":"x"}]}`, 400, "", "dimension_mismatch"},
		{"search unknown collection", "POST", "/v1/rag/search", `{"collection":"nope","query":"x"}`, 404, "collection", "collection_not_found"},
		{"search dimension mismatch", "POST", "/v1/rag/search", `{"collection":"tiny","query":"x"}`, 400, "", "dimension_mismatch"},
		{"search nested filter", "POST", "/v1/rag/search", `{"collection":"docs","query":"x","filter":{"a":{"b":1}}}`, 400, "filter", "invalid_filter"},
		{"search empty filter list", "POST", "/v1/rag/search", `{"collection":"docs","query":"x","filter":{"a":[]}}`, 400, "filter", "invalid_filter"},
		{"search filter not an object", "POST", "/v1/rag/search", `{"collection":"docs","query":"x","filter":"lang=en"}`, 400, "filter", ""},
		{"search empty query", "POST", "/v1/rag/search", `{"collection":"docs","query":" "}`, 400, "query", ""},
		{"search top_k too large", "POST", "/v1/rag/search", `{"collection":"docs","query":"x","top_k":5000}`, 400, "top_k", ""},
		{"search bad collection name", "POST", "/v1/rag/search", `{"collection":"../etc","query":"x"}`, 400, "collection", ""},
		{"delete unknown collection", "DELETE", "/v1/rag/collections/nope", "", 404, "collection", "collection_not_found"},
		{"delete document of unknown collection", "DELETE", "/v1/rag/collections/nope/documents/a", "", 404, "collection", "collection_not_found"},
		{"chat rag not an object", "POST", "/v1/chat/completions", chat(`"docs"`), 400, "rag", ""},
		{"chat rag without collection", "POST", "/v1/chat/completions", chat(`{"top_k":2}`), 400, "rag.collection", ""},
		{"chat rag unknown collection", "POST", "/v1/chat/completions", chat(`{"collection":"nope"}`), 404, "rag.collection", "collection_not_found"},
		{"chat rag invalid filter", "POST", "/v1/chat/completions", chat(`{"collection":"docs","filter":{"a":null}}`), 400, "rag.filter", "invalid_filter"},
		{"chat rag dimension mismatch", "POST", "/v1/chat/completions", chat(`{"collection":"tiny"}`), 400, "", "dimension_mismatch"},
		{"chat rag without a user message", "POST", "/v1/chat/completions", `{"messages":[{"role":"system","content":"s"}],"rag":{"collection":"docs"}}`, 400, "messages", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := doReq(t, s, tt.method, tt.path, tt.body)
			require.Equal(t, tt.status, resp.StatusCode, "%s %s %s = %s", tt.method, tt.path, tt.body, body)
			e := decodeErr(t, body)
			if tt.param != "" {
				require.Equal(t, tt.param, str(e.Error.Param), body)
			}
			if tt.code != "" {
				require.Equal(t, tt.code, str(e.Error.Code), body)
			}
		})
	}
	t.Run("ollama wire format", func(t *testing.T) {
		resp, body := doReq(t, s, "POST", "/api/chat", `{"model":"fake","messages":[{"role":"user","content":"hi"}],"rag":{"collection":"nope"}}`)
		require.Equal(t, 404, resp.StatusCode, body)
		var e struct{ Error string }
		require.NoError(t, json.Unmarshal([]byte(body), &e))
		require.Contains(t, e.Error, "nope")
	})
	t.Run("nothing was ingested", func(t *testing.T) {
		require.Zero(t, points(t, s, "docs"))
	})
}

// TestRAGWriteAuth: writes are open without any key, admin-only with keys.
func TestRAGWriteAuth(t *testing.T) {
	tests := []struct {
		name            string
		auth            config.Auth
		key             string
		write, read     int
		writeWhenNoAuth bool
	}{
		{name: "no keys at all: open", write: 201, read: 200},
		{name: "api key on a write", auth: config.Auth{APIKeys: []string{"k1"}, AdminKey: "adm"}, key: "k1", write: 401, read: 200},
		{name: "admin key on a write", auth: config.Auth{APIKeys: []string{"k1"}, AdminKey: "adm"}, key: "adm", write: 201, read: 200},
		{name: "no key", auth: config.Auth{APIKeys: []string{"k1"}, AdminKey: "adm"}, write: 401, read: 401},
		{name: "api keys without an admin key", auth: config.Auth{APIKeys: []string{"k1"}}, key: "k1", write: 403, read: 200},
		{name: "admin key only", auth: config.Auth{AdminKey: "adm"}, write: 401, read: 200},
		{name: "metrics key only", auth: config.Auth{MetricsKey: "m"}, write: 403, read: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ragConfig()
			cfg.Auth = tt.auth
			s, _ := newRAGServer(t, &stubBackend{}, cfg, openStore(t), wordEmbedder(8))
			var hdr []string
			if tt.key != "" {
				hdr = []string{"Authorization", "Bearer " + tt.key}
			}
			resp, body := doReq(t, s, "POST", "/v1/rag/collections", `{"name":"docs"}`, hdr...)
			require.Equal(t, tt.write, resp.StatusCode, body)
			resp, body = doReq(t, s, "GET", "/v1/rag/collections", "", hdr...)
			require.Equal(t, tt.read, resp.StatusCode, body)
		})
	}
}

// sseEvents splits an SSE body into its JSON events (without [DONE]).
func sseEvents(t *testing.T, body string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(body, "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(data), &ev), data)
		out = append(out, ev)
	}
	return out
}

// ndjsonLines splits an NDJSON body.
func ndjsonLines(t *testing.T, body string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &v), line)
		out = append(out, v)
	}
	return out
}

// TestRAGChat: the `rag` field and a rag alias put the retrieved chunks in a
// system message and return citations in both wire formats, streamed or not.
func TestRAGChat(t *testing.T) {
	b := &recordingBackend{}
	s, _ := newRAGServer(t, b, ragConfig(), openStore(t), wordEmbedder(32))
	resp, body := doReq(t, s, "POST", "/v1/rag/collections", `{"name":"docs"}`)
	require.Equal(t, 201, resp.StatusCode, body)
	resp, body = doReq(t, s, "POST", "/v1/rag/collections/docs/documents", corpus)
	require.Equal(t, 200, resp.StatusCode, body)

	msgs := `"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"How many people did the Colosseum in Rome hold?"}]`
	tests := []struct {
		name, path, body string
		stream, ollama   bool
		wantModel        string // what the backend was asked for
	}{
		{name: "openai", path: "/v1/chat/completions", body: `{"model":"fake",` + msgs + `,"rag":{"collection":"docs","top_k":2}}`, wantModel: "fake"},
		{name: "openai stream", path: "/v1/chat/completions", body: `{"model":"fake",` + msgs + `,"stream":true,"rag":{"collection":"docs","top_k":2}}`, stream: true, wantModel: "fake"},
		{name: "openai alias", path: "/v1/chat/completions", body: `{"model":"fake-rag",` + msgs + `}`, wantModel: "fake"},
		{name: "ollama", path: "/api/chat", body: `{"model":"fake",` + msgs + `,"stream":false,"rag":{"collection":"docs","top_k":2}}`, ollama: true, wantModel: "fake"},
		{name: "ollama stream", path: "/api/chat", body: `{"model":"fake",` + msgs + `,"rag":{"collection":"docs","top_k":2,"filter":{"topic":"cities"}}}`, stream: true, ollama: true, wantModel: "fake"},
		{name: "ollama alias", path: "/api/chat", body: `{"model":"fake-rag",` + msgs + `,"stream":false}`, ollama: true, wantModel: "fake"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := doReq(t, s, "POST", tt.path, tt.body)
			require.Equal(t, 200, resp.StatusCode, body)
			require.Equal(t, "used", resp.Header.Get(HeaderRAG))
			var first map[string]any
			switch {
			case tt.stream && !tt.ollama:
				evs := sseEvents(t, body)
				require.NotEmpty(t, evs)
				first = evs[0]
				for _, ev := range evs[1:] {
					require.NotContains(t, ev, "citations", "only the first chunk carries citations")
				}
			case tt.stream:
				lines := ndjsonLines(t, body)
				first = lines[0]
				for _, l := range lines[1:] {
					require.NotContains(t, l, "citations")
				}
			default:
				require.NoError(t, json.Unmarshal([]byte(body), &first))
			}
			cites, ok := first["citations"].([]any)
			require.True(t, ok, "citations missing: %s", body)
			require.NotEmpty(t, cites)
			c0 := cites[0].(map[string]any)
			require.Equal(t, "rome", c0["document_id"], body)
			require.Contains(t, c0, "score")
			require.Contains(t, c0, "chunk")

			got := b.lastChat()
			require.Equal(t, tt.wantModel, got.Model)
			require.Len(t, got.Messages, 3)
			require.Equal(t, "Be brief.", got.Messages[0].Content, "the client's system message stays first")
			require.Equal(t, "system", got.Messages[1].Role)
			require.Contains(t, got.Messages[1].Content, "Colosseum")
			require.Contains(t, got.Messages[1].Content, "[1] (rome#0)")
			require.Equal(t, "user", got.Messages[2].Role)
		})
	}
	t.Run("no rag: request untouched, no citations", func(t *testing.T) {
		resp, body := doReq(t, s, "POST", "/v1/chat/completions", `{"model":"fake",`+msgs+`}`)
		require.Equal(t, 200, resp.StatusCode, body)
		require.Empty(t, resp.Header.Get(HeaderRAG))
		require.NotContains(t, body, "citations")
		require.Len(t, b.lastChat().Messages, 2)
	})
	t.Run("no hits: empty citations, no system message", func(t *testing.T) {
		resp, body := doReq(t, s, "POST", "/v1/chat/completions", `{"model":"fake",`+msgs+`,"rag":{"collection":"docs","min_score":0.999}}`)
		require.Equal(t, 200, resp.StatusCode, body)
		require.Contains(t, body, `"citations":[]`)
		require.Len(t, b.lastChat().Messages, 2)
	})
}

// TestRAGOnError: a store that fails is skipped (header, metric) or a 503.
func TestRAGOnError(t *testing.T) {
	chat := `{"model":"fake","messages":[{"role":"user","content":"hi"}],"stream":false,"rag":{"collection":"docs"}}`
	for _, onError := range []string{rag.OnErrorSkip, rag.OnErrorFail} {
		for _, path := range []string{"/v1/chat/completions", "/api/chat"} {
			t.Run(onError+" "+path, func(t *testing.T) {
				cfg := ragConfig()
				cfg.RAG.OnError = onError
				s, rm := newRAGServer(t, &stubBackend{}, cfg, failingStore{openStore(t)}, wordEmbedder(8))
				resp, body := doReq(t, s, "POST", path, chat)
				if onError == rag.OnErrorSkip {
					require.Equal(t, 200, resp.StatusCode, body)
					require.Equal(t, "skipped", resp.Header.Get(HeaderRAG))
					require.NotContains(t, body, "citations")
					require.Equal(t, 1.0, testutil.ToFloat64(rm.Skipped.WithLabelValues(rag.SkipStore)))
					return
				}
				require.Equal(t, 503, resp.StatusCode, body)
				require.NotEmpty(t, resp.Header.Get("Retry-After"))
				require.Contains(t, body, "retrieval from collection docs failed")
				require.Zero(t, testutil.ToFloat64(rm.Skipped.WithLabelValues(rag.SkipStore)))
			})
		}
	}
	t.Run("search answers 503", func(t *testing.T) {
		s, _ := newRAGServer(t, &stubBackend{}, ragConfig(), failingStore{openStore(t)}, wordEmbedder(8))
		resp, body := doReq(t, s, "POST", "/v1/rag/search", `{"collection":"docs","query":"x"}`)
		require.Equal(t, 503, resp.StatusCode, body)
		require.Equal(t, "vector_store_unavailable", str(decodeErr(t, body).Error.Code))
	})
}

// TestRAGHealth: /health reports the store and is degraded without it.
func TestRAGHealth(t *testing.T) {
	st := openStore(t)
	s, _ := newRAGServer(t, &stubBackend{}, ragConfig(), st, wordEmbedder(8))
	check := func() (string, map[string]any) {
		s.Health().Check(context.Background())
		resp, body := doReq(t, s, "GET", "/health", "")
		var h struct {
			Status string
			Checks map[string]map[string]any
		}
		require.NoError(t, json.Unmarshal([]byte(body), &h), body)
		require.Contains(t, []int{200, 503}, resp.StatusCode)
		return h.Status, h.Checks["rag"]
	}
	status, r := check()
	require.Equal(t, "ok", status)
	require.Equal(t, true, r["ok"])
	require.Equal(t, "embedded", r["store"])

	require.NoError(t, st.Close())
	status, r = check()
	require.Equal(t, "degraded", status)
	require.Equal(t, false, r["ok"])
	require.Contains(t, r["error"], "closed")

	plain, _ := newTestServer(t, &stubBackend{}, testConfig())
	_, body := doReq(t, plain, "GET", "/health", "")
	require.Contains(t, body, `"rag":{"enabled":false}`)
	resp, _ := doReq(t, plain, "GET", "/v1/rag/collections", "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "no rag routes without a store")
	resp, body = doReq(t, plain, "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"rag":{"collection":"docs"}}`)
	require.Equal(t, 400, resp.StatusCode, body)
	require.Equal(t, "rag", str(decodeErr(t, body).Error.Param))
}

// fuzzRAG feeds arbitrary bodies to a RAG route: every answer is a 200 or
// a 4xx in the OpenAI error shape, never a 5xx or a panic.
func fuzzRAG(f *testing.F, path string, seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	st, err := embedded.Open(f.TempDir()+"/rag.db", embedded.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	s, _ := newRAGServer(f, &stubBackend{}, ragConfig(), st, wordEmbedder(8))
	if resp, body, err := rawReq(s, "POST", "/v1/rag/collections", `{"name":"docs"}`); err != nil || resp.StatusCode != 201 {
		f.Fatalf("create collection: %v %s", err, body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		resp, out, err := rawReq(s, "POST", path, body)
		if err != nil {
			t.Fatalf("request failed: %v", err)
		}
		switch resp.StatusCode {
		case 200:
			return
		case 400, 404, 413:
		default:
			t.Fatalf("POST %s %q = %d %s; want 200 or a 4xx", path, body, resp.StatusCode, out)
		}
		var e oaErr
		if json.Unmarshal([]byte(out), &e) != nil || e.Error.Message == "" || e.Error.Type == "" {
			t.Fatalf("OpenAI-shape error expected, got %s", out)
		}
	})
}

func FuzzRAGDocuments(f *testing.F) {
	fuzzRAG(f, "/v1/rag/collections/docs/documents", corpus,
		`{"documents":[{"id":"a","text":"x","metadata":{"k":1.5,"b":true,"s":"v"}}]}`,
		`{"documents":[{"id":"a\u0000","text":"x"}]}`, `{"documents":[{"id":"a","text":"x","metadata":{"k":[1]}}]}`,
		`{"documents":null}`, `[]`, `{"documents":[{"id":7,"text":"x"}]}`)
}

func FuzzRAGSearch(f *testing.F) {
	fuzzRAG(f, "/v1/rag/search", `{"collection":"docs","query":"honey","top_k":3,"filter":{"topic":["a","b"],"year":2024},"min_score":0.1}`,
		`{"collection":"nope","query":"x"}`, `{"collection":"docs","query":"x","filter":{"a":{}}}`, `{"collection":"docs","query":"x","min_score":1e400}`,
		`{"collection":"docs","query":"x","top_k":-1}`, `null`)
}
