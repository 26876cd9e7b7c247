package rag_test

import (
	"context"
	"errors"
	"hash/fnv"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/aurax/aurax/rag"
	"github.com/aurax/aurax/rag/embedded"
)

// hashEmbedder is a deterministic fake: each text maps to a vector seeded
// by its hash, so equal texts have score 1.
type hashEmbedder struct {
	dim   int
	calls atomic.Int64
	texts atomic.Int64
	fail  error
}

func (h *hashEmbedder) Embed(ctx context.Context, model string, texts []string) ([][]float32, error) {
	if h.fail != nil {
		return nil, h.fail
	}
	h.calls.Add(1)
	h.texts.Add(int64(len(texts)))
	out := make([][]float32, len(texts))
	for i, t := range texts {
		f := fnv.New64a()
		f.Write([]byte(model + "\x00" + t))
		x := f.Sum64()
		v := make([]float32, h.dim)
		for j := range v {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			v[j] = float32(int64(x%2001)-1000) / 1000
		}
		out[i] = v
	}
	return out, nil
}

func newStore(t *testing.T) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(filepath.Join(t.TempDir(), "rag.db"), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestIngestIdempotentAndReplacesStaleChunks(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	reg := prometheus.NewRegistry()
	m := rag.NewMetrics(reg)
	var progress []rag.Progress
	in, err := rag.NewIngester(s, &hashEmbedder{dim: 16}, rag.IngestOptions{
		Chunker: rag.Chunker{Size: 20}, Metrics: m,
		Progress: func(p rag.Progress) { progress = append(progress, p) },
	})
	require.NoError(t, err)

	v1 := rag.Document{ID: "doc", Text: "Sentence one here. Sentence two here. Sentence three.", Metadata: rag.Metadata{"lang": "en"}}
	res, err := in.Ingest(ctx, "kb", "emb", []rag.Document{v1})
	require.NoError(t, err)
	require.Equal(t, rag.IngestResult{Documents: 1, Chunks: 3}, res)
	_, err = in.Ingest(ctx, "kb", "emb", []rag.Document{v1})
	require.NoError(t, err)
	n, _ := s.Count(ctx, "kb")
	require.Equal(t, 3, n, "re-ingesting the same document changes nothing")

	v2 := rag.Document{ID: "doc", Text: "Only one now."}
	_, err = in.Ingest(ctx, "kb", "emb", []rag.Document{v2})
	require.NoError(t, err)
	n, _ = s.Count(ctx, "kb")
	require.Equal(t, 1, n, "a new version replaces its old chunks")

	res, err = in.Ingest(ctx, "kb", "emb", []rag.Document{{ID: "", Text: "x"}, {ID: "e", Text: "  "}, {ID: "ok", Text: "fine."}})
	require.NoError(t, err)
	require.Equal(t, 1, res.Documents)
	require.Len(t, res.Failed, 2)
	require.ErrorIs(t, res.Failed[1].Err, rag.ErrEmptyDocument)
	require.Equal(t, float64(2), testutil.ToFloat64(m.Skipped.WithLabelValues(rag.SkipInvalid)))
	require.Equal(t, float64(3+3+1+1), testutil.ToFloat64(m.ChunksIngested))
	require.NotEmpty(t, progress)
	require.Equal(t, 2, progress[len(progress)-1].Failed)

	// Dimension mismatch with the collection is an error, not a skip.
	in2, _ := rag.NewIngester(s, &hashEmbedder{dim: 8}, rag.IngestOptions{Chunker: rag.Chunker{Size: 20}})
	_, err = in2.Ingest(ctx, "kb", "emb", []rag.Document{v1})
	require.ErrorIs(t, err, rag.ErrDimensionMismatch)
}

func TestIngestPaths(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name, data string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644))
	}
	write("a.md", "# A\nalpha text.")
	write("sub/b.txt", "beta text.")
	write("sub/c.jsonl", `{"id":"c1","text":"gamma"}`+"\n"+`{"id":"c2","text":"delta"}`)
	write("sub/bad.json", `{"text":`)
	write("ignored.bin", "\x00")
	write(".hidden/x.txt", "hidden")
	s := newStore(t)
	in, err := rag.NewIngester(s, &hashEmbedder{dim: 8}, rag.IngestOptions{Chunker: rag.Chunker{Size: 100}})
	require.NoError(t, err)
	res, err := in.IngestPaths(ctx, "kb", "emb", []string{dir, filepath.Join(dir, "ignored.bin")})
	require.NoError(t, err)
	require.Equal(t, 5, res.Files) // a.md b.txt c.jsonl bad.json + explicit ignored.bin
	require.Equal(t, 4, res.Documents)
	require.Len(t, res.Failed, 2)
	require.ErrorIs(t, res.Failed[0].Err, rag.ErrInvalidArgument)
}

