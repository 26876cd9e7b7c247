package rag_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/require"

	"github.com/aurax/aurax/internal/testenv"
	"github.com/aurax/aurax/rag"
)

// ollamaEmbedder embeds through the test Ollama's /api/embed, as the
// gateway does, without the model service in between.
func ollamaEmbedder(t *testing.T) rag.Embedder {
	t.Helper()
	u, err := url.Parse(testenv.Ollama(t))
	require.NoError(t, err)
	c := api.NewClient(u, &http.Client{Timeout: time.Minute})
	return rag.EmbedderFunc(func(ctx context.Context, model string, texts []string) ([][]float32, error) {
		resp, err := c.Embed(ctx, &api.EmbedRequest{Model: model, Input: texts})
		if err != nil {
			return nil, fmt.Errorf("embed: %w", err)
		}
		return resp.Embeddings, nil
	})
}

// handbook is a small corpus of unrelated topics; each question shares
// words (not whole sentences) with one chunk only.
var handbook = []struct {
	id, text, question string
}{
	{"parking.md", "Parking permits are issued by the front desk. A permit is valid for one year and costs twenty pounds; lost permits are replaced for free.",
		"How long is a parking permit valid?"},
	{"kitchen.md", "The kitchen rota lists who cleans the fridge and the microwave each week. Check the rota on the board beside the sink.",
		"Who cleans the fridge this week?"},
	{"fire.md", "Fire drills happen every quarter. When the alarm sounds, leave by the nearest exit and gather in the car park opposite the main gate.",
		"Where do we gather when the fire alarm sounds?"},
	{"expenses.md", "Expense claims must be filed within thirty days, with every receipt attached to the claim form.",
		"When must an expense claim be filed?"},
	{"holiday.md", "Holiday requests go to your manager at least two weeks ahead, through the leave portal.",
		"How do I send a holiday request to my manager?"},
	{"laptop.md", "Laptop support: if your laptop will not boot or the screen stays black, bring it to the IT helpdesk on the second floor.",
		"My laptop screen stays black, where is the helpdesk?"},
	{"otters.md", "Otters hold hands while sleeping so that they do not drift apart on the water.",
		"Why do sleeping otters hold hands?"},
	{"pharos.md", "The Pharos of Alexandria was a lighthouse, one of the seven wonders of the ancient world.",
		"Which lighthouse was one of the seven wonders?"},
}

// TestRetrieveWithOllama runs ingestion and retrieval on the real test
// Ollama's lexical aurax-tiny-embed: a document's own paragraph finds that
// document, and a question that shares some words with one chunk (and
// none of its sentences) finds that chunk first among unrelated ones.
func TestRetrieveWithOllama(t *testing.T) {
	ctx := context.Background()
	emb := ollamaEmbedder(t)
	s := newStore(t)
	in, err := rag.NewIngester(s, emb, rag.IngestOptions{Chunker: rag.Chunker{Size: 400, Overlap: 0}})
	require.NoError(t, err)
	var docs []rag.Document
	for _, h := range handbook {
		docs = append(docs, rag.Document{ID: h.id, Text: h.text})
	}
	res, err := in.Ingest(ctx, "handbook", testenv.EmbedModel, docs)
	require.NoError(t, err)
	require.Equal(t, len(handbook), res.Chunks, "one chunk per document")

	r := rag.NewRetriever(s, emb, rag.RetrieverOptions{TopK: 3, MinScore: -1})
	for _, h := range handbook {
		t.Run(h.id, func(t *testing.T) {
			hits, err := r.Retrieve(ctx, rag.Request{Collection: "handbook", Model: testenv.EmbedModel, Query: h.text})
			require.NoError(t, err)
			require.NotEmpty(t, hits)
			require.Equal(t, h.id, hits[0].DocumentID, "the paragraph itself")
			require.InDelta(t, 1.0, hits[0].Score, 1e-3)

			hits, err = r.Retrieve(ctx, rag.Request{Collection: "handbook", Model: testenv.EmbedModel, Query: h.question})
			require.NoError(t, err)
			require.Len(t, hits, 3)
			require.Equal(t, h.id, hits[0].DocumentID, "Retrieve(%q) = %s (%.3f), then %s (%.3f)",
				h.question, hits[0].DocumentID, hits[0].Score, hits[1].DocumentID, hits[1].Score)
			t.Logf("%q: %s %.3f, next %s %.3f", h.question, hits[0].DocumentID, hits[0].Score, hits[1].DocumentID, hits[1].Score)
		})
	}

	t.Run("paragraph finds its document", func(t *testing.T) {
		// A longer document split into chunks: one of its paragraphs,
		// reworded, finds a chunk of it rather than the handbook's.
		long := rag.Document{ID: "lighthouses.md", Text: "Lighthouses guide ships past rocks at night.\n\n" +
			"The keeper of a lighthouse trimmed the wick and wound the clockwork that turned the lens.\n\n" +
			"Modern lighthouses are automatic: a lamp, a battery and a solar panel replace the keeper."}
		in2, err := rag.NewIngester(s, emb, rag.IngestOptions{Chunker: rag.Chunker{Size: 100}})
		require.NoError(t, err)
		res, err := in2.Ingest(ctx, "handbook", testenv.EmbedModel, []rag.Document{long})
		require.NoError(t, err)
		require.Equal(t, 3, res.Chunks)
		hits, err := r.Retrieve(ctx, rag.Request{Collection: "handbook", Model: testenv.EmbedModel,
			Query: "Who wound the clockwork and trimmed the wick of the lighthouse lens?"})
		require.NoError(t, err)
		require.Equal(t, "lighthouses.md", hits[0].DocumentID)
		require.Equal(t, 1, hits[0].Chunk, "the keeper's paragraph")
	})
}
