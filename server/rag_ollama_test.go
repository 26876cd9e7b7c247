package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/models"
	"github.com/aurax/aurax/rag"
	"github.com/stretchr/testify/require"
)

// TestRAGWithOllama is the end-to-end path on the real test Ollama: the
// corpus is embedded by aurax-tiny-embed through the API, a chunk's exact
// text finds that chunk first, aurax-tiny answers with citations in both
// wire formats, streamed and not, and re-ingesting changes nothing.
func TestRAGWithOllama(t *testing.T) {
	ollamaURL := testenv.Ollama(t)
	backend, err := models.NewOllama(ollamaURL, models.OllamaOptions{})
	require.NoError(t, err)
	cfg := ragConfig()
	cfg.Ollama.URL = ollamaURL
	cfg.Models.Default, cfg.Models.Embedding = testenv.ChatModel, testenv.EmbedModel
	cfg.Models.Aliases = map[string]string{"qwen3:coder": testenv.ChatModel}
	cfg.RAG.ChunkSize, cfg.RAG.ChunkOverlap, cfg.RAG.TopK = 120, 20, 2
	cfg.RAG.Aliases = map[string]string{"aurax-rag": testenv.ChatModel + "@handbook"}
	p := newTestPool(t, backend, cfg)
	svc := models.NewService(p, models.Config{DefaultEmbed: testenv.EmbedModel})
	emb := rag.NewCachedEmbedder(rag.EmbedderFunc(svc.EmbedTexts), rag.CacheOptions{})
	s, _ := newRAGServer(t, p, cfg, openStore(t), emb)

	resp, body := doReq(t, s, "POST", "/v1/rag/collections", `{"name":"handbook"}`)
	require.Equal(t, 201, resp.StatusCode, body)
	require.Contains(t, body, `"embed_model":"aurax-tiny-embed"`)

	var docs []rag.Document
	topics := []string{"the kitchen rota", "parking permits", "the fire drill", "expense claims", "holiday requests", "laptop support"}
	for i, topic := range topics {
		docs = append(docs, rag.Document{
			ID:       fmt.Sprintf("handbook/%02d.md", i),
			Text:     fmt.Sprintf("Section %d covers %s. Ask the office manager about %s before Friday.\n\nThe policy on %s changed in spring; read the %d rules twice.", i, topic, topic, topic, i+3),
			Metadata: rag.Metadata{"section": float64(i), "kind": []string{"even", "odd"}[i%2]},
		})
	}
	payload, err := json.Marshal(map[string]any{"documents": docs})
	require.NoError(t, err)
	resp, body = doReq(t, s, "POST", "/v1/rag/collections/handbook/documents", string(payload))
	require.Equal(t, 200, resp.StatusCode, body)
	var res rag.IngestResult
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	require.Equal(t, len(docs), res.Documents)
	require.Greater(t, res.Chunks, len(docs), "each section is two chunks at size 120")
	require.Equal(t, res.Chunks, points(t, s, "handbook"))

	// The exact text of every chunk finds that chunk first.
	resp, body = doReq(t, s, "POST", "/v1/rag/search", `{"collection":"handbook","query":"x","top_k":1000,"min_score":-1}`)
	require.Equal(t, 200, resp.StatusCode, body)
	var all ragSearchResponse
	require.NoError(t, json.Unmarshal([]byte(body), &all))
	require.Len(t, all.Data, res.Chunks)
	for _, want := range all.Data {
		q, _ := json.Marshal(map[string]any{"collection": "handbook", "query": want.Text, "top_k": 3})
		resp, body := doReq(t, s, "POST", "/v1/rag/search", string(q))
		require.Equal(t, 200, resp.StatusCode, body)
		var got ragSearchResponse
		require.NoError(t, json.Unmarshal([]byte(body), &got))
		require.NotEmpty(t, got.Data)
		require.Equal(t, [2]any{want.DocumentID, want.Chunk}, [2]any{got.Data[0].DocumentID, got.Data[0].Chunk}, "search for %q", want.Text)
		require.InDelta(t, 1.0, got.Data[0].Score, 1e-3)
	}

	t.Run("filter", func(t *testing.T) {
		resp, body := doReq(t, s, "POST", "/v1/rag/search", `{"collection":"handbook","query":"parking permits","top_k":20,"filter":{"kind":"odd"}}`)
		require.Equal(t, 200, resp.StatusCode, body)
		var got ragSearchResponse
		require.NoError(t, json.Unmarshal([]byte(body), &got))
		require.NotEmpty(t, got.Data)
		for _, h := range got.Data {
			require.Equal(t, "odd", h.Metadata["kind"])
		}
	})

	question := strings.Split(docs[2].Text, ".")[0] + "?"
	chats := []struct {
		name, path, body string
		stream, ollama   bool
	}{
		{"openai", "/v1/chat/completions", `{"model":"aurax-tiny","max_tokens":8,"seed":1,"messages":[{"role":"user","content":%q}],"rag":{"collection":"handbook"}}`, false, false},
		{"openai stream", "/v1/chat/completions", `{"model":"aurax-rag","max_tokens":8,"seed":1,"stream":true,"messages":[{"role":"user","content":%q}]}`, true, false},
		{"ollama", "/api/chat", `{"model":"aurax-tiny","stream":false,"options":{"num_predict":8,"seed":1},"messages":[{"role":"user","content":%q}],"rag":{"collection":"handbook","top_k":1}}`, false, true},
		{"ollama stream", "/api/chat", `{"model":"aurax-rag","options":{"num_predict":8,"seed":1},"messages":[{"role":"user","content":%q}]}`, true, true},
	}
	for _, tt := range chats {
		t.Run("chat "+tt.name, func(t *testing.T) {
			resp, body := doReq(t, s, "POST", tt.path, fmt.Sprintf(tt.body, question))
			require.Equal(t, 200, resp.StatusCode, body)
			require.Equal(t, "used", resp.Header.Get(HeaderRAG))
			var first map[string]any
			switch {
			case tt.stream && tt.ollama:
				lines := ndjsonLines(t, body)
				first = lines[0]
				require.Equal(t, true, lines[len(lines)-1]["done"])
			case tt.stream:
				evs := sseEvents(t, body)
				first = evs[0]
				require.True(t, strings.HasSuffix(strings.TrimSpace(body), "data: [DONE]"))
			default:
				require.NoError(t, json.Unmarshal([]byte(body), &first))
			}
			cites, ok := first["citations"].([]any)
			require.True(t, ok, "no citations in %s", body)
			require.NotEmpty(t, cites)
			require.Equal(t, docs[2].ID, cites[0].(map[string]any)["document_id"], "the question is that section's first sentence")
		})
	}

	t.Run("re-ingest adds no duplicates", func(t *testing.T) {
		resp, body := doReq(t, s, "POST", "/v1/rag/collections/handbook/documents", string(payload))
		require.Equal(t, 200, resp.StatusCode, body)
		require.Equal(t, res.Chunks, points(t, s, "handbook"))
	})
}