func TestRetrieveAndAugment(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	emb := &hashEmbedder{dim: 32}
	reg := prometheus.NewRegistry()
	m := rag.NewMetrics(reg)
	cached := rag.NewCachedEmbedder(emb, rag.CacheOptions{Metrics: m, BatchSize: 2})
	in, _ := rag.NewIngester(s, cached, rag.IngestOptions{Chunker: rag.Chunker{Size: 30}})
	_, err := in.Ingest(ctx, "kb", "emb", []rag.Document{
		{ID: "a", Text: "The cat sat on the mat.", Metadata: rag.Metadata{"lang": "en"}},
		{ID: "b", Text: "O gato sentou no tapete.", Metadata: rag.Metadata{"lang": "pt"}},
	})
	require.NoError(t, err)

	r := rag.NewRetriever(s, cached, rag.RetrieverOptions{TopK: 2, MinScore: -1, Metrics: m})
	hits, err := r.Retrieve(ctx, rag.Request{Collection: "kb", Model: "emb", Query: "The cat sat on the mat."})
	require.NoError(t, err)
	require.Equal(t, "a", hits[0].DocumentID)
	require.InDelta(t, 1.0, hits[0].Score, 1e-5, "exact text scores 1")
	require.Equal(t, float64(1), testutil.ToFloat64(m.CacheHits), "the query text was embedded at ingest")

	hits, err = r.Retrieve(ctx, rag.Request{Collection: "kb", Model: "emb", Query: "The cat sat on the mat.", Filter: rag.Filter{"lang": "pt"}})
	require.NoError(t, err)
	require.Equal(t, "b", hits[0].DocumentID)

	_, err = r.Retrieve(ctx, rag.Request{Collection: "nope", Model: "emb", Query: "q"})
	require.ErrorIs(t, err, rag.ErrCollectionNotFound)
	require.Equal(t, rag.SkipInvalid, rag.SkipReason(err))
	_, err = rag.NewRetriever(s, &hashEmbedder{fail: errors.New("ollama down")}, rag.RetrieverOptions{}).Retrieve(ctx, rag.Request{Collection: "kb", Query: "q"})
	require.ErrorIs(t, err, rag.ErrEmbedding)
	require.Equal(t, rag.SkipEmbed, rag.SkipReason(err))

	aug, err := rag.NewAugmenter("")
	require.NoError(t, err)
	out, err := aug.Augment("q", hits)
	require.NoError(t, err)
	require.Contains(t, out.System, "[1] (b#0)\nO gato sentou no tapete.")
	require.Equal(t, []rag.Citation{{DocumentID: "b", Chunk: 0, Score: hits[0].Score, Metadata: rag.Metadata{"lang": "pt"}}}, out.Citations)
	custom, err := rag.NewAugmenter("Q={{.Query}}{{range .Hits}}|{{.N}}:{{.Text}}{{end}}")
	require.NoError(t, err)
	out, err = custom.Augment("why", hits)
	require.NoError(t, err)
	require.Equal(t, "Q=why|1:O gato sentou no tapete.", out.System)
	_, err = rag.NewAugmenter("{{.Nope")
	require.ErrorIs(t, err, rag.ErrInvalidArgument)

	require.Equal(t, 1, testutil.CollectAndCount(reg, "aurax_rag_retrieval_duration_seconds"))
}

func TestCachedEmbedder(t *testing.T) {
	ctx := context.Background()
	emb := &hashEmbedder{dim: 4}
	c := rag.NewCachedEmbedder(emb, rag.CacheOptions{BatchSize: 2, Concurrency: 2, Size: 3})
	v, err := c.Embed(ctx, "m", []string{"a", "b", "a", "c", "d"})
	require.NoError(t, err)
	require.Len(t, v, 5)
	require.Equal(t, v[0], v[2], "duplicates share one embedding")
	require.Equal(t, int64(4), emb.texts.Load(), "unique texts embedded once")
	require.Equal(t, int64(2), emb.calls.Load(), "batches of 2")
	st := c.Stats()
	require.Equal(t, rag.CacheStats{Hits: 0, Misses: 5, Entries: 3}, st)
	_, err = c.Embed(ctx, "m", []string{"d"}) // most recent: cached
	require.NoError(t, err)
	_, err = c.Embed(ctx, "other", []string{"d"}) // model is part of the key
	require.NoError(t, err)
	require.Equal(t, rag.CacheStats{Hits: 1, Misses: 6, Entries: 3}, c.Stats())

	emb.fail = errors.New("boom")
	_, err = c.Embed(ctx, "m", []string{"zzz"})
	require.ErrorContains(t, err, "boom")
}

func TestConfig(t *testing.T) {
	require.NoError(t, rag.DefaultConfig().Validate())
	c := rag.DefaultConfig()
	c.Store, c.OnError, c.ChunkOverlap, c.TopK = "mongo", "ignore", 900, 0
	c.Qdrant.WriteConsistencyFactor = 5
	err := c.Validate()
	require.ErrorIs(t, err, rag.ErrInvalidArgument)
	for _, s := range []string{"store", "on_error", "chunk_overlap", "top_k"} {
		require.ErrorContains(t, err, s)
	}
	q := rag.DefaultConfig()
	q.Store = rag.StoreQdrant
	q.Qdrant.WriteConsistencyFactor = 5
	require.ErrorContains(t, q.Validate(), "write_consistency_factor")
	e := rag.DefaultConfig()
	require.Equal(t, rag.SearchQuantized, e.Search)
	e.Search = "hnsw"
	require.ErrorContains(t, e.Validate(), "rag.search")
	e.Search = rag.SearchExact
	require.NoError(t, e.Validate())
	require.Equal(t, 4, q.Qdrant.ShardNumber)
	require.Equal(t, 2, q.Qdrant.ReplicationFactor)
}

func TestPointIDDeterministic(t *testing.T) {
	a := rag.PointID("c", "doc", 1)
	require.Equal(t, a, rag.PointID("c", "doc", 1))
	require.NotEqual(t, a, rag.PointID("c", "doc", 2))
	require.NotEqual(t, a, rag.PointID("c2", "doc", 1))
	require.Len(t, a, 36)
	require.Equal(t, byte('5'), a[14], "UUID version 5")
}
